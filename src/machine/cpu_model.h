/* CPU models (`vessel run --cpu`, the manifest's "cpu"): one table of the
 * CPUID feature flags a user may name, one table of named models, and the
 * resolved model a VM runs with -- the set of flags it removes from what
 * its engine offers.  Every engine and table builder that reports a
 * feature asks cpu_model_has() (docs/isa.md "CPU models"). */
#ifndef VESSEL_MACHINE_CPU_MODEL_H
#define VESSEL_MACHINE_CPU_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum cpu_reg { CPU_EAX, CPU_EBX, CPU_ECX, CPU_EDX };

/* One CPUID feature flag (SDM vol. 2A, CPUID, tables 3-8 to 3-11). */
struct cpu_feature {
	const char *name;      /* as `--cpu` spells it (QEMU's spelling) */
	const char *cpuinfo;   /* as Linux's /proc/cpuinfo spells it */
	uint32_t leaf;
	uint8_t subleaf, reg, bit;
	/* x86-64 psABI micro-architecture level that requires it (1..4);
	 * CPU_LEVEL_SYSTEM: a system feature no level names (kept by every
	 * model); CPU_LEVEL_EXTRA: an instruction set no level names. */
	uint8_t level;
	bool emu;              /* the emu engine implements it */
	const char *what;
};
#define CPU_LEVEL_SYSTEM 0
#define CPU_LEVEL_EXTRA 9

extern const struct cpu_feature cpu_features[];
extern const unsigned cpu_n_features;

/* The resolved model: removed bit i = cpu_features[i] is not offered.
 * All zero (the default) is "max": what the engine offers today. */
struct cpu_model {
	uint64_t removed;
	char spec[1024];       /* canonical spelling, "" for the default: room for every flag */
};

/* Parses "host|max|NAME[,+feature,-feature...]".  emu: the engine is
 * the emu engine, which refuses to add a flag it does not implement.
 * Returns 0 or -EINVAL with an err_set() message naming the valid ones. */
int cpu_model_parse(const char *spec, bool emu, struct cpu_model *out);
/* Whether the flag at CPUID leaf/subleaf/reg/bit survives the model;
 * true for flags the table does not name. */
bool cpu_model_has(const struct cpu_model *m, uint32_t leaf, uint32_t subleaf, unsigned reg, unsigned bit);
/* Clears the removed flags of one CPUID leaf's output. */
void cpu_model_filter(const struct cpu_model *m, uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);
/* Index of a feature by either spelling, or -1. */
int cpu_model_feature_index(const char *name);
/* `vessel run --cpu help`: the models and the feature names. */
void cpu_model_print_help(FILE *out);

#endif
