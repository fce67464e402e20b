/* A guest programming devices nonsensically must never crash the host:
 * random port, MMIO and MSR accesses with timers running in between
 * (meant for the ASan+UBSan build, where any stray access fails). */
#include "harness.h"

#include <stdint.h>

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: fixed seed, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static const uint16_t ports[] = { 0x20, 0x21, 0x40, 0x41, 0x42, 0x43, 0x60, 0x61, 0x64, 0x70, 0x71, 0x80,
				  0xa0, 0xa1, 0xf4, 0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff,
				  0x4d0, 0x4d1, 0x510, 0x511, 0x600, 0x602, 0x604, 0x608, 0x620, 0x628,
				  0xcf8, 0xcf9, 0xcfc, 0xcfe };

static const uint64_t mmio_bases[] = { GMEM_LAPIC_BASE, GMEM_IOAPIC_BASE, GMEM_HPET_BASE, GMEM_ECAM_BASE };
static const uint64_t mmio_spans[] = { 0x1000, 0x1000, 0x400, 0x100000 };

static unsigned rnd_size(void)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	return sizes[rnd() & 3];
}

static void fuzz_round(struct tvm *t, unsigned steps)
{
	for (unsigned i = 0; i < steps; i++) {
		uint64_t r = rnd();
		uint64_t val = rnd();
		/* Bias values toward small numbers and all-ones, where bugs hide. */
		if (r & 0x100)
			val &= 0xff;
		else if (r & 0x200)
			val = ~0ull;
		switch (r & 7) {
		case 0: case 1: {
			uint16_t port = ports[(r >> 3) % (sizeof(ports) / sizeof(ports[0]))];
			unsigned size = rnd_size();
			if (size == 8)
				size = 4;
			pthread_mutex_lock(&t->vm.dev_lock);
			bus_write(&t->vm.pio, NULL, port, size, val);
			pthread_mutex_unlock(&t->vm.dev_lock);
			break;
		}
		case 2: {
			uint16_t port = ports[(r >> 3) % (sizeof(ports) / sizeof(ports[0]))];
			(void)in_n(t, port, 1 + (unsigned)(val & 1) * 3);
			break;
		}
		case 3: case 4: {
			unsigned k = (unsigned)(r >> 3) % 4;
			uint64_t off = (r >> 8) % mmio_spans[k];
			if (k == 0)
				off &= ~0xfull;   /* LAPIC: mostly real register offsets */
			t->cur = &t->cpu[(r >> 40) % t->vm.n_vcpus];
			mmio_write(t, mmio_bases[k] + off, rnd_size(), val);
			break;
		}
		case 5: {
			unsigned k = (unsigned)(r >> 3) % 4;
			(void)mmio_read(t, mmio_bases[k] + (r >> 8) % mmio_spans[k], rnd_size());
			break;
		}
		case 6: {
			struct vcpu *v = &t->cpu[(r >> 3) % t->vm.n_vcpus];
			uint32_t msr = (r & 0x800) ? 0x800 + (uint32_t)((r >> 16) & 0xff)
						   : ((r & 0x1000) ? 0x1b : 0x6e0);
			uint64_t out;
			if (r & 0x2000)
				tvm_msr_write(v, msr, val);
			else
				tvm_msr_read(v, msr, &out);
			if (r & 0x4000)
				tvm_set_cr8(v, val);
			break;
		}
		case 7:
			tvm_advance(t, (r >> 8) % 2000000);
			for (unsigned c = 0; c < t->vm.n_vcpus; c++)
				(void)tvm_intr_ack(&t->cpu[c]);
			irq_line(t, (unsigned)(r >> 20) % 30, (r >> 30) & 1);
			break;
		}
	}
}

Test(fuzz, random_device_programming_is_harmless)
{
	for (uint64_t seed = 1; seed <= 6; seed++) {
		rng_state = 0x9e3779b97f4a7c15ull * seed;
		struct tvm *t = tvm_new(2);
		fuzz_round(t, 20000);
		/* The accesses reached the devices (not just unclaimed space). */
		cr_assert_gt(bus_find(&t->vm.pio, 0x3f8)->writes, 100);
		cr_assert_gt(bus_find(&t->vm.mmio, GMEM_HPET_BASE)->writes, 100);
		cr_assert_gt(bus_find(&t->vm.mmio, GMEM_LAPIC_BASE)->writes, 100);
		/* The machine still answers sanely afterwards. */
		platform_reset(&t->vm);
		outb(t, 0x70, 0x0d);
		cr_assert_eq(inb(t, 0x71), 0x80, "seed %llu: RTC register D after reset", (unsigned long long)seed);
		tvm_free(t);
	}
}
