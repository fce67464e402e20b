/* Whether a test runs the emu engine with code generation (jit/jit.h):
 * meson registers the engine's differential and guest tests twice, the
 * second time with VESSEL_TEST_JIT=1 (tests/unit/meson.build).  With it
 * every block is translated at its first run, so the translated code
 * runs everything the interpreter would. */
#ifndef VESSEL_TESTS_EMU_JIT_ENV_H
#define VESSEL_TESTS_EMU_JIT_ENV_H

#include <stdlib.h>
#include <string.h>

static inline unsigned test_jit_hot(void)
{
	const char *s = getenv("VESSEL_TEST_JIT");
	return s && *s && strcmp(s, "0") ? 1 : 0;
}

#endif
