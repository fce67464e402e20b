; Firmware ROM of vessel: the 64 KiB at 0xffff0000-0xffffffff.
;
; The boot processor leaves reset in real mode with CS.base = 0xffff0000
; and IP = 0xfff0 (SDM vol. 3A, 9.1.4), i.e. at the last 16 bytes of this
; ROM.  From there this stub does what a boot loader does before it hands
; over to a kernel (SDM vol. 3A, 9.9 "Mode switching"):
;
;   real mode -> load the GDT below, set CR0.PE, far jump   -> 32-bit flat
;   mode 1 (Linux):     CR4.PAE, CR3 = monitor's identity-mapped tables,
;                       EFER.LME, CR0.PG, far jump          -> 64-bit mode,
;                       RSI = boot_params, jump to the kernel's 64-bit entry
;                       (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol")
;   mode 2 (Multiboot): stay in 32-bit protected mode, paging off,
;                       EAX = 0x2BADB002, EBX = info (Multiboot 0.6.96, 3.2)
;
; The monitor (src/boot/boot.c) fills the parameter block at the start of
; the ROM; the code only reads it.  The ROM is identity mapped by the page
; tables the monitor builds, so it keeps running when paging turns on.

%define ROM_BASE 0xffff0000

; Parameter block offsets: keep in sync with struct boot_stub_params in boot.h.
%define P_MAGIC 0
%define P_MODE  4
%define P_CR3   8
%define P_ENTRY 16
%define P_RSI   24
%define P_EAX   32
%define P_EBX   36
%define P_STACK 40
%define P_RESUME 48   ; FACS address when waking from S3, else 0

%define SEL_CODE32 0x08
%define SEL_CODE64 0x10     ; __BOOT_CS of the 64-bit boot protocol
%define SEL_DATA   0x18     ; __BOOT_DS

%define CR0_PE   (1 << 0)
%define CR0_NW   (1 << 29)
%define CR0_CD   (1 << 30)
%define CR0_PG   (1 << 31)
%define CR4_PAE  (1 << 5)
%define MSR_EFER 0xc0000080
%define EFER_LME (1 << 8)

	org ROM_BASE

params:
	times 64 db 0

; Flat 4 GiB segments (SDM vol. 3A, 3.4.5 and 5.2.1).  The accessed bit
; is preset: the CPU would otherwise write it into this read-only ROM when
; it loads a selector (SDM vol. 3A, 3.4.5.1).
	align 16
gdt:
	dq 0                            ; null
	dq 0x00cf9b000000ffff           ; 0x08 code, 32-bit, base 0, limit 4 GiB
	dq 0x00af9b000000ffff           ; 0x10 code, 64-bit (L = 1)
	dq 0x00cf93000000ffff           ; 0x18 data, read/write, 4 GiB
gdt_end:

gdt_desc:
	dw gdt_end - gdt - 1
	dd gdt

	bits 16
start16:
	cli
	cld
	cmp dword [cs:P_RESUME], 0
	jne resume16
	; CS.base is still 0xffff0000: address the descriptor relative to it.
	; The operand-size prefix makes LGDT load all 32 bits of the base.
	o32 lgdt [cs:gdt_desc - $$]
	; Reset leaves caching disabled (CR0.CD = NW = 1, SDM vol. 3A, 9.1.1,
	; table 9-1); turn it on as firmware does before handing over.
	mov eax, cr0
	and eax, ~(CR0_CD | CR0_NW)
	or eax, CR0_PE
	mov cr0, eax
	jmp dword SEL_CODE32:start32

; Wake from ACPI S3 (ACPI 6.4, 7.4.2.4 and 5.2.10, "Firmware Waking
; Vector"): the OS expects control in real mode at CS = vector >> 4,
; IP = vector & 0xf, with its memory as it left it.  The FACS lies below
; 1 MiB, as does the vector (Linux's wakeup trampoline).  The far return
; needs a stack: four bytes below 0x1000, in the first page, which the OS
; reserves for the BIOS data area and never hands out.
resume16:
	mov eax, [cs:P_RESUME]
	mov ebx, eax
	shr ebx, 4
	mov ds, bx
	and eax, 0xf
	a32 mov eax, [eax + 12]         ; FACS.FirmwareWakingVector
	xor ecx, ecx
	mov ss, cx
	mov sp, 0x1000
	mov ebx, eax
	shr ebx, 4
	and eax, 0xf
	push bx
	push ax
	xor ebx, ebx
	retf

	bits 32
start32:
	mov ax, SEL_DATA
	mov ds, ax
	mov es, ax
	mov fs, ax
	mov gs, ax
	mov ss, ax
	mov ebp, params
	mov esp, [ebp + P_STACK]
	cmp dword [ebp + P_MODE], 2
	je enter32

	; IA-32e mode activation, SDM vol. 3A, 10.8.5: PAE, CR3, EFER.LME, then CR0.PG.
	mov eax, cr4
	or eax, CR4_PAE
	mov cr4, eax
	mov eax, [ebp + P_CR3]
	mov cr3, eax
	mov ecx, MSR_EFER
	rdmsr
	or eax, EFER_LME
	wrmsr
	mov eax, cr0
	or eax, CR0_PG | CR0_PE
	mov cr0, eax
	jmp SEL_CODE64:start64

enter32:
	mov eax, [ebp + P_EAX]
	mov ebx, [ebp + P_EBX]
	xor ecx, ecx
	xor edx, edx
	xor esi, esi
	xor edi, edi
	push dword 2                    ; EFLAGS: IF = 0, VM = 0 (Multiboot 3.2)
	popfd
	jmp [ebp + P_ENTRY]

	bits 64
start64:
	; Register contents above bit 31 are undefined after the switch from
	; compatibility mode (SDM vol. 1, 3.4.1.1): reload everything.
	mov ebp, params                 ; zero-extends: 0x00000000ffff0000
	mov rsp, [rbp + P_STACK]
	mov rsi, [rbp + P_RSI]
	mov rax, [rbp + P_ENTRY]
	xor ebx, ebx
	xor ecx, ecx
	xor edx, edx
	xor edi, edi
	xor ebp, ebp
	push 2                          ; RFLAGS: IF = 0 (boot.rst: interrupts disabled)
	popfq
	jmp rax

	times 0xfff0 - ($ - $$) db 0xf4
reset_vector:                           ; 0xfffffff0
	bits 16
	jmp near start16
	times 0x10000 - ($ - $$) db 0xf4
