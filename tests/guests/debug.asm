; Debug exceptions in 32-bit protected mode.  Single-stepping with
; EFLAGS.TF (SDM vol. 3B 17.3.1.4): a #DB trap with DR6.BS after every
; instruction that began with TF set, the return EIP on the next
; instruction; none after the POPF or IRET that sets TF, one after the
; POPF that clears it; none after MOV SS (the next instruction's trap
; covers it, vol. 3A 6.8.3) or INT n (its handler runs with TF clear); one
; per REP iteration.  Instruction breakpoints in DR0-DR3 (17.3.1.1): a
; fault with DR6.Bn before the instruction, which the handler resumes
; with EFLAGS.RF; general detect (DR7.GD, 17.3.1.2).  Data breakpoints
; (R/W = 01 write, 11 read or write) of each length, the address aligned
; down to it (17.2.5), and I/O breakpoints (R/W = 10 with CR4.DE): a trap
; after the instruction whose access met the range, with DR6.Bn (17.3.1.2),
; and for a REP after the iteration that met it.  A task switch clears
; DR7.L0-L3 (17.2.4) and one into a TSS with T = 1 traps with DR6.BT
; before the new task's first instruction (17.3.1.5).
%include "lib.inc"
org 0

%include "prot_common.inc"

TSS_A equ 0x3000
TSS_B equ 0x3100
SEL_A equ 0x18
SEL_B equ 0x20
DATA equ 0x9000            ; the data breakpoints' target area

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

; ONE_DB label, bits, name: exactly one #DB, which returned to label with
; DR6 bits 0-3 and 13-15 equal to bits.
%macro ONE_DB 3
	mov eax, 0x400
	mov dr7, eax
	cmp dword [STEPS], 1
	CHECK32 e, {"one #DB: ", %3}
	cmp dword [STEP_EIP], ABS(%1)
	CHECK32 e, {"return EIP: ", %3}
	mov eax, [LAST_DR6]
	and eax, 0xe00f
	cmp eax, %2
	CHECK32 e, {"DR6: ", %3}
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

	; Data write breakpoint, LEN = 4: DR0 = DATA + 6 covers DATA + 4..7.
	call reset_steps
	mov eax, DATA + 6
	mov dr0, eax
	mov eax, 0x400 | 1 | (1 << 16) | (3 << 18)   ; L0, R/W0 = 01, LEN0 = 11
	mov dr7, eax
	mov eax, [DATA + 4]            ; a read: R/W = 01 ignores it
	mov byte [DATA + 8], 1         ; just above
	mov byte [DATA + 3], 1         ; just below
	cmp dword [STEPS], 0
	CHECK32 e, "write breakpoint: no #DB for a read or outside the range"
.j1:	mov word [DATA + 3], 1         ; its second byte is in the range
.j2:	ONE_DB .j2, 1, "write breakpoint, LEN 4, aligned down"

	; Read/write breakpoint, LEN = 1, enabled by G1.
	call reset_steps
	mov eax, DATA + 0x10
	mov dr1, eax
	mov eax, 0x400 | (1 << 3) | (3 << 20)        ; G1, R/W1 = 11, LEN1 = 00
	mov dr7, eax
	mov eax, [DATA + 0xc]
	mov eax, [DATA + 0x11]
	cmp dword [STEPS], 0
	CHECK32 e, "read/write breakpoint: no #DB next to the byte"
	mov al, [DATA + 0x10]
.k2:	ONE_DB .k2, 2, "read breakpoint, LEN 1"

	; Write breakpoint, LEN = 2: DR2 = DATA + 0x21 covers DATA + 0x20..21.
	call reset_steps
	mov eax, DATA + 0x21
	mov dr2, eax
	mov eax, 0x400 | (1 << 4) | (1 << 24) | (1 << 26)   ; L2, R/W2 = 01, LEN2 = 01
	mov dr7, eax
	mov byte [DATA + 0x22], 0
	cmp dword [STEPS], 0
	CHECK32 e, "LEN 2: no #DB past the range"
	mov byte [DATA + 0x20], 0
.l2:	ONE_DB .l2, 4, "write breakpoint, LEN 2, aligned down"

	; Read/write breakpoint, LEN = 8: DR3 = DATA + 0x35 covers DATA + 0x30..37;
	; a read-modify-write is one trap.
	call reset_steps
	mov eax, DATA + 0x35
	mov dr3, eax
	mov eax, 0x400 | (1 << 6) | (3 << 28) | (2 << 30)   ; L3, R/W3 = 11, LEN3 = 10
	mov dr7, eax
	mov eax, [DATA + 0x38]
	mov eax, [DATA + 0x2c]
	cmp dword [STEPS], 0
	CHECK32 e, "LEN 8: no #DB outside the quadword"
	inc dword [DATA + 0x30]
.m2:	ONE_DB .m2, 8, "read-modify-write, LEN 8"

	; REP STOSB over a write breakpoint: the trap follows the iteration
	; that hit it, RIP still on the REP; the REP then finishes.
	call reset_steps
	mov eax, DATA + 0x42
	mov dr0, eax
	mov eax, 0x400 | 1 | (1 << 16)               ; L0, R/W0 = 01, LEN0 = 00
	mov dr7, eax
	mov edi, DATA + 0x40
	mov ecx, 6
	xor eax, eax
.n1:	rep stosb
	ONE_DB .n1, 1, "REP: trap after the iteration that hit"
	cmp edi, DATA + 0x46
	CHECK32 e, "REP finished after the trap"

	; I/O breakpoint (R/W = 10) on port 0x80: only with CR4.DE.
	call reset_steps
	mov eax, 0x80
	mov dr0, eax
	mov eax, 0x400 | 1 | (2 << 16)               ; L0, R/W0 = 10, LEN0 = 00
	mov dr7, eax
	out 0x80, al
	cmp dword [STEPS], 0
	CHECK32 e, "no I/O breakpoint without CR4.DE"
	mov eax, cr4
	or eax, 8
	mov cr4, eax
	in al, 0x81
	cmp dword [STEPS], 0
	CHECK32 e, "no I/O breakpoint on the next port"
	out 0x80, al
.o2:	mov eax, cr4
	and eax, ~8
	mov cr4, eax
	ONE_DB .o2, 1, "I/O breakpoint on OUT"

	; Task switch into a TSS with T = 1: #DB with DR6.BT before its first
	; instruction; L0 is cleared by the switch, G0 stays.
	mov edi, TSS_A
	xor eax, eax
	mov ecx, 0x200 / 4
	rep stosd
	mov dword [TSS_B + 0x20], ABS(task_b)
	mov dword [TSS_B + 0x24], 2
	mov dword [TSS_B + 0x38], 0x6000
	mov dword [TSS_B + 0x48], 0x10
	mov dword [TSS_B + 0x4c], 0x08
	mov dword [TSS_B + 0x50], 0x10
	mov dword [TSS_B + 0x54], 0x10
	mov dword [TSS_B + 0x58], 0x10
	mov dword [TSS_B + 0x5c], 0x10
	mov word [TSS_B + 0x64], 1     ; T
	mov word [TSS_B + 0x66], 0x68
	mov word [TSS_A + 0x66], 0x68
	mov ax, SEL_A
	ltr ax
	call reset_steps
	mov dword [DATA + 0x50], 0
	xor eax, eax
	mov dr0, eax
	mov eax, 0x400 | 3                           ; L0 and G0, execute at 0
	mov dr7, eax
	jmp SEL_B:0
	; task_b jumps back here with DR7 clear (the block path), after
	; setting T in TSS A: a second trap, before this instruction.
.t_back:
	cmp dword [DATA + 0x50], 0x402
	CHECK32 e, "task switch clears DR7.L0, keeps G0"
	cmp dword [STEPS], 2
	CHECK32 e, "T bit: one #DB per switch into a TSS with T = 1"
	STEPPED 0, task_b, "T bit: trap before the new task's first instruction"
	STEPPED 1, .t_back, "T bit without DR7 enables or TF: the same trap"
	mov eax, [LAST_DR6]
	and eax, 0xe00f
	cmp eax, 0x8000
	CHECK32 e, "DR6.BT"

	EXIT32

task_b:
	mov eax, dr7
	mov [DATA + 0x50], eax
	mov eax, 0x400
	mov dr7, eax
	mov word [TSS_A + 0x64], 1
	jmp SEL_A:0

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
	dq 0x0000890030000067          ; 0x18 TSS A
	dq 0x0000890031000067          ; 0x20 TSS B
gdt_end:
gdtr:
	dw gdt_end - gdt - 1
	dd GDT

%include "tail.inc"
