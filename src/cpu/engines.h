/* The engines behind the engine interface (machine/accel.h): the software
 * CPU (src/cpu/emu) and KVM (src/cpu/kvm). */
#ifndef VESSEL_CPU_ENGINES_H
#define VESSEL_CPU_ENGINES_H

#include "machine/accel.h"

extern const struct accel_ops accel_emu;
extern const struct accel_ops accel_kvm;

/* "emu" or "kvm" -> ops, NULL if unknown. */
const struct accel_ops *accel_find(const char *name);

/* --jit on: the run at which the emu engine translates a block
 * (vm->jit_hot).  Most blocks of a boot run a few times only (init
 * code); translating them costs more than interpreting them. */
#define EMU_JIT_HOT 64

#endif
