/* Handler registration for the tests that run without the core's decoder:
 * a table filled by emu_fpu_register() through this emu_register(). */
#include "harness.h"

/* Registration table: [map][opcode][mprefix][reg]. */
static emu_handler h_table[EMU_MAP_COUNT][256][EMU_MP_COUNT][8];
static bool h_registered;

void emu_register(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp, int modrm_reg, emu_handler fn)
{
	for (int p = 0; p < EMU_MP_COUNT; p++) {
		if ((int)mp != -1 && p != (int)mp)
			continue;
		for (int r = 0; r < 8; r++)
			if (modrm_reg == -1 || r == modrm_reg)
				h_table[map][opcode][p][r] = fn;
	}
}

emu_handler h_lookup(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp, unsigned reg)
{
	if (!h_registered) {
		emu_fpu_register();
		h_registered = true;
	}
	return h_table[map][opcode][mp][reg & 7];
}

