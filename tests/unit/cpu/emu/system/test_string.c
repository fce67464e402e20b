/* REP MOVS through the bulk path (whole page runs on host memory) must
 * keep the semantics of the element loop: each element is read whole,
 * then written (SDM vol. 2B MOVS), which matters when the destination
 * overlaps the source ahead of it. */
#include <criterion/criterion.h>

#include "harness.h"

#define RAM (1u << 20)
#define SRC 0x1000u
#define LEN 64u

static struct sys_fixture fx;

static void setup(void)
{
	fx_init(&fx, RAM);   /* real mode, DS = ES = 0 */
}

static void teardown(void)
{
	fx_destroy(&fx);
}

TestSuite(emu_string, .init = setup, .fini = teardown);

/* The element loop of REP MOVS, forward, as the reference. */
static void reference_movs(uint8_t *mem, unsigned src, unsigned dst, unsigned size, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		uint8_t e[8];
		memcpy(e, mem + src + i * size, size);
		memcpy(mem + dst + i * size, e, size);
	}
}

static void check_overlap(unsigned size, unsigned distance)
{
	/* REP MOVSW / REP MOVSD in 16-bit code (66 selects 32-bit elements). */
	static const uint8_t movsw[] = { 0xf3, 0xa5 }, movsd[] = { 0x66, 0xf3, 0xa5 };
	const unsigned count = 8;
	struct emu_cpu *cpu = fx.cpu;
	uint8_t *mem = fx_ptr(&fx, 0);
	uint8_t want[SRC + LEN];
	for (unsigned i = 0; i < LEN; i++)
		mem[SRC + i] = (uint8_t)(0x10 + i);
	memcpy(want, mem, sizeof(want));
	reference_movs(want, SRC, SRC + distance, size, count);

	cpu->gpr[RSI] = SRC;
	cpu->gpr[RDI] = SRC + distance;
	cpu->gpr[RCX] = count;
	cpu->rip = 0x100;
	int v = size == 2 ? fx_exec(&fx, movsw, sizeof(movsw)) : fx_exec(&fx, movsd, sizeof(movsd));
	cr_assert_eq(v, -1, "size %u distance %u: vector %d", size, distance, v);
	cr_assert_eq(cpu->gpr[RCX] & 0xffff, 0);
	cr_assert_eq(cpu->gpr[RSI] & 0xffff, SRC + count * size);
	cr_assert_eq(cpu->gpr[RDI] & 0xffff, SRC + distance + count * size);
	for (unsigned i = 0; i < LEN; i++)
		cr_assert_eq(mem[SRC + i], want[SRC + i], "size %u distance %u: byte %u is %#x, not %#x", size,
			     distance, i, mem[SRC + i], want[SRC + i]);
}

Test(emu_string, rep_movs_overlap_smaller_than_an_element)
{
	check_overlap(2, 1);
	check_overlap(4, 1);
	check_overlap(4, 2);
	check_overlap(4, 3);
}

Test(emu_string, rep_movs_overlap_of_whole_elements)
{
	check_overlap(2, 2);
	check_overlap(2, 6);
	check_overlap(4, 4);
	check_overlap(4, 12);
}
