; Counter guest: a Multiboot kernel that counts forever in 32-bit protected
; mode (the count lives in EBX, so it is part of the CPU state a snapshot
; keeps).  Every 2^20 iterations it posts the count to the example
; mailbox plug-in's DATA register (port MBOX), reads it back, and prints
;   count CCCCCCCC mbox DDDDDDDD
; on COM1: DDDDDDDD equals the count while the mailbox is plugged in and
; reads ffffffff (an unclaimed port) when it is not.  It also polls the
; ACPI power button (PM1a_STS.PWRBTN_STS, ACPI 6.4 section 4.8.3.1) and, when
; pressed, enters S5 through PM1a_CNT (SLP_TYP 5 from vessel's \_S5, SLP_EN).
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
MBOX     equ 0x700
PM1A_STS equ 0x600
PM1A_CNT equ 0x604
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, end, end, start
start:	mov esp, 0x90000
	xor ebx, ebx
.loop:	inc ebx
	test ebx, 0xfffff
	jnz .loop
	mov esi, msg_count
	call puts
	mov edx, ebx
	call puthex
	mov esi, msg_mbox
	call puts
	mov dx, MBOX
	mov eax, ebx
	out dx, eax
	in eax, dx
	mov edx, eax
	call puthex
	mov al, 10
	call putc
	mov dx, PM1A_STS
	in ax, dx
	test ax, 0x100
	jz .loop
	out dx, ax                      ; write 1 to clear PWRBTN_STS
	mov dx, PM1A_CNT
	mov ax, (5 << 10) | (1 << 13)   ; SLP_TYP = S5, SLP_EN
	out dx, ax
	jmp .loop
%include "serial.inc"
msg_count: db "count ", 0
msg_mbox:  db " mbox ", 0
hexd:	db "0123456789abcdef"
end:
