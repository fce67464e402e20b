/* Handlers for the tests that run without the decoder: the opcode
 * table's generic handler of an instruction. */
#include "harness.h"

emu_handler h_lookup(enum emu_opmap map, uint8_t opcode, enum emu_mprefix mp, unsigned reg)
{
	return emu_handler_find(map, opcode, mp, reg & 7, false, 0);
}
