; Guest panic through the Hyper-V crash MSRs (TLFS "guest crash
; enlightenment"), as Linux's hv_kmsg_dump() reports one: P0-P2, the
; message's guest-physical address in P3 and its length in P4, then
; CRASH_CTL with CrashNotify and CrashMessage.  After the report the guest
; spins a while, prints "AFTER" and leaves through the debug-exit port with
; value 0x10 (exit code 0x21), so a test sees whether vessel let it go on
; (--on-panic keep), held it (pause) or ended the run (poweroff).
; Assembled with -DWAIT_BUTTON it first prints "READY" and waits for the
; ACPI power button (PM1a_STS.PWRBTN_STS, ACPI 6.4 section 4.8.3.1), so
; that a test can subscribe to the control API's events before the panic.
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
CRASH_P0 equ 0x40000100
CRASH_CTL equ 0x40000105
PM1A_STS equ 0x600
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, end, end, start
start:	mov esp, 0x90000
%ifdef WAIT_BUTTON
	mov esi, ready
	call puts
	mov dx, PM1A_STS
.button: in ax, dx
	pause
	test ax, 0x100
	jz .button
	out dx, ax                           ; write 1 to clear PWRBTN_STS
%endif
	mov ecx, CRASH_P0
	xor edx, edx
	mov eax, 0x11
	wrmsr                                ; P0
	inc ecx
	mov eax, 0x22
	wrmsr                                ; P1
	inc ecx
	mov eax, 0x33
	wrmsr                                ; P2
	inc ecx
	mov eax, message
	wrmsr                                ; P3: the message
	inc ecx
	mov eax, message_end - message
	wrmsr                                ; P4: its length
	mov ecx, CRASH_CTL
	mov edx, 0xc0000000                  ; CrashNotify | CrashMessage
	xor eax, eax
	wrmsr
	; Many instruction blocks: a stop or pause takes effect at a block
	; boundary, well before the print.
	mov ecx, 2000000
.spin:	dec ecx
	jnz .spin
	mov esi, after
	call puts
	mov al, 0x10
	out 0xf4, al
	cli
	hlt
%include "serial.inc"
hexd:	db "0123456789abcdef"
after:	db "AFTER", 10, 0
ready:	db "READY", 10, 0
message:
	db "Kernel panic - not syncing: test guest gave up", 10
	db "second line", 1, 10
message_end:
end:
