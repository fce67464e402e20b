; Virtual-8086 mode (SDM vol. 3A chapter 20): entry by IRET with VM set,
; real-mode addressing, IOPL-sensitive instructions faulting to the
; protected-mode monitor at IOPL 0, INT n through the IDT at IOPL 3, and
; the segment registers the monitor sees.
%include "lib.inc"
org 0
%include "prot_common.inc"

TSS equ 0x3000
SEL_TSS equ 0x28
V86_RES equ 0x700          ; bytes: vector seen by each V86 test

%macro V86_TRY 1
	mov dword [RESUME], %1     ; an IP within CS = F000
	mov dword [LAST_VEC], 0xff
%endmacro

%macro V86_SAVE 1
	mov al, [LAST_VEC]
	mov [V86_RES + %1], al
%endmacro

; IRET to V86 mode at F000:%1 with IOPL %2.
%macro TO_V86 2
	push dword 0                   ; GS
	push dword 0                   ; FS
	push dword 0                   ; DS
	push dword 0                   ; ES
	push dword 0                   ; SS
	push dword 0x6800              ; ESP
	push dword (1 << 17) | (%2 << 12) | 2
	push dword 0xf000
	push dword %1
	iretd
%endmacro

bits 16
start:
	ENTER_PROT32 main

bits 32
main:
	PRINT32 "v86: 32-bit protected mode"
	mov edi, TSS
	xor eax, eax
	mov ecx, 0x68 / 4
	rep stosd
	mov dword [TSS + 4], 0x9000
	mov dword [TSS + 8], 0x10
	mov word [TSS + 0x66], 0x100    ; I/O map beyond the limit: no port allowed
	mov ax, SEL_TSS
	ltr ax
	mov byte [IDT + 0x32 * 8 + 5], 0xee   ; vector 0x32: DPL 3 interrupt gate
	mov byte [V86_RES + 6], 0xee

	mov dword [V86_EXIT_TO], ABS(after_iopl0)
	TO_V86 v86_iopl0, 0
after_iopl0:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	cmp byte [V86_RES + 0], 0x77
	CHECK32 e, "V86 real-mode addressing (segment * 16 + offset)"
	cmp byte [V86_RES + 1], 13
	CHECK32 e, "CLI at IOPL 0: #GP"
	cmp byte [V86_RES + 2], 13
	CHECK32 e, "INT n at IOPL 0: #GP"
	cmp byte [V86_RES + 3], 13
	CHECK32 e, "IN without I/O permission: #GP"
	cmp byte [V86_RES + 4], 13
	CHECK32 e, "HLT in V86 mode: #GP"
	cmp dword [LAST_ERR], 0
	CHECK32 e, "error code 0"
	test dword [LAST_FL], 1 << 17
	CHECK32 nz, "the monitor sees VM set in the saved EFLAGS"

	mov dword [V86_EXIT_TO], ABS(after_iopl3)
	TO_V86 v86_iopl3, 3
after_iopl3:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	cmp byte [V86_RES + 5], 0xff
	CHECK32 e, "CLI/STI at IOPL 3 run in V86 mode"
	cmp byte [V86_RES + 6], 0x32
	CHECK32 e, "INT n at IOPL 3 goes through the IDT"
	cmp byte [V86_RES + 7], 0x42
	CHECK32 e, "V86 registers preserved across the interrupt"

	EXIT32

bits 16
v86_iopl0:
	mov ax, 0x70
	mov ds, ax
	mov byte [0], 0x77             ; linear 0x700
	xor ax, ax
	mov ds, ax
	V86_TRY .t1
	cli
.t1:
	V86_SAVE 1
	V86_TRY .t2
	int 0x32
.t2:
	V86_SAVE 2
	V86_TRY .t3
	in al, 0x80
.t3:
	V86_SAVE 3
	V86_TRY .t4
	hlt
.t4:
	V86_SAVE 4
	ud2

v86_iopl3:
	V86_TRY .t5
	cli
	sti
.t5:
	V86_SAVE 5
	mov bl, 0x42
	V86_TRY .t6
	int 0x32
.t6:
	V86_SAVE 6
	mov [V86_RES + 7], bl
	ud2

align 8
gdt:
	dq 0
	dq 0x00cf9b000000ffff          ; 0x08 code32
	dq 0x00cf93000000ffff          ; 0x10 data32
	dq 0x00009b0f0000ffff          ; 0x18 code16
	dq 0x000093000000ffff          ; 0x20 data16
	dq 0x0000890030000067          ; 0x28 TSS
gdt_end:
gdtr:
	dw gdt_end - gdt - 1
	dd GDT

%include "tail.inc"
