; Multiboot test kernel in an ELF64 container (as some 64-bit test kernels
; ship): one PT_LOAD at 2 MiB, entry below 4 GiB, no address fields.
	bits 32
BASE equ 0x200000
	org BASE
ehdr:
	db 0x7f, "ELF", 2, 1, 1, 0          ; ELFCLASS64, little endian
	times 8 db 0
	dw 2                                ; ET_EXEC
	dw 62                               ; EM_X86_64
	dd 1
	dq entry                            ; e_entry
	dq phdr - $$                        ; e_phoff
	dq 0                                ; e_shoff
	dd 0
	dw 64                               ; e_ehsize
	dw 56                               ; e_phentsize
	dw 1                                ; e_phnum
	dw 0, 0, 0
phdr:
	dd 1                                ; PT_LOAD
	dd 7                                ; p_flags
	dq 0                                ; p_offset
	dq BASE                             ; p_vaddr
	dq BASE                             ; p_paddr
	dq file_end - $$                    ; p_filesz
	dq file_end - $$ + 0x1000           ; p_memsz
	dq 0x1000
	align 4
mbhdr:
	dd 0x1BADB002
	dd 0
	dd -0x1BADB002
entry:
	hlt
	jmp entry
	db "ELF64-MARK"
file_end:
