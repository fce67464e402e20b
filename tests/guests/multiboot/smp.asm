; SMP bring-up guest: the boot processor starts the application processor
; with INIT-SIPI-SIPI through the local APIC (SDM vol. 3A, 9.4.4.1), the
; AP runs a real-mode trampoline at 0x8000 that prints "AP" on COM1 and
; sets a flag; the BSP waits for the flag, prints "BSP done" and leaves
; through the debug-exit port with value 0x11 (exit code 0x23).
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
LAPIC    equ 0xfee00000
FLAG     equ 0x9000
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, end, end, start
start:	mov esp, 0x90000
	mov dword [FLAG], 0
	mov esi, trampoline              ; copy the trampoline to 0x8000
	mov edi, 0x8000
	mov ecx, trampoline_end - trampoline
	rep movsb
	mov dword [LAPIC + 0xf0], 0x1ff  ; software-enable the APIC (SVR)
	mov dword [LAPIC + 0x310], 1 << 24
	mov dword [LAPIC + 0x300], 0x4500 ; INIT
	call delay
	mov dword [LAPIC + 0x310], 1 << 24
	mov dword [LAPIC + 0x300], 0x4608 ; SIPI, vector 0x08 -> 0x8000
	call delay
	mov ecx, 100000000
.wait:	cmp dword [FLAG], 1
	je .up
	pause
	loop .wait
	mov esi, msg_timeout
	call puts
	mov al, 0x22
	out 0xf4, al
.up:	mov esi, msg_done
	call puts
	mov al, 0x11
	out 0xf4, al
	hlt
delay:	mov ecx, 10000
.d:	loop .d
	ret
puts:	mov dx, 0x3f8
.l:	lodsb
	test al, al
	jz .e
	out dx, al
	jmp .l
.e:	ret
msg_done:    db "BSP done", 10, 0
msg_timeout: db "AP did not start", 10, 0

	bits 16
trampoline:                       ; runs at 0800:0000 in real mode
	mov dx, 0x3f8
	mov al, 'A'
	out dx, al
	mov al, 'P'
	out dx, al
	mov al, 10
	out dx, al
	xor ax, ax
	mov ds, ax
	mov dword [FLAG], 1
.h:	cli
	hlt
	jmp .h
trampoline_end:
end:
