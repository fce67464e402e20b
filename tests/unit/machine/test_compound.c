/* --compound (machine/compound.h, docs/cli.md "Compounding"): read left
 * to right from all on; anything else is one clear error. */
#include "machine/compound.h"
#include "util/error.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

Test(compound, specs_turn_mechanisms_on_and_off)
{
	static const struct {
		const char *spec;
		unsigned want;
	} cases[] = {
		{ NULL, COMPOUND_ALL },
		{ "on", COMPOUND_ALL },
		{ "off", 0 },
		{ "console=off", COMPOUND_ALL & ~COMPOUND_CONSOLE },
		{ "console=off,lookahead=off", COMPOUND_ALL & ~(COMPOUND_CONSOLE | COMPOUND_LOOKAHEAD) },
		{ "off,console", COMPOUND_CONSOLE },
		{ "off,timer=on", COMPOUND_TIMER },
		{ "lookahead=off,on", COMPOUND_ALL },
		{ "off,block=on", COMPOUND_BLOCK },
		{ "block=off", COMPOUND_CONSOLE | COMPOUND_TIMER | COMPOUND_LOOKAHEAD | COMPOUND_NET },
		{ "net=off", COMPOUND_CONSOLE | COMPOUND_TIMER | COMPOUND_LOOKAHEAD | COMPOUND_BLOCK },
		{ "off,net", COMPOUND_NET },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned got = 99;
		cr_assert_eq(compound_parse(cases[i].spec, &got), 0, "%s: %s", cases[i].spec, err_msg());
		cr_assert_eq(got, cases[i].want, "%s: %#x", cases[i].spec, got);
	}
	char buf[64];
	cr_assert_str_eq(compound_describe(COMPOUND_ALL, buf, sizeof(buf)), "console,timer,lookahead,block,net");
	cr_assert_str_eq(compound_describe(COMPOUND_TIMER, buf, sizeof(buf)), "timer");
	cr_assert_str_eq(compound_describe(0, buf, sizeof(buf)), "off");
}

Test(compound, bad_specs_are_refused)
{
	static const struct {
		const char *spec, *msg;
	} cases[] = {
		{ "", "empty item" },
		{ "console,", "empty item" },
		{ "disk", "unknown mechanism 'disk'" },
		{ "network=off", "expected console, timer, lookahead, block or net" },
		{ "console=yes", "'yes' is not on or off" },
		{ "console=", "'' is not on or off" },
		{ "ON", "unknown mechanism 'ON'" },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned got;
		cr_assert_eq(compound_parse(cases[i].spec, &got), -EINVAL, "%s", cases[i].spec);
		cr_assert(strstr(err_msg(), cases[i].msg), "%s: %s", cases[i].spec, err_msg());
	}
}
