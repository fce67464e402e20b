/* bench-snapshot: save and restore time and size of a VM's snapshot for a
 * given RAM size and share of touched pages, through the real snapshot
 * code (src/vmm/snapshot.c) with a minimal engine holding CPU state in memory.
 * Prints one JSON object; bench/snapshot/run drives it.
 *
 * usage: bench-snapshot --memory MiB --fill PERCENT --dir DIR [--cpus N] */
#include "vmm/snapshot.h"
#include "util/error.h"
#include "machine/machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cpu_state {
	struct x86_regs regs;
	struct x86_sregs sregs;
	struct x86_fpu fpu;
};

static int get_regs(struct vcpu *v, struct x86_regs *r) { *r = ((struct cpu_state *)v->accel)->regs; return 0; }
static int set_regs(struct vcpu *v, const struct x86_regs *r) { ((struct cpu_state *)v->accel)->regs = *r; return 0; }
static int get_sregs(struct vcpu *v, struct x86_sregs *r) { *r = ((struct cpu_state *)v->accel)->sregs; return 0; }
static int set_sregs(struct vcpu *v, const struct x86_sregs *r) { ((struct cpu_state *)v->accel)->sregs = *r; return 0; }
static int get_fpu(struct vcpu *v, struct x86_fpu *f) { *f = ((struct cpu_state *)v->accel)->fpu; return 0; }
static int set_fpu(struct vcpu *v, const struct x86_fpu *f) { ((struct cpu_state *)v->accel)->fpu = *f; return 0; }

static const struct accel_ops bench_accel = {
	.name = "emu", .get_regs = get_regs, .set_regs = set_regs, .get_sregs = get_sregs, .set_sregs = set_sregs,
	.get_fpu = get_fpu, .set_fpu = set_fpu,
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Touches `fill` percent of the pages, spread evenly, with data that does
 * not compress (what a guest that has run a while looks like). */
static void fill_memory(struct guest_memory *mem, unsigned fill)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (unsigned r = 0; r < mem->n_regions; r++) {
		uint64_t pages = mem->regions[r].size / 4096;
		for (uint64_t p = 0; p < pages; p++) {
			if (p % 100 >= fill)
				continue;
			uint64_t *q = (uint64_t *)(mem->regions[r].host + p * 4096);
			for (unsigned i = 0; i < 512; i++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				q[i] = x;
			}
		}
	}
}

static uint64_t touch_all(struct guest_memory *mem)
{
	uint64_t sum = 0;
	for (unsigned r = 0; r < mem->n_regions; r++)
		for (uint64_t off = 0; off < mem->regions[r].size; off += 4096)
			sum += mem->regions[r].host[off];
	return sum;
}

int main(int argc, char **argv)
{
	uint64_t mib = 512;
	unsigned fill = 50, cpus = 1;
	const char *dir = "/tmp";
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--memory"))
			mib = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--fill"))
			fill = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--cpus"))
			cpus = (unsigned)atoi(argv[i + 1]);
	}
	if (fill > 100 || cpus < 1 || cpus > 8 || mib < 16) {
		fprintf(stderr, "usage: bench-snapshot --memory MiB --fill PERCENT --dir DIR [--cpus 1-8]\n");
		return 2;
	}
	static struct vm vm;
	static struct vcpu vcpus[8];
	static struct cpu_state cs[8];
	vm.accel = &bench_accel;
	pthread_mutex_init(&vm.dev_lock, NULL);
	if (gmem_init(&vm.mem, mib << 20) < 0) {
		fprintf(stderr, "bench-snapshot: %s\n", err_msg());
		return 1;
	}
	vm.n_vcpus = cpus;
	for (unsigned i = 0; i < cpus; i++) {
		vcpus[i] = (struct vcpu){ .vm = &vm, .id = i, .accel = &cs[i] };
		pthread_mutex_init(&vcpus[i].lock, NULL);
		vm.vcpus[i] = &vcpus[i];
		cs[i].regs.rip = 0x100000 + i;
	}
	fill_memory(&vm.mem, fill);
	char path[4096];
	snprintf(path, sizeof(path), "%s/bench-%d.snap", dir, getpid());

	struct snapshot_stats st;
	double t0 = now();
	if (snapshot_save(&vm, path, &st) < 0) {
		fprintf(stderr, "bench-snapshot: %s\n", err_msg());
		return 1;
	}
	double save_s = now() - t0;

	struct snapshot_restore_opts modes[] = {
		{ .map_memory = true, .verify_memory = false },
		{ .map_memory = true, .verify_memory = true },
		{ .map_memory = false, .verify_memory = true },
	};
	double restore_s[3], touch_s = 0;
	for (int m = 0; m < 3; m++) {
		/* Fresh anonymous RAM each time, as in a VM built for --restore. */
		gmem_destroy(&vm.mem);
		if (gmem_init(&vm.mem, mib << 20) < 0) {
			fprintf(stderr, "bench-snapshot: %s\n", err_msg());
			unlink(path);
			return 1;
		}
		t0 = now();
		if (snapshot_restore(&vm, path, &modes[m]) < 0) {
			fprintf(stderr, "bench-snapshot: %s\n", err_msg());
			unlink(path);
			return 1;
		}
		restore_s[m] = now() - t0;
		if (m == 0) {
			/* What the lazy mapping defers: the first touch of every page. */
			t0 = now();
			volatile uint64_t sink = touch_all(&vm.mem);
			(void)sink;
			touch_s = now() - t0;
		}
	}
	unlink(path);
	printf("{\"memory_mib\": %llu, \"fill_percent\": %u, \"save_s\": %.4f, \"file_bytes\": %llu, "
	       "\"disk_bytes\": %llu, \"zero_pages\": %llu, \"restore_map_s\": %.4f, \"touch_after_map_s\": %.4f, "
	       "\"restore_map_verify_s\": %.4f, \"restore_read_verify_s\": %.4f}\n",
	       (unsigned long long)mib, fill, save_s, (unsigned long long)st.file_bytes,
	       (unsigned long long)st.disk_bytes, (unsigned long long)st.zero_pages, restore_s[0], touch_s, restore_s[1],
	       restore_s[2]);
	gmem_destroy(&vm.mem);
	return 0;
}
