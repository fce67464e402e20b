; Debug exceptions in 32-bit protected mode.  Single-stepping with
; EFLAGS.TF (SDM vol. 3B 17.3.1.4): a #DB trap with DR6.BS after every
; instruction that began with TF set, the return EIP on the next
; instruction; none after the POPF or IRET that sets TF, one after the
; POPF that clears it; none after MOV SS (the next instruction's trap
; covers it, vol. 3A 6.8.3) or INT n (its handler runs with TF clear); one
; per REP iteration.  Instruction breakpoints in DR0-DR3 (17.3.1.1): a
; fault with DR6.Bn before the instruction, which the handler resumes
; with EFLAGS.RF; general detect (DR7.GD, 17.3.1.2).
%include "lib.inc"
org 0

%include "prot_common.inc"

STEPS equ 0x600            ; dword: #DB traps taken
STEPS_BS equ 0x604         ; dword: of which with DR6.BS set
STEP_EIP equ 0x610         ; dword[16]: their return EIPs
LAST_DR6 equ 0x608         ; dword: DR6 in the last #DB
LAST_DB_FL equ 0x60c       ; dword: the EFLAGS image of the last #DB
MAX_STEPS equ 16

; TF_ON: set TF with POPFD (no trap after it); TF_OFF label: clear it with
; PUSHFD/AND/POPFD, three trapped instructions whose last trap returns to
; label.
%macro TF_ON 0
	pushfd
	or dword [esp], 0x100
	popfd
%endmacro

%macro TF_OFF 1
	pushfd
	and dword [esp], ~0x100
	popfd
%1:
%endmacro

; STEPPED n, label, name: the n-th trap returned to label.
%macro STEPPED 3
	cmp dword [STEP_EIP + (%1) * 4], ABS(%2)
	CHECK32 e, %3
%endmacro

bits 16
start:
	ENTER_PROT32 main

bits 32
main:
	PRINT32 "debug: single-step in 32-bit protected mode"
	; Vector 1 -> db_handler (the stub table's interrupt gate, new offset).
	mov eax, ABS(db_handler)
	mov [IDT + 8], ax
	shr eax, 16
	mov [IDT + 8 + 6], ax

	; Three plain instructions, then TF cleared.
	call reset_steps
	TF_ON
.a1:	nop
.a2:	add eax, 1
.a3:	mov ebx, eax
.a4:	TF_OFF .a5
	nop
	cmp dword [STEPS], 6
	CHECK32 e, "six traps: three instructions and the three that clear TF"
	cmp dword [STEPS_BS], 6
	CHECK32 e, "DR6.BS set in every single-step trap"
	STEPPED 0, .a2, "no trap after the POPFD that sets TF; the first after NOP"
	STEPPED 1, .a3, "trap after ADD returns to the next instruction"
	STEPPED 2, .a4, "trap after MOV"
	STEPPED 5, .a5, "trap after the POPFD that clears TF"
	pushfd
	pop eax
	test eax, 0x100
	CHECK32 z, "TF clear after the handler's IRETD"

	; MOV SS: its trap is held off until after the next instruction.
	call reset_steps
	TF_ON
.b1:	mov ax, ss
.b2:	mov ss, ax
	nop
.b3:	TF_OFF .b4
	cmp dword [STEPS], 5
	CHECK32 e, "MOV SS: one trap for it and the next instruction"
	STEPPED 0, .b2, "trap after MOV AX, SS"
	STEPPED 1, .b3, "no trap between MOV SS and the next instruction"

	; INT n enters its handler with TF clear; the handler's IRETD sets TF
	; again, so the next trap follows the instruction after INT.
	call reset_steps
	mov dword [RESUME], 0
	TF_ON
	int 0x30
.c1:	nop
.c2:	TF_OFF .c3
	cmp dword [LAST_VEC], 0x30
	CHECK32 e, "INT 0x30 delivered with TF set"
	cmp dword [STEPS], 4
	CHECK32 e, "no trap for INT n nor inside its handler"
	STEPPED 0, .c2, "first trap after the instruction following INT n"

	; IRETD that sets TF: no trap after it, one after the next instruction.
	call reset_steps
	pushfd
	or dword [esp], 0x100
	push cs
	push ABS(.d1)
	iretd
.d1:	nop
.d2:	TF_OFF .d3
	cmp dword [STEPS], 4
	CHECK32 e, "IRETD that sets TF is not trapped"
	STEPPED 0, .d2, "first trap after the instruction IRETD returns to"

	; REP: a trap after each iteration, EIP on the REP until the last.
	call reset_steps
	mov edi, 0x8000
	mov ecx, 3
	xor eax, eax
	cld
	TF_ON
.e1:	rep stosb
.e2:	TF_OFF .e3
	cmp dword [STEPS], 6
	CHECK32 e, "REP STOSB with ECX = 3: three traps"
	STEPPED 0, .e1, "trap after the first iteration returns to the REP"
	STEPPED 1, .e1, "and after the second"
	STEPPED 2, .e2, "the last iteration's trap returns past it"
	cmp edi, 0x8003
	CHECK32 e, "all three iterations ran"

	; The same REP with an instruction breakpoint on it: the breakpoint
	; fires once; the traps between iterations push RF = 1, so that it
	; does not fire again as the REP resumes.
	call reset_steps
	mov eax, ABS(.e6)
	mov dr1, eax
	mov eax, 0x400 | (1 << 2)      ; L1, execute
	mov dr7, eax
	mov edi, 0x8000
	mov ecx, 3
	TF_ON
.e6:	rep stosb
.e7:	TF_OFF .e8
	mov eax, 0x400
	mov dr7, eax
	cmp dword [STEPS], 7
	CHECK32 e, "REP with a breakpoint: one breakpoint and three traps"
	STEPPED 0, .e6, "the breakpoint fires before the REP"
	STEPPED 1, .e6, "then a trap after the first iteration"
	STEPPED 2, .e6, "and the second, without the breakpoint again"
	STEPPED 3, .e7, "the last trap returns past the REP"

	; A faulting instruction is not trapped: its fault is delivered.
	call reset_steps
	TRY .f2
	TF_ON
.f1:	ud2
.f2:	TF_OFF .f3
	cmp dword [LAST_VEC], 6
	CHECK32 e, "#UD delivered with TF set"
	cmp dword [LAST_EIP], ABS(.f1)
	CHECK32 e, "#UD reports the UD2"
	STEPPED 0, .f2 + 1, "no trap for the faulting instruction"
	test dword [LAST_FL], 1 << 16
	CHECK32 nz, "a fault pushes RF set"
	TRY .f4
	int3
.f4:	test dword [LAST_FL], 1 << 16
	CHECK32 z, "a trap (INT3) pushes RF clear"

	; An instruction breakpoint: one fault before the instruction, which
	; then runs once (the handler returns with RF set).
	call reset_steps
	xor ecx, ecx
	mov eax, ABS(.g1)
	mov dr0, eax
	mov eax, 0x401                 ; L0, R/W0 = 00 (execute), LEN0 = 00
	mov dr7, eax
	nop
.g1:	inc ecx
	mov eax, 0x400
	mov dr7, eax
	cmp dword [STEPS], 1
	CHECK32 e, "one #DB for an instruction breakpoint"
	STEPPED 0, .g1, "the breakpoint is a fault: EIP of the instruction"
	mov eax, [LAST_DR6]
	and eax, 0x600f
	cmp eax, 1
	CHECK32 e, "DR6.B0 set, BS clear"
	cmp ecx, 1
	CHECK32 e, "the instruction ran once after the handler set RF"
	test dword [LAST_DB_FL], 1 << 16
	CHECK32 z, "an instruction-breakpoint #DB pushes RF clear"

	; A breakpoint in DR2 that is not enabled, then one on a later
	; instruction in the same block.
	call reset_steps
	mov eax, ABS(.h1)
	mov dr2, eax
	mov eax, ABS(.h2)
	mov dr3, eax
	mov eax, 0x400 | (1 << 7)      ; G3 only
	mov dr7, eax
.h1:	nop
	nop
.h2:	nop
	mov eax, 0x400
	mov dr7, eax
	cmp dword [STEPS], 1
	CHECK32 e, "only the enabled breakpoint fires"
	STEPPED 0, .h2, "DR3 breakpoint EIP"
	mov eax, [LAST_DR6]
	and eax, 0xf
	cmp eax, 8
	CHECK32 e, "DR6.B3 set"

	; General detect: MOV from a debug register faults once; GD is clear
	; in the handler, so the MOV then runs.
	call reset_steps
	mov eax, 0x400 | (1 << 13)
	mov dr7, eax
.i1:	mov ebx, dr7
	cmp dword [STEPS], 1
	CHECK32 e, "one #DB for MOV from DR7 with DR7.GD"
	STEPPED 0, .i1, "general detect is a fault"
	test dword [LAST_DR6], 1 << 13
	CHECK32 nz, "DR6.BD set"
	cmp ebx, 0x400
	CHECK32 e, "GD clear after the #DB"

	EXIT32

reset_steps:
	mov dword [STEPS], 0
	mov dword [STEPS_BS], 0
	ret

; #DB: count it, note DR6 and the return EIP, clear DR6; after an
; instruction breakpoint, resume with RF set so that it does not fire
; again.
db_handler:
	push eax
	push ebx
	mov ebx, [STEPS]
	cmp ebx, MAX_STEPS
	jae .full
	mov eax, [esp + 8]
	mov [STEP_EIP + ebx * 4], eax
.full:
	inc dword [STEPS]
	mov eax, [esp + 16]
	mov [LAST_DB_FL], eax
	mov eax, dr6
	mov [LAST_DR6], eax
	test eax, 1 << 14
	jz .no_bs
	inc dword [STEPS_BS]
.no_bs:
	test eax, 0xf
	jz .no_rf
	or dword [esp + 16], 1 << 16   ; RF in the EFLAGS image
.no_rf:
	xor eax, eax
	mov dr6, eax
	pop ebx
	pop eax
	iretd

align 8
gdt:
	dq 0
	dq 0x00cf9b000000ffff          ; 0x08 code32
	dq 0x00cf93000000ffff          ; 0x10 data32
gdt_end:
gdtr:
	dw gdt_end - gdt - 1
	dd GDT

%include "tail.inc"
