/* The core module's instruction groups, registered with the decoder. */
#include "cpu/emu/core/core.h"

void emu_int_register(void)
{
	emu_int_arith_register();
	emu_int_shift_register();
	emu_int_muldiv_register();
	emu_int_move_register();
	emu_int_stack_register();
	emu_int_control_register();
	emu_int_bit_register();
	emu_int_string_register();
	emu_int_misc_register();
}
