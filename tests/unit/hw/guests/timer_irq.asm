; Bare-metal guest for the platform's interrupt path, loaded at 0x1000 in
; real mode.  It does what Linux's check_timer() relies on: the PIT's IRQ0
; through I/O APIC pin 2 (the MADT override) to the local APIC, EOI by
; xAPIC MMIO; then a local APIC one-shot timer; then the HPET's timer 0 in
; legacy replacement mode on the same pin.  It reports through COM1 and
; ends with isa-debug-exit: 0x42 when every interrupt arrived.
%include "entry.inc"
	; IDT: vectors 0x30 and 0x31
	mov eax, irq30
	mov edi, IDT + 0x30 * 8
	call set_gate
	mov eax, irq31
	mov edi, IDT + 0x31 * 8
	call set_gate
	lidt [idt_desc]
	; 8259 pair: initialise, then mask everything (the I/O APIC delivers)
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
	; local APIC: software-enabled, LINT0 masked
	mov dword [0xfee000f0], 0x1ff
	mov dword [0xfee00350], 0x10700
	; I/O APIC pin 2 -> vector 0x30, edge, physical destination 0
	mov dword [0xfec00000], 0x15
	mov dword [0xfec00010], 0
	mov dword [0xfec00000], 0x14
	mov dword [0xfec00010], 0x30
	; PIT channel 0: rate generator, 1193 ticks (1 kHz)
	mov al, 0x34
	out 0x43, al
	mov al, 0xa9
	out 0x40, al
	mov al, 0x04
	out 0x40, al
	; Wait loops: sti; hlt is atomic (the STI shadow).  The handlers do
	; not IRET but drop their frame and jump back to the check, so the
	; guest needs nothing the engine might have to emulate.
.wait_pit:
	mov dword [resume], .wait_pit
	cmp dword [cnt30], 5
	jae .pit_done
	sti
	hlt
	cli
	jmp .wait_pit
.pit_done:
	; mask pin 2 again
	mov dword [0xfec00000], 0x14
	mov dword [0xfec00010], 0x10030
	; local APIC timer: divide by 1, one-shot, 25000 ticks = 1 ms
	mov dword [0xfee003e0], 0xb
	mov dword [0xfee00320], 0x31
	mov dword [0xfee00380], 25000
.wait_lapic:
	mov dword [resume], .wait_lapic
	cmp dword [cnt31], 1
	jae .lapic_done
	sti
	hlt
	cli
	jmp .wait_lapic
.lapic_done:
	; HPET timer 0, periodic every 10000 ticks (1 ms at 10 MHz), in legacy
	; replacement mode: IRQ0, so I/O APIC pin 2 again (the PIT goes quiet).
	mov dword [0xfec00000], 0x14
	mov dword [0xfec00010], 0x30
	mov dword [0xfed00100], 0x14c       ; INT_ENB | PERIODIC | VAL_SET | 32BIT (as Linux)
	mov dword [0xfed00108], 10000       ; comparator
	mov dword [0xfed0010c], 0
	mov dword [0xfed00108], 10000       ; period
	mov dword [0xfed00010], 3           ; ENABLE | LEG_RT
.wait_hpet:
	mov dword [resume], .wait_hpet
	cmp dword [cnt30], 8
	jae .hpet_done
	sti
	hlt
	cli
	jmp .wait_hpet
.hpet_done:
	mov dword [0xfed00010], 0
	mov dx, 0x3f8
	mov al, 'O'
	out dx, al
	mov al, 'K'
	out dx, al
	mov al, 0x42
	out 0xf4, al
	cli
	hlt

; eax = handler, edi = gate address: 32-bit interrupt gate, selector 0x08
set_gate:
	mov [edi], ax
	mov word [edi + 2], 0x08
	mov word [edi + 4], 0x8e00
	shr eax, 16
	mov [edi + 6], ax
	ret

irq30:
	inc dword [cnt30]
	mov dword [0xfee000b0], 0
	add esp, 12                 ; drop EIP, CS, EFLAGS
	jmp [resume]
irq31:
	inc dword [cnt31]
	mov dword [0xfee000b0], 0
	add esp, 12
	jmp [resume]

cnt30:	dd 0
cnt31:	dd 0
resume:	dd 0                        ; where an interrupt handler continues
