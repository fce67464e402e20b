/* ACPI processor hot-plug controller (docs/hotplug.md "CPUs"): the
 * register block the DSDT's processor objects (_STA, _EJ0) and its GPE
 * handler read to learn which possible CPUs are present and which
 * changed (ACPI 6.4 sections 8.4 "Declaring Processors", 5.6.6 device
 * object notifications, 6.3.3 _EJx).
 *
 * 32-bit registers, two per bitmap (bit i of the pair is CPU i, the CPU
 * with APIC id and ACPI processor UID i):
 *   +0x00 PRS  read: present CPUs
 *   +0x08 INS  read: CPUs added since the last read (device check); the
 *              dword read clears what it returns
 *   +0x10 RMV  read: CPUs the host asks the OS to release (eject
 *              request); cleared likewise
 *   +0x18 EJ   write: CPUs the OS ejected (a processor's _EJ0 writes its
 *              bit): they are no longer present
 * Every new INS or RMV bit pulses ctx->irq[0], which the board wires to a
 * GPE status bit.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_CPU_HOTPLUG_H
#define VESSEL_HW_CPU_HOTPLUG_H

#include <stdbool.h>
#include <stdint.h>

struct cpu_hotplug;

#define CPU_HOTPLUG_PRS 0x00
#define CPU_HOTPLUG_INS 0x08
#define CPU_HOTPLUG_RMV 0x10
#define CPU_HOTPLUG_EJ  0x18
#define CPU_HOTPLUG_LEN 0x20
#define CPU_HOTPLUG_MAX 64

/* ctx->base[0]: the register block on ctx->pio; ctx->irq[0]: the GPE line. */
extern const struct dev_desc cpu_hotplug_device;

/* CPU cpu is present from power-on (no notification). */
void cpu_hotplug_set_present(struct cpu_hotplug *hp, unsigned cpu);
/* CPU cpu arrived: present, and a device check for the OS. */
void cpu_hotplug_insert(struct cpu_hotplug *hp, unsigned cpu);
/* Asks the OS to release CPU cpu (Notify 3, eject request). */
void cpu_hotplug_request_eject(struct cpu_hotplug *hp, unsigned cpu);
/* Whether the OS ejected CPU cpu since the last call; clears it. */
bool cpu_hotplug_take_eject(struct cpu_hotplug *hp, unsigned cpu);
/* The present CPUs, bit i for CPU i. */
uint64_t cpu_hotplug_present(const struct cpu_hotplug *hp);

#endif
