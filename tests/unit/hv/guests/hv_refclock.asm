; Reference time (TLFS 12.7) on two vCPUs for 1 s: each reads, in turn,
; the reference TSC page (sequence, scale, offset, then RDTSC:
; ((tsc * scale) >> 64) + offset, again if the sequence changed) and the
; TIME_REF_COUNT MSR, and checks that neither ever goes back from the
; other's value read just before.  The first vCPU enables the page; the
; second waits for it.
; Exit 0x42 when all held on both, else the failing step (test_hv_guests.c).
%define LONG_MODE
%include "entry.inc"
	jmp main
%include "hv.inc"

SECOND equ 10000000

main:
	test ebx, ebx
	jnz .wait_page
	WRMSR_ GUEST_OS_ID, 0x8100000000000000
	WRMSR_ REFERENCE_TSC, REF_PAGE | 1
.wait_page:
	mov ecx, 100000000
.w:	cmp dword [REF_PAGE], 0
	jne .valid
	pause
	loop .w
	mov al, 1
	jmp fail
.valid:
	call page_time
	mov r12, rax                             ; the latest time seen
	lea r13, [rax + SECOND]
.loop:	call page_time
	cmp rax, r12
	FAIL_IF b, 2
	mov r12, rax
	RDMSR_ TIME_REF_COUNT
	cmp rax, r12
	FAIL_IF b, 3
	mov r12, rax
	cmp rax, r13
	jb .loop
	lock inc dword [finished]
	test ebx, ebx
	jnz .park
	mov rsi, finished
	mov edi, 2
	call wait_dword
	FAIL_IF c, 4
	mov al, 0x42
	jmp fail
.park:	cli
	hlt
	jmp .park

; rax: the reference time from the page (TLFS 12.7.3).
page_time:
.again:	mov r8d, [REF_PAGE]                      ; TscSequence
	mov r9, [REF_PAGE + 8]                   ; TscScale
	mov r10, [REF_PAGE + 16]                 ; TscOffset
	rdtsc
	shl rdx, 32
	or rax, rdx
	mul r9
	mov rax, rdx
	add rax, r10
	cmp r8d, [REF_PAGE]
	jne .again
	ret

align 4
finished: dd 0
