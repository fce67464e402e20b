; AutoEOI and selective EOI (docs/hyperv.md, TLFS 11.8.2).
; 1. A synthetic timer's message on SINT3, AutoEOI, vector 0x90: its
;    handler finds 0x90 not in service, frees the slot, enables interrupts
;    and sends itself vector 0x60, which is taken at once inside it (with
;    0x90 in service the APIC would hold 0x60 back until an EOI).
; 2. A self-IPI of 0x61; its handler enables interrupts and sends 0xa1,
;    whose handler finds both in service and PPR 0xa0, ends 0x61 with
;    vessel's selective EOI MSR, finds only 0xa1 left and PPR still 0xa0,
;    then EOIs itself: nothing in service, PPR 0.
; Exit 0x42 when all held, else the failing step (test_hv_guests.c).
%define LONG_MODE
%include "entry.inc"
	jmp main
%include "hv.inc"

; ISR register of a vector (SDM vol. 3A 10.8.4) and its bit
%define ISR_REG(v) r15 + 0x100 + ((v) / 32) * 0x10
%define ISR_BIT(v) (1 << ((v) % 32))
%define PPR r15 + 0xa0

main:
	mov r15d, LAPIC                           ; r15: the local APIC, all along
	mov eax, 0x40000101
	cpuid
	test al, 1
	FAIL_IF z, 1
	GATE 0x90, h_sint
	GATE 0x60, h_low
	GATE 0x61, h_61
	GATE 0xa1, h_a1
	lidt [idt_desc]
	mov dword [r15 + 0xf0], 0x1ff          ; APIC software-enabled
	WRMSR_ SCONTROL, 1
	WRMSR_ SIMP, SIMP_PAGE | 1
	WRMSR_ SINT0 + 3, 0x90 | (1 << 17)      ; vector 0x90, AutoEOI
	RDMSR_ TIME_REF_COUNT
	lea rbx, [rax + 10000]
	WRMSR_ STIMER0_CONFIG + 1, rbx           ; one-shot in 1 ms
	WRMSR_ STIMER0_CONFIG, ST_ENABLE | (3 << 16)
	sti
	mov rsi, sint_count
	mov edi, 1
	call wait_dword
	FAIL_IF c, 4
	mov eax, [bad]
	test eax, eax
	FAIL_IF nz, [bad]
	call isr_empty
	FAIL_IF nz, 5

	mov dword [r15 + 0x300], 0x40061       ; self-IPI 0x61 (shorthand self)
	mov rsi, a1_count
	mov edi, 1
	call wait_dword
	FAIL_IF c, 9
	mov rsi, done_61
	mov edi, 1
	call wait_dword
	FAIL_IF c, 9
	mov eax, [bad]
	test eax, eax
	FAIL_IF nz, [bad]
	call isr_empty
	FAIL_IF nz, 8
	mov eax, [PPR]
	test eax, eax
	FAIL_IF nz, 8
	mov al, 0x42
	jmp fail

; ZF set when no vector is in service.
isr_empty:
	xor eax, eax
	mov ecx, 8
	lea rsi, [r15 + 0x100]
.l:	or eax, [rsi]
	add rsi, 0x10
	loop .l
	test eax, eax
	ret

; Records the first failing step.
%macro BAD 1
	cmp dword [bad], 0
	jne %%keep
	mov dword [bad], %1
%%keep:
%endmacro

h_sint:
	push rax
	push rcx
	inc dword [sint_count]
	test dword [ISR_REG(0x90)], ISR_BIT(0x90)
	jz .auto
	BAD 2
.auto:	mov dword [SIMP_PAGE + 3 * 256], 0       ; the slot is free again
	sti
	mov dword [r15 + 0x300], 0x40060       ; self-IPI 0x60, lower than 0x90
	mov ecx, 10000000
.spin:	cmp dword [low_count], 1
	jae .nested
	pause
	loop .spin
	BAD 3
.nested:
	cli
	pop rcx
	pop rax
	iretq

h_low:
	inc dword [low_count]
	mov dword [r15 + 0xb0], 0              ; EOI
	iretq

h_61:
	push rcx
	sti
	mov dword [r15 + 0x300], 0x400a1       ; self-IPI 0xa1, nested
	mov ecx, 10000000
.spin:	cmp dword [a1_count], 1
	jae .done
	pause
	loop .spin
.done:	cli
	mov dword [done_61], 1
	pop rcx
	iretq                                    ; 0x61 was ended by 0xa1's handler

h_a1:
	push rax
	push rcx
	push rdx
	inc dword [a1_count]
	mov eax, [ISR_REG(0x61)]
	and eax, ISR_BIT(0x61)
	jz .bad6
	mov eax, [ISR_REG(0xa1)]
	and eax, ISR_BIT(0xa1)
	jz .bad6
	cmp dword [PPR], 0xa0
	je .sel
.bad6:	BAD 6
.sel:	WRMSR_ SELECTIVE_EOI, 0x61
	mov eax, [ISR_REG(0x61)]
	and eax, ISR_BIT(0x61)
	jnz .bad7
	mov eax, [ISR_REG(0xa1)]
	and eax, ISR_BIT(0xa1)
	jz .bad7
	cmp dword [PPR], 0xa0
	je .eoi
.bad7:	BAD 7
.eoi:	mov dword [r15 + 0xb0], 0              ; EOI: 0xa1
	pop rdx
	pop rcx
	pop rax
	iretq

align 4
sint_count: dd 0
low_count:  dd 0
a1_count:   dd 0
done_61:    dd 0
bad:        dd 0
