/* libFuzzer target: the emu engine (docs/architecture.md "Host safety").  The input
 * is a machine state and code: a mode (real, 16/32-bit protected with or
 * without 32-bit or PAE paging, 64-bit, compatibility, virtual-8086), CPL,
 * CR0/CR4/EFER and RFLAGS bits, register values, debug registers, patches
 * over the descriptor tables, TSS and page tables the target lays out, and
 * the code bytes.  One vCPU runs it for a bounded budget (instructions and
 * event deliveries), so a looping guest stops.  Whatever the input, the run
 * must end in a clean exit -- the budget, HLT, a shutdown or an internal
 * error, the last two with a message -- never a host crash, hang or
 * sanitizer report.
 *
 * Input layout (little-endian; short inputs are zero-extended):
 *   0      mode (bits 0-2, enum fuzz_mode), CPL 3 (bit 3), CR4.PSE (4),
 *          CR4.LA57 (5), CR4.PCIDE (6), CR4.VME|PVI (7)
 *   1      CR0.WP, CR4.PGE, CR4.SMEP, CR4.SMAP, EFER.NXE, CR4.OSXSAVE,
 *          CR4.UMIP, CR4.TSD (bits 0-7)
 *   2      CR0.MP, CR0.EM, CR0.TS, CR0.AM, CR4.OSFXSR, CR4.OSXMMEXCPT,
 *          CR4.FSGSBASE, CR4.DE (bits 0-7)
 *   3      RFLAGS: TF, IF, DF, AC, NT, IOPL (bits 5-6), RF (7)
 *   4      RFLAGS arithmetic bits (CF PF AF ZF SF OF from bits 0-5)
 *   5      number of patches (up to FUZZ_MAX_PATCHES)
 *   6-7    GPRs whose upper half is all ones (bit i: register i)
 *   8-11   DR7
 *   12-75  16 x u32 XORed into the GPRs' defaults (RSP: the stack top)
 *   76-91  DR0-DR3 as 4 x u32 offsets from the code address
 *   92-    patches, 10 bytes each: u16 qword index into the system area,
 *          u64 value; then the code (at most CODE_MAX bytes)
 */
#include "machine/accel.h"
#include "cpu/engines.h"
#include "cpu/emu/core/block.h"
#include "cpu/emu/emu.h"
#include "util/log.h"
#include "machine/machine.h"
#include "machine/memory.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Guest-physical layout.  RAM is small so that random addresses mostly
 * land outside it (unclaimed MMIO), and a ROM page follows it. */
#define RAM         0x100000u
#define ROM         RAM
#define IVT         0x0000u
#define GDT         0x1000u
#define IDT         0x2000u
#define TSS         0x3000u      /* + the I/O permission bitmap */
#define LDT         0x6000u
#define PML5        0x8000u
#define PML4        0x9000u
#define PDPT        0xa000u
#define PD          0xb000u      /* 64-bit and PAE: 2 MiB pages but the first */
#define PT          0xc000u      /* 4 KiB pages of the first 2 MiB */
#define PAE_PDPT    0xd000u
#define PD32        0xe000u
#define PT32        0xf000u
#define SYS_END     0x10000u     /* patches land in [0, SYS_END) */
#define STACK_TOP   0x1fff0u
#define IST_TOP     0x1eff0u
#define CODE        0x40000u
#define CODE_MAX    0x10000u

#define HDR         92u
#define FUZZ_MAX_PATCHES 32u
#define BUDGET      4096u        /* instructions plus event deliveries */

enum fuzz_mode { M_REAL, M_PROT16, M_PROT32, M_PAGED32, M_PAE, M_LONG64, M_COMPAT, M_V86 };

/* GDT selectors (a layout SYSCALL/SYSRET accept through STAR below). */
enum {
	SEL_CODE32 = 0x08, SEL_CODE64 = 0x10, SEL_DATA = 0x18, SEL_UCODE32 = 0x23, SEL_UDATA = 0x2b,
	SEL_UCODE64 = 0x33, SEL_CODE16 = 0x38, SEL_DATA16 = 0x40, SEL_TSS = 0x48, SEL_LDT = 0x58,
	SEL_GATE = 0x6b, SEL_CONFORMING = 0x78,
};

struct machine {
	struct vm vm;
	struct vcpu vcpu;
};

static uint64_t rd(const uint8_t *in, size_t at, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)in[at + i] << (8 * i);
	return v;
}

static void put(struct guest_memory *mem, uint64_t gpa, uint64_t v, unsigned n)
{
	memcpy(gmem_ptr(mem, gpa, n), &v, n);
}

/* A code/data segment descriptor (SDM vol. 3A, 3.4.5); flags = G|DB|L|AVL. */
static uint64_t desc(uint32_t base, uint32_t limit, unsigned type, unsigned dpl, unsigned flags)
{
	return (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) | ((uint64_t)(type & 0x1f) << 40) |
	       ((uint64_t)dpl << 45) | (1ull << 47) | ((uint64_t)((limit >> 16) & 0xf) << 48) |
	       ((uint64_t)flags << 52) | ((uint64_t)(base >> 24) << 56);
}

/* A gate (SDM vol. 3A, 5.8.3 and 6.14.1); the high qword for 64-bit ones. */
static void gate(struct guest_memory *mem, uint64_t at, uint64_t off, uint16_t sel, unsigned type, unsigned dpl,
		 bool wide)
{
	uint64_t lo = (off & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)type << 40) | ((uint64_t)dpl << 45) |
		      (1ull << 47) | ((off >> 16 & 0xffff) << 48);
	put(mem, at, lo, 8);
	if (wide)
		put(mem, at + 8, off >> 32, 8);
}

static struct x86_segment seg_of(uint64_t d, uint16_t sel)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
	if (d & (1ull << 55))
		limit = limit << 12 | 0xfff;
	return (struct x86_segment){
		.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24), .limit = limit, .selector = sel,
		.type = (d >> 40) & 15, .s = (d >> 44) & 1, .dpl = (d >> 45) & 3, .present = (d >> 47) & 1,
		.avl = (d >> 52) & 1, .l = (d >> 53) & 1, .db = (d >> 54) & 1, .g = (d >> 55) & 1,
	};
}

static struct x86_segment real_seg(uint16_t sel, bool code, unsigned dpl)
{
	return (struct x86_segment){ .base = (uint64_t)sel << 4, .limit = 0xffff, .selector = sel,
				     .type = code ? 11 : 3, .s = 1, .dpl = (uint8_t)dpl, .present = 1 };
}

static uint64_t gdt_entry(unsigned sel)
{
	switch (sel & ~7u) {
	case SEL_CODE32: return desc(0, 0xfffff, 0x1b, 0, 0xc);
	case SEL_CODE64: return desc(0, 0xfffff, 0x1b, 0, 0xa);
	case SEL_DATA: return desc(0, 0xfffff, 0x13, 0, 0xc);
	case SEL_UCODE32 & ~7u: return desc(0, 0xfffff, 0x1b, 3, 0xc);
	case SEL_UDATA & ~7u: return desc(0, 0xfffff, 0x13, 3, 0xc);
	case SEL_UCODE64 & ~7u: return desc(0, 0xfffff, 0x1b, 3, 0xa);
	case SEL_CODE16: return desc(CODE, 0xffff, 0x1b, 0, 0);
	case SEL_DATA16: return desc(0x10000, 0xffff, 0x13, 0, 0);
	case SEL_CONFORMING: return desc(0, 0xfffff, 0x1f, 0, 0xc);
	default: return 0;
	}
}

/* Descriptor tables, TSS, IVT/IDT and every paging structure; event
 * handlers enter the fuzzed code at offsets that depend on the vector. */
static void lay_out(struct guest_memory *mem, bool long_mode, uint32_t code_len)
{
	for (unsigned sel = 8; sel < 0x80; sel += 8)
		put(mem, GDT + sel, gdt_entry(sel), 8);
	/* TSS and LDT system descriptors; 16 bytes in IA-32e mode (SDM vol. 3A, 7.2.3). */
	put(mem, GDT + SEL_TSS, desc(TSS, 0x2068, 0xb, 0, 0), 8);
	put(mem, GDT + SEL_LDT, desc(LDT, 0xff, 0x2, 0, 0), 8);
	put(mem, LDT + 0, desc(0, 0xfffff, 0x1b, 3, 0xc), 8);
	put(mem, LDT + 8, desc(0, 0xfffff, 0x13, 3, 0xc), 8);

	uint32_t span = code_len ? code_len : 1;
	for (unsigned v = 0; v < 256; v++) {
		uint32_t off = (v * 8u) % span;
		put(mem, IVT + v * 4, (uint64_t)(CODE >> 4) << 16 | off, 4);
		if (long_mode)
			gate(mem, IDT + v * 16, CODE + off, SEL_CODE64, 0xe, 3, true);
		else
			gate(mem, IDT + v * 8, CODE + off, SEL_CODE32, 0xe, 3, false);
	}
	gate(mem, GDT + SEL_GATE - 3, CODE, long_mode ? SEL_CODE64 : SEL_CODE32, 0xc, 3, long_mode);

	if (long_mode) {
		put(mem, TSS + 4, STACK_TOP, 8);              /* RSP0 */
		for (unsigned i = 0; i < 7; i++)
			put(mem, TSS + 0x24 + i * 8, IST_TOP - i * 0x100, 8);   /* IST1-7 */
		put(mem, TSS + 0x66, 0x68, 2);                /* I/O map base */
	} else {
		put(mem, TSS + 4, STACK_TOP, 4);              /* ESP0 */
		put(mem, TSS + 8, SEL_DATA, 2);               /* SS0 */
		put(mem, TSS + 0x66, 0x68, 2);
	}

	/* Identity maps, writable, user-accessible but for the system area
	 * (SDM vol. 3A, 4.3-4.5); the top entries alias the bottom ones for
	 * upper-half addresses. */
	put(mem, PML5, PML4 | 7, 8);
	put(mem, PML5 + 511 * 8, PML4 | 7, 8);
	put(mem, PML4, PDPT | 7, 8);
	put(mem, PML4 + 511 * 8, PDPT | 7, 8);
	for (unsigned i = 0; i < 4; i++)
		put(mem, PDPT + i * 8, PD | 7, 8);
	put(mem, PDPT + 511 * 8, PD | 7, 8);
	put(mem, PD, PT | 7, 8);
	for (uint64_t i = 1; i < 512; i++)
		put(mem, PD + i * 8, i << 21 | 0x87, 8);
	for (uint64_t i = 0; i < 512; i++)
		put(mem, PT + i * 8, i << 12 | (i < SYS_END >> 12 ? 3 : 7), 8);
	for (unsigned i = 0; i < 4; i++)
		put(mem, PAE_PDPT + i * 8, PD | 1, 8);   /* PAE PDPTEs: P only */
	put(mem, PD32, PT32 | 7, 4);
	for (uint64_t i = 1; i < 1024; i++)
		put(mem, PD32 + i * 4, i << 22 | 0x87, 4);   /* 4 MiB pages with CR4.PSE, else a PT address */
	for (uint64_t i = 0; i < 1024; i++)
		put(mem, PT32 + i * 4, i << 12 | (i < SYS_END >> 12 ? 3 : 7), 4);
}

static void set_state(struct machine *m, const uint8_t *in)
{
	const struct accel_ops *a = &accel_emu;
	struct vcpu *vcpu = &m->vcpu;
	unsigned mode = in[0] & 7;
	bool cpl3 = (in[0] & 8) && mode != M_REAL && mode != M_PROT16;
	bool long_mode = mode == M_LONG64 || mode == M_COMPAT;
	struct x86_sregs s = { 0 };

	s.cr0 = X86_CR0_ET | X86_CR0_NE;
	static const uint64_t cr0_bits[] = { X86_CR0_MP, X86_CR0_EM, X86_CR0_TS, X86_CR0_AM };
	static const uint64_t cr4_bits[] = { X86_CR4_OSFXSR, X86_CR4_OSXMMEXCPT, X86_CR4_FSGSBASE, X86_CR4_DE };
	for (unsigned i = 0; i < 4; i++) {
		if (in[2] & (1u << i))
			s.cr0 |= cr0_bits[i];
		if (in[2] & (16u << i))
			s.cr4 |= cr4_bits[i];
	}
	if (in[1] & 1)
		s.cr0 |= X86_CR0_WP;
	static const uint64_t cr4_more[] = { 0, X86_CR4_PGE, X86_CR4_SMEP, X86_CR4_SMAP, 0, X86_CR4_OSXSAVE,
					     X86_CR4_UMIP, X86_CR4_TSD };
	for (unsigned i = 0; i < 8; i++)
		if (in[1] & (1u << i))
			s.cr4 |= cr4_more[i];
	if (in[1] & 16)
		s.efer |= X86_EFER_NXE;
	if (in[0] & 16)
		s.cr4 |= X86_CR4_PSE;
	if (in[0] & 128)
		s.cr4 |= X86_CR4_VME | X86_CR4_PVI;
	s.efer |= X86_EFER_SCE;

	if (mode != M_REAL)
		s.cr0 |= X86_CR0_PE;
	if (mode == M_PAGED32) {
		s.cr0 |= X86_CR0_PG;
		s.cr3 = PD32;
	} else if (mode == M_PAE) {
		s.cr0 |= X86_CR0_PG;
		s.cr4 |= X86_CR4_PAE;
		s.cr3 = PAE_PDPT;
	} else if (long_mode) {
		s.cr0 |= X86_CR0_PG;
		s.cr4 |= X86_CR4_PAE;
		s.efer |= X86_EFER_LME | X86_EFER_LMA;
		s.cr3 = PML4;
		if (in[0] & 32) {
			s.cr4 |= X86_CR4_LA57;
			s.cr3 = PML5;
		}
		if (in[0] & 64) {
			s.cr4 |= X86_CR4_PCIDE;
			s.cr3 |= in[4] & 0xf;   /* a PCID */
		}
	}
	s.gdt = (struct x86_dtable){ GDT, 0xff };
	s.idt = (struct x86_dtable){ IDT, long_mode ? 0xfff : 0x7ff };
	if (mode == M_REAL)
		s.idt = (struct x86_dtable){ IVT, 0x3ff };
	s.tr = seg_of(desc(TSS, 0x2068, 0xb, 0, 0), SEL_TSS);
	s.ldt = seg_of(desc(LDT, 0xff, 0x2, 0, 0), SEL_LDT);

	uint16_t cs, ds;
	switch (mode) {
	case M_REAL:
	case M_V86:
		for (int i = 0; i < SEG_COUNT; i++)
			s.seg[i] = real_seg(0, false, mode == M_V86 ? 3 : 0);
		s.seg[SEG_CS] = real_seg(CODE >> 4, true, mode == M_V86 ? 3 : 0);
		s.seg[SEG_SS] = real_seg(0x1000, false, mode == M_V86 ? 3 : 0);
		break;
	case M_PROT16:
		for (int i = 0; i < SEG_COUNT; i++)
			s.seg[i] = seg_of(gdt_entry(SEL_DATA16), SEL_DATA16);
		s.seg[SEG_CS] = seg_of(gdt_entry(SEL_CODE16), SEL_CODE16);
		break;
	default:
		cs = mode == M_LONG64 ? (cpl3 ? SEL_UCODE64 : SEL_CODE64) : (cpl3 ? SEL_UCODE32 : SEL_CODE32);
		ds = cpl3 ? SEL_UDATA : SEL_DATA;
		for (int i = 0; i < SEG_COUNT; i++)
			s.seg[i] = seg_of(gdt_entry(ds), ds);
		s.seg[SEG_CS] = seg_of(gdt_entry(cs), cs);
		break;
	}
	a->set_sregs(vcpu, &s);

	struct x86_regs r = { 0 };
	bool sixteen = mode == M_REAL || mode == M_V86 || mode == M_PROT16;
	r.rip = sixteen ? 0 : CODE;
	r.gpr[RSP] = sixteen ? STACK_TOP & 0xffff : STACK_TOP;
	uint16_t hi = (uint16_t)rd(in, 6, 2);
	for (unsigned i = 0; i < 16; i++) {
		r.gpr[i] ^= rd(in, 12 + i * 4, 4);
		if (hi & (1u << i))
			r.gpr[i] |= ~0ull << 32;
	}
	r.rflags = X86_FLAG_FIXED;
	static const uint64_t fl[] = { X86_FLAG_TF, X86_FLAG_IF, X86_FLAG_DF, X86_FLAG_AC, X86_FLAG_NT, 1u << 12,
				       1u << 13, X86_FLAG_RF };
	for (unsigned i = 0; i < 8; i++)
		if (in[3] & (1u << i))
			r.rflags |= fl[i];
	static const uint64_t ar[] = { X86_FLAG_CF, X86_FLAG_PF, X86_FLAG_AF, X86_FLAG_ZF, X86_FLAG_SF, X86_FLAG_OF };
	for (unsigned i = 0; i < 6; i++)
		if (in[4] & (1u << i))
			r.rflags |= ar[i];
	if (mode == M_V86)
		r.rflags |= X86_FLAG_VM;
	a->set_regs(vcpu, &r);

	struct x86_msr_entry msrs[] = {
		{ MSR_STAR, (uint64_t)(SEL_UCODE32 & ~3u) << 48 | (uint64_t)SEL_CODE64 << 32 | CODE },
		{ MSR_LSTAR, CODE }, { MSR_CSTAR, CODE }, { MSR_SFMASK, X86_FLAG_TF | X86_FLAG_IF | X86_FLAG_DF | X86_FLAG_AC },
		{ MSR_IA32_SYSENTER_CS, SEL_CODE64 }, { MSR_IA32_SYSENTER_ESP, STACK_TOP },
		{ MSR_IA32_SYSENTER_EIP, CODE }, { MSR_KERNEL_GS_BASE, STACK_TOP },
	};
	a->set_msrs(vcpu, msrs, sizeof(msrs) / sizeof(msrs[0]));

	/* The debug registers have no accessor in the engine interface. */
	struct emu_cpu *cpu = vcpu->accel;
	for (unsigned i = 0; i < 4; i++)
		cpu->dr[i] = CODE + rd(in, 76 + i * 4, 4);
	/* DR7 bit 10 reads as 1, bits 11, 12, 14 and 15 as 0 (SDM vol. 3B, 17.2.4). */
	cpu->dr[7] = (rd(in, 8, 4) & ~0xd800ull) | 0x400;
	emu_debug_dr7_changed(cpu);   /* data breakpoints: every access takes the slow path */
}

/* One machine for the whole run (creating one per input costs more than
 * running it: fresh mappings fault page by page); one per code generation
 * setting (vm.jit_hot, docs/architecture.md "Code generation"). */
static struct machine *machine_get(unsigned jit_hot)
{
	static struct machine *ms[2];
	struct machine **slot = &ms[jit_hot != 0];
	if (*slot)
		return *slot;
	struct machine *m = *slot = calloc(1, sizeof(*m));
	if (!m || gmem_init(&m->vm.mem, RAM) < 0)
		abort();
	uint8_t *rom;
	if (gmem_add_rom(&m->vm.mem, ROM, 0x1000, &rom) < 0)
		abort();
	memset(rom, 0xf4, 0x1000);   /* HLT */
	m->vm.accel = &accel_emu;
	m->vm.jit_hot = jit_hot;
	m->vm.n_vcpus = 1;
	m->vm.vcpus[0] = &m->vcpu;
	m->vcpu.vm = &m->vm;
	if (accel_emu.vm_init(&m->vm) < 0 || accel_emu.vcpu_init(&m->vcpu) < 0)
		abort();
	return m;
}

/* Back to the state of a new machine, so that an input behaves the same
 * whatever ran before it: zeroed RAM, no decoded blocks, no watched pages,
 * the vCPU at power-on with an empty TLB. */
static void machine_reset(struct machine *m)
{
	struct emu_vm *evm = m->vm.accel_state;
	struct emu_cpu *cpu = m->vcpu.accel;
	memset(gmem_ptr(&m->vm.mem, 0, RAM), 0, RAM);
	memset((void *)evm->page_gen, 0, evm->n_pages * sizeof(*evm->page_gen));
	memset((void *)evm->code_page, 0, evm->n_pages);
	if (evm->pt_page) {
		memset((void *)evm->pt_page, 0, evm->n_pages);
		memset((void *)evm->pt_owner, 0, evm->n_pages * sizeof(*evm->pt_owner));
		atomic_store(&evm->pt_tracked, 0);
		atomic_store(&evm->pt_deferring, false);
	}
	emu_block_cache_flush(evm);
	emu_cpu_reset(cpu, true);
	cpu->tpr = 0;   /* CR8 without a LAPIC: not part of INIT state */
	cpu->icount = 0;
}

/* Runs the input on m; exit says how the run ended. */
static void run_input(struct machine *m, const uint8_t *data, size_t size, struct vcpu_exit *exit_out)
{
	uint8_t hdr[HDR] = { 0 };
	memcpy(hdr, data, size < HDR ? size : HDR);
	size_t pos = size < HDR ? size : HDR;

	machine_reset(m);
	struct guest_memory *mem = &m->vm.mem;
	unsigned mode = hdr[0] & 7;
	unsigned patches = hdr[5] % (FUZZ_MAX_PATCHES + 1);
	size_t code_at = pos + (size_t)patches * 10;
	uint32_t code_len = code_at < size ? (uint32_t)(size - code_at < CODE_MAX ? size - code_at : CODE_MAX) : 0;

	lay_out(mem, mode == M_LONG64 || mode == M_COMPAT, code_len);
	for (unsigned i = 0; i < patches && pos + 10 <= size; i++, pos += 10)
		put(mem, (rd(data, pos, 2) * 8) % SYS_END, rd(data, pos + 2, 8), 8);
	if (code_len)
		memcpy(gmem_ptr(mem, CODE, code_len), data + code_at, code_len);
	set_state(m, hdr);

	struct emu_cpu *cpu = m->vcpu.accel;
	cpu->icount_stop = cpu->icount + BUDGET;
	struct vcpu_exit exit = { 0 };
	if (accel_emu.vcpu_run(&m->vcpu, &exit) != 0)
		abort();
	*exit_out = exit;
	switch (exit.reason) {
	case VCPU_EXIT_KICK:
	case VCPU_EXIT_HLT:
		break;
	case VCPU_EXIT_SHUTDOWN:
	case VCPU_EXIT_INTERNAL_ERROR:
		/* A clean stop says why. */
		if (!exit.error.message[0] || !memchr(exit.error.message, 0, sizeof(exit.error.message)))
			abort();
		break;
	default:
		fprintf(stderr, "fuzz_emu: vcpu_run returned exit reason %d\n", exit.reason);
		abort();
	}
	struct x86_regs r;
	struct x86_sregs s;
	if (accel_emu.get_regs(&m->vcpu, &r) < 0 || accel_emu.get_sregs(&m->vcpu, &s) < 0)
		abort();
}

#ifndef FUZZ_EMU_COMPARE_JIT
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_threshold = LOG_ERROR;
	struct vcpu_exit exit;
	run_input(machine_get(0), data, size, &exit);
	return 0;
}
#endif
