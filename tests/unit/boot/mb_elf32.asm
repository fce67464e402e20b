; Multiboot test kernel: a hand-built ELF32 executable (one PT_LOAD at
; 1 MiB with 8 KiB of .bss) carrying a Multiboot header without address
; fields, so the loader must use the ELF program headers (MB 3.1.3).
	bits 32
BASE equ 0x100000
	org BASE
ehdr:
	db 0x7f, "ELF", 1, 1, 1, 0          ; ELFCLASS32, little endian
	times 8 db 0
	dw 2                                ; ET_EXEC
	dw 3                                ; EM_386
	dd 1
	dd entry                            ; e_entry
	dd phdr - $$                        ; e_phoff
	dd 0                                ; e_shoff
	dd 0
	dw 52                               ; e_ehsize
	dw 32                               ; e_phentsize
	dw 1                                ; e_phnum
	dw 0, 0, 0
phdr:
	dd 1                                ; PT_LOAD
	dd 0                                ; p_offset
	dd BASE                             ; p_vaddr
	dd BASE                             ; p_paddr
	dd file_end - $$                    ; p_filesz
	dd bss_end - $$                     ; p_memsz
	dd 7
	dd 0x1000
	align 4
mbhdr:
	dd 0x1BADB002
	dd 0x00000003                       ; page-align modules, memory info
	dd -(0x1BADB002 + 0x00000003)
entry:
	cli
	hlt
	jmp entry
	db "ELF32-MARK"
file_end:
bss_end equ file_end + 0x2000
