; Triple-fault guest: a Multiboot kernel that loads an empty IDT and
; executes INT3.  #BP cannot be delivered (IDT limit 0) -> #GP -> #DF ->
; shutdown (SDM vol. 3A, 6.15, "Interrupt 8").  vessel must report the
; triple fault with the CPU state and exit with code 3.
MB_MAGIC equ 0x1badb002
MB_FLAGS equ 0x00010003
	bits 32
	org 0x100000
header:	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, 0x100000, end, end, start
start:	mov eax, 0x7e57fa17           ; a marker the test finds in the dump
	lidt [empty_idt]
	int3
	hlt
empty_idt:
	dw 0
	dd 0
end:
