; Bare-metal guest for NMI delivery through the local APIC, loaded at
; 0x1000 in real mode.  It sends itself an NMI through the ICR with its own
; APIC ID as the physical destination (SDM vol. 3A 10.6.1, delivery mode
; 100b), then, from inside the NMI handler, two more (one by ID, one by the
; self shorthand): while the handler runs NMIs are blocked, so they stay
; pending until its IRET and, being a latch, collapse into one (6.7.1).
; Ends with isa-debug-exit: 0x42 when all held, else the failing step.
%include "entry.inc"
	; IDT: vector 2 (NMI) -> nmi_handler, interrupt gate
	mov eax, nmi_handler
	mov edi, IDT + 2 * 8
	mov [edi], ax
	mov word [edi + 2], 0x08
	mov word [edi + 4], 0x8e00
	shr eax, 16
	mov [edi + 6], ax
	lidt [idt_desc]
	mov dword [0xfee000f0], 0x1ff          ; APIC software-enabled

	; 1: one NMI to our own APIC ID.
	call send_nmi_by_id
	mov ecx, 100000
.wait1:
	cmp dword [count], 1
	jae .got1
	loop .wait1
.got1:
	mov al, 1
	cmp dword [count], 1
	jne fail

	; 2: the handler sends two more while NMIs are blocked.
	mov dword [phase], 1
	call send_nmi_by_id
	mov ecx, 100000
.wait2:
	cmp dword [count], 3
	jae .got2
	loop .wait2
.got2:
	mov ecx, 10000                          ; time for a wrong extra NMI
.settle:
	loop .settle
	mov al, 2
	cmp dword [in_handler], 2               ; none delivered inside the handler
	jne fail
	mov al, 3
	cmp dword [count], 3                    ; exactly one after its IRET
	jne fail
	mov al, 0x42
fail:
	out 0xf4, al
	cli
	hlt

send_nmi_by_id:
	mov eax, [0xfee00020]                   ; APIC ID in bits 31:24
	and eax, 0xff000000
	mov [0xfee00310], eax
	mov dword [0xfee00300], 0x4400          ; NMI, physical, assert, no shorthand
	ret

nmi_handler:
	push eax
	push ecx
	inc dword [count]
	cmp dword [phase], 1
	jne .done
	mov dword [phase], 2
	call send_nmi_by_id
	mov dword [0xfee00300], 0x44400         ; NMI to self (shorthand 01)
	mov ecx, 10000
.spin:
	loop .spin
	mov eax, [count]
	mov [in_handler], eax
.done:
	pop ecx
	pop eax
	iret

count:	dd 0
phase:	dd 0
in_handler: dd 0
