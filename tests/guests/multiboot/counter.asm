; Counter guest: a Multiboot kernel that counts forever in 32-bit protected
; mode and prints "count N" (hex) on COM1 every 2^20 iterations.
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, end, end, start
start:	mov esp, 0x90000
	xor ebx, ebx              ; the count lives in ebx (CPU state, snapshotted)
.loop:	inc ebx
	test ebx, 0xfffff
	jnz .loop
	mov esi, msg
	call puts
	mov ecx, 8
	mov edx, ebx
.hex:	rol edx, 4
	mov eax, edx
	and eax, 15
	mov al, [hexd + eax]
	call putc
	loop .hex
	mov al, 10
	call putc
	jmp .loop
putc:	push edx
	mov dx, 0x3f8
	out dx, al
	pop edx
	ret
puts:	lodsb
	test al, al
	jz .d
	call putc
	jmp puts
.d:	ret
msg:	db "count ", 0
hexd:	db "0123456789abcdef"
end:
