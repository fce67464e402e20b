; 64-bit code of the Linux-protocol guest for the KVM boot test, entered
; like startup_64: long mode, RSI = boot_params.  Reports on port 0xe9:
; "L:" + the command line from boot_params.hdr.cmd_line_ptr + ":" + the
; high byte of a 64-bit value (proves 64-bit mode) + the e820 entry count.
	bits 64
	default rel
start:
	mov edx, 0xe9
	mov al, 'L'
	out dx, al
	mov al, ':'
	out dx, al
	mov ebx, [rsi + 0x228]              ; cmd_line_ptr
.loop:
	mov al, [rbx]
	test al, al
	jz .cmd_done
	out dx, al
	inc rbx
	jmp .loop
.cmd_done:
	mov al, ':'
	out dx, al
	mov rax, 0x4100000000000000         ; 'A' in bits 56-63
	shr rax, 56
	out dx, al
	mov al, [rsi + 0x1e8]               ; e820_entries
	add al, '0'
	out dx, al
	hlt
	jmp $
