/* The opcode table's CPUID gating (src/cpu/emu/core/opcodes.c) against
 * the engine: every opcode the table says needs a feature flag has a
 * handler, and CPUID advertises that flag (SDM vol. 2, each instruction's
 * "CPUID Feature Flag"), so a guest neither misses an instruction it
 * could use nor meets #UD on one it was told exists. */
#include "cpu/emu/core/opcodes.h"
#include "cpu/emu/system/sys.h"
#include "machine/machine.h"
#include "harness.h"
#include "machine/cpu_model.h"
#include "util/error.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(opcode_features, gated_opcodes_are_advertised_and_implemented)
{
	static const uint8_t prefix[EMU_MP_COUNT] = { 0, 0x66, 0xf3, 0xf2 };
	static const uint8_t escape[EMU_MAP_COUNT][2] = { { 0 }, { 0x0f }, { 0x0f, 0x38 }, { 0x0f, 0x3a } };
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

/* CPUID leaf 0BH (SDM vol. 2A): with two virtual NUMA nodes of two vCPUs
 * each, a package per node (core field 1 bit wide: APIC id 2 is package
 * 1); with unequal nodes, one package of every vCPU (docs/numa.md). */
Test(cpuid_topology, one_package_per_equal_numa_node)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vcpu *v = calloc(1, sizeof(*v));
	struct emu_cpu *cpu = calloc(1, sizeof(*cpu));
	cr_assert(vm && v && cpu);
	vm->n_vcpus = 4;
	v->vm = vm;
	v->id = 2;
	cpu->vcpu = v;
	uint32_t out[4];
	cpuid_query(cpu, 0xb, 1, out);
	cr_assert_eq(out[0], 2, "no nodes: 4 cores, 2 bits");
	cr_assert_eq(out[1], 4);
	cr_assert_eq(vnuma_config_finish(&vm->numa, 2, 4, 64ull << 20), 0);
	cpuid_query(cpu, 0xb, 1, out);
	cr_assert_eq(out[0], 1, "a package per node: 2 cores, 1 bit");
	cr_assert_eq(out[1], 2);
	cr_assert_eq(out[3], 2, "x2APIC id");
	cpuid_query(cpu, 1, 0, out);
	cr_assert_eq((out[1] >> 16) & 0xff, 2, "leaf 1: logical processors per package");
	/* Leaf 1FH (the V2 extended topology Linux reads first) says the
	 * same as 0BH, level by level, and ends where it ends. */
	for (uint32_t sub = 0; sub < 4; sub++) {
		uint32_t b[4], x[4];
		cpuid_query(cpu, 0xb, sub, b);
		cpuid_query(cpu, 0x1f, sub, x);
		cr_assert_arr_eq(b, x, sizeof(b), "subleaf %u", sub);
	}
	cpuid_query(cpu, 0, 0, out);
	cr_assert_eq(out[0], 0x1f, "the highest basic leaf");
	cpuid_query(cpu, 0x1c, 0, out);
	cr_assert_eq(out[0] | out[1] | out[2] | out[3], 0, "leaves 17H-1EH are zero");
	/* Nodes of 1 and 3 vCPUs: one package. */
	struct numa_config c = { 0 };
	vnuma_parse_node(&c, "node,mem=32M,cpus=0");
	vnuma_parse_node(&c, "node,mem=32M,cpus=1-3");
	cr_assert_eq(vnuma_config_finish(&c, 0, 4, 64ull << 20), 0);
	vm->numa = c;
	cpuid_query(cpu, 0xb, 1, out);
	cr_assert_eq(out[1], 4);
	free(cpu);
	free(v);
	free(vm);
}

/* CPU models (machine/cpu_model.h): the feature table's "emu" column is
 * exactly what this engine's CPUID advertises at max, so that help and
 * the +FEATURE check tell the truth. */
Test(cpu_model, table_emu_column_matches_cpuid)
{
	struct emu_cpu *cpu = calloc(1, sizeof(*cpu));
	cr_assert(cpu);
	cpu->apic_base = 0xfee00800;   /* LAPIC enabled: CPUID.1:EDX.APIC set */
	for (unsigned i = 0; i < cpu_n_features; i++) {
		const struct cpu_feature *f = &cpu_features[i];
		uint32_t out[4];
		cpuid_query(cpu, f->leaf, f->subleaf, out);
		cr_assert_eq((out[f->reg] >> f->bit) & 1, f->emu, "%s: table says emu=%d, CPUID says %u", f->name,
			     f->emu, (out[f->reg] >> f->bit) & 1);
	}
	free(cpu);
}

static struct emu_cpu *model_cpu(const char *spec, struct cpu_model *m)
{
	struct emu_cpu *cpu = calloc(1, sizeof(*cpu));
	cr_assert(cpu);
	cr_assert_eq(cpu_model_parse(spec, true, m), 0, "%s: %s", spec, err_msg());
	emu_cpu_set_model(cpu, m);
	return cpu;
}

/* The instruction's bytes, zero-padded to a full decode window. */
static bool decodes_to_ud_n(struct emu_cpu *cpu, const uint8_t *b, size_t n)
{
	uint8_t buf[16] = { 0 };
	memcpy(buf, b, n < sizeof(buf) ? n : sizeof(buf));
	struct emu_insn in;
	cpu->mode = EMU_MODE_PROT32;
	cr_assert_eq(emu_decode(cpu, buf, 16, &in), 0);
	return in.fn == emu_handler_ud;
}

Test(cpu_model, removed_sse42_clears_cpuid_and_crc32_raises_ud)
{
	static const uint8_t crc32[] = { 0xf2, 0x0f, 0x38, 0xf0, 0x00 };   /* crc32 eax, byte [eax] */
	static const uint8_t movbe[] = { 0x0f, 0x38, 0xf0, 0x00 };         /* movbe eax, [eax] */
	static const uint8_t popcnt[] = { 0xf3, 0x0f, 0xb8, 0x00 };        /* popcnt eax, [eax] */
	struct cpu_model max, m;
	struct emu_cpu *full = model_cpu("max", &max), *cpu = model_cpu("max,-sse4.2", &m);
	uint32_t a[4], b[4];
	cpuid_query(full, 1, 0, a);
	cpuid_query(cpu, 1, 0, b);
	cr_assert((a[2] >> 20) & 1);
	cr_assert_eq(b[2], a[2] & ~(1u << 20), "only CPUID.1:ECX.SSE4_2 is cleared");
	cr_assert_eq(b[3], a[3]);
	cr_assert(!decodes_to_ud_n(full, crc32, sizeof(crc32)));
	cr_assert(decodes_to_ud_n(cpu, crc32, sizeof(crc32)), "CRC32 without SSE4.2 raises #UD");
	cr_assert(!decodes_to_ud_n(cpu, movbe, sizeof(movbe)), "MOVBE, same opcode without F2, still decodes");
	cr_assert(!decodes_to_ud_n(cpu, popcnt, sizeof(popcnt)));
	free(cpu);
	cpu = model_cpu("max,-popcnt,-movbe", &m);
	cr_assert(decodes_to_ud_n(cpu, popcnt, sizeof(popcnt)));
	cr_assert(decodes_to_ud_n(cpu, movbe, sizeof(movbe)));
	cr_assert(!decodes_to_ud_n(cpu, crc32, sizeof(crc32)));
	free(cpu);
	free(full);
}

Test(cpu_model, removed_features_fault_their_msrs)
{
	struct cpu_model max, m;
	struct emu_cpu *full = model_cpu("max", &max);
	struct emu_cpu *cpu = model_cpu("max,-x2apic,-pat,-arch-capabilities,-rdtscp,-rdpid,-sep", &m);
	uint64_t v;
	/* IA32_APIC_BASE.EXTD is reserved without x2APIC (SDM vol. 3A 11.12.1). */
	cr_assert_eq(msr_write(full, MSR_IA32_APIC_BASE, 0xfee00000ull | (1u << 11) | (1u << 10)), 0);
	cr_assert_eq(msr_write(cpu, MSR_IA32_APIC_BASE, 0xfee00000ull | (1u << 11) | (1u << 10)), -1);
	cr_assert_eq(msr_write(cpu, MSR_IA32_APIC_BASE, 0xfee00000ull | (1u << 11)), 0);
	cr_assert_eq(msr_read(cpu, 0x802, &v), -1);   /* x2APIC ID */
	static const uint32_t gated[] = { MSR_IA32_PAT, 0x10a, MSR_TSC_AUX, MSR_IA32_SYSENTER_CS };
	for (unsigned i = 0; i < sizeof(gated) / sizeof(gated[0]); i++) {
		cr_assert_eq(msr_read(full, gated[i], &v), 0, "MSR %#x", gated[i]);
		cr_assert_eq(msr_read(cpu, gated[i], &v), -1, "MSR %#x must #GP", gated[i]);
		cr_assert_eq(msr_write(cpu, gated[i], 0), -1, "MSR %#x must #GP", gated[i]);
	}
	/* IA32_TSC_AUX stays while RDPID is there. */
	free(cpu);
	cpu = model_cpu("max,-rdtscp", &m);
	cr_assert_eq(msr_read(cpu, MSR_TSC_AUX, &v), 0);
	cr_assert_eq(msr_read(cpu, MSR_EFER, &v), 0);
	free(cpu);
	free(full);
}

Test(cpu_model, removed_xsave_empties_leaf_0xd)
{
	struct cpu_model m;
	struct emu_cpu *cpu = model_cpu("x86-64-v2", &m);
	uint32_t out[4];
	cpuid_query(cpu, 0xd, 0, out);
	cr_assert(!out[0] && !out[1] && !out[2] && !out[3]);
	cpuid_query(cpu, 1, 0, out);
	cr_assert(!((out[2] >> 26) & 1) && !((out[2] >> 22) & 1), "v2 has no XSAVE, no MOVBE");
	cr_assert((out[2] >> 20) & 1, "v2 keeps SSE4.2");
	cr_assert((out[2] >> 21) & 1, "v2 keeps x2APIC, a system feature");
	free(cpu);
}

/* Group members with their own flag (emu_group_features): implemented at
 * max, #UD once the model removes the flag, and only that member. */
Test(cpu_model, removed_group_members_raise_ud)
{
	static const struct {
		const char *spec;
		uint8_t code[6];
	} cases[] = {
		{ "max,-rdrand", { 0x0f, 0xc7, 0xf0 } },         /* rdrand eax */
		{ "max,-rdseed", { 0x0f, 0xc7, 0xf8 } },         /* rdseed eax */
		{ "max,-rdpid", { 0xf3, 0x0f, 0xc7, 0xf8 } },    /* rdpid eax */
		{ "max,-rdtscp", { 0x0f, 0x01, 0xf9 } },         /* rdtscp */
		{ "max,-fsgsbase", { 0xf3, 0x0f, 0xae, 0xc0 } }, /* rdfsbase eax */
	};
	static const uint8_t cmpxchg8b[] = { 0x0f, 0xc7, 0x08 };   /* /1, memory: not gated */
	struct cpu_model max, m;
	struct emu_cpu *full = model_cpu("max", &max);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct emu_cpu *cpu = model_cpu(cases[i].spec, &m);
		cr_assert(!decodes_to_ud_n(full, cases[i].code, sizeof(cases[i].code)), "%s: implemented at max", cases[i].spec);
		cr_assert(decodes_to_ud_n(cpu, cases[i].code, sizeof(cases[i].code)), "%s: #UD", cases[i].spec);
		cr_assert(!decodes_to_ud_n(cpu, cmpxchg8b, sizeof(cmpxchg8b)), "%s: CMPXCHG8B still decodes", cases[i].spec);
		free(cpu);
	}
	free(full);
}

static void set_cr4(struct emu_cpu *cpu, void *arg)
{
	mode_write_cr4(cpu, cpu->cr4 | (uint64_t)(uintptr_t)arg);
}

/* A CR4 bit whose CPUID flag the model removes is reserved: #GP. */
Test(cpu_model, removed_features_reserve_their_cr4_bits)
{
	struct sys_fixture fx;
	fx_init(&fx, 1 << 20);
	cr_assert_eq(fx_call(&fx, set_cr4, (void *)(uintptr_t)X86_CR4_SMEP), -1);
	fx.cpu->cr4 = 0;
	struct cpu_model m;
	cr_assert_eq(cpu_model_parse("max,-smep,-fsgsbase", true, &m), 0);
	emu_cpu_set_model(fx.cpu, &m);
	cr_assert_eq(fx_call(&fx, set_cr4, (void *)(uintptr_t)X86_CR4_SMEP), X86_EXC_GP);
	cr_assert_eq(fx_call(&fx, set_cr4, (void *)(uintptr_t)X86_CR4_FSGSBASE), X86_EXC_GP);
	cr_assert_eq(fx_call(&fx, set_cr4, (void *)(uintptr_t)X86_CR4_SMAP), -1);
	fx_destroy(&fx);
}
