; Hardware task switches (SDM vol. 3A 7.3): CALL to a TSS nests (NT, back
; link, busy bits), IRET returns, JMP does not nest, INT through a task
; gate, and CR0.TS after a switch.
%include "lib.inc"
org 0
%include "prot_common.inc"

TSS_A equ 0x3000
TSS_B equ 0x3100
SEL_A equ 0x28
SEL_B equ 0x30
STEP equ 0x540

bits 16
start:
	ENTER_PROT32 main

bits 32
main:
	PRINT32 "task: 32-bit protected mode"
	mov edi, TSS_A
	xor eax, eax
	mov ecx, 0x200 / 4
	rep stosd
	; Task B starts at task_b with its own stack.
	mov dword [TSS_B + 0x20], ABS(task_b)
	mov dword [TSS_B + 0x24], 2
	mov dword [TSS_B + 0x38], 0x6000
	mov dword [TSS_B + 0x48], 0x10
	mov dword [TSS_B + 0x4c], 0x08
	mov dword [TSS_B + 0x50], 0x10
	mov dword [TSS_B + 0x54], 0x10
	mov dword [TSS_B + 0x58], 0x10
	mov dword [TSS_B + 0x5c], 0x10
	mov word [TSS_B + 0x66], 0x68
	mov word [TSS_A + 0x66], 0x68
	; Vector 0x40: a task gate to B.
	mov dword [IDT + 0x40 * 8], SEL_B << 16
	mov dword [IDT + 0x40 * 8 + 4], 0x8500

	mov ax, SEL_A
	ltr ax
	test byte [GDT + SEL_A + 5], 2
	CHECK32 nz, "LTR marks the TSS busy"

	mov dword [STEP], 0
	mov eax, 0x1234
	call SEL_B:0
	cmp eax, 0x1234
	CHECK32 e, "CALL task: EAX restored on return"
	str ax
	cmp ax, SEL_A
	CHECK32 e, "IRET from the nested task restores TR"
	test byte [GDT + SEL_B + 5], 2
	CHECK32 z, "returned-from task is no longer busy"
	mov eax, cr0
	test eax, 8
	CHECK32 nz, "CR0.TS set by the task switch"
	clts

	jmp SEL_B:0
	; B jumps back here.
	cmp dword [STEP], 2
	CHECK32 e, "JMP task and JMP back"
	test byte [GDT + SEL_B + 5], 2
	CHECK32 z, "JMP leaves the old task not busy"
	test byte [GDT + SEL_A + 5], 2
	CHECK32 nz, "current task busy"

	int 0x40
	cmp dword [STEP], 3
	CHECK32 e, "INT through a task gate and IRET back"

	EXIT32

task_b:
	; First entry, by CALL.
	pushfd
	pop eax
	test eax, 1 << 14
	CHECK32 nz, "CALL sets NT in the new task"
	cmp word [TSS_B], SEL_A
	CHECK32 e, "back link names the caller"
	str ax
	cmp ax, SEL_B
	CHECK32 e, "TR holds the new task"
	mov dword [STEP], 1
	mov eax, 0xdead
	iretd
	; Second entry, by JMP: continues after the IRET.
	pushfd
	pop eax
	test eax, 1 << 14
	CHECK32 z, "JMP does not set NT"
	mov dword [STEP], 2
	jmp SEL_A:0
	; Third entry, by INT 0x40 through the task gate.
	pushfd
	pop eax
	test eax, 1 << 14
	CHECK32 nz, "INT through a task gate nests"
	mov dword [STEP], 3
	iretd

align 8
gdt:
	dq 0
	dq 0x00cf9b000000ffff          ; 0x08 code32
	dq 0x00cf93000000ffff          ; 0x10 data32
	dq 0x00009b0f0000ffff          ; 0x18 code16
	dq 0x000093000000ffff          ; 0x20 data16
	dq 0x0000890030000067          ; 0x28 TSS A
	dq 0x0000890031000067          ; 0x30 TSS B
gdt_end:
gdtr:
	dw gdt_end - gdt - 1
	dd GDT

%include "tail.inc"
