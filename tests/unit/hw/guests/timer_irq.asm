; Bare-metal guest for the platform's interrupt path, loaded at 0x1000 in
; real mode.  It does what Linux's check_timer() relies on: the PIT's IRQ0
; through I/O APIC pin 2 (the MADT override) to the local APIC, EOI by
; xAPIC MMIO; then a local APIC one-shot timer.  It reports through COM1
; and ends with isa-debug-exit: 0x42 when every interrupt arrived.
bits 16
org 0x1000
start:
	cli
	xor ax, ax
	mov ds, ax
	lgdt [gdt_desc]
	mov eax, cr0
	or eax, 1
	mov cr0, eax
	jmp dword 0x08:pm32

bits 32
pm32:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, 0x8000
	; IDT at 0x3000: vectors 0x30 and 0x31
	mov eax, irq30
	mov edi, 0x3000 + 0x30 * 8
	call set_gate
	mov eax, irq31
	mov edi, 0x3000 + 0x31 * 8
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
	cmp dword [cnt30], 5
	jae .pit_done
	sti
	hlt
	cli
	jmp .wait_pit
.pit_done:
	cli
	; mask pin 2 again
	mov dword [0xfec00000], 0x14
	mov dword [0xfec00010], 0x10030
	; local APIC timer: divide by 1, one-shot, 25000 ticks = 1 ms
	mov dword [0xfee003e0], 0xb
	mov dword [0xfee00320], 0x31
	mov dword [0xfee00380], 25000
.wait_lapic:
	cmp dword [cnt31], 1
	jae .lapic_done
	sti
	hlt
	cli
	jmp .wait_lapic
.lapic_done:
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
	jmp pm32.wait_pit
irq31:
	inc dword [cnt31]
	mov dword [0xfee000b0], 0
	add esp, 12
	jmp pm32.wait_lapic

align 8
gdt:
	dq 0
	dq 0x00cf9a000000ffff
	dq 0x00cf92000000ffff
gdt_desc:
	dw gdt_desc - gdt - 1
	dd gdt
idt_desc:
	dw 256 * 8 - 1
	dd 0x3000
cnt30:	dd 0
cnt31:	dd 0
