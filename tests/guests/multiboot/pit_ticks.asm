; PIT tick guest: a Multiboot kernel that programs the 8254's channel 0 as
; a 100 Hz rate generator, routes IRQ0 through I/O APIC pin 2 (the MADT
; interrupt source override) to the local APIC as vector 0x30, and counts
; the interrupts in its handler.  Between interrupts it halts; every ten
; ticks it prints
;   ticks TTTTTTTT
; on COM1.  The count lives in guest RAM, so a snapshot carries it, and
; only keeps rising after a restore if the PIT, I/O APIC and LAPIC state
; (and the PIT's armed timer) came back too.  Assembled with -DLAPIC_TIMER
; it takes its ticks from the local APIC timer in periodic mode instead
; (SDM vol. 3A 10.5.4), the PIT left unprogrammed.  With -DSTIMER they
; come from Hyper-V synthetic timer 0 (TLFS 12.6) in periodic direct mode
; on vector 0x30; with -DSTIMER_MSG from the same timer in message mode:
; HvMessageTypeTimerExpired messages in SINT 2's slot of the SynIC message
; page, SINT 2 on vector 0x30 with AutoEOI, and the handler frees the slot
; and writes EOM as Linux's VMBus driver does (TLFS 11.10.3).
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
IDT      equ 0x3000
SIMP_PAGE equ 0x200000
PIT_HZ   equ 1193182
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, end, end, start
start:	cli
	lgdt [gdt_desc]
	jmp 0x08:.flat
.flat:	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, 0x90000
	; IDT: one interrupt gate, vector 0x30 (SDM vol. 3A 6.11)
	mov edi, IDT
	xor eax, eax
	mov ecx, 256 * 2
	rep stosd
	mov eax, irq0
	mov word [IDT + 0x30 * 8], ax
	mov word [IDT + 0x30 * 8 + 2], 0x08
	mov word [IDT + 0x30 * 8 + 4], 0x8e00
	shr eax, 16
	mov word [IDT + 0x30 * 8 + 6], ax
	lidt [idt_desc]
	; 8259 pair initialised and fully masked: the I/O APIC delivers
	mov al, 0x11
	out 0x20, al
	out 0xa0, al
	mov al, 0x20
	out 0x21, al
	mov al, 0x28
	out 0xa1, al
	mov al, 4
	out 0x21, al
	mov al, 2
	out 0xa1, al
	mov al, 1
	out 0x21, al
	out 0xa1, al
	mov al, 0xff
	out 0x21, al
	out 0xa1, al
	; local APIC software-enabled, LINT0 masked
	mov dword [0xfee000f0], 0x1ff
	mov dword [0xfee00350], 0x10700
%ifdef STIMER_MSG
	; SynIC: message page at SIMP_PAGE, SINT 2 -> vector 0x30 AutoEOI, on
	mov ecx, 0x40000083
	mov eax, SIMP_PAGE | 1
	xor edx, edx
	wrmsr
	mov ecx, 0x40000092
	mov eax, 0x30 | (1 << 17)
	wrmsr
	mov ecx, 0x40000080
	mov eax, 1
	wrmsr
%define STIMER
%define STIMER_CONFIG (1 | 2 | (2 << 16))
%else
%define STIMER_CONFIG (1 | 2 | (0x30 << 4) | (1 << 12))
%endif
%ifdef STIMER
	; Synthetic timer 0: a 10 ms period (100000 x 100 ns), then CONFIG:
	; enable, periodic, and direct mode on vector 0x30 or message mode
	; on SINT 2.
	mov ecx, 0x400000b1
	mov eax, 100000
	xor edx, edx
	wrmsr
	mov ecx, 0x400000b0
	mov eax, STIMER_CONFIG
	wrmsr
%elifdef LAPIC_TIMER
	; LAPIC timer: divide by 16, periodic, vector 0x30, 100 Hz of 25 MHz
	mov dword [0xfee003e0], 0x3
	mov dword [0xfee00320], 0x20030
	mov dword [0xfee00380], 25000000 / 16 / 100
%else
	; I/O APIC pin 2 -> vector 0x30, edge, physical destination 0
	mov dword [0xfec00000], 0x15
	mov dword [0xfec00010], 0
	mov dword [0xfec00000], 0x14
	mov dword [0xfec00010], 0x30
	; PIT channel 0, lobyte/hibyte, mode 2 (rate generator), 100 Hz
	mov al, 0x34
	out 0x43, al
	mov ax, PIT_HZ / 100
	out 0x40, al
	mov al, ah
	out 0x40, al
%endif
	sti
.loop:	hlt
	mov eax, [ticks]
	mov edx, eax
	sub edx, [printed]
	cmp edx, 10
	jb .loop
	mov [printed], eax
	mov esi, msg_ticks
	call puts
	mov edx, [printed]
	call puthex
	mov al, 10
	call putc
	jmp .loop

irq0:	inc dword [ticks]
%ifdef STIMER_MSG
	; Only a timer message counts; the slot is freed, then EOM lets a
	; message that waited for it in (AutoEOI: no APIC EOI needed).
	cmp dword [SIMP_PAGE + 2 * 256], 0x80000010
	je .msg
	dec dword [ticks]
.msg:	mov dword [SIMP_PAGE + 2 * 256], 0
	push eax
	push ecx
	push edx
	mov ecx, 0x40000084
	xor eax, eax
	xor edx, edx
	wrmsr
	pop edx
	pop ecx
	pop eax
%else
	mov dword [0xfee000b0], 0   ; EOI
%endif
	iret

%include "serial.inc"

	align 8
gdt:	dq 0
	dq 0x00cf9a000000ffff   ; 0x08: flat 32-bit code
	dq 0x00cf92000000ffff   ; 0x10: flat data
gdt_desc: dw gdt_desc - gdt - 1
	dd gdt
idt_desc: dw 256 * 8 - 1
	dd IDT
ticks:	dd 0
printed: dd 0
msg_ticks: db "ticks ", 0
hexd:	db "0123456789abcdef"
end:
