/* Placeholder until the module's instructions land. */
#include "cpu/emu/emu.h"

void emu_int_register(void)
{
}
