; System instructions and privilege changes in 64-bit mode: LTR and LLDT
; of a 16-byte descriptor whose base is not canonical (#GP(selector), SDM
; vol. 2A LLDT, vol. 2B LTR); IRETQ and RETFQ to ring 3 nulling ES, DS, FS
; and GS that hold a null selector or a DPL 0 data segment while keeping
; the FS and GS bases (vol. 2A IRET, RET "RETURN-TO-OUTER-PRIVILEGE-LEVEL");
; SYSCALL with EFLAGS.TF set and masked by IA32_FMASK: no single-step #DB
; at the entry point (the trap follows the flags after the instruction);
; MOV SS from a data-breakpointed word followed by ICEBP: one #DB, for the
; ICEBP (the pending breakpoint trap is dropped), and followed by INT3: the
; #DB at the #BP handler's entry, then the #BP.
%include "lib.inc"
org 0
%include "long_common.inc"

SEL_BADTSS equ 0x58        ; 16-byte descriptors appended to the GDT
SEL_BADLDT equ 0x68
SEL_GOODLDT equ 0x78
UDATA equ USER_PAGE + 0x100        ; what ring 3 saw
FS_PROBE equ USER_PAGE + 0x200     ; FS base for ring 3
GS_BASE_VAL equ 0x123456789000     ; a per-CPU-like GS base, never touched
DB_COUNT equ 0x700
DB_RIP equ 0x708
SS_SRC equ 0x720                   ; word: the MOV SS source
SYSCALL_SEEN equ 0x728
MSR_FS_BASE equ 0xc0000100
MSR_GS_BASE equ 0xc0000101

bits 16
start:
	ENTER_LONG kmain

bits 64
kmain:
	PRINT64 "sys64: 64-bit mode system instructions"
	; The user code pages: user-accessible.
	mov rax, ABS(user_code)
	shr rax, 12
	mov ecx, (user_end - user_code) / 4096
.map_user:
	mov rbx, rax
	shl rbx, 12
	or rbx, 5                      ; P, U/S
	mov [PT0 + rax * 8], rbx
	inc rax
	loop .map_user
	mov qword [PT0 + (USER_PAGE >> 12) * 8], USER_PAGE | 7
	mov rax, cr3
	mov cr3, rax

	; ---- LTR / LLDT with a non-canonical 64-bit base ----
	mov rax, 0x0000890030000067    ; 64-bit TSS at ...0000_3000
	mov [GDT + SEL_BADTSS], rax
	mov qword [GDT + SEL_BADTSS + 8], 0x00008000   ; base 63:32: 0x0000_8000 -> non-canonical
	mov rax, 0x0000820040000fff    ; LDT at ...0000_4000
	mov [GDT + SEL_BADLDT], rax
	mov qword [GDT + SEL_BADLDT + 8], 0x00008000
	mov [GDT + SEL_GOODLDT], rax
	mov eax, 0xffff8000            ; base 0xffff8000_00004000: canonical
	mov [GDT + SEL_GOODLDT + 8], rax
	lgdt [ABS(gdtr_big)]
	TRY64 .a1
	mov ax, SEL_BADTSS
	ltr ax
.a1:
	EXPECT64 13, SEL_BADTSS, "LTR: non-canonical TSS base: #GP(selector)"
	; Whatever happened, TR is the good TSS again (busy bit cleared first).
	and byte [GDT + SEL_TSS + 5], ~2
	mov ax, SEL_TSS
	ltr ax
	TRY64 .a2
	mov ax, SEL_BADLDT
	lldt ax
.a2:
	EXPECT64 13, SEL_BADLDT, "LLDT: non-canonical LDT base: #GP(selector)"
	TRY64 .a3
	mov ax, SEL_GOODLDT
	lldt ax
.a3:
	EXPECT64 -1, -1, "LLDT: a canonical upper-half base loads"
	xor eax, eax
	lldt ax

	; ---- MSRs of features CPUID does not advertise: #GP(0) ----
	TRY64 .m1
	mov ecx, 0x48                  ; IA32_SPEC_CTRL (no IBRS/STIBP/SSBD)
	rdmsr
.m1:
	EXPECT64 13, 0, "RDMSR IA32_SPEC_CTRL without CPUID IBRS: #GP(0)"
	TRY64 .m2
	mov ecx, 0x48
	xor eax, eax
	xor edx, edx
	wrmsr
.m2:
	EXPECT64 13, 0, "WRMSR IA32_SPEC_CTRL without CPUID IBRS: #GP(0)"
	TRY64 .m3
	mov ecx, 0x49                  ; IA32_PRED_CMD (no IBPB)
	mov eax, 1
	xor edx, edx
	wrmsr
.m3:
	EXPECT64 13, 0, "WRMSR IA32_PRED_CMD without CPUID IBPB: #GP(0)"
	TRY64 .m4
	mov ecx, 0x3a                  ; IA32_FEATURE_CONTROL (no VMX/SMX/SGX/LMCE)
	rdmsr
.m4:
	EXPECT64 13, 0, "RDMSR IA32_FEATURE_CONTROL without VMX, SMX, SGX, LMCE: #GP(0)"
	TRY64 .m5
	mov ecx, 0x10a                 ; IA32_ARCH_CAPABILITIES (CPUID.7.0:EDX[29])
	rdmsr
.m5:
	EXPECT64 -1, -1, "RDMSR IA32_ARCH_CAPABILITIES (advertised)"

	; ---- IRETQ to ring 3 ----
	mov qword [FS_PROBE], 0x600df00d
	mov qword [USER_RESUME], ABS(user_fault)   ; a ring 3 fault ends ring 3
	mov ax, 3                      ; null selector, RPL 3
	mov ds, ax
	mov fs, ax
	mov ax, SEL_KDATA              ; DPL 0 data
	mov es, ax
	mov gs, ax
	mov ecx, MSR_FS_BASE
	mov eax, FS_PROBE
	xor edx, edx
	wrmsr
	mov ecx, MSR_GS_BASE
	mov eax, GS_BASE_VAL & 0xffffffff
	mov edx, GS_BASE_VAL >> 32
	wrmsr
	mov qword [KERNEL_CONT], ABS(.b_back)
	TO_USER user_segs
.b_back:
	mov ax, SEL_KDATA
	mov ds, ax
	mov es, ax
	cmp qword [UDATA], 0
	CHECK64 e, "IRETQ to ring 3: DS with a null selector (RPL 3) reads 0"
	cmp qword [UDATA + 8], 0
	CHECK64 e, "IRETQ to ring 3: ES with a DPL 0 data segment is nulled"
	cmp qword [UDATA + 16], 0
	CHECK64 e, "IRETQ to ring 3: FS with a null selector reads 0"
	cmp qword [UDATA + 24], 0
	CHECK64 e, "IRETQ to ring 3: GS with a DPL 0 data segment is nulled"
	cmp qword [UDATA + 32], 0x600df00d
	CHECK64 e, "IRETQ to ring 3: FS keeps its base"
	mov ecx, MSR_GS_BASE
	rdmsr
	shl rdx, 32
	or rax, rdx
	mov rbx, GS_BASE_VAL
	cmp rax, rbx
	CHECK64 e, "IRETQ to ring 3 and back: IA32_GS_BASE unchanged"

	; ---- RETFQ to ring 3 ----
	mov ax, SEL_UDATA              ; DPL 3 data: stays
	mov ds, ax
	mov gs, ax
	mov ax, 3
	mov es, ax
	mov ax, SEL_KDATA
	mov fs, ax
	mov ecx, MSR_FS_BASE
	mov eax, FS_PROBE
	xor edx, edx
	wrmsr
	mov qword [KERNEL_CONT], ABS(.r_back)
	push qword SEL_UDATA
	push qword USER_PAGE + 0x800
	push qword SEL_UCODE
	mov rax, ABS(user_segs)
	push rax
	o64 retf
.r_back:
	mov ax, SEL_KDATA
	mov ds, ax
	mov es, ax
	cmp qword [UDATA], SEL_UDATA
	CHECK64 e, "RETFQ to ring 3: DS with a DPL 3 data segment stays"
	cmp qword [UDATA + 8], 0
	CHECK64 e, "RETFQ to ring 3: ES with a null selector (RPL 3) reads 0"
	cmp qword [UDATA + 16], 0
	CHECK64 e, "RETFQ to ring 3: FS with a DPL 0 data segment is nulled"
	cmp qword [UDATA + 24], SEL_UDATA
	CHECK64 e, "RETFQ to ring 3: GS with a DPL 3 data segment stays"
	xor eax, eax
	mov fs, ax
	mov gs, ax

	; ---- SYSCALL with TF set, masked by IA32_FMASK ----
	mov ecx, 0xc0000080
	rdmsr
	or eax, 1                      ; EFER.SCE
	wrmsr
	mov ecx, 0xc0000081            ; STAR: SYSCALL CS = SEL_KCODE, SS = +8
	xor eax, eax
	mov edx, SEL_KCODE
	wrmsr
	mov ecx, 0xc0000082            ; LSTAR
	mov eax, ABS(syscall_entry)
	xor edx, edx
	wrmsr
	mov ecx, 0xc0000084            ; FMASK: TF, IF
	mov eax, 0x300
	wrmsr
	mov qword [SYSCALL_SEEN], 0
	mov qword [LAST_VEC], -1
	mov qword [RESUME], 0          ; a #DB at the entry returns there
	mov qword [KERNEL_CONT], ABS(.c_back)
	TO_USER user_syscall
.c_back:
	mov ax, SEL_KDATA
	mov ss, ax
	cmp qword [SYSCALL_SEEN], 1
	CHECK64 e, "SYSCALL with TF reaches LSTAR"
	cmp qword [LAST_VEC], -1
	CHECK64 e, "SYSCALL with TF masked by IA32_FMASK: no #DB at the entry point"

	; ---- MOV SS from a data breakpoint, then ICEBP or INT3 ----
	mov rax, ABS(db_count)
	mov [IDT + 16], ax
	shr rax, 16
	mov [IDT + 16 + 6], ax
	mov word [SS_SRC], SEL_KDATA
	mov rax, SS_SRC
	mov dr0, rax
	mov rax, 0x400 | 1 | (3 << 16) | (1 << 18)   ; L0, R/W0 = 11, LEN0 = 01
	mov dr7, rax
	mov qword [DB_COUNT], 0
	mov ss, [SS_SRC]
	db 0xf1                        ; ICEBP
.d1:
	cmp qword [DB_COUNT], 1
	CHECK64 e, "MOV SS (breakpoint hit) + ICEBP: exactly one #DB"
	mov rax, ABS(.d1)
	cmp [DB_RIP], rax
	CHECK64 e, "MOV SS (breakpoint hit) + ICEBP: the #DB is the ICEBP's trap"
	mov qword [DB_COUNT], 0
	TRY64 .d2
	mov ss, [SS_SRC]
	int3
.d2:
	cmp qword [DB_COUNT], 1
	CHECK64 e, "MOV SS (breakpoint hit) + INT3: one #DB"
	mov rax, ABS(stubs64) + 3 * 16
	cmp [DB_RIP], rax
	CHECK64 e, "MOV SS (breakpoint hit) + INT3: the #DB at the #BP handler's entry"
	cmp qword [LAST_VEC], 3
	CHECK64 e, "MOV SS (breakpoint hit) + INT3: then the #BP"
	mov eax, 0x400
	mov dr7, rax

	mov eax, [FAILS]
	out EXIT_PORT, al
.hang:
	hlt
	jmp .hang

syscall_entry:
	mov qword [SYSCALL_SEEN], 1
	mov rsp, 0x7000
	jmp [KERNEL_CONT]

; #DB: count, note the return RIP, clear DR6.
db_count:
	push rax
	inc qword [DB_COUNT]
	mov rax, [rsp + 8]
	mov [DB_RIP], rax
	mov eax, 0xffff0ff0
	mov dr6, rax
	pop rax
	iretq

gdtr_big:
	dw SEL_GOODLDT + 16 - 1
	dq GDT

; ---- ring 3 ----
align 4096, db 0xcc
user_code:
user_segs:
	xor eax, eax
	mov ax, ds
	mov [UDATA], rax
	mov ax, es
	mov [UDATA + 8], rax
	mov ax, fs
	mov [UDATA + 16], rax
	mov ax, gs
	mov [UDATA + 24], rax
	mov rax, [fs:0]
	mov [UDATA + 32], rax
	int VEC_TO_KERNEL

user_fault:
	int VEC_TO_KERNEL

user_syscall:
	pushfq
	or qword [rsp], 0x100
	popfq
	syscall
	ud2
	align 4096, db 0xcc
user_end:

%include "long_gdt.inc"
%include "tail.inc"
