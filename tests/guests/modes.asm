; Every mode transition (SDM vol. 3A 9.9 and 10.8): real -> 16-bit
; protected -> 32-bit protected -> IA-32e compatibility -> 64-bit, then all
; the way back: 64-bit -> compatibility -> paging off (IA-32e off) ->
; 32-bit -> 16-bit protected -> real mode.
%include "lib.inc"
org 0

GDT equ 0x1000
PML4 equ 0x10000

bits 16
start:
	PRINT16 "modes: real mode"
	; Copy the GDT to RAM (descriptor loads write accessed bits).
	push ds
	mov ax, 0xf000
	mov ds, ax
	mov si, gdt
	mov di, GDT
	mov cx, gdt_end - gdt
	cld
	rep movsb
	pop ds
	o32 lgdt [cs:gdtr]

	mov eax, cr0
	or al, 1
	mov cr0, eax
	jmp 0x18:prot16
prot16:
	mov ax, 0x20
	mov ds, ax
	mov es, ax
	mov ss, ax
	smsw ax
	test al, 1
	CHECK16 nz, "protected mode 16-bit"
	jmp dword 0x08:ABS(prot32)

bits 32
prot32:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, 0x7000
	mov eax, 0x12345678
	cmp eax, 0x12345678
	CHECK32 e, "protected mode 32-bit"

	; Identity map the first 2 MiB with one large page (4-level paging).
	mov edi, PML4
	xor eax, eax
	mov ecx, 3 * 1024
	rep stosd
	mov dword [PML4], PML4 + 0x1000 + 3
	mov dword [PML4 + 0x1000], PML4 + 0x2000 + 3
	mov dword [PML4 + 0x2000], 0x83
	mov eax, cr4
	or eax, 1 << 5                 ; PAE
	mov cr4, eax
	mov eax, PML4
	mov cr3, eax
	mov ecx, 0xc0000080            ; EFER.LME
	rdmsr
	or eax, 1 << 8
	wrmsr
	mov eax, cr0
	or eax, 1 << 31
	mov cr0, eax
	mov ecx, 0xc0000080
	rdmsr
	test eax, 1 << 10              ; LMA
	CHECK32 nz, "IA-32e compatibility mode"
	jmp 0x28:ABS(long64)

bits 64
long64:
	mov rax, 0x123456789abcdef0
	shr rax, 32
	cmp eax, 0x12345678
	CHECK64 e, "64-bit mode"
	; Far return to the 32-bit code segment: compatibility mode.
	push qword 0x08
	mov eax, ABS(compat)
	push rax
	o64 retf

bits 32
compat:
	mov eax, 0xffffffff
	inc eax                        ; 32-bit wrap: compatibility semantics
	CHECK32 z, "back to compatibility mode"
	mov eax, cr0
	and eax, ~(1 << 31)
	mov cr0, eax
	mov ecx, 0xc0000080
	rdmsr
	test eax, 1 << 10
	CHECK32 z, "IA-32e mode left (LMA clear)"
	and eax, ~(1 << 8)
	wrmsr
	jmp 0x18:prot16_back

bits 16
prot16_back:
	mov ax, 0x20
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov eax, cr0
	and al, ~1
	mov cr0, eax
	jmp 0xf000:real_back
real_back:
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov sp, 0x7000
	smsw ax
	test al, 1
	CHECK16 z, "real mode again"
	mov eax, [FAILS]
	out EXIT_PORT, al
.hang:
	hlt
	jmp .hang

align 8
gdt:
	dq 0
	dq 0x00cf9b000000ffff          ; 0x08 code32, flat
	dq 0x00cf93000000ffff          ; 0x10 data32, flat
	dq 0x00009b0f0000ffff          ; 0x18 code16, base 0xF0000
	dq 0x000093000000ffff          ; 0x20 data16, base 0
	dq 0x00af9b000000ffff          ; 0x28 code64
gdt_end:
gdtr:
	dw gdt_end - gdt - 1
	dd GDT

%include "tail.inc"
