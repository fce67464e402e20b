; Bare-metal guest, real mode at 0x1000: checks the RTC's valid-RAM bit
; and that the ACPI PM timer runs, then powers off the ACPI way (SLP_TYP 5
; with SLP_EN in PM1a_CNT, as the DSDT's \_S5 says).  Failures end with
; isa-debug-exit instead.
bits 16
org 0x1000
start:
	cli
	mov al, 0x0d                ; RTC register D: VRT set
	out 0x70, al
	in al, 0x71
	cmp al, 0x80
	jne fail
	mov dx, 0x608               ; PM timer: must advance
	in eax, dx
	mov ebx, eax
	mov ecx, 10000000
.spin:
	in eax, dx
	cmp eax, ebx
	jne .moved
	dec ecx
	jnz .spin
	jmp fail
.moved:
	mov dx, 0x604               ; PM1a_CNT: SLP_TYP = 5, SLP_EN
	mov ax, (5 << 10) | (1 << 13)
	out dx, ax
	hlt
fail:
	mov al, 1
	out 0xf4, al
	hlt
