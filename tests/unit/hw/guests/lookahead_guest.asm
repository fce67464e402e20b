; Bare-metal guest for the lookahead differential tests
; (tests/unit/hw/test_lookahead.c), loaded at 0x1000 in real mode.  In 32-bit
; protected mode it runs the device-touching stretches the lookahead takes
; over, each leaving results in memory the test compares:
;  1. the 8250 transmit loop (wait for LSR.THRE, write THR) over TX_BYTES
;     bytes of a pattern;
;  2. a status-register poll with a timeout: LSR.DR never comes (no input),
;     so the loop runs out its count; then one whose bit is set at once;
;  3. REP OUTSB of 300 bytes to THR, REP INSW of 64 words from the PCI
;     configuration data port (the host bridge's IDs), REP INSB from the
;     UART's scratch register;
;  4. with interrupts on: a loop of OUTs to the scratch register whose
;     101st iteration enables the THR-empty interrupt (IER), which the
;     UART raises at once (IRQ4, I/O APIC pin 4, vector 0x34).  The handler
;     records the interrupted EIP and ECX, masks the interrupt again and
;     returns; the loop goes on.  The test checks that the EIP recorded is
;     the instruction after the OUT to IER, with the lookahead on and off.
; It ends with isa-debug-exit 0x42.
%ifndef TX_BYTES
TX_BYTES equ 2000
%endif
COM1 equ 0x3f8
RESULTS equ 0x7000              ; see the test: what each stretch left
%include "entry.inc"
	; 1. transmit loop
	xor ebx, ebx
.tx:	mov dx, COM1 + 5
.thre:	in al, dx
	test al, 0x20
	jz .thre
	mov eax, ebx
	imul eax, eax, 37
	shr eax, 3
	and al, 0x3f
	add al, 0x30
	mov dx, COM1
	out dx, al
	inc ebx
	cmp ebx, TX_BYTES
	jb .tx
	mov al, 10
	out dx, al
	; 2. poll for LSR.DR with a timeout: times out
	mov dx, COM1 + 5
	mov ecx, 3000
.dr:	in al, dx
	test al, 1
	jnz .got
	dec ecx
	jnz .dr
.got:	mov [RESULTS], ecx
	pushf
	pop dword [RESULTS + 4]
	;    and for LSR.THRE: set at once
	mov ecx, 3000
.th:	in al, dx
	test al, 0x20
	loopz .th
	mov [RESULTS + 8], ecx
	; 3. string I/O
	cld
	mov esi, pattern
	mov dx, COM1
	mov ecx, 300
	rep outsb
	mov dword [RESULTS + 12], esi
	mov eax, 0x80000000         ; PCI 00:00.0, register 0: vendor and device IDs
	mov dx, 0xcf8
	out dx, eax
	mov dx, 0xcfc
	mov edi, RESULTS + 0x100
	mov ecx, 64
	rep insw
	mov [RESULTS + 16], edi
	mov dx, COM1 + 7
	mov al, 0x5a
	out dx, al
	mov edi, RESULTS + 0x200
	mov ecx, 100
	rep insb
	mov [RESULTS + 20], edi
	; 4. an interrupt raised in the middle of a run of OUTs
	mov eax, irq34
	mov edi, IDT + 0x34 * 8
	mov [edi], ax
	mov word [edi + 2], 0x08
	mov word [edi + 4], 0x8e00
	shr eax, 16
	mov [edi + 6], ax
	lidt [idt_desc]
	mov al, 0xff                ; 8259s masked
	out 0x21, al
	out 0xa1, al
	mov dword [0xfee000f0], 0x1ff
	mov dword [0xfec00000], 0x18   ; I/O APIC pin 4 -> vector 0x34, edge, CPU 0
	mov dword [0xfec00010], 0x34
	mov dword [0xfec00000], 0x19
	mov dword [0xfec00010], 0
	mov dx, COM1 + 4
	mov al, 0x08                ; OUT2 gates the UART's interrupt line
	out dx, al
	mov dword [RESULTS + 0x4c], after_ier
	sti
	xor ecx, ecx
out_loop:
	mov dx, COM1 + 7
	mov al, cl
	out dx, al
	cmp ecx, 100
	jne skip_ier
	mov dx, COM1 + 1
	mov al, 0x02                ; IER.ETBEI: THR is empty, so it fires now
	out dx, al
after_ier:
skip_ier:
	inc ecx
	cmp ecx, 300
	jb out_loop
	cli
	mov eax, [RESULTS + 0x40]
	mov al, 0x42
	out 0xf4, al
	hlt

irq34:
	push eax
	push edx
	mov eax, [esp + 8]          ; the interrupted EIP
	mov [RESULTS + 0x40], eax
	mov [RESULTS + 0x44], ecx
	inc dword [RESULTS + 0x48]
	mov dx, COM1 + 2
	in al, dx                   ; IIR: acknowledges THR empty
	mov dx, COM1 + 1
	xor al, al
	out dx, al                  ; IER off again
	mov dword [0xfee000b0], 0   ; EOI
	pop edx
	pop eax
	iret

pattern:
%assign i 0
%rep 300
	db 0x41 + (i * 7) % 26
%assign i i + 1
%endrep
