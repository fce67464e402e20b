; HvCallSignalEvent on two vCPUs (TLFS 11.8.4, 11.10.3).  Each vCPU
; enables its SynIC with its own message and event flags pages, SINT4 on
; vector 0x50 (EOI by the guest), SINT5 on 0x51 with AutoEOI and SINT6
; masked on 0x52.  The harness (test_hv_guests.c) owns connection ids
; 0x100-0x104, each a port to one VP's SINT: 0x100 the first vCPU's
; SINT4, 0x101 the second's with flag base 32; 0x102 and 0x103 their
; SINT5; 0x104 the first's SINT6.  The first vCPU then signals,
; through the hypercall page:
; 1. its own SINT4 (memory input): the flag's bit appears in its own
;    event flags page in SINT4's 256-byte slot, 0x50 arrives on it with
;    its ISR bit set, and not on the other vCPU;
; 2. the same flag again while set: no second interrupt; cleared and
;    signalled again: one more;
; 3. the other vCPU's SINT4 (fast input): the bit (base + flag) in the
;    other's page, the interrupt there only;
; 4. SINT5 with AutoEOI on itself and on the other: 0x51 arrives with no
;    ISR bit set, and the handler writes no EOI;
; 5. the masked SINT6: the call succeeds, nothing is delivered;
; 6. errors: unknown connection ids (both forms) give
;    HV_STATUS_INVALID_CONNECTION_ID, flag 2048 HV_STATUS_INVALID_PARAMETER,
;    an unaligned input HV_STATUS_INVALID_ALIGNMENT.
; Exit 0x42 when all held, else the failing step (test_hv_guests.c).
%define LONG_MODE
%include "entry.inc"
	jmp main
%include "hv.inc"

HYPERCALL      equ 0x40000001
SIEFP          equ 0x40000082
HC_PAGE        equ 0x22000
INPUT          equ 0x23000
SIEF_PAGE      equ 0x24000              ; vCPU n's at + 0x2000 n
SIM_PAGE       equ 0x25000              ; vCPU n's at + 0x2000 n
SIGNAL_EVENT   equ 0x5d
HC_FAST        equ 1 << 16
AUTO_EOI       equ 1 << 17
MASKED         equ 1 << 16

%define ISR_REG(v) r15 + 0x100 + ((v) / 32) * 0x10
%define ISR_BIT(v) (1 << ((v) % 32))
; the dword holding flag f of SINT s in vCPU c's event flags page
%define FLAGS(c, s) SIEF_PAGE + 0x2000 * (c) + 256 * (s)

; SIGNAL conn, flag: the memory form, status in eax.
%macro SIGNAL 2
	mov rax, (%1) | ((%2) << 32)
	mov [INPUT], rax
	mov ecx, SIGNAL_EVENT
	mov edx, INPUT
	call HC_PAGE
%endmacro
; SIGNAL_FAST conn, flag: the register form, status in eax.
%macro SIGNAL_FAST 2
	mov ecx, SIGNAL_EVENT | HC_FAST
	mov rdx, (%1) | ((%2) << 32)
	call HC_PAGE
%endmacro
; EXPECT_OK step: the status in ax is success.
%macro EXPECT_OK 1
	test ax, ax
	FAIL_IF nz, %1
%endmacro
; WAIT_COUNT counter, n, step: until the dword reaches n (3 s at most).
%macro WAIT_COUNT 3
	mov rsi, %1
	mov edi, %2
	call wait_dword
	FAIL_IF c, %3
%endmacro
; EXPECT counter, n, step: the dword is exactly n.
%macro EXPECT 3
	cmp dword [%1], %2
	FAIL_IF ne, %3
%endmacro

main:
	mov r15d, LAPIC                          ; r15: the local APIC, all along
	; r14: this vCPU's VP index, its APIC ID, which the harness's
	; ports name; not ebx, the order in which the vCPUs reached the
	; entry code, since VP 1 may arrive first.
	call this_cpu
	mov r14d, eax
	test ebx, ebx                            ; the first to arrive sets up the gates
	jnz .setup
	GATE 0x50, h_50
	GATE 0x51, h_51
	GATE 0x52, h_52
	WRMSR_ GUEST_OS_ID, 0x8100000000000000
	WRMSR_ HYPERCALL, HC_PAGE | 1
	mov byte [gates_set], 1
.setup:	cmp byte [gates_set], 1
	jne .setup
	lidt [idt_desc]
	mov dword [r15 + 0xf0], 0x1ff          ; APIC software-enabled
	mov rbx, r14
	shl rbx, 13
	WRMSR_ SCONTROL, 1
	lea rax, [rbx + SIM_PAGE + 1]
	WRMSR_ SIMP, rax
	lea rax, [rbx + SIEF_PAGE + 1]
	WRMSR_ SIEFP, rax
	WRMSR_ SINT0 + 4, 0x50
	WRMSR_ SINT0 + 5, 0x51 | AUTO_EOI
	WRMSR_ SINT0 + 6, 0x52 | MASKED
	sti
	lock inc dword [ready]
	test r14d, r14d
	jz .first
.park:	hlt                                    ; the second: interrupts only
	jmp .park

.first:	WAIT_COUNT ready, 2, 1
	; 1. to itself, memory input
	SIGNAL 0x100, 3
	EXPECT_OK 2
	WAIT_COUNT cnt50, 1, 3
	cmp dword [FLAGS(0, 4)], 1 << 3
	FAIL_IF ne, 4
	cmp dword [FLAGS(1, 4)], 0
	FAIL_IF ne, 4
	EXPECT cnt50 + 4, 0, 4
	; 2. again while set, then cleared
	SIGNAL 0x100, 3
	EXPECT_OK 2
	mov edi, 100000
	call delay
	EXPECT cnt50, 1, 5
	lock and dword [FLAGS(0, 4)], ~(1 << 3)
	SIGNAL 0x100, 3
	EXPECT_OK 2
	WAIT_COUNT cnt50, 2, 6
	; 3. to the other, fast input
	SIGNAL_FAST 0x101, 5                     ; the port's base is 32
	EXPECT_OK 7
	WAIT_COUNT cnt50 + 4, 1, 8
	cmp dword [FLAGS(1, 4) + 4], 1 << 5
	FAIL_IF ne, 9
	EXPECT cnt50, 2, 10
	cmp dword [FLAGS(0, 4) + 4], 0
	FAIL_IF ne, 10
	; 4. AutoEOI, here and there
	SIGNAL 0x102, 0
	EXPECT_OK 11
	WAIT_COUNT cnt51, 1, 12
	cmp dword [FLAGS(0, 5)], 1
	FAIL_IF ne, 12
	SIGNAL_FAST 0x103, 2047
	EXPECT_OK 11
	WAIT_COUNT cnt51 + 4, 1, 13
	cmp byte [FLAGS(1, 5) + 255], 0x80
	FAIL_IF ne, 13
	; 5. the masked SINT
	SIGNAL 0x104, 1
	EXPECT_OK 14
	mov edi, 100000
	call delay
	EXPECT cnt52, 0, 15
	EXPECT cnt52 + 4, 0, 15
	; 6. errors
	SIGNAL 0x105, 0
	cmp ax, 0x12
	FAIL_IF ne, 16
	SIGNAL_FAST 0x10000, 0
	cmp ax, 0x12
	FAIL_IF ne, 16
	SIGNAL 0x100, 2048
	cmp ax, 5
	FAIL_IF ne, 17
	mov ecx, SIGNAL_EVENT
	mov edx, INPUT + 4
	call HC_PAGE
	cmp ax, 4
	FAIL_IF ne, 17
	; what the handlers saw, and nothing left in service
	mov eax, [bad]
	test eax, eax
	FAIL_IF nz, [bad]
	mov eax, [ISR_REG(0x50)]
	test eax, ISR_BIT(0x50) | ISR_BIT(0x51)
	FAIL_IF nz, 18
	EXPECT cnt50, 2, 19
	EXPECT cnt50 + 4, 1, 19
	EXPECT cnt51, 1, 19
	EXPECT cnt51 + 4, 1, 19
	mov al, 0x42
	jmp fail

; rax: this vCPU's number (its APIC ID).
this_cpu:
	mov eax, [r15 + 0x20]
	shr eax, 24
	ret

; SINT_HANDLER vector, counter, in service (1 or 0), step: counts the
; interrupt on this vCPU; step goes to [bad] when the vector's ISR bit
; is not as expected; an EOI unless AutoEOI left nothing in service.
%macro SINT_HANDLER 4
	push rax
	push rdx
	call this_cpu
	mov edx, [ISR_REG(%1)]
	and edx, ISR_BIT(%1)
	cmp edx, (%3) * ISR_BIT(%1)
	je %%isr
	mov dword [bad], %4
%%isr:	lock inc dword [%2 + rax * 4]
%if %3
	mov dword [r15 + 0xb0], 0
%endif
	pop rdx
	pop rax
	iretq
%endmacro

h_50:	SINT_HANDLER 0x50, cnt50, 1, 20        ; no AutoEOI: in service until the EOI
h_51:	SINT_HANDLER 0x51, cnt51, 0, 21        ; AutoEOI: never in service, no EOI

; SINT6 is masked: never.
h_52:	push rax
	call this_cpu
	lock inc dword [cnt52 + rax * 4]
	mov dword [r15 + 0xb0], 0
	pop rax
	iretq

align 4
ready:     dd 0
bad:       dd 0
cnt50:     dd 0, 0
cnt51:     dd 0, 0
cnt52:     dd 0, 0
gates_set: db 0
