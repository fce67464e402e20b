; Bare-metal guest, loaded at 0x1000 in real mode: a serial echo driven by
; the COM1 receive interrupt (IRQ4 through I/O APIC pin 4, edge), the way
; Linux's 8250 driver runs the console.  It prints '>' once its UART is
; set up (input sent earlier would be dropped by the FIFO reset, as on
; hardware), echoes four bytes, then ends with isa-debug-exit 0x42.
%include "entry.inc"
	mov eax, irq34
	mov edi, IDT + 0x34 * 8
	mov [edi], ax
	mov word [edi + 2], 0x08
	mov word [edi + 4], 0x8e00
	shr eax, 16
	mov [edi + 6], ax
	lidt [idt_desc]
	mov al, 0xff                ; 8259s masked (never initialised: not needed)
	out 0x21, al
	out 0xa1, al
	mov dword [0xfee000f0], 0x1ff
	mov dword [0xfee00350], 0x10700
	; I/O APIC pin 4 -> vector 0x34, edge, CPU 0 (before the UART can raise it)
	mov dword [0xfec00000], 0x19
	mov dword [0xfec00010], 0
	mov dword [0xfec00000], 0x18
	mov dword [0xfec00010], 0x34
	; COM1: 8N1, FIFOs on (trigger 1), receive interrupt, OUT2 gates the IRQ
	mov dx, 0x3fb
	mov al, 0x03
	out dx, al
	mov dx, 0x3fa
	mov al, 0x07
	out dx, al
	mov dx, 0x3f9
	mov al, 0x01
	out dx, al
	mov dx, 0x3fc
	mov al, 0x0b
	out dx, al
	mov dx, 0x3f8
	mov al, '>'
	out dx, al
.wait:
	mov dword [resume], .wait
	cmp dword [count], 4
	jae .done
	sti
	hlt
	cli
	jmp .wait
.done:
	mov al, 0x42
	out 0xf4, al
	cli
	hlt

; Drains the receive FIFO, echoing each byte, then EOI.
irq34:
	mov dx, 0x3fd
	in al, dx
	test al, 1
	jz .empty
	mov dx, 0x3f8
	in al, dx
	out dx, al
	inc dword [count]
	jmp irq34
.empty:
	mov dword [0xfee000b0], 0
	add esp, 12                 ; drop EIP, CS, EFLAGS (no IRET, see timer_irq.asm)
	jmp [resume]

count:	dd 0
resume:	dd 0
