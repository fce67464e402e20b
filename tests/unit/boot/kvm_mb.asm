; Multiboot guest for the KVM boot test: checks the machine state the
; loader and the ROM stub promise (Multiboot 0.6.96, 3.2) and reports on
; the debug console port 0xe9: "MB:" + command line + ":" + the first 4
; bytes of the first module, "!" on a wrong magic; then halts.
	bits 32
LOAD equ 0x100000
	org LOAD
mbhdr:
	dd 0x1BADB002
	dd 0x00010002
	dd -(0x1BADB002 + 0x00010002)
	dd mbhdr, LOAD, load_end, bss_end, entry
entry:
	mov dx, 0xe9
	cmp eax, 0x2BADB002
	jne fail
	mov al, 'M'
	out dx, al
	mov al, 'B'
	out dx, al
	mov al, ':'
	out dx, al
	mov esi, [ebx + 16]                 ; cmdline
	call puts
	mov al, ':'
	out dx, al
	cmp dword [ebx + 20], 1             ; mods_count
	jb done
	mov esi, [ebx + 24]                 ; mods_addr
	mov esi, [esi]                      ; mod_start
	mov ecx, 4
	rep outsb
done:
	hlt
	jmp done
fail:
	mov al, '!'
	out dx, al
	jmp done
puts:
	lodsb
	test al, al
	jz .end
	out dx, al
	jmp puts
.end:
	ret
load_end:
bss_end equ load_end + 0x1000
