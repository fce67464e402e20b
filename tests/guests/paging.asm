; The paging permission matrix in 4-level paging (SDM vol. 3A 4.6, 4.7):
; U/S x R/W x NX for user and supervisor accesses, CR0.WP, SMEP, SMAP with
; EFLAGS.AC (STAC/CLAC), reserved bits, A/D bits and INVLPG, each with the
; exact #PF error code.
%include "lib.inc"
org 0
%include "long_common.inc"

T0 equ 0x400000     ; supervisor RW
T1 equ 0x401000     ; user RO
T2 equ 0x402000     ; user RW, NX (holds a RET)
T3 equ 0x403000     ; user RW (holds a RET)
T4 equ 0x600000     ; 2 MiB page with a reserved bit (13) set
T5 equ 0x405000     ; supervisor code, remapped between two frames
T6 equ 0x406000     ; supervisor code written through its own mapping
P_ equ 1
RW equ 2
US equ 4
NX equ 0x8000000000000000

bits 16
start:
	ENTER_LONG kmain

bits 64
kmain:
	PRINT64 "paging: 64-bit mode"
	; Map the user code page and the user stack page for ring 3.
	mov rax, ABS(user_code)
	shr rax, 12
	mov qword [PT0 + rax * 8], 0
	mov rbx, ABS(user_code)
	or rbx, P_ | US
	mov [PT0 + rax * 8], rbx
	mov qword [PT0 + (USER_PAGE >> 12) * 8], USER_PAGE | P_ | RW | US
	; Test pages, backed by 0x80000 + n * 0x1000.
	mov qword [PT2 + 0 * 8], 0x80000 | P_ | RW
	mov qword [PT2 + 1 * 8], 0x81000 | P_ | US
	mov rax, NX | 0x82000 | P_ | RW | US
	mov [PT2 + 2 * 8], rax
	mov qword [PT2 + 3 * 8], 0x83000 | P_ | RW | US
	mov qword [PD + 3 * 8], 0x600000 | (1 << 13) | 0x80 | P_ | RW
	mov byte [0x82000], 0xc3
	mov byte [0x83000], 0xc3
	mov qword [0x80000], 0x1111
	mov qword [0x85000], 0x5555
	mov rax, cr3
	mov cr3, rax

	mov qword [KERNEL_CONT], ABS(back_in_kernel)
	TO_USER user_code

back_in_kernel:
	PRINT64 "paging: back in ring 0"
	cmp qword [NRESULTS], 8
	CHECK64 e, "eight user checkpoints"
	EXPECT_RESULT 0, 14, 5, "user read of a supervisor page: #PF(U|P)"
	EXPECT_RESULT 1, 14, 7, "user write of a read-only page: #PF(U|W|P)"
	EXPECT_RESULT 2, -1, -1, "user read of a read-only user page"
	EXPECT_RESULT 3, 14, 0x15, "user fetch from an NX page: #PF(I|U|P)"
	EXPECT_RESULT 4, -1, -1, "user call into an executable user page"
	EXPECT_RESULT 5, 13, 0, "HLT at CPL 3: #GP(0)"
	; The index field is the vector (SDM vol. 3A 6.13) in IA-32e mode too
	; (QEMU's TCG reports vector * 16 + 2 here).
	EXPECT_RESULT 6, 13, 0x81 * 8 + 2, "INT to a DPL 0 gate from CPL 3: #GP(IDT)"
	EXPECT_RESULT 7, -1, -1, "user write of a writable user page"
	mov rax, [PT2 + 3 * 8]
	and rax, 0x60
	cmp rax, 0x60
	CHECK64 e, "accessed and dirty bits set by the user write"

	TRY64 .k1
	mov qword [T1], 1
.k1:
	EXPECT64 14, 3, "supervisor write of a read-only page with WP: #PF(W|P)"
	mov rax, cr0
	and eax, ~(1 << 16)
	mov cr0, rax
	TRY64 .k2
	mov qword [T1], 2
.k2:
	EXPECT64 -1, -1, "supervisor write of a read-only page without WP"
	mov rax, cr0
	or eax, 1 << 16
	mov cr0, rax

	mov rbx, rsp
	TRY64 .k3
	mov rax, T2
	call rax
.k3:
	mov rsp, rbx
	EXPECT64 14, 0x11, "supervisor fetch from an NX page: #PF(I|P)"

	mov rbx, rsp
	TRY64 .k4
	mov rax, T3
	call rax
.k4:
	mov rsp, rbx
	EXPECT64 -1, -1, "supervisor fetch from a user page without SMEP"

	mov rax, cr4
	or eax, 1 << 20                ; SMEP
	mov cr4, rax
	mov rbx, rsp
	TRY64 .k5
	mov rax, T3
	call rax
.k5:
	mov rsp, rbx
	EXPECT64 14, 0x11, "SMEP: supervisor fetch from a user page: #PF(I|P)"

	mov rax, cr4
	or eax, 1 << 21                ; SMAP
	mov cr4, rax
	TRY64 .k6
	mov rax, [T3]
.k6:
	EXPECT64 14, 1, "SMAP: supervisor read of a user page: #PF(P)"
	stac
	TRY64 .k7
	mov rax, [T3]
.k7:
	clac
	EXPECT64 -1, -1, "SMAP with EFLAGS.AC (STAC): read allowed"
	stac
	TRY64 .k8
	mov qword [T1], 3
.k8:
	clac
	EXPECT64 14, 3, "SMAP with AC still honours WP on read-only pages"

	TRY64 .k9
	mov rax, [T4]
.k9:
	EXPECT64 14, 9, "reserved bit in a PTE: #PF(RSVD|P)"

	; INVLPG: a changed PTE is used after invalidation.
	mov rax, [T0]
	cmp rax, 0x1111
	CHECK64 e, "supervisor page reads its frame"
	mov qword [PT2 + 0 * 8], 0x85000 | P_ | RW
	invlpg [T0]
	mov rax, [T0]
	cmp rax, 0x5555
	CHECK64 e, "INVLPG picks up the new translation"

	; A block chained to the code at a linear address must not outlive an
	; INVLPG that remaps it: T5 runs "mov eax, 1; ret" from 0x86000, then
	; "mov eax, 2; ret" from 0x87000, called from the same block.
	mov rax, 0x0000c300000001b8
	mov [0x86000], rax
	mov rax, 0x0000c300000002b8
	mov [0x87000], rax
	mov qword [PT2 + 5 * 8], 0x86000 | P_ | RW
	invlpg [T5]
	xor ebx, ebx
	mov ecx, 2
.remap:
	mov rdx, T5
	call rdx
	add ebx, eax
	mov qword [PT2 + 5 * 8], 0x87000 | P_ | RW
	invlpg [T5]
	dec ecx
	jnz .remap
	cmp ebx, 3
	CHECK64 e, "code remapped by INVLPG runs the new page"

	; Self-modifying code: a store into the block being run changes the
	; immediate of the next instruction, which must run as stored.
	mov byte [rel .smc + 1], 0x42
.smc:
	mov al, 0
	cmp al, 0x42
	CHECK64 e, "a store into the running block takes effect at the next instruction"

	; Code written through a data mapping, then run and modifying itself
	; in its first block: the page becomes a code page as it is decoded,
	; and the cached write translation must not let the store bypass that.
	; T6: "mov byte [rip + 1], 0x42; mov al, 0; ret".
	mov qword [PT2 + 6 * 8], 0x88000 | P_ | RW
	invlpg [T6]
	mov rax, 0xb0420000000105c6
	mov [T6], rax
	mov word [T6 + 8], 0xc300
	mov rdx, T6
	call rdx
	cmp al, 0x42
	CHECK64 e, "fresh code that patches itself runs the patched instruction"

	mov eax, [FAILS]
	out EXIT_PORT, al
.hang:
	hlt
	jmp .hang

; ---- ring 3: one page, user-accessible, read-only ----
align 4096, db 0xcc
user_code:
	mov qword [USER_RESUME], ABS(.u0)
	mov rax, [T0]
.u0:
	int VEC_CHECKPOINT
	mov qword [USER_RESUME], ABS(.u1)
	mov qword [T1], 1
.u1:
	int VEC_CHECKPOINT
	mov qword [USER_RESUME], ABS(.u2)
	mov rax, [T1]
.u2:
	int VEC_CHECKPOINT
	mov rbx, rsp
	mov qword [USER_RESUME], ABS(.u3)
	mov rax, T2
	call rax
.u3:
	mov rsp, rbx
	int VEC_CHECKPOINT
	mov qword [USER_RESUME], ABS(.u4)
	mov rax, T3
	call rax
.u4:
	int VEC_CHECKPOINT
	mov qword [USER_RESUME], ABS(.u5)
	hlt
.u5:
	int VEC_CHECKPOINT
	mov qword [USER_RESUME], ABS(.u6)
	int 0x81
.u6:
	int VEC_CHECKPOINT
	mov qword [USER_RESUME], ABS(.u7)
	mov qword [T3 + 8], 7
.u7:
	int VEC_CHECKPOINT
	int VEC_TO_KERNEL
	align 4096, db 0xcc

%include "long_gdt.inc"
%include "tail.inc"
