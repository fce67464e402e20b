; Exceptions and their error codes in 32-bit protected mode (SDM vol. 3A
; 6.15): #DE #BP #OF #UD #TS #NP #SS #GP #PF #DF, faults vs traps (saved
; EIP), and the selector error codes of segment loads.
%include "lib.inc"
org 0

%include "prot_common.inc"

bits 16
start:
	ENTER_PROT32 main

bits 32
main:
	PRINT32 "except: 32-bit protected mode"

	TRY .de
	xor edx, edx
	xor ecx, ecx
.de_insn:
	div ecx
.de:
	EXPECT 0, -1, "#DE"
	cmp dword [LAST_EIP], ABS(.de_insn)
	CHECK32 e, "#DE is a fault (EIP of the DIV)"

	TRY .bp
	int3
.bp:
	EXPECT 3, -1, "#BP"
	cmp dword [LAST_EIP], ABS(.bp)
	CHECK32 e, "#BP is a trap (EIP after INT3)"

	TRY .of
	mov al, 0x7f
	add al, 1
	into
.of:
	EXPECT 4, -1, "#OF from INTO"

	TRY .ud
	ud2
.ud:
	EXPECT 6, -1, "#UD"

	TRY .gp1
	mov ax, 0x1234
	mov ds, ax
.gp1:
	EXPECT 13, 0x1234, "#GP(selector) beyond the GDT limit"

	TRY .gp2
	mov ax, 0x08
	mov ss, ax
.gp2:
	EXPECT 13, 0x08, "#GP(selector) loading SS with code"

	TRY .np
	mov ax, 0x33                   ; not-present data, RPL 3
	mov es, ax
.np:
	EXPECT 11, 0x30, "#NP(selector)"

	TRY .gp3
	mov eax, [0x20000]             ; beyond DS limit (0x38 below)
.gp3:
	EXPECT -1, -1, "flat DS reaches 0x20000"

	; Limit checks (SDM vol. 3A 5.3; QEMU's TCG skips them).
	mov ax, 0x38                   ; data, limit 0xffff
	mov ds, ax
	TRY .gp4
	mov eax, [0x20000]
.gp4:
	mov ax, 0x10
	mov ds, ax
	EXPECT 13, 0, "#GP(0) past the DS limit"

	mov ax, 0x38
	mov ss, ax
	TRY .ss
	mov ebp, 0x20000
	mov eax, [ebp]
.ss:
	mov ax, 0x10
	mov ss, ax
	EXPECT 12, 0, "#SS(0) past the SS limit"

	TRY .ts
	jmp 0x40:0
.ts:
	EXPECT 10, 0x40, "#TS(selector) for a TSS below the minimum limit"

	; Paging: 4 MiB identity page, then a read-only page and a hole.
	mov dword [0x30000], 0x83
	mov dword [0x30004], 0
	mov dword [0x30008], 0x800000 | 0x81     ; read-only, supervisor
	mov eax, cr4
	or eax, 1 << 4                 ; PSE
	mov cr4, eax
	mov eax, 0x30000
	mov cr3, eax
	mov eax, cr0
	or eax, (1 << 31) | (1 << 16)  ; PG, WP
	mov cr0, eax

	TRY .pf1
	mov dword [0x400010], 1
.pf1:
	EXPECT 14, 2, "#PF write to a not-present page"
	cmp dword [LAST_CR2], 0x400010
	CHECK32 e, "CR2 holds the faulting address"

	TRY .pf2
	mov eax, [0x400000]
.pf2:
	EXPECT 14, 0, "#PF read of a not-present page"

	TRY .pf3
	mov eax, [0x800000]
.pf3:
	EXPECT -1, -1, "read of a read-only page"
	test dword [0x30008], 0x20
	CHECK32 nz, "accessed bit set in the PDE"

	TRY .pf4
	mov dword [0x800000], 1
.pf4:
	EXPECT 14, 3, "#PF write to a read-only page with CR0.WP"

	mov eax, cr0
	and eax, ~(1 << 16)
	mov cr0, eax
	TRY .pf5
	mov dword [0x800000], 5
.pf5:
	EXPECT -1, -1, "supervisor write to a read-only page without WP"
	test dword [0x30008], 0x40
	CHECK32 nz, "dirty bit set in the PDE"

	; #NP while delivering #GP: contributory pair -> #DF(0).
	and byte [IDT + 13 * 8 + 5], 0x7f
	TRY .df
	mov ax, 0x1234
	mov ds, ax
.df:
	or byte [IDT + 13 * 8 + 5], 0x80
	mov ax, 0x10
	mov ds, ax
	EXPECT 8, 0, "#DF from #NP during #GP delivery"

	; System instructions on descriptors.
	mov ax, 0x08
	lar eax, ax
	CHECK32 z, "LAR of the code segment"
	and eax, 0x00f0ff00
	cmp eax, 0x00c09b00
	CHECK32 e, "LAR access rights"
	mov ax, 0x38
	lsl eax, ax
	cmp eax, 0xffff
	CHECK32 e, "LSL limit"
	mov ax, 0x08
	verw ax
	CHECK32 nz, "VERW refuses a code segment"
	verr ax
	CHECK32 z, "VERR accepts readable code"
	str ax
	cmp ax, 0
	CHECK32 e, "STR before LTR"

	EXIT32

align 8
gdt:
	dq 0
	dq 0x00cf9b000000ffff          ; 0x08 code32
	dq 0x00cf93000000ffff          ; 0x10 data32
	dq 0x00009b0f0000ffff          ; 0x18 code16
	dq 0x000093000000ffff          ; 0x20 data16
	dq 0x00af9b000000ffff          ; 0x28 code64
	dq 0x00cff3000000ffff & ~(1 << 47) ; 0x30 data DPL 3, not present
	dq 0x004093000000ffff          ; 0x38 data32, limit 0xffff
	dq 0x0000890050000020          ; 0x40 TSS, limit 0x20 (too small)
gdt_end:
gdtr:
	dw gdt_end - gdt - 1
	dd GDT

%include "tail.inc"
