/* Inline templates (jit/templates.h). */
#include "cpu/emu/jit/templates.h"

bool jit_template(struct jit_ctx *t, const struct emu_insn *in)
{
	(void)t;
	(void)in;
	return false;
}
