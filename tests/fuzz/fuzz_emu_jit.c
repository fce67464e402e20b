/* libFuzzer target: code generation against the interpreter
 * (docs/architecture.md "Code generation").  Each input of fuzz_emu (its
 * layout is described there) runs on two machines, one interpreting and
 * one translating every block at its first run; they must end alike:
 * the same exit, registers, RFLAGS, segment and control registers,
 * retired-instruction count and RAM.  An input whose interpreted runs
 * differ from each other (RDRAND) proves nothing and is skipped; RDTSC
 * counts instructions in this machine (emu_machine.c). */
#define FUZZ_EMU_COMPARE_JIT
#include "fuzz_emu.c"

struct outcome {
	struct vcpu_exit exit;
	struct x86_regs regs;
	struct x86_sregs sregs;
	uint64_t icount;
	uint32_t crc;
};

static uint32_t ram_hash(struct machine *m)
{
	const uint8_t *p = gmem_ptr(&m->vm.mem, 0, RAM);
	uint32_t h = 2166136261u;   /* FNV-1a */
	for (size_t i = 0; i < RAM; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void outcome_of(struct machine *m, const uint8_t *data, size_t size, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	run_input(m, data, size, &o->exit);
	accel_emu.get_regs(&m->vcpu, &o->regs);
	accel_emu.get_sregs(&m->vcpu, &o->sregs);
	o->icount = ((struct emu_cpu *)m->vcpu.accel)->icount;
	o->crc = ram_hash(m);
}

static bool same(const struct outcome *a, const struct outcome *b)
{
	if (a->exit.reason != b->exit.reason || a->icount != b->icount || a->crc != b->crc)
		return false;
	if (a->exit.reason == VCPU_EXIT_INTERNAL_ERROR &&
	    strcmp(a->exit.error.message, b->exit.error.message))
		return false;
	if (memcmp(a->regs.gpr, b->regs.gpr, sizeof(a->regs.gpr)) || a->regs.rip != b->regs.rip ||
	    a->regs.rflags != b->regs.rflags)
		return false;
	for (unsigned i = 0; i < SEG_COUNT; i++)
		if (memcmp(&a->sregs.seg[i], &b->sregs.seg[i], sizeof(a->sregs.seg[i])))
			return false;
	return a->sregs.cr0 == b->sregs.cr0 && a->sregs.cr2 == b->sregs.cr2 && a->sregs.cr3 == b->sregs.cr3 &&
	       a->sregs.cr4 == b->sregs.cr4 && a->sregs.efer == b->sregs.efer;
}

static void report(const char *what, const struct outcome *o)
{
	fprintf(stderr, "%s: exit %d icount %llu rip %#llx rflags %#llx crc %08x\n", what, o->exit.reason,
		(unsigned long long)o->icount, (unsigned long long)o->regs.rip, (unsigned long long)o->regs.rflags,
		o->crc);
	for (unsigned i = 0; i < 16; i++)
		fprintf(stderr, "  r%u=%#llx", i, (unsigned long long)o->regs.gpr[i]);
	fprintf(stderr, "\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_threshold = LOG_ERROR;
	static struct outcome interp, jit, again;
	outcome_of(machine_get(0), data, size, &interp);
	outcome_of(machine_get(1), data, size, &jit);
	if (same(&interp, &jit))
		return 0;
	outcome_of(machine_get(0), data, size, &again);
	if (!same(&interp, &again))
		return 0;   /* not deterministic: nothing to compare */
	report("interpreter", &interp);
	report("translated ", &jit);
	abort();
}
