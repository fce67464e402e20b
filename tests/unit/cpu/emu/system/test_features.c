/* The opcode table's CPUID gating (src/cpu/emu/core/opcodes.c) against
 * the engine: every opcode the table says needs a feature flag has a
 * handler, and CPUID advertises that flag (SDM vol. 2, each instruction's
 * "CPUID Feature Flag"), so a guest neither misses an instruction it
 * could use nor meets #UD on one it was told exists. */
#include "cpu/emu/core/opcodes.h"
#include "cpu/emu/system/sys.h"

#include <criterion/criterion.h>
#include <stdlib.h>

Test(opcode_features, gated_opcodes_are_advertised_and_implemented)
{
	static const uint8_t prefix[EMU_MP_COUNT] = { 0, 0x66, 0xf3, 0xf2 };
	static const uint8_t escape[EMU_MAP_COUNT][2] = { { 0 }, { 0x0f }, { 0x0f, 0x38 }, { 0x0f, 0x3a } };
	emu_isa_init();
	struct emu_cpu *cpu = calloc(1, sizeof(*cpu));
	cr_assert(cpu);
	unsigned checked = 0;
	for (unsigned map = 0; map < EMU_MAP_COUNT; map++) {
		for (unsigned op = 0; op < 256; op++) {
			for (unsigned mp = 0; mp < EMU_MP_COUNT; mp++) {
				unsigned f = emu_opcodes[map][op].feat[mp];
				if (!f)
					continue;
				cr_assert_lt(f, EMU_FEAT_COUNT);
				const struct emu_feature_flag *flag = &emu_feature_flags[f];
				uint32_t out[4];
				cpuid_query(cpu, flag->leaf, 0, out);
				cr_assert((out[flag->reg] >> flag->bit) & 1,
					  "map %u opcode %02x prefix %02x needs %s, which CPUID does not advertise", map, op,
					  prefix[mp], flag->name);
				uint8_t b[16] = { 0 };
				unsigned n = 0;
				if (prefix[mp])
					b[n++] = prefix[mp];
				for (unsigned e = 0; e < 2 && escape[map][e]; e++)
					b[n++] = escape[map][e];
				b[n++] = (uint8_t)op;   /* then ModRM 00: [eax] */
				struct emu_insn in;
				cr_assert_eq(emu_decode_mode(EMU_MODE_PROT32, b, 16, &in), 0);
				cr_assert(in.fn != emu_handler_ud, "map %u opcode %02x prefix %02x (%s) has no handler", map, op,
					  prefix[mp], flag->name);
				checked++;
			}
		}
	}
	free(cpu);
	cr_assert_gt(checked, 80);
	cr_log_info("%u gated opcode forms advertised and implemented", checked);
}
