/* The CPU model table and its parser (src/machine/cpu_model.c). */
#include "machine/cpu_model.h"
#include "util/error.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

static uint64_t bit(const char *name)
{
	int i = cpu_model_feature_index(name);
	cr_assert_geq(i, 0, "%s", name);
	return 1ull << i;
}

Test(cpu_model, max_is_the_default_and_removes_nothing)
{
	struct cpu_model m;
	cr_assert_eq(cpu_model_parse("max", true, &m), 0);
	cr_assert_eq(m.removed, 0);
	cr_assert_str_eq(m.spec, "max");
	uint32_t r[4] = { ~0u, ~0u, ~0u, ~0u };
	cpu_model_filter(&m, 1, 0, r);
	cr_assert_eq(r[2], ~0u);
	cr_assert(cpu_model_has(NULL, 1, 0, CPU_ECX, 21));
}

Test(cpu_model, features_removed_and_added_in_canonical_order)
{
	struct cpu_model m;
	cr_assert_eq(cpu_model_parse("max,-pku,-x2apic,-la57,-sse4_2", true, &m), 0);
	cr_assert_eq(m.removed, bit("pku") | bit("x2apic") | bit("la57") | bit("sse4.2"));
	cr_assert_str_eq(m.spec, "max,-sse4.2,-x2apic,-pku,-la57");
	cr_assert(!cpu_model_has(&m, 1, 0, CPU_ECX, 21));
	cr_assert(!cpu_model_has(&m, 7, 0, CPU_ECX, 16));
	cr_assert(cpu_model_has(&m, 7, 1, CPU_ECX, 16), "leaf 7 subleaf 1 is another flag");
	cr_assert(cpu_model_has(&m, 1, 0, CPU_ECX, 19));
	uint32_t r[4] = { ~0u, ~0u, ~0u, ~0u };
	cpu_model_filter(&m, 1, 5, r);   /* leaf 1 ignores ECX */
	cr_assert_eq(r[2], ~((1u << 20) | (1u << 21)));
	cr_assert_eq(r[3], ~0u);
	/* The last word wins. */
	cr_assert_eq(cpu_model_parse("max,-x2apic,+x2apic", true, &m), 0);
	cr_assert_eq(m.removed, 0);
	cr_assert_str_eq(m.spec, "max,+x2apic");
}

Test(cpu_model, psabi_levels)
{
	struct cpu_model m;
	cr_assert_eq(cpu_model_parse("x86-64-v2", true, &m), 0);
	cr_assert(m.removed & bit("movbe"));
	cr_assert(m.removed & bit("abm"));
	cr_assert(m.removed & bit("xsave"));
	cr_assert(m.removed & bit("rdrand"));
	cr_assert(!(m.removed & (bit("sse4.2") | bit("popcnt") | bit("cx16") | bit("x2apic") | bit("lm"))));
	cr_assert_str_eq(m.spec, "x86-64-v2");
	cr_assert_eq(cpu_model_parse("x86-64", true, &m), 0);
	cr_assert(m.removed & bit("sse3"));
	cr_assert(m.removed & bit("popcnt"));
	cr_assert(!(m.removed & (bit("sse2") | bit("cmov") | bit("syscall") | bit("pae"))));
	cr_assert_eq(cpu_model_parse("x86-64,+popcnt", true, &m), 0);
	cr_assert(!(m.removed & bit("popcnt")));
	/* v3 needs AVX: refused on emu, accepted on kvm. */
	cr_assert_eq(cpu_model_parse("x86-64-v3", true, &m), -EINVAL);
	cr_assert(strstr(err_msg(), "emu engine does not implement"), "%s", err_msg());
	cr_assert_eq(cpu_model_parse("x86-64-v3", false, &m), 0);
	cr_assert(m.removed & bit("avx512f"));
	cr_assert(!(m.removed & bit("avx2")));
}

Test(cpu_model, host_on_emu_keeps_system_features)
{
	struct cpu_model m;
	cr_assert_eq(cpu_model_parse("host", true, &m), 0);
	for (unsigned i = 0; i < cpu_n_features; i++)
		if (cpu_features[i].level == CPU_LEVEL_SYSTEM)
			cr_assert(!((m.removed >> i) & 1), "%s", cpu_features[i].name);
	cr_assert_eq(cpu_model_parse("host", false, &m), 0);
	cr_assert_eq(m.removed, 0, "kvm's host is its max");
}

Test(cpu_model, bad_input_names_the_valid_ones)
{
	struct cpu_model m;
	cr_assert_eq(cpu_model_parse("pentium", true, &m), -EINVAL);
	cr_assert(strstr(err_msg(), "'pentium' is not a CPU model") && strstr(err_msg(), "x86-64-v2"), "%s", err_msg());
	cr_assert_eq(cpu_model_parse("max,-bogus", true, &m), -EINVAL);
	cr_assert(strstr(err_msg(), "'-bogus' is not a CPU feature") && strstr(err_msg(), "x2apic"), "%s", err_msg());
	cr_assert_eq(cpu_model_parse("max,x2apic", true, &m), -EINVAL);
	cr_assert_eq(cpu_model_parse("", true, &m), -EINVAL);
	cr_assert_eq(cpu_model_parse(",", true, &m), -EINVAL);
	cr_assert_eq(cpu_model_parse("max,+avx", true, &m), -EINVAL);
	cr_assert(strstr(err_msg(), "does not implement avx"), "%s", err_msg());
	cr_assert_eq(cpu_model_parse("max,+avx", false, &m), 0);
}
