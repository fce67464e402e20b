/* Trap lookahead benchmark (docs/compounding.md "Lookahead"): the guest
 * of tests/unit/hw/guests/lookahead_guest.asm built to write 1 MiB
 * through the 8250 polling loop (in LSR until THRE, out THR), run the way
 * the KVM engine runs it (tests/unit/hw/lookahead_sim.h: the monitor gets
 * control after every trapping instruction) on the emu engine, with and
 * without the lookahead runner.  Prints, per run: exits (trapping
 * instructions the guest ran itself, each an exit on KVM), the device
 * accesses the runner made instead, exits per byte written, and the
 * seconds of CPU time of the run.  The times are the emu engine's: they
 * say what the runner costs, not what KVM's exits would have. */
#include "lookahead_sim.h"
#include "uart_mib.h"

#include <time.h>

static double cpu_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int main(void)
{
	for (int on = 0; on <= 1; on++) {
		struct la_machine *m = calloc(1, sizeof(*m));
		if (!m || la_machine_init(m, uart_mib, uart_mib_len, 4ull << 20) < 0) {
			fprintf(stderr, "uart-lookahead: %s\n", err_msg());
			return 1;
		}
		double t0 = cpu_seconds();
		int rc = la_machine_run(m, on, 1ull << 40);
		double t = cpu_seconds() - t0;
		size_t n;
		char *out = la_machine_output(m, &n);
		if (rc < 0 || m->vm.debug_exit_value != 0x42 || n < (1u << 20)) {
			fprintf(stderr, "uart-lookahead: the guest did not finish (%zu bytes written)\n", n);
			return 1;
		}
		printf("lookahead=%s bytes=%zu exits=%llu saved=%llu runs=%llu insns=%llu exits_per_byte=%.4f "
		       "cpu_seconds=%.3f\n", on ? "on" : "off", n, (unsigned long long)m->exits,
		       (unsigned long long)m->saved, (unsigned long long)m->runs, (unsigned long long)m->insns,
		       (double)m->exits / (double)n, t);
		free(out);
		la_machine_fini(m);
		free(m);
	}
	return 0;
}
