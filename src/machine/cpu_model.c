/* CPU models: the feature flags a user may remove or add, and the named
 * models, as data (docs/isa.md "CPU models").  The named psABI models
 * follow the x86-64 psABI's micro-architecture levels (x86-64-ABI 1.0,
 * 3.1.1 "Processor Architecture"): a model keeps every system feature
 * and the instruction-set flags of its level and below. */
#include "machine/cpu_model.h"

#include "util/error.h"

#include <cpuid.h>
#include <errno.h>
#include <string.h>

#define A CPU_EAX
#define B CPU_EBX
#define C CPU_ECX
#define D CPU_EDX
#define SYS CPU_LEVEL_SYSTEM
#define EXTRA CPU_LEVEL_EXTRA

const struct cpu_feature cpu_features[] = {
	/* CPUID.1:EDX (SDM vol. 2A, table 3-11) */
	{ "fpu", "fpu", 1, 0, D, 0, 1, true, "x87 floating point unit" },
	{ "vme", "vme", 1, 0, D, 1, SYS, true, "virtual-8086 mode extensions" },
	{ "de", "de", 1, 0, D, 2, SYS, true, "debugging extensions (CR4.DE)" },
	{ "pse", "pse", 1, 0, D, 3, SYS, true, "4 MiB pages" },
	{ "tsc", "tsc", 1, 0, D, 4, SYS, true, "time stamp counter, RDTSC" },
	{ "msr", "msr", 1, 0, D, 5, SYS, true, "RDMSR and WRMSR" },
	{ "pae", "pae", 1, 0, D, 6, SYS, true, "physical address extension" },
	{ "mce", "mce", 1, 0, D, 7, SYS, true, "machine check exception, IA32_MCG_* MSRs" },
	{ "cx8", "cx8", 1, 0, D, 8, 1, true, "CMPXCHG8B" },
	{ "apic", "apic", 1, 0, D, 9, SYS, true, "local APIC" },
	{ "sep", "sep", 1, 0, D, 11, SYS, true, "SYSENTER and SYSEXIT, IA32_SYSENTER_* MSRs" },
	{ "mtrr", "mtrr", 1, 0, D, 12, SYS, true, "memory type range registers" },
	{ "pge", "pge", 1, 0, D, 13, SYS, true, "global pages" },
	{ "cmov", "cmov", 1, 0, D, 15, 1, true, "CMOVcc" },
	{ "pat", "pat", 1, 0, D, 16, SYS, true, "page attribute table, IA32_PAT" },
	{ "pse36", "pse36", 1, 0, D, 17, SYS, true, "36-bit 4 MiB page addresses" },
	{ "clflush", "clflush", 1, 0, D, 19, SYS, true, "CLFLUSH" },
	{ "mmx", "mmx", 1, 0, D, 23, 1, true, "MMX" },
	{ "fxsr", "fxsr", 1, 0, D, 24, 1, true, "FXSAVE and FXRSTOR" },
	{ "sse", "sse", 1, 0, D, 25, 1, true, "SSE" },
	{ "sse2", "sse2", 1, 0, D, 26, 1, true, "SSE2" },
	/* CPUID.1:ECX (table 3-10) */
	{ "sse3", "pni", 1, 0, C, 0, 2, true, "SSE3" },
	{ "pclmulqdq", "pclmulqdq", 1, 0, C, 1, EXTRA, false, "PCLMULQDQ" },
	{ "ssse3", "ssse3", 1, 0, C, 9, 2, true, "SSSE3" },
	{ "fma", "fma", 1, 0, C, 12, 3, false, "FMA3" },
	{ "cx16", "cx16", 1, 0, C, 13, 2, true, "CMPXCHG16B" },
	{ "pcid", "pcid", 1, 0, C, 17, SYS, true, "process-context identifiers" },
	{ "sse4.1", "sse4_1", 1, 0, C, 19, 2, true, "SSE4.1" },
	{ "sse4.2", "sse4_2", 1, 0, C, 20, 2, true, "SSE4.2 (CRC32)" },
	{ "x2apic", "x2apic", 1, 0, C, 21, SYS, true, "x2APIC mode, MSRs 0x800-0x8ff" },
	{ "movbe", "movbe", 1, 0, C, 22, 3, true, "MOVBE" },
	{ "popcnt", "popcnt", 1, 0, C, 23, 2, true, "POPCNT" },
	{ "tsc-deadline", "tsc_deadline_timer", 1, 0, C, 24, SYS, true, "LAPIC TSC-deadline timer, IA32_TSC_DEADLINE" },
	{ "aes", "aes", 1, 0, C, 25, EXTRA, false, "AES-NI" },
	{ "xsave", "xsave", 1, 0, C, 26, 3, true, "XSAVE, XRSTOR, XGETBV, XSETBV (leaf 0xd)" },
	{ "avx", "avx", 1, 0, C, 28, 3, false, "AVX" },
	{ "f16c", "f16c", 1, 0, C, 29, 3, false, "half-precision conversions" },
	{ "rdrand", "rdrand", 1, 0, C, 30, EXTRA, true, "RDRAND" },
	{ "hypervisor", "hypervisor", 1, 0, C, 31, SYS, true, "running under a hypervisor" },
	/* CPUID.(EAX=7,ECX=0) (table 3-8) */
	{ "fsgsbase", "fsgsbase", 7, 0, B, 0, EXTRA, true, "RD/WRFSBASE and RD/WRGSBASE" },
	{ "bmi1", "bmi1", 7, 0, B, 3, 3, false, "BMI1" },
	{ "avx2", "avx2", 7, 0, B, 5, 3, false, "AVX2" },
	{ "smep", "smep", 7, 0, B, 7, SYS, true, "supervisor-mode execution prevention" },
	{ "bmi2", "bmi2", 7, 0, B, 8, 3, false, "BMI2" },
	{ "erms", "erms", 7, 0, B, 9, SYS, true, "fast REP MOVSB/STOSB" },
	{ "invpcid", "invpcid", 7, 0, B, 10, SYS, true, "INVPCID" },
	{ "avx512f", "avx512f", 7, 0, B, 16, 4, false, "AVX-512 foundation" },
	{ "rdseed", "rdseed", 7, 0, B, 18, EXTRA, true, "RDSEED" },
	{ "smap", "smap", 7, 0, B, 20, SYS, true, "supervisor-mode access prevention" },
	{ "pku", "pku", 7, 0, C, 3, SYS, false, "protection keys for user pages" },
	{ "la57", "la57", 7, 0, C, 16, SYS, false, "5-level paging" },
	{ "rdpid", "rdpid", 7, 0, C, 22, EXTRA, true, "RDPID" },
	{ "fsrm", "fsrm", 7, 0, D, 4, SYS, true, "fast short REP MOVSB" },
	{ "arch-capabilities", "arch_capabilities", 7, 0, D, 29, SYS, true, "IA32_ARCH_CAPABILITIES" },
	/* CPUID.80000001H (table 3-8) */
	{ "lahf-lm", "lahf_lm", 0x80000001, 0, C, 0, 2, true, "LAHF and SAHF in 64-bit mode" },
	{ "abm", "abm", 0x80000001, 0, C, 5, 3, true, "LZCNT" },
	{ "syscall", "syscall", 0x80000001, 0, D, 11, 1, true, "SYSCALL and SYSRET" },
	{ "nx", "nx", 0x80000001, 0, D, 20, SYS, true, "execute-disable pages" },
	{ "pdpe1gb", "pdpe1gb", 0x80000001, 0, D, 26, SYS, true, "1 GiB pages" },
	{ "rdtscp", "rdtscp", 0x80000001, 0, D, 27, SYS, true, "RDTSCP, IA32_TSC_AUX" },
	{ "lm", "lm", 0x80000001, 0, D, 29, SYS, true, "64-bit mode" },
};
const unsigned cpu_n_features = sizeof(cpu_features) / sizeof(cpu_features[0]);
_Static_assert(sizeof(cpu_features) / sizeof(cpu_features[0]) <= 64, "struct cpu_model holds 64 flags");

/* The named models.  level 0: every flag of the engine. */
static const struct {
	const char *name;
	uint8_t level;
	bool host;
	const char *what;
} cpu_models[] = {
	{ "max", 0, false, "every feature the engine implements (the default)" },
	{ "host", 0, true,
	  "max, less the instruction sets the host CPU lacks (kvm: the same as max, which is already the host's)" },
	{ "x86-64", 1, false, "psABI baseline: SSE2, CMOV, CX8, ... and the system features" },
	{ "x86-64-v2", 2, false, "psABI level 2: x86-64 + SSE3, SSSE3, SSE4.1, SSE4.2, POPCNT, CX16, LAHF-LM" },
	{ "x86-64-v3", 3, false, "psABI level 3: x86-64-v2 + AVX, AVX2, BMI1, BMI2, FMA, F16C, LZCNT, MOVBE, XSAVE "
				 "(kvm only: the emu engine has no AVX)" },
};
#define N_MODELS (sizeof(cpu_models) / sizeof(cpu_models[0]))

int cpu_model_feature_index(const char *name)
{
	for (unsigned i = 0; i < cpu_n_features; i++)
		if (!strcmp(name, cpu_features[i].name) || !strcmp(name, cpu_features[i].cpuinfo))
			return (int)i;
	return -1;
}

static bool host_has(const struct cpu_feature *f)
{
	unsigned r[4];
	if (!__get_cpuid_count(f->leaf, f->subleaf, &r[0], &r[1], &r[2], &r[3]))
		return false;
	return (r[f->reg] >> f->bit) & 1;
}

static int bad_feature(const char *tok)
{
	char list[1024];
	size_t n = 0;
	list[0] = 0;
	for (unsigned i = 0; i < cpu_n_features && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", cpu_features[i].name);
	return err_set(-EINVAL, "cpu: '%s' is not a CPU feature (expected +NAME or -NAME, NAME one of %s)", tok, list);
}

int cpu_model_parse(const char *spec, bool emu, struct cpu_model *out)
{
	memset(out, 0, sizeof(*out));
	char buf[256];
	if (!spec || !*spec || strlen(spec) >= sizeof(buf))
		return err_set(-EINVAL, "cpu: '%s' is not a CPU model (expected host, max, x86-64, x86-64-v2 or "
					"x86-64-v3, then +FEATURE or -FEATURE; `vessel run --cpu help` lists them)",
			       spec ? spec : "");
	strcpy(buf, spec);
	char *save = NULL, *tok = strtok_r(buf, ",", &save);
	unsigned m = 0;
	while (tok && m < N_MODELS && strcmp(tok, cpu_models[m].name))
		m++;
	if (!tok || m == N_MODELS)
		return err_set(-EINVAL, "cpu: '%s' is not a CPU model (expected host, max, x86-64, x86-64-v2 or "
					"x86-64-v3, then +FEATURE or -FEATURE; `vessel run --cpu help` lists them)",
			       tok ? tok : spec);
	uint64_t removed = 0, added = 0, minus = 0;
	for (unsigned i = 0; i < cpu_n_features; i++) {
		const struct cpu_feature *f = &cpu_features[i];
		if (f->level == SYS)
			continue;
		if (cpu_models[m].level && f->level > cpu_models[m].level)
			removed |= 1ull << i;
		if (cpu_models[m].level && f->level <= cpu_models[m].level && emu && !f->emu)
			return err_set(-EINVAL, "cpu: model %s needs %s, which the emu engine does not implement "
						"(expected host, max, x86-64 or x86-64-v2 with the emu engine)",
				       cpu_models[m].name, f->name);
		if (cpu_models[m].host && emu && f->emu && !host_has(f))
			removed |= 1ull << i;
	}
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (tok[0] != '+' && tok[0] != '-')
			return bad_feature(tok);
		int i = cpu_model_feature_index(tok + 1);
		if (i < 0)
			return bad_feature(tok);
		if (tok[0] == '+') {
			if (emu && !cpu_features[i].emu)
				return err_set(-EINVAL, "cpu: the emu engine does not implement %s (%s), so it cannot "
							"be added", cpu_features[i].name, cpu_features[i].what);
			removed &= ~(1ull << i);
			minus &= ~(1ull << i);
			added |= 1ull << i;
		} else {
			removed |= 1ull << i;
			minus |= 1ull << i;
			added &= ~(1ull << i);
		}
	}
	out->removed = removed;
	/* Canonical spelling: the model, then the flags added and removed in
	 * table order, so that two spellings of one model compare equal. */
	size_t n = (size_t)snprintf(out->spec, sizeof(out->spec), "%s", cpu_models[m].name);
	for (unsigned i = 0; i < cpu_n_features && n < sizeof(out->spec); i++) {
		if ((added >> i) & 1)
			n += (size_t)snprintf(out->spec + n, sizeof(out->spec) - n, ",+%s", cpu_features[i].name);
		else if ((minus >> i) & 1)
			n += (size_t)snprintf(out->spec + n, sizeof(out->spec) - n, ",-%s", cpu_features[i].name);
	}
	return 0;
}

bool cpu_model_has(const struct cpu_model *m, uint32_t leaf, uint32_t subleaf, unsigned reg, unsigned bit)
{
	if (!m || !m->removed)
		return true;
	/* Every flag in the table is in subleaf 0; only leaf 7 has subleaves. */
	if (leaf != 7)
		subleaf = 0;
	for (unsigned i = 0; i < cpu_n_features; i++) {
		const struct cpu_feature *f = &cpu_features[i];
		if (f->leaf == leaf && f->subleaf == subleaf && f->reg == reg && f->bit == bit)
			return !((m->removed >> i) & 1);
	}
	return true;
}

void cpu_model_filter(const struct cpu_model *m, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	if (!m || !m->removed)
		return;
	/* Every flag in the table is in subleaf 0; only leaf 7 has subleaves. */
	if (leaf != 7)
		subleaf = 0;
	for (unsigned i = 0; i < cpu_n_features; i++) {
		const struct cpu_feature *f = &cpu_features[i];
		if (((m->removed >> i) & 1) && f->leaf == leaf && f->subleaf == subleaf)
			regs[f->reg] &= ~(1u << f->bit);
	}
}

void cpu_model_print_help(FILE *out)
{
	fputs("CPU models (--cpu MODEL[,+FEATURE,-FEATURE...]):\n", out);
	for (unsigned m = 0; m < N_MODELS; m++)
		fprintf(out, "  %-18s %s\n", cpu_models[m].name, cpu_models[m].what);
	fputs("\nFeatures (CPUID leaf.register[bit]; level: x86-64 psABI level, sys: system feature kept by\n"
	      "every model, extra: an instruction set no level names; emu: implemented by the emu engine):\n", out);
	static const char regs[] = "ABCD";
	for (unsigned i = 0; i < cpu_n_features; i++) {
		const struct cpu_feature *f = &cpu_features[i];
		char where[32], level[8];
		snprintf(where, sizeof(where), "%#x.E%cX[%u]", (unsigned)f->leaf, regs[f->reg], f->bit);
		if (f->level == SYS)
			strcpy(level, "sys");
		else if (f->level == EXTRA)
			strcpy(level, "extra");
		else
			snprintf(level, sizeof(level), "v%u", f->level);
		fprintf(out, "  %-18s %-18s %-5s %-3s %s%s%s\n", f->name, where, level, f->emu ? "emu" : "", f->what,
			strcmp(f->name, f->cpuinfo) ? "; cpuinfo: " : "", strcmp(f->name, f->cpuinfo) ? f->cpuinfo : "");
	}
}
