; Console burst guest: a Multiboot kernel that writes LINES lines
;   line NNNNNNNN abcdefghijklmnopqrstuvwxyz0123456789
; to COM1 with the 8250 polling loop (wait for LSR.THRE, then write THR,
; as Linux's serial console does), pausing after every 64th line so that
; the output comes in bursts, then a last line without its newline:
;   tail without newline
; and ends by the isa-debug-exit port (exit code 0x21 << 1 | 1), or, with
; -DCRASH, by a triple fault in the middle of that line (the host must
; still write it before it reports the fault).  With -DWAIT it waits for
; one byte of input before it starts, so that a client of a unix: console
; is connected before the output starts, and for another before it ends.  Used by tests/integration/test_compound.py.
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
COM1     equ 0x3f8
%ifndef LINES
LINES    equ 1000
%endif
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, end, end, start
start:	cli
	mov esp, 0x90000
%ifdef WAIT
	call getc
%endif
	xor ebx, ebx
.line:	mov esi, msg_line
	call puts
	mov edx, ebx
	call puthex
	mov esi, msg_body
	call puts
	inc ebx
	test ebx, 63
	jnz .next
	mov ecx, 200000              ; a pause between bursts
.spin:	dec ecx
	jnz .spin
.next:	cmp ebx, LINES
	jb .line
	mov esi, msg_tail
	call puts
%ifdef CRASH
	lidt [empty_idt]
	int3                         ; #BP -> #GP -> #DF -> shutdown
%endif
%ifdef WAIT
	call getc
%endif
	mov al, 0x21
	out 0xf4, al
	hlt

getc:	; waits for a byte of input (LSR.DR), -> al
	mov dx, COM1 + 5
.rx:	in al, dx
	test al, 1
	jz .rx
	mov dx, COM1
	in al, dx
	ret

puthex:	; edx -> 8 hex digits
	mov ecx, 8
.h:	rol edx, 4
	mov eax, edx
	and eax, 15
	mov al, [hexd + eax]
	call putc
	loop .h
	ret
putc:	; al -> COM1 once the transmitter holds nothing
	push edx
	push eax
	mov dx, COM1 + 5
.w:	in al, dx
	test al, 0x20                ; LSR.THRE
	jz .w
	pop eax
	mov dx, COM1
	out dx, al
	pop edx
	ret
puts:	; esi -> NUL-terminated string
	lodsb
	test al, al
	jz .d
	call putc
	jmp puts
.d:	ret

hexd:	db "0123456789abcdef"
msg_line: db "line ", 0
msg_body: db " abcdefghijklmnopqrstuvwxyz0123456789", 10, 0
msg_tail: db "tail without newline", 0
empty_idt:
	dw 0
	dd 0
end:
