/* The trap lookahead (src/cpu/lookahead.h, docs/compounding.md
 * "Lookahead") without KVM: bare-metal guests run on the emu engine as
 * the KVM engine runs them (the monitor gets control after each trapping
 * instruction, lookahead_sim.h), once with the lookahead runner driving
 * the stretches of device accesses and once stepping alone; the COM1
 * output, the registers, the memory and the interrupt boundaries must be
 * the same, with far fewer exits.  Then the runner's stops one by one. */
#include "lookahead_sim.h"

#include "acpi_off.h"
#include "lookahead_guest.h"
#include "self_nmi.h"
#include "timer_irq.h"

#include <criterion/criterion.h>

#define RESULTS 0x7000

static struct la_machine *run_guest(bool lookahead)
{
	struct la_machine *m = calloc(1, sizeof(*m));
	cr_assert(m);
	cr_assert_eq(la_machine_init(m, lookahead_guest, lookahead_guest_len, 2ull << 20), 0, "%s", err_msg());
	cr_assert_eq(la_machine_run(m, lookahead, 50000000), 0, "the guest did not finish (%s)", err_msg());
	cr_assert_eq(atomic_load(&m->vm.stop_reason), VM_STOP_DEBUG_EXIT);
	cr_assert_eq(m->vm.debug_exit_value, 0x42);
	return m;
}

static uint32_t r32(struct la_machine *m, uint64_t gpa)
{
	uint32_t v;
	memcpy(&v, gmem_ptr(&m->vm.mem, gpa, 4), 4);
	return v;
}

/* What a run left: COM1's output, the registers, the first 64 KiB of
 * RAM (all the guest touches), the exits and what the lookahead saved.
 * One machine at a time: the board registers its devices by name. */
struct outcome {
	char *out;
	size_t n;
	struct x86_regs regs;
	uint8_t *ram;
	uint64_t exits, saved, accesses;
};

static void run_and_keep(bool lookahead, struct outcome *o)
{
	struct la_machine *m = run_guest(lookahead);
	o->out = la_machine_output(m, &o->n);
	accel_emu.get_regs(&m->cpu, &o->regs);
	o->ram = malloc(0x10000);
	memcpy(o->ram, gmem_ptr(&m->vm.mem, 0, 0x10000), 0x10000);
	o->exits = m->exits;
	o->saved = m->saved;
	o->accesses = la_traps(&m->cpu);   /* the vCPU's counters: the guest's own device accesses */
	la_machine_fini(m);
	free(m);
}

static uint32_t ram32(const struct outcome *o, uint32_t off)
{
	uint32_t v;
	memcpy(&v, o->ram + off, 4);
	return v;
}

Test(lookahead, same_output_registers_and_memory_with_far_fewer_exits)
{
	struct outcome plain, la;
	run_and_keep(false, &plain);
	run_and_keep(true, &la);
	cr_assert_eq(plain.n, 2000 + 1 + 300, "COM1 output of the plain run: %zu bytes", plain.n);
	cr_assert_eq(la.n, plain.n);
	cr_assert(memcmp(plain.out, la.out, plain.n) == 0, "the same bytes on COM1");
	cr_assert(memcmp(plain.regs.gpr, la.regs.gpr, sizeof(la.regs.gpr)) == 0, "general registers");
	cr_assert_eq(plain.regs.rip, la.regs.rip);
	cr_assert_eq(plain.regs.rflags, la.regs.rflags);
	/* Everything the guest wrote: its results, its stack, the IDT. */
	cr_assert(memcmp(plain.ram, la.ram, 0x10000) == 0, "guest memory");
	/* What each stretch left (lookahead_guest.asm). */
	cr_assert_eq(ram32(&la, RESULTS), 0, "the poll for LSR.DR timed out");
	cr_assert_eq(ram32(&la, RESULTS + 8), 2999, "LSR.THRE was seen at once");
	cr_assert_eq(ram32(&la, RESULTS + 16), RESULTS + 0x100 + 128, "REP INSW ran 64 times");
	cr_assert_eq(ram32(&la, RESULTS + 20), RESULTS + 0x200 + 100, "REP INSB ran 100 times");
	cr_assert_eq(la.ram[RESULTS + 0x200 + 99], 0x5a, "the scratch register read back");
	/* The lookahead took over: at least five times fewer exits (the
	 * issue's "must"), and the accesses it ran make up the difference. */
	cr_assert_gt(la.saved, 0);
	cr_assert_eq(la.accesses + la.saved, plain.accesses, "every device access made once: %llu + %llu vs %llu",
		     (unsigned long long)la.accesses, (unsigned long long)la.saved, (unsigned long long)plain.accesses);
	cr_assert_eq(plain.saved, 0);
	cr_assert_leq(la.exits * 5, plain.exits, "exits: %llu with the lookahead, %llu without",
		      (unsigned long long)la.exits, (unsigned long long)plain.exits);
	free(plain.out);
	free(la.out);
	free(plain.ram);
	free(la.ram);
}

Test(lookahead, interrupt_during_a_compounded_run_comes_at_the_same_boundary)
{
	for (int on = 0; on <= 1; on++) {
		struct la_machine *m = run_guest(on);
		cr_assert_eq(r32(m, RESULTS + 0x48), 1, "one THR-empty interrupt (lookahead %s)", on ? "on" : "off");
		cr_assert_eq(r32(m, RESULTS + 0x40), r32(m, RESULTS + 0x4c),
			     "interrupted at %#x, the instruction after the OUT to IER is %#x (lookahead %s)",
			     r32(m, RESULTS + 0x40), r32(m, RESULTS + 0x4c), on ? "on" : "off");
		cr_assert_eq(r32(m, RESULTS + 0x44), 100, "in iteration 100 (lookahead %s)", on ? "on" : "off");
		la_machine_fini(m);
		free(m);
	}
}

/* The runner alone, from real mode at 0x2000 over code put there. */
struct stop_case {
	struct la_machine m;
	struct x86_regs r;
	struct x86_sregs s;
	struct lookahead_result res;
};

static void run_code(struct stop_case *c, const uint8_t *code, unsigned len, uint64_t rflags)
{
	cr_assert_eq(la_machine_init(&c->m, lookahead_guest, lookahead_guest_len, 2ull << 20), 0, "%s", err_msg());
	memcpy(gmem_ptr(&c->m.vm.mem, 0x2000, len), code, len);
	accel_emu.get_regs(&c->m.cpu, &c->r);
	accel_emu.get_sregs(&c->m.cpu, &c->s);
	c->r.rip = 0x2000;
	c->r.rflags = rflags;
	c->r.gpr[RDX] = 0x3ff;   /* the UART's scratch register */
	cr_assert_eq(lookahead_run(c->m.la, &c->r, &c->s, 0, NULL, &c->res), 0);
}

Test(lookahead, stops_before_what_it_must_leave_to_the_engine)
{
	static const struct {
		uint8_t code[8];
		unsigned len;
		const char *why;
	} cases[] = {
		{ { 0xee, 0xfb }, 2, "sti" },          /* out dx, al; sti: an interrupt window */
		{ { 0xee, 0xfa }, 2, "cli" },
		{ { 0xee, 0x9d }, 2, "popf" },
		{ { 0xee, 0xf4 }, 2, "hlt" },
		{ { 0xee, 0x0f, 0xa2 }, 3, "cpuid" },
		{ { 0xee, 0x0f, 0x31 }, 3, "rdtsc" },
		{ { 0xee, 0x8e, 0xd8 }, 3, "mov" },    /* mov ds, ax: a segment load */
		{ { 0xee, 0x0f, 0x22, 0xc0 }, 4, "mov" },   /* mov cr0, eax: a mode change */
		{ { 0xee, 0xcd, 0x10 }, 3, "int" },
		{ { 0xee, 0xf0, 0x00, 0x07 }, 4, "add" },   /* lock add [bx], al */
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stop_case *c = calloc(1, sizeof(*c));
		run_code(c, cases[i].code, cases[i].len, X86_FLAG_FIXED);
		cr_assert_eq(c->res.stop, LOOKAHEAD_STOP_INSN, "case %u: stop %s", i, lookahead_stop_name(c->res.stop));
		cr_assert_eq(c->res.insns, 1, "case %u: the OUT ran, nothing after it", i);
		cr_assert_eq(c->res.traps, 1, "case %u", i);
		cr_assert_eq(c->r.rip, 0x2001, "case %u: stopped before %s", i, cases[i].why);
		cr_assert_str_eq(c->res.why, cases[i].why, "case %u", i);
		la_machine_fini(&c->m);
		free(c);
	}
}

Test(lookahead, stops_at_a_fault_and_leaves_it_to_the_engine)
{
	/* out dx, al; out dx, al; mov ax, [0xffff]: a word across the real-mode
	 * segment limit raises #GP. */
	static const uint8_t code[] = { 0xee, 0xee, 0xa1, 0xff, 0xff };
	struct stop_case *c = calloc(1, sizeof(*c));
	run_code(c, code, sizeof(code), X86_FLAG_FIXED);
	cr_assert_eq(c->res.stop, LOOKAHEAD_STOP_FAULT, "stop %s", lookahead_stop_name(c->res.stop));
	cr_assert_eq(c->res.insns, 2);
	cr_assert_eq(c->r.rip, 0x2002, "RIP at the faulting instruction");
	la_machine_fini(&c->m);
	free(c);
}

Test(lookahead, a_pending_interrupt_stops_it_only_when_the_guest_can_take_it)
{
	static const uint8_t code[] = { 0xee, 0xee, 0xee, 0xf4 };
	struct stop_case *c = calloc(1, sizeof(*c));
	cr_assert_eq(la_machine_init(&c->m, lookahead_guest, lookahead_guest_len, 2ull << 20), 0);
	atomic_fetch_or(&c->m.cpu.events, VCPU_EVT_INTR);
	memcpy(gmem_ptr(&c->m.vm.mem, 0x2000, sizeof(code)), code, sizeof(code));
	accel_emu.get_regs(&c->m.cpu, &c->r);
	accel_emu.get_sregs(&c->m.cpu, &c->s);
	c->r.rip = 0x2000;
	c->r.gpr[RDX] = 0x3ff;
	c->r.rflags = X86_FLAG_FIXED | X86_FLAG_IF;
	cr_assert_eq(lookahead_run(c->m.la, &c->r, &c->s, 0, NULL, &c->res), 0);
	cr_assert_eq(c->res.stop, LOOKAHEAD_STOP_EVENT);
	cr_assert_eq(c->res.insns, 0, "IF = 1: delivered where the trap left the guest");
	c->r.rflags = X86_FLAG_FIXED;
	cr_assert_eq(lookahead_run(c->m.la, &c->r, &c->s, 0, NULL, &c->res), 0);
	cr_assert_eq(c->res.insns, 3, "IF = 0: the window stays shut, the OUTs run");
	cr_assert_eq(c->res.stop, LOOKAHEAD_STOP_INSN);
	la_machine_fini(&c->m);
	free(c);
}

Test(lookahead, single_stepping_or_breakpoints_run_nothing)
{
	static const uint8_t code[] = { 0xee, 0xee };
	struct stop_case *c = calloc(1, sizeof(*c));
	run_code(c, code, sizeof(code), X86_FLAG_FIXED | X86_FLAG_TF);
	cr_assert_eq(c->res.insns, 0);
	cr_assert_eq(c->r.rip, 0x2000);
	cr_assert_str_eq(c->res.why, "single-step");
	c->r.rflags = X86_FLAG_FIXED;
	cr_assert_eq(lookahead_run(c->m.la, &c->r, &c->s, 0x2, NULL, &c->res), 0);   /* DR7.G0 */
	cr_assert_eq(c->res.insns, 0);
	cr_assert_str_eq(c->res.why, "breakpoints");
	la_machine_fini(&c->m);
	free(c);
}

Test(lookahead, the_budget_bounds_a_poll_that_never_ends)
{
	/* in al, dx; jmp $-1: polls the scratch register for ever. */
	static const uint8_t code[] = { 0xec, 0xeb, 0xfd };
	struct stop_case *c = calloc(1, sizeof(*c));
	cr_assert_eq(la_machine_init(&c->m, lookahead_guest, lookahead_guest_len, 2ull << 20), 0);
	memcpy(gmem_ptr(&c->m.vm.mem, 0x2000, sizeof(code)), code, sizeof(code));
	accel_emu.get_regs(&c->m.cpu, &c->r);
	accel_emu.get_sregs(&c->m.cpu, &c->s);
	c->r.rip = 0x2000;
	c->r.gpr[RDX] = 0x3ff;
	c->r.rflags = X86_FLAG_FIXED;
	struct lookahead_budget b = { .max_insns = 1000, .max_idle = 64 };
	cr_assert_eq(lookahead_run(c->m.la, &c->r, &c->s, 0, &b, &c->res), 0);
	cr_assert_eq(c->res.stop, LOOKAHEAD_STOP_BUDGET);
	cr_assert_eq(c->res.insns, 1000);
	cr_assert_eq(c->res.traps, 500);
	cr_assert_eq(c->m.cpu.exit_counts[VCPU_EXIT_IO], 0, "the runner's accesses are not counted as exits");
	la_machine_fini(&c->m);
	free(c);
}

/* The other bare-metal guests of tests/unit/hw (interrupts from the PIT,
 * the local APIC timer and the HPET on the real clock, NMIs through the
 * ICR, ACPI S5), run as the KVM engine runs them with the lookahead after
 * each trap: they must end as they do without it.  (uart_echo needs a
 * typist: test_kvm_guest.c.) */
static void run_to_end(const unsigned char *image, unsigned len, bool lookahead, int *stop, int *value)
{
	struct la_machine *m = calloc(1, sizeof(*m));
	cr_assert(m);
	cr_assert_eq(la_machine_init(m, image, len, 2ull << 20), 0, "%s", err_msg());
	cr_assert_eq(la_machine_run(m, lookahead, 100000000), 0, "the guest did not finish (lookahead %s)",
		     lookahead ? "on" : "off");
	*stop = atomic_load(&m->vm.stop_reason);
	*value = m->vm.debug_exit_value;
	la_machine_fini(m);
	free(m);
}

Test(lookahead, the_other_hw_guests_end_the_same)
{
	static const struct {
		const char *name;
		const unsigned char *image;
		unsigned len;
		int stop, value;
	} guests[] = {
		{ "timer_irq", timer_irq, sizeof(timer_irq), VM_STOP_DEBUG_EXIT, 0x42 },
		{ "self_nmi", self_nmi, sizeof(self_nmi), VM_STOP_DEBUG_EXIT, 0x42 },
		{ "acpi_off", acpi_off, sizeof(acpi_off), VM_STOP_POWEROFF, 0 },
	};
	for (unsigned i = 0; i < sizeof(guests) / sizeof(guests[0]); i++) {
		for (int on = 0; on <= 1; on++) {
			int stop, value;
			run_to_end(guests[i].image, guests[i].len, on, &stop, &value);
			cr_assert_eq(stop, guests[i].stop, "%s (lookahead %s): stop %d", guests[i].name, on ? "on" : "off",
				     stop);
			if (stop == VM_STOP_DEBUG_EXIT)
				cr_assert_eq(value, guests[i].value, "%s (lookahead %s): exit value %#x", guests[i].name,
					     on ? "on" : "off", value);
		}
	}
}
