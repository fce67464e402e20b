; Multiboot test kernel using the a.out kludge (MB 3.1.3): a flat binary
; whose header address fields place it at 2 MiB, load only up to
; load_end (the 0xcc tail of the file must not be loaded) and clear a
; 4 KiB .bss after it.
	bits 32
LOAD equ 0x200000
	org LOAD
	times 16 db 0x90
mbhdr:
	dd 0x1BADB002
	dd 0x00010002                       ; memory info, address fields valid
	dd -(0x1BADB002 + 0x00010002)
	dd mbhdr                            ; header_addr
	dd LOAD                             ; load_addr
	dd load_end                         ; load_end_addr
	dd bss_end                          ; bss_end_addr
	dd entry                            ; entry_addr
entry:
	hlt
	jmp entry
	db "AOUT-MARK"
	align 4
load_end:
	times 64 db 0xcc
bss_end equ load_end + 0x1000
