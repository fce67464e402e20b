/* x86-64 architectural definitions shared by both engines, the loaders
 * and the snapshot code.  Numbers are from the Intel SDM vol. 3A. */
#ifndef VESSEL_MACHINE_X86_H
#define VESSEL_MACHINE_X86_H

#include <stdbool.h>
#include <stdint.h>

/* General-purpose registers in encoding order (SDM vol. 2A, 2.1.5). */
enum x86_gpr { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
/* Segment registers in encoding order (SDM vol. 2A, 3.1.1.3, "Sreg"). */
enum x86_sreg { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_COUNT };

/* RFLAGS (SDM vol. 1, 3.4.3) */
#define X86_FLAG_CF   (1u << 0)
#define X86_FLAG_FIXED (1u << 1)
#define X86_FLAG_PF   (1u << 2)
#define X86_FLAG_AF   (1u << 4)
#define X86_FLAG_ZF   (1u << 6)
#define X86_FLAG_SF   (1u << 7)
#define X86_FLAG_TF   (1u << 8)
#define X86_FLAG_IF   (1u << 9)
#define X86_FLAG_DF   (1u << 10)
#define X86_FLAG_OF   (1u << 11)
#define X86_FLAG_IOPL (3u << 12)
#define X86_FLAG_NT   (1u << 14)
#define X86_FLAG_RF   (1u << 16)
#define X86_FLAG_VM   (1u << 17)
#define X86_FLAG_AC   (1u << 18)
#define X86_FLAG_VIF  (1u << 19)
#define X86_FLAG_VIP  (1u << 20)
#define X86_FLAG_ID   (1u << 21)
#define X86_FLAGS_ARITH (X86_FLAG_CF | X86_FLAG_PF | X86_FLAG_AF | X86_FLAG_ZF | X86_FLAG_SF | X86_FLAG_OF)

/* Control registers (SDM vol. 3A, 2.5) */
#define X86_CR0_PE (1ull << 0)
#define X86_CR0_MP (1ull << 1)
#define X86_CR0_EM (1ull << 2)
#define X86_CR0_TS (1ull << 3)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_WP (1ull << 16)
#define X86_CR0_AM (1ull << 18)
#define X86_CR0_NW (1ull << 29)
#define X86_CR0_CD (1ull << 30)
#define X86_CR0_PG (1ull << 31)

#define X86_CR4_VME (1ull << 0)
#define X86_CR4_PVI (1ull << 1)
#define X86_CR4_TSD (1ull << 2)
#define X86_CR4_DE  (1ull << 3)
#define X86_CR4_PSE (1ull << 4)
#define X86_CR4_PAE (1ull << 5)
#define X86_CR4_MCE (1ull << 6)
#define X86_CR4_PGE (1ull << 7)
#define X86_CR4_PCE (1ull << 8)
#define X86_CR4_OSFXSR (1ull << 9)
#define X86_CR4_OSXMMEXCPT (1ull << 10)
#define X86_CR4_UMIP (1ull << 11)
#define X86_CR4_LA57 (1ull << 12)
#define X86_CR4_FSGSBASE (1ull << 16)
#define X86_CR4_PCIDE (1ull << 17)
#define X86_CR4_OSXSAVE (1ull << 18)
#define X86_CR4_SMEP (1ull << 20)
#define X86_CR4_SMAP (1ull << 21)

/* EFER (SDM vol. 3A, 2.2.1) */
#define X86_EFER_SCE (1ull << 0)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)
#define X86_EFER_NXE (1ull << 11)

/* MSR indices (SDM vol. 4) */
#define MSR_IA32_TSC              0x10
#define MSR_IA32_APIC_BASE        0x1b
#define MSR_IA32_FEATURE_CONTROL  0x3a
#define MSR_IA32_SPEC_CTRL        0x48
#define MSR_IA32_SYSENTER_CS      0x174
#define MSR_IA32_SYSENTER_ESP     0x175
#define MSR_IA32_SYSENTER_EIP     0x176
#define MSR_IA32_MISC_ENABLE      0x1a0
#define MSR_IA32_PAT              0x277
#define MSR_IA32_TSC_DEADLINE     0x6e0
#define MSR_EFER                  0xc0000080
#define MSR_STAR                  0xc0000081
#define MSR_LSTAR                 0xc0000082
#define MSR_CSTAR                 0xc0000083
#define MSR_SFMASK                0xc0000084
#define MSR_FS_BASE               0xc0000100
#define MSR_GS_BASE               0xc0000101
#define MSR_KERNEL_GS_BASE        0xc0000102
#define MSR_TSC_AUX               0xc0000103

/* Exception vectors (SDM vol. 3A, 6.3.1) */
enum x86_exception {
	X86_EXC_DE = 0, X86_EXC_DB = 1, X86_EXC_NMI = 2, X86_EXC_BP = 3, X86_EXC_OF = 4,
	X86_EXC_BR = 5, X86_EXC_UD = 6, X86_EXC_NM = 7, X86_EXC_DF = 8, X86_EXC_TS = 10,
	X86_EXC_NP = 11, X86_EXC_SS = 12, X86_EXC_GP = 13, X86_EXC_PF = 14, X86_EXC_MF = 16,
	X86_EXC_AC = 17, X86_EXC_MC = 18, X86_EXC_XM = 19, X86_EXC_VE = 20, X86_EXC_CP = 21,
};

/* #PF error code bits (SDM vol. 3A, 4.7) */
#define X86_PF_P    (1u << 0)
#define X86_PF_W    (1u << 1)
#define X86_PF_U    (1u << 2)
#define X86_PF_RSVD (1u << 3)
#define X86_PF_I    (1u << 4)
#define X86_PF_PK   (1u << 5)

/* A segment register with its hidden part, as KVM's kvm_segment. */
struct x86_segment {
	uint64_t base;
	uint32_t limit;     /* byte granular, already scaled by G */
	uint16_t selector;
	uint8_t type;       /* descriptor type field, 4 bits */
	uint8_t s, dpl, present, avl, l, db, g;
	uint8_t unusable;
};

struct x86_dtable {
	uint64_t base;
	uint16_t limit;
};

struct x86_regs {
	uint64_t gpr[16];
	uint64_t rip;
	uint64_t rflags;
};

struct x86_sregs {
	struct x86_segment seg[SEG_COUNT];
	struct x86_segment tr, ldt;
	struct x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t apic_base;
};

/* The legacy FXSAVE image (SDM vol. 1, 10.5.1, table 10-2) plus the
 * XSAVE extended state that the engine advertises. */
struct x86_fpu {
	uint8_t fxsave[512] __attribute__((aligned(16)));
	uint64_t xcr0;
};

struct x86_msr_entry {
	uint32_t index;
	uint64_t value;
};

#endif
