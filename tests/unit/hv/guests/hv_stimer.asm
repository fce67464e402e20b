; Synthetic timers (TLFS 12.6) and the message slot (11.9.3), one vCPU.
; 1. stimer0 direct mode, periodic, 1 ms, vector 0x40: five interrupts.
; 2-3. stimer1 direct mode, one-shot in 1 ms, vector 0x41: one interrupt,
;    none more within 5 ms, and the timer disabled itself.
; 4-5. stimer2 message mode, periodic, 1 ms, to SINT2 (vector 0x42): three
;    HvMessageTypeTimerExpired messages naming timer 2, each freed by the
;    handler (with an EOM when MessagePending says another waits).
; 6-9. The slot busy: the handler now leaves it full; stimer0 and stimer1
;    expire 1 ms apart into SINT2.  The second expiry must wait (no
;    interrupt, the slot unchanged, MessagePending set); freeing the slot
;    and writing EOM delivers it, naming timer 1.
; Exit 0x42 when all held, else the failing step (test_hv_guests.c).
%define LONG_MODE
%include "entry.inc"
	jmp main
%include "hv.inc"

SLOT2 equ SIMP_PAGE + 2 * 256
TIMER_EXPIRED equ 0x80000010
MS equ 10000                                 ; 1 ms of reference time

main:
	mov r15d, LAPIC
	GATE 0x40, h_direct
	GATE 0x41, h_oneshot
	GATE 0x42, h_msg
	lidt [idt_desc]
	mov dword [r15 + 0xf0], 0x1ff
	sti
	; 1
	WRMSR_ STIMER0_CONFIG + 1, MS
	WRMSR_ STIMER0_CONFIG, ST_ENABLE | ST_PERIODIC | ST_DIRECT | (0x40 << 4)
	mov rsi, n40
	mov edi, 5
	call wait_dword
	FAIL_IF c, 1
	WRMSR_ STIMER0_CONFIG, 0
	; 2, 3
	RDMSR_ TIME_REF_COUNT
	lea rbx, [rax + MS]
	WRMSR_ STIMER0_CONFIG + 3, rbx
	WRMSR_ STIMER0_CONFIG + 2, ST_ENABLE | ST_DIRECT | (0x41 << 4)
	mov rsi, n41
	mov edi, 1
	call wait_dword
	FAIL_IF c, 2
	mov edi, 5 * MS
	call delay
	cmp dword [n41], 1
	FAIL_IF ne, 3
	RDMSR_ STIMER0_CONFIG + 2
	test al, ST_ENABLE
	FAIL_IF nz, 3
	; 4, 5
	WRMSR_ SCONTROL, 1
	WRMSR_ SIMP, SIMP_PAGE | 1
	WRMSR_ SINT0 + 2, 0x42
	WRMSR_ STIMER0_CONFIG + 5, MS
	WRMSR_ STIMER0_CONFIG + 4, ST_ENABLE | ST_PERIODIC | (2 << 16)
	mov rsi, n42
	mov edi, 3
	call wait_dword
	FAIL_IF c, 5
	WRMSR_ STIMER0_CONFIG + 4, 0
	cmp dword [bad], 0
	FAIL_IF ne, 4
	mov edi, 3 * MS                          ; one in flight lands
	call delay
	; 6-9
	cli
	mov dword [hold], 1
	mov dword [n42], 0
	mov dword [SLOT2], 0
	RDMSR_ TIME_REF_COUNT
	mov rbx, rax
	lea rax, [rbx + MS]
	WRMSR_ STIMER0_CONFIG + 1, rax
	WRMSR_ STIMER0_CONFIG, ST_ENABLE | (2 << 16)
	lea rax, [rbx + 2 * MS]
	WRMSR_ STIMER0_CONFIG + 3, rax
	WRMSR_ STIMER0_CONFIG + 2, ST_ENABLE | (2 << 16)
	sti
	; Wait for MessagePending (byte 5 of the slot, bit 0: the dword at 4
	; holds payload size 24 below it), however late the host's timer
	; thread runs; then a moment for a wrong second interrupt.
	mov rsi, SLOT2 + 4
	mov edi, 0x100
	call wait_dword
	FAIL_IF c, 7
	mov edi, 2 * MS
	call delay
	cmp dword [n42], 1
	FAIL_IF ne, 6
	cmp dword [SLOT2], TIMER_EXPIRED
	FAIL_IF ne, 6
	cmp dword [SLOT2 + 16], 0                ; stimer0's message
	FAIL_IF ne, 6
	test byte [SLOT2 + 5], 1                 ; MessagePending
	FAIL_IF z, 7
	mov dword [SLOT2], 0                     ; free the slot, then EOM
	WRMSR_ EOM, 0
	mov rsi, n42
	mov edi, 2
	call wait_dword
	FAIL_IF c, 8
	cmp dword [SLOT2], TIMER_EXPIRED
	FAIL_IF ne, 9
	cmp dword [SLOT2 + 16], 1                ; stimer1's
	FAIL_IF ne, 9
	mov al, 0x42
	jmp fail

h_direct:
	inc dword [n40]
	mov dword [r15 + 0xb0], 0
	iretq

h_oneshot:
	inc dword [n41]
	mov dword [r15 + 0xb0], 0
	iretq

; The message: type and timer index checked; unless holding, the slot is
; freed, and EOM asks for the next when one waits (MessagePending).
h_msg:
	push rax
	push rcx
	push rdx
	inc dword [n42]
	cmp dword [hold], 0
	jne .eoi
	cmp dword [SLOT2], TIMER_EXPIRED
	jne .bad
	cmp dword [SLOT2 + 16], 2
	je .free
.bad:	mov dword [bad], 1
.free:	mov dword [SLOT2], 0
	test byte [SLOT2 + 5], 1
	jz .eoi
	WRMSR_ EOM, 0
.eoi:	mov dword [r15 + 0xb0], 0
	pop rdx
	pop rcx
	pop rax
	iretq

align 4
n40:	dd 0
n41:	dd 0
n42:	dd 0
hold:	dd 0
bad:	dd 0
