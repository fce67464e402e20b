; CPU benchmark guest: a Multiboot v1 kernel (a.out kludge) that runs the
; same way under `vessel run --kernel` and `qemu-system-x86_64 -kernel`.
; It enters long mode with 4-level paging, then runs ROUNDS rounds of
; integer work (xorshift + sieve), memory copies (rep movsb and a
; register loop), recursive calls (fib) and page-walk-heavy accesses
; (4 KiB pages over 16 MiB), prints a checksum on COM1 and leaves through
; the isa-debug-exit port 0xf4 with value 0 (exit code 1 in both VMMs).

%ifndef ROUNDS
%define ROUNDS 40
%endif

MB_MAGIC    equ 0x1badb002
MB_FLAGS    equ 0x00010003         ; page-align, meminfo, address fields valid
LOAD_ADDR   equ 0x100000
PML4        equ 0x200000
PDPT        equ 0x201000
PD          equ 0x202000           ; 1 GiB of 2 MiB pages
PT_REGION   equ 0x210000           ; 8 page tables: 16 MiB at 0x40000000 in 4 KiB pages
PD_HIGH     equ 0x208000
BUF_A       equ 0x400000
BUF_B       equ 0x500000
SIEVE       equ 0x600000
COM1        equ 0x3f8

	bits 32
	org LOAD_ADDR
header:
	dd MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
	dd header, LOAD_ADDR, load_end, bss_end, start

start:
	cli
	mov esp, 0x90000
	; zero the page-table area
	mov edi, PML4
	mov ecx, (0x218000 - PML4) / 4
	xor eax, eax
	rep stosd
	mov dword [PML4], PDPT | 3
	mov dword [PDPT], PD | 3
	mov dword [PDPT + 8], PD_HIGH | 3          ; 1 GiB..2 GiB
	; identity map the first GiB with 2 MiB pages
	mov edi, PD
	mov eax, 0x83
	mov ecx, 512
.pd:	mov [edi], eax
	add eax, 0x200000
	add edi, 8
	loop .pd
	; 0x40000000..+16 MiB -> physical 0x1000000.. in 4 KiB pages
	mov edi, PD_HIGH
	mov eax, PT_REGION | 3
	mov ecx, 8
.pdh:	mov [edi], eax
	add eax, 0x1000
	add edi, 8
	loop .pdh
	mov edi, PT_REGION
	mov eax, 0x1000000 | 3
	mov ecx, 8 * 512
.pt:	mov [edi], eax
	add eax, 0x1000
	add edi, 8
	loop .pt
	; long mode: PAE, LME, paging (SDM vol. 3A, 9.8.5)
	lgdt [gdt_ptr]
	mov eax, cr4
	or eax, 1 << 5
	mov cr4, eax
	mov eax, PML4
	mov cr3, eax
	mov ecx, 0xc0000080
	rdmsr
	or eax, 1 << 8
	wrmsr
	mov eax, cr0
	or eax, 0x80000001
	mov cr0, eax
	jmp 0x08:long_entry

	bits 64
long_entry:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov rsp, 0x90000
	xor r15, r15                 ; checksum
	mov r14d, ROUNDS
	test r14d, r14d
	jz .report
.round:
	call work_xorshift
	call work_sieve
	call work_copy
	mov edi, 22
	call fib
	add r15, rax
	call work_pages
	dec r14d
	jnz .round
.report:
	; print the checksum as 16 hex digits
	lea rsi, [rel msg]
	call puts
	mov rbx, r15
	mov ecx, 16
.hex:	rol rbx, 4
	mov eax, ebx
	and eax, 15
	lea rdx, [rel hexdigits]
	mov al, [rdx + rax]
	call putc
	loop .hex
	mov al, 10
	call putc
	xor eax, eax
	out 0xf4, al
.hang:	hlt
	jmp .hang

putc:	; al -> COM1
	push rdx
	mov dx, COM1
	out dx, al
	pop rdx
	ret

puts:	; rsi -> NUL-terminated string
	lodsb
	test al, al
	jz .done
	call putc
	jmp puts
.done:	ret

work_xorshift:	; 200k rounds of xorshift64 with multiply and divide
	mov rax, 0x9e3779b97f4a7c15
	mov ecx, 200000
.l:	mov rdx, rax
	shl rdx, 13
	xor rax, rdx
	mov rdx, rax
	shr rdx, 7
	xor rax, rdx
	mov rdx, rax
	shl rdx, 17
	xor rax, rdx
	imul rdx, rax, 31
	add r15, rdx
	dec ecx
	jnz .l
	ret

work_sieve:	; primes below 262144, byte array
	mov rdi, SIEVE
	mov ecx, 262144
	mov al, 1
	rep stosb
	mov ebx, 2
.outer:	mov eax, ebx
	imul eax, ebx
	cmp eax, 262144
	jae .count
	cmp byte [SIEVE + rbx], 0
	je .next
.inner:	mov byte [SIEVE + rax], 0
	add eax, ebx
	cmp eax, 262144
	jb .inner
.next:	inc ebx
	jmp .outer
.count:	xor eax, eax
	mov ecx, 2
.c:	movzx edx, byte [SIEVE + rcx]
	add eax, edx
	inc ecx
	cmp ecx, 262144
	jb .c
	add r15, rax
	ret

work_copy:	; 1 MiB with rep movsb, then 1 MiB back with a qword loop
	mov rsi, BUF_A
	mov rdi, BUF_B
	mov ecx, 1 << 20
	rep movsb
	mov rsi, BUF_B
	mov rdi, BUF_A
	mov ecx, (1 << 20) / 8
.l:	mov rax, [rsi]
	mov [rdi], rax
	add rsi, 8
	add rdi, 8
	dec ecx
	jnz .l
	add r15, [BUF_A + 4096]
	ret

fib:	; rax = fib(edi), recursively
	cmp edi, 2
	jb .base
	push rdi
	dec edi
	call fib
	pop rdi
	push rax
	sub edi, 2
	call fib
	pop rdx
	add rax, rdx
	ret
.base:	mov eax, edi
	ret

work_pages:	; touch every 4 KiB page of the 16 MiB window, 4 passes
	mov edx, 4
.pass:	mov rdi, 0x40000000
	mov ecx, 4096
.l:	add [rdi], rcx
	add r15, [rdi + 8]
	add rdi, 4096
	dec ecx
	jnz .l
	dec edx
	jnz .pass
	ret

	align 8
gdt:	dq 0
	dq 0x00af9a000000ffff            ; 64-bit code
	dq 0x00cf92000000ffff            ; data
gdt_ptr:
	dw gdt_ptr - gdt - 1
	dd gdt
msg:	db "cpubench checksum ", 0
hexdigits: db "0123456789abcdef"
load_end:
bss_end:
