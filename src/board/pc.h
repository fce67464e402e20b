/* The PC platform: every device of the machine, created and wired by
 * platform_create() from the board table in src/board/pc.c.  The VM object
 * (src/vmm) calls the entry points below; engines reach the LAPIC through
 * the route of machine/accel.h.
 *
 * Interrupt lines: irq_set_level()/irq_pulse() take a GSI.  GSIs 0-15 are
 * the ISA IRQs: they reach the 8259 pair on the same pin and the I/O APIC
 * on the same pin, except ISA IRQ0 which the I/O APIC sees on pin 2 (the
 * interrupt source override in the MADT, ACPI 6.4 section 5.2.12.5).
 * GSIs 16-23 reach only the I/O APIC (PCI INTx, see pci_intx_gsi()). */
#ifndef VESSEL_BOARD_PC_H
#define VESSEL_BOARD_PC_H

#include "hw/device.h"
#include "hw/intc/lapic.h"
#include "machine/machine.h"

#include <stdbool.h>
#include <stdint.h>

struct timer_service;
struct pic;
struct ioapic;
struct pit;
struct rtc;
struct hpet;
struct acpi_pm;
struct uart;
struct i8042;
struct pci_host;
struct fw_cfg;
struct chardev;
struct port80;
struct pm_timer;
struct reset_ctl;
struct debug_exit;
struct pc_virtio;
struct pci_hotplug;
struct power_supply;
struct power_supply_source;
struct mem_hotplug;

/* Fixed I/O port assignments (docs/devices.md). */
#define PC_PORT_PIC_MASTER  0x20
#define PC_PORT_PIT         0x40
#define PC_PORT_I8042_DATA  0x60
#define PC_PORT_SPEAKER     0x61
#define PC_PORT_I8042_CMD   0x64
#define PC_PORT_RTC         0x70
#define PC_PORT_POST        0x80
#define PC_PORT_PIC_SLAVE   0xa0
#define PC_PORT_DEBUG_EXIT  0xf4
#define PC_PORT_COM1        0x3f8
#define PC_PORT_ELCR        0x4d0
#define PC_PORT_FW_CFG      0x510
#define PC_PORT_ACPI_PM     0x600   /* PM1a_EVT +0, PM1a_CNT +4, PM_TMR +8, GPE0 +0x20 */
#define PC_PORT_PCIHP       0xae00  /* ACPI PCI hot-plug registers (hw/pci_hotplug.h) */
#define PC_PORT_POWER       0xaf00  /* AC adapter and battery registers (hw/power_supply.h) */
#define PC_PORT_CPUHP       0xae20  /* ACPI processor hot-plug registers (hw/cpu_hotplug.h) */
#define PC_PORT_MEMHP       0xa00   /* ACPI memory hot-plug registers (hw/mem_hotplug.h) */
#define PC_PORT_RESET       0xcf9
#define PC_PORT_PCI_CONFIG  0xcf8

/* Lines of the board (struct irq_line n, the irq column of the board
 * table): the GSIs, and the wires between devices. */
enum pc_line {
	PC_LINE_NONE = 0,
	PC_LINE_GSI0 = 1,            /* GSI g is PC_LINE_GSI(g); a bank starts here */
	PC_LINE_PIT = PC_LINE_GSI0 + 24,  /* the PIT's OUT0: IRQ0 unless the HPET's legacy route owns it */
	PC_LINE_RTC,                 /* the RTC's IRQ8, gated the same way */
	PC_LINE_HPET_LEGACY,         /* the HPET's legacy replacement output (the gate) */
	PC_LINE_NMI_MASK,            /* port 0x70 bit 7, from the RTC */
	PC_LINE_PIC_INTR,            /* the 8259 master's INT, to the BSP's LINT0 */
	PC_LINE_GPE_PCIHP,           /* the PCI hot-plug controller, to its GPE status bit */
	PC_LINE_GPE_POWER,           /* the AC adapter and battery, to their GPE status bit */
	PC_LINE_GPE_CPUHP,           /* the processor hot-plug controller, to its GPE status bit */
	PC_LINE_GPE_MEMHP,           /* the memory hot-plug controller, to its GPE status bit */
	PC_LINE_COUNT,
};
#define PC_LINE_GSI(g) (PC_LINE_GSI0 + (g))

#define PC_IRQ_PIT   0
#define PC_IRQ_KBD   1
#define PC_IRQ_COM1  4
#define PC_IRQ_RTC   8
#define PC_IRQ_SCI   9
#define PC_IRQ_AUX   12
#define PC_NUM_GSI   24
#define PC_GPE_PCIHP 1              /* GPE0 bit of PCI hot-plug (\_GPE._E01) */
#define PC_GPE_POWER 2              /* GPE0 bit of the AC adapter and battery (\_GPE._E02) */
#define PC_GPE_CPUHP 4              /* GPE0 bit of processor hot-plug (\_GPE._E04) */
#define PC_GPE_MEMHP 3              /* GPE0 bit of memory hot-plug (\_GPE._E03, in its SSDT) */
_Static_assert(PC_LINE_PIT == PC_LINE_GSI0 + PC_NUM_GSI, "one board line per GSI");

/* Where the ACPI tables live: the BIOS area, which Linux always treats as
 * reserved and scans for the RSDP (ACPI 6.4 section 5.2.5.1). */
#define PC_ACPI_BASE  0xe0000ull
#define PC_ACPI_SIZE  0x20000ull

struct platform_options {
	/* No timer thread: the owner advances the clock and calls
	 * timer_service_poll() (unit tests; deterministic mode later). */
	bool manual_clock;
	uint64_t (*clock)(void *opaque);
	void *clock_opaque;
	/* Console backend for COM1; NULL: output to stdout, no input.
	 * The platform does not take ownership. */
	struct chardev *console;
	/* The host's AC and battery state for the guest's ACPI AC adapter
	 * and battery (docs/power.md); NULL: the DSDT has neither.  The
	 * platform does not take ownership. */
	const struct power_supply_source *power_source;
	/* The DSDT describes a VMBus device (the Hyper-V interface's, src/hv). */
	bool vmbus;
};

/* One row of the board table (src/board/pc.c): a device type, the name its
 * state is saved under, its bases and its lines, and the member of struct
 * platform that keeps the instance for the board's own calls (0: none, for
 * a device the board never calls by name; offset 0 is vm, never a device). */
struct pc_device {
	const char *name;
	const struct dev_desc *type;    /* create, reset, save, load, destroy */
	uint64_t base[DEV_MAX_BASES];
	enum pc_line irq[DEV_MAX_IRQS];
	size_t slot;                    /* offsetof(struct platform, ...), or 0 */
};

#define PC_MAX_DEVICES 24

struct platform {
	struct vm *vm;
	struct timer_service *timers;
	bool vmbus;                     /* platform_options.vmbus */
	struct pic *pic;
	struct ioapic *ioapic;
	struct pit *pit;
	struct rtc *rtc;
	struct hpet *hpet;
	struct acpi_pm *pm;
	struct uart *com1;
	struct i8042 *kbd;
	struct pci_host *pci;
	struct fw_cfg *fw_cfg;
	struct port80 *port80;
	struct reset_ctl *reset;
	struct debug_exit *debug_exit;
	struct chardev *console;
	struct chardev *own_console;  /* created here when options gave none */
	struct pm_timer *pm_timer;
	struct pci_hotplug *pcihp;    /* ACPI hot-plug of PCI bus 0 (docs/hotplug.md) */
	struct power_supply *power;   /* ACPI AC adapter and battery (docs/power.md) */
	const struct power_supply_source *power_source;   /* NULL: not in the DSDT */
	struct cpu_hotplug *cpuhp;    /* ACPI processor hot-plug (docs/hotplug.md "CPUs") */
	struct mem_hotplug *memhp;    /* ACPI memory hot-plug (docs/hotplug.md "Memory") */
	void *devs[PC_MAX_DEVICES];   /* instances, in board-table order */
	unsigned n_devs;
	struct apic_bus apic_bus;     /* what the LAPICs and the I/O APIC send to */
	struct lapic *lapics[MACHINE_MAX_CPUS];
	bool hpet_legacy;             /* HPET legacy replacement: PIT and RTC lose IRQ0/IRQ8 */
	bool nmi_masked;              /* port 0x70 bit 7 */
	bool pit_out, rtc_out;        /* what the PIT and RTC drive behind the gate */
	uint64_t rsdp_addr;
	uint64_t facs_addr;           /* the FACS, whose waking vector S3 resumes at */
	uint8_t gsi_level[PC_NUM_GSI];
	unsigned snap_registered;     /* snapshot devices registered, in order */
	struct pc_virtio *virtio;     /* virtio functions from the configuration (pc_virtio.c) */
};

/* Also turns vm->dev_lock into a recursive mutex (see platform_intr_ack). */
int platform_create(struct vm *vm);
int platform_create_opts(struct vm *vm, const struct platform_options *opts);
void platform_destroy(struct vm *vm);
/* Devices back to their power-on state, for a guest reboot. */
void platform_reset(struct vm *vm);
/* Guest-physical address of the RSDP (also found by the BIOS-area scan). */
uint64_t platform_rsdp_address(struct vm *vm);
/* ACPI fixed power button press (ACPI 6.4 section 4.8.2.2.1.1); also
 * wakes a suspended machine. */
void platform_press_power_button(struct vm *vm);
/* ACPI S3 (src/hw/pc_power.c, docs/power.md). */
/* Fixed sleep button press (4.8.2.2.2); also wakes a suspended machine. */
void platform_press_sleep_button(struct vm *vm);
/* The FACS's guest-physical address (its waking vector at +12). */
uint64_t platform_facs_address(struct vm *vm);
/* The processors have stopped in S3: what loses power goes back to its
 * power-on state (local APICs, I/O APIC, 8259s, PIT, HPET); memory and
 * the RTC stay.  Returns the wake source already pending (a button
 * pressed, the alarm fired while the processors were stopping), or
 * VM_WAKE_NONE. */
enum vm_wake_reason platform_suspend(struct vm *vm);
/* The machine leaves S3: the PM1 block shows WAK_STS and the wake
 * source.  The vCPUs are the caller's (reset, then the boot processor at
 * the reset vector). */
void platform_wake(struct vm *vm, enum vm_wake_reason reason);
/* The front-panel NMI: a pulse on every LAPIC's LINT1, where the MADT says
 * NMI is wired; takes vm->dev_lock. */
void platform_inject_nmi(struct vm *vm);

/* Interrupt lines (see the top of this file).  Call with vm->dev_lock held. */
void irq_set_level(struct vm *vm, unsigned gsi, bool level);
void irq_pulse(struct vm *vm, unsigned gsi);

/* The board table, and a dev_ctx for one of its rows (buses, bases,
 * lines, clock, lock and request callback of this platform). */
extern const struct pc_device pc_devices[];
extern const unsigned pc_n_devices;
void platform_dev_ctx(struct platform *p, const struct pc_device *row, struct dev_ctx *ctx);
/* The line object for board line n (enum pc_line). */
struct irq_line platform_line(struct platform *p, enum pc_line n);

/* The vm->intr_ack hook.  Takes vm->dev_lock, which platform_create()
 * makes recursive, so callers may hold it (the KVM engine does) or not
 * (the emu engine). */
int platform_intr_ack(struct vcpu *vcpu);
/* Re-evaluates whether vCPU 0 has a PIC interrupt to take (lock held). */
void platform_pic_changed(struct vm *vm);

#endif
