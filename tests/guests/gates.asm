; Privilege transfers in 32-bit protected mode: a call gate from ring 3 to
; ring 0 with parameters copied to the inner stack (SDM vol. 3A 5.8.5),
; RETF n back to the outer level, and SYSENTER/SYSEXIT (vol. 2B).
%include "lib.inc"
org 0
%include "prot_common.inc"

TSS equ 0x3000
SEL_TSS equ 0x28
SEL_UCODE equ 0x33
SEL_UDATA equ 0x3b
SEL_GATE equ 0x43
SEL_SE_CS equ 0x48          ; SYSENTER_CS: 0x48 code0, 0x50 data0, 0x58 code3, 0x60 data3
GATE_ESP equ 0x548
GATE_P1 equ 0x54c
GATE_P2 equ 0x550
GATE_CS equ 0x554
SE_ESP equ 0x558

bits 16
start:
	ENTER_PROT32 main

bits 32
main:
	PRINT32 "gates: 32-bit protected mode"
	mov edi, TSS
	xor eax, eax
	mov ecx, 0x68 / 4
	rep stosd
	mov dword [TSS + 4], 0x9000
	mov dword [TSS + 8], 0x10
	mov word [TSS + 0x66], 0x68
	mov ax, SEL_TSS
	ltr ax
	; Call gate (DPL 3, 2 dword parameters) to gate_target in ring 0.
	mov eax, ABS(gate_target)
	mov [GDT + SEL_GATE - 3], ax
	mov word [GDT + SEL_GATE - 3 + 2], 0x08
	mov byte [GDT + SEL_GATE - 3 + 4], 2
	mov byte [GDT + SEL_GATE - 3 + 5], 0xec
	shr eax, 16
	mov [GDT + SEL_GATE - 3 + 6], ax
	; SYSENTER MSRs.
	mov ecx, 0x174
	mov eax, SEL_SE_CS
	xor edx, edx
	wrmsr
	mov ecx, 0x175
	mov eax, 0x8800
	wrmsr
	mov ecx, 0x176
	mov eax, ABS(sysenter_target)
	wrmsr
	; To ring 3; its final UD2 comes back to back_in_ring0.
	mov dword [V86_EXIT_TO], ABS(back_in_ring0)
	push dword SEL_UDATA
	push dword 0x6800
	push dword 0x2
	push dword SEL_UCODE
	push dword ABS(user)
	iretd

back_in_ring0:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	cmp dword [GATE_P1], 0x1111
	CHECK32 e, "call gate copies the first parameter"
	cmp dword [GATE_P2], 0x2222
	CHECK32 e, "call gate copies the second parameter"
	cmp dword [GATE_ESP], 0x9000 - 4 * 6
	CHECK32 e, "inner stack from the TSS with SS:ESP, params, CS:EIP"
	cmp dword [GATE_CS], SEL_UCODE
	CHECK32 e, "caller's CS on the inner stack"
	cmp dword [0x560], 0x6800
	CHECK32 e, "RETF 8 back to ring 3 pops the parameters"
	cmp dword [0x564], 3
	CHECK32 e, "ring 3 again after RETF"
	cmp dword [SE_ESP], 0x8800
	CHECK32 e, "SYSENTER loads ESP from IA32_SYSENTER_ESP"
	cmp dword [0x568], SEL_SE_CS + 16 + 3
	CHECK32 e, "SYSEXIT returns to SYSENTER_CS + 16 at ring 3"
	cmp dword [0x56c], 0x6700
	CHECK32 e, "SYSEXIT loads ESP from ECX"
	EXIT32

gate_target:
	mov [GATE_ESP], esp
	mov eax, [esp + 8]             ; parameters above CS:EIP
	mov [GATE_P2], eax
	mov eax, [esp + 12]
	mov [GATE_P1], eax
	mov eax, [esp + 4]
	mov [GATE_CS], eax
	retf 8

sysenter_target:
	mov [SE_ESP], esp
	mov ecx, 0x6700
	mov edx, ABS(user_after_sysexit)
	sysexit

user:
	mov ax, SEL_UDATA
	mov ds, ax
	mov es, ax
	push dword 0x1111
	push dword 0x2222
	call SEL_GATE:0
	mov [0x560], esp
	mov ax, cs
	and eax, 3
	mov [0x564], eax
	sysenter
user_after_sysexit:
	mov ax, cs
	movzx eax, ax
	mov [0x568], eax
	mov [0x56c], esp
	ud2                            ; #UD: the handler below ends ring 3

align 8
gdt:
	dq 0
	dq 0x00cf9b000000ffff          ; 0x08 code32
	dq 0x00cf93000000ffff          ; 0x10 data32
	dq 0x00009b0f0000ffff          ; 0x18 code16
	dq 0x000093000000ffff          ; 0x20 data16
	dq 0x0000890030000067          ; 0x28 TSS
	dq 0x00cffb000000ffff          ; 0x30 code32, DPL 3
	dq 0x00cff3000000ffff          ; 0x38 data32, DPL 3
	dq 0                           ; 0x40 call gate (built at run time)
	dq 0x00cf9b000000ffff          ; 0x48 SYSENTER code
	dq 0x00cf93000000ffff          ; 0x50 SYSENTER stack
	dq 0x00cffb000000ffff          ; 0x58 SYSEXIT code
	dq 0x00cff3000000ffff          ; 0x60 SYSEXIT stack
gdt_end:
gdtr:
	dw gdt_end - gdt - 1
	dd GDT

%include "tail.inc"
