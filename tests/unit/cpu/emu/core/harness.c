#include "harness.h"

#include "../jit_env.h"
#include "cpu/emu/jit/jit.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

struct harness *harness_cur;

static uint64_t linear(struct emu_cpu *cpu, int seg, uint64_t off)
{
	if (cpu->mode == EMU_MODE_LONG64)
		return off + (seg >= SEG_FS ? cpu->seg[seg].base : 0);
	return (uint32_t)(cpu->seg[seg].base + off);
}

static uint8_t *host(struct emu_cpu *cpu, uint64_t lin, unsigned size)
{
	struct harness *h = harness_cur;
	if (lin < h->base || lin - h->base > h->size || size > h->size - (lin - h->base))
		emu_raise(cpu, cpu->mode == EMU_MODE_LONG64 ? X86_EXC_GP : X86_EXC_GP, 0);
	return h->mem + (lin - h->base);
}

static uint64_t h_read(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	memcpy(&v, host(cpu, linear(cpu, seg, off), size), size);
	return v;
}

static void h_write(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val)
{
	memcpy(host(cpu, linear(cpu, seg, off), size), &val, size);
}

static void h_write_check(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	host(cpu, linear(cpu, seg, off), size);
}

static void h_read_bytes(struct emu_cpu *cpu, int seg, uint64_t off, void *dst, unsigned n)
{
	memcpy(dst, host(cpu, linear(cpu, seg, off), n), n);
}

static void h_write_bytes(struct emu_cpu *cpu, int seg, uint64_t off, const void *src, unsigned n)
{
	memcpy(host(cpu, linear(cpu, seg, off), n), src, n);
}

static void *h_mem_ptr(struct emu_cpu *cpu, int seg, uint64_t off, unsigned size, bool write)
{
	uint64_t lin = linear(cpu, seg, off);
	if ((lin & 4095) + size > 4096)
		return NULL;
	return host(cpu, lin, size);
}

static uint64_t h_translate_fetch(struct emu_cpu *cpu, uint64_t lin)
{
	return lin;
}

static uint32_t h_io_in(struct emu_cpu *cpu, uint16_t port, unsigned size)
{
	harness_cur->io_last_port = port;
	harness_cur->io_count++;
	return (uint32_t)(0x5a5a5a5au ^ port) & (uint32_t)emu_size_mask(size);
}

static void h_io_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint32_t val)
{
	harness_cur->io_last_port = port;
	harness_cur->io_last_val = val;
	harness_cur->io_count++;
}

/* Flat memory at [base, base + size) addressed by linear address (no
 * paging), ports that answer a pattern and count the accesses. */
static const struct emu_ops harness_ops = {
	.read = h_read,
	.write = h_write,
	.write_check = h_write_check,
	.read_bytes = h_read_bytes,
	.write_bytes = h_write_bytes,
	.mem_ptr = h_mem_ptr,
	.translate_fetch = h_translate_fetch,
	.io_in = h_io_in,
	.io_out = h_io_out,
};

void harness_init(struct harness *h, uint8_t *mem, uint64_t base, uint64_t size, unsigned mode)
{
	memset(&h->cpu, 0, sizeof(h->cpu));
	/* An empty TLB: the inline accessors of emu.h always take the slow path here. */
	memset(h->cpu.tlb, 0xff, sizeof(h->cpu.tlb));
	h->mem = mem;
	h->base = base;
	h->size = size;
	h->cpu.mode = (uint8_t)mode;
	h->cpu.rflags = X86_FLAG_FIXED;
	h->cpu.exc_vector = -1;
	h->cpu.ops = &harness_ops;
	/* Flat, present, writable data segments; SS.B/CS.D per mode. */
	for (int s = 0; s < SEG_COUNT; s++) {
		h->cpu.seg[s].limit = 0xffffffff;
		h->cpu.seg[s].attr = 0x93;
		if (mode == EMU_MODE_PROT32)
			h->cpu.seg[s].attr |= 1u << 10;
	}
	h->io_count = 0;
	harness_cur = h;
}

int harness_step(struct harness *h)
{
	struct emu_cpu *cpu = &h->cpu;
	jmp_buf env;
	struct emu_insn in;
	cpu->fault_env = &env;
	cpu->exc_vector = -1;
	if (setjmp(env))
		return cpu->exc_vector;
	uint8_t buf[16] = { 0 };
	uint64_t lin = linear(cpu, SEG_CS, cpu->rip);
	unsigned avail = 15;
	if (lin >= h->base && lin < h->base + h->size && h->base + h->size - lin < avail)
		avail = (unsigned)(h->base + h->size - lin);
	memcpy(buf, host(cpu, lin, avail), avail);
	int rc = emu_decode(cpu, buf, avail, &in);
	if (rc == -11 /* EAGAIN */)
		emu_raise(cpu, X86_EXC_GP, 0);
	cpu->stop_block = false;
	/* VESSEL_TEST_JIT: the instruction runs as translated code, a block
	 * of one (jit/jit.h), which counts it itself. */
	static struct emu_jit *jit;
	if (test_jit_hot() && !jit)
		jit = emu_jit_create(1u << 20);
	if (jit) {
		emu_jit_code code = emu_jit_translate(jit, &in, 1, cpu->mode, -1, NULL);
		if (!code)
			abort();
		emu_jit_enter(cpu);
		code(cpu);
	} else {
		cpu->next_rip = cpu->rip + in.len;
		in.fn(cpu, &in);
		cpu->rip = cpu->next_rip;
		cpu->icount++;
	}
	if (cpu->mode != EMU_MODE_LONG64)
		cpu->rip &= 0xffffffff;
	return -1;
}

int harness_run(struct harness *h, uint64_t stop, unsigned n)
{
	for (unsigned i = 0; i < n && h->cpu.rip != stop; i++) {
		int v = harness_step(h);
		if (v >= 0)
			return v;
	}
	return -1;
}
