; System-call benchmark guest: a Multiboot v1 kernel (a.out kludge) for
; `vessel run --kernel` and `qemu-system-x86_64 -kernel`.  It enters long
; mode, drops to ring 3 and makes ITERS system calls: SYSCALL into a
; kernel entry that returns with SYSRETQ at once, then ITERS/8 round trips
; through INT 0x80 and IRETQ (the other way a kernel is entered and left).
; It prints "syscallbench done" on COM1 and leaves through the
; isa-debug-exit port 0xf4 with value 0 (exit code 1 in both VMMs).

%ifndef ITERS
%define ITERS 20000000
%endif

MB_MAGIC    equ 0x1badb002
MB_FLAGS    equ 0x00010003
LOAD_ADDR   equ 0x100000
PML4        equ 0x200000
PDPT        equ 0x201000
PD          equ 0x202000
IDT         equ 0x203000
COM1        equ 0x3f8

	bits 32
	org LOAD_ADDR
header:
	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, LOAD_ADDR, load_end, bss_end, start

start:
	cli
	mov esp, 0x90000
	mov edi, PML4
	mov ecx, (IDT + 0x1000 - PML4) / 4
	xor eax, eax
	rep stosd
	mov dword [PML4], PDPT | 7
	mov dword [PDPT], PD | 7
	mov edi, PD                    ; first GiB, 2 MiB pages, user-accessible
	mov eax, 0x87
	mov ecx, 512
.pd:	mov [edi], eax
	add eax, 0x200000
	add edi, 8
	loop .pd
	lgdt [gdt_ptr]
	mov eax, cr4
	or eax, 1 << 5
	mov cr4, eax
	mov eax, PML4
	mov cr3, eax
	mov ecx, 0xc0000080
	rdmsr
	or eax, (1 << 8) | 1           ; LME, SCE
	wrmsr
	mov eax, cr0
	or eax, 0x80000001
	mov cr0, eax
	jmp 0x08:long_entry

	bits 64
long_entry:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov rsp, 0x90000
	; TSS: RSP0 for INT 0x80 from ring 3
	mov qword [tss + 4], 0x90000
	mov rax, tss
	mov [gdt + 0x28 + 2], ax
	shr rax, 16
	mov [gdt + 0x28 + 4], al
	mov [gdt + 0x28 + 7], ah
	mov ax, 0x28
	ltr ax
	; IDT vector 0x80: 64-bit interrupt gate, DPL 3
	mov rax, int80
	mov rdi, IDT + 0x80 * 16
	mov [rdi], ax
	mov word [rdi + 2], 0x08
	mov word [rdi + 4], 0xee00
	shr rax, 16
	mov [rdi + 6], ax
	lidt [idt_ptr]
	; STAR: SYSCALL CS 0x08 / SS 0x10; SYSRET SS 0x18|3, CS 0x20|3
	mov ecx, 0xc0000081
	xor eax, eax
	mov edx, 0x00100008
	wrmsr
	mov ecx, 0xc0000082            ; LSTAR
	mov rax, syscall_entry
	mov rdx, rax
	shr rdx, 32
	wrmsr
	mov ecx, 0xc0000084            ; FMASK: TF, IF, DF
	mov eax, 0x700
	xor edx, edx
	wrmsr
	push qword 0x1b
	push qword 0x80000
	push qword 2
	push qword 0x23
	mov rax, user
	push rax
	iretq

syscall_entry:
	test eax, eax
	jnz .done
	o64 sysret
.done:
	mov rsp, 0x90000
	mov rsi, msg
.puts:	lodsb
	test al, al
	jz .exit
	mov dx, COM1
	out dx, al
	jmp .puts
.exit:
	xor eax, eax
	out 0xf4, al
.hang:	hlt
	jmp .hang

int80:
	iretq

user:
	xor eax, eax
	mov r12d, ITERS
.l:	syscall
	dec r12d
	jnz .l
	mov r12d, ITERS / 8
.i:	int 0x80
	dec r12d
	jnz .i
	mov eax, 1
	syscall

	align 8
gdt:	dq 0
	dq 0x00af9a000000ffff            ; 0x08 64-bit code, DPL 0
	dq 0x00cf92000000ffff            ; 0x10 data, DPL 0
	dq 0x00cff2000000ffff            ; 0x18 data, DPL 3
	dq 0x00affa000000ffff            ; 0x20 64-bit code, DPL 3
	dq 0x0000890000000067            ; 0x28 64-bit TSS (base filled in)
	dq 0
gdt_ptr:
	dw gdt_ptr - gdt - 1
	dd gdt
idt_ptr:
	dw 256 * 16 - 1
	dq IDT
msg:	db "syscallbench done", 10, 0
	align 16
tss:	times 0x68 db 0
load_end:
bss_end:
