/* The PC platform: the board table of its devices, the wiring of their
 * lines, the ACPI tables and the CMOS memory size (see pc.h). */
#include "board/pc.h"

#include "acpi/memhp.h"
#include "acpi/tables.h"
#include "hw/acpi_pm.h"
#include "hw/chardev.h"
#include "hw/debug_exit.h"
#include "hw/fw_cfg.h"
#include "hw/hpet.h"
#include "hw/i8042.h"
#include "hw/intc/ioapic.h"
#include "hw/intc/lapic.h"
#include "hw/intc/pic.h"
#include "hw/pci.h"
#include "hw/mem_hotplug.h"
#include "hw/pci_hotplug.h"
#include "hw/cpu_hotplug.h"
#include "hw/pit.h"
#include "hw/pm_timer.h"
#include "hw/power_supply.h"
#include "hw/port80.h"
#include "hw/reset_ctl.h"
#include "hw/rtc.h"
#include "machine/compound.h"
#include "machine/timer.h"
#include "machine/snap_state.h"
#include "hw/uart.h"
#include "machine/device_registry.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int platform_intr_ack(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	struct platform *p = vm->platform;
	if (!p || !vcpu->lapic)
		return -1;
	pthread_mutex_lock(&vm->dev_lock);   /* recursive: the caller may hold it */
	int v = lapic_ack(vcpu->lapic);
	if (v < 0 && vcpu->id == 0 && p->pic && pic_has_output(p->pic) && lapic_accepts_pic(vcpu->lapic))
		v = pic_read_irq(p->pic);   /* ExtINT: the 8259 supplies the vector (INTA cycle) */
	/* More may be waiting (the engine clears VCPU_EVT_INTR when it acks). */
	if (lapic_has_interrupt(vcpu->lapic) ||
	    (vcpu->id == 0 && p->pic && pic_has_output(p->pic) && lapic_accepts_pic(vcpu->lapic)))
		vcpu_signal(vcpu, VCPU_EVT_INTR);
	pthread_mutex_unlock(&vm->dev_lock);
	return v;
}

void platform_pic_changed(struct vm *vm)
{
	struct platform *p = vm->platform;
	if (!p || !p->pic || !vm->n_vcpus || !vm->vcpus[0] || !vm->vcpus[0]->lapic)
		return;
	if (pic_has_output(p->pic) && lapic_accepts_pic(vm->vcpus[0]->lapic))
		vcpu_signal(vm->vcpus[0], VCPU_EVT_INTR);
}

void platform_press_power_button(struct vm *vm)
{
	if (!vm->platform || !vm->platform->pm)
		return;
	pthread_mutex_lock(&vm->dev_lock);
	acpi_pm_press_power_button(vm->platform->pm);
	pthread_mutex_unlock(&vm->dev_lock);
	/* A sleeping machine wakes whatever PWRBTN_EN says (4.8.3.1.1). */
	vm_request_wake(vm, VM_WAKE_POWER_BUTTON);
}

void platform_inject_nmi(struct vm *vm)
{
	pthread_mutex_lock(&vm->dev_lock);
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		struct lapic *l = vm->vcpus[i] ? vm->vcpus[i]->lapic : NULL;
		if (l) {
			lapic_set_lint(l, 1, true);
			lapic_set_lint(l, 1, false);
		}
	}
	pthread_mutex_unlock(&vm->dev_lock);
}

uint64_t platform_rsdp_address(struct vm *vm)
{
	return vm->platform ? vm->platform->rsdp_addr : 0;
}

static int numa_range_add(void *opaque, unsigned node, const struct gmem_region *r, uint64_t offset, uint64_t len)
{
	struct acpi_numa_info *info = opaque;
	if (r->hotplug)
		return 0;   /* inside the node's hot-pluggable range, listed below */
	if (info->n_ranges >= ACPI_MAX_NUMA_RANGES)
		return err_set(-E2BIG, "NUMA: too many memory ranges");
	info->ranges[info->n_ranges].base = r->gpa + offset;
	info->ranges[info->n_ranges].size = len;
	info->ranges[info->n_ranges++].node = node;
	return 0;
}

/* SRAT and SLIT from the machine's virtual NUMA nodes (docs/numa.md):
 * vCPU i has APIC id i, in node cpu_node[i] (every possible CPU). */
static int pc_write_numa(struct acpi_builder *b, struct vm *vm, const uint8_t cpu_node[ACPI_MAX_CPUS])
{
	const struct numa_config *c = &vm->numa;
	struct acpi_numa_info *info = calloc(1, sizeof(*info));
	if (!info)
		return err_set(-ENOMEM, "out of memory");
	info->n_nodes = c->n_nodes;
	memcpy(info->cpu_node, cpu_node, sizeof(info->cpu_node));
	for (unsigned i = 0; i < c->n_nodes; i++)
		for (unsigned j = 0; j < c->n_nodes; j++)
			info->distance[i][j] = c->distance[i][j];
	int rc = vnuma_for_each_range(c, &vm->mem, numa_range_add, info);
	/* Each node's share of the space kept for memory hot-add. */
	for (unsigned i = 0; rc == 0 && vm->mem.hp_size && i < c->n_nodes; i++) {
		uint64_t base, size;
		vnuma_hotplug_share(c, &vm->mem, i, &base, &size);
		if (!size)
			continue;
		if (info->n_ranges >= ACPI_MAX_NUMA_RANGES)
			rc = err_set(-E2BIG, "NUMA: too many memory ranges");
		else
			info->ranges[info->n_ranges++] = (typeof(info->ranges[0])){ base, size, i, true };
	}
	if (rc == 0)
		rc = acpi_build_srat(b, vm->n_vcpus, info);
	if (rc == 0)
		rc = acpi_build_slit(b, info);
	free(info);
	return rc;
}

/* The memory hot-plug SSDT: one device per block of the hot-pluggable
 * range, each with the node whose share holds it (docs/hotplug.md
 * "Memory"). */
static int pc_write_memhp(struct acpi_builder *b, struct vm *vm)
{
	struct acpi_memhp_info *info = calloc(1, sizeof(*info));
	if (!info)
		return err_set(-ENOMEM, "out of memory");
	*info = (struct acpi_memhp_info){ .port = PC_PORT_MEMHP, .gpe = PC_GPE_MEMHP, .base = vm->mem.hp_base,
					  .block_size = GMEM_HOTPLUG_BLOCK,
					  .n_slots = (unsigned)(vm->mem.hp_size / GMEM_HOTPLUG_BLOCK),
					  .numa = vm->numa.n_nodes > 0 };
	for (unsigned i = 0; i < vm->numa.n_nodes; i++) {
		uint64_t base, size;
		vnuma_hotplug_share(&vm->numa, &vm->mem, i, &base, &size);
		for (uint64_t a = base; a < base + size; a += GMEM_HOTPLUG_BLOCK)
			info->slot_node[(a - vm->mem.hp_base) / GMEM_HOTPLUG_BLOCK] = (uint8_t)i;
	}
	int rc = acpi_add_memhp_ssdt(b, info);
	free(info);
	return rc;
}

static int platform_write_acpi(struct vm *vm, struct platform *p)
{
	uint8_t *area = gmem_ptr(&vm->mem, PC_ACPI_BASE, PC_ACPI_SIZE);
	if (!area)
		return err_set(-EFAULT, "no guest RAM at %#llx for the ACPI tables",
			       (unsigned long long)PC_ACPI_BASE);
	/* Each possible CPU's node, for its processor object's _PXM. */
	uint8_t cpu_node[ACPI_MAX_CPUS] = { 0 };
	for (unsigned i = 0; vm->numa.n_nodes && i < vm->n_vcpus && i < ACPI_MAX_CPUS; i++)
		cpu_node[i] = (uint8_t)vnuma_node_of_cpu(&vm->numa, i);
	struct acpi_platform_info info = {
		.n_cpus = vm->n_vcpus,
		.lapic_addr = GMEM_LAPIC_BASE,
		.ioapic_addr = GMEM_IOAPIC_BASE,
		.hpet_addr = GMEM_HPET_BASE,
		.hpet_block_id = HPET_CAP_ID_LOW,
		.pm_base = PC_PORT_ACPI_PM,
		.gpe0_len = ACPI_GPE0_LEN,
		.sci_irq = PC_IRQ_SCI,
		.slp_typ_s5 = ACPI_SLP_TYP_S5,
		.slp_typ_s3 = ACPI_SLP_TYP_S3,
		.slp_typ_s4 = ACPI_SLP_TYP_S4,
		.reset_port = PC_PORT_RESET,
		.reset_value = RESET_CTL_VALUE,
		.ecam_base = GMEM_ECAM_BASE,
		.ecam_end_bus = (uint8_t)((GMEM_ECAM_SIZE >> 20) - 1),
		.pci_mmio_base = GMEM_PCI_MMIO_BASE,
		.pci_mmio_end = GMEM_IOAPIC_BASE - 1,
		.com1_port = PC_PORT_COM1,
		.com1_irq = PC_IRQ_COM1,
		.fw_cfg_port = PC_PORT_FW_CFG,
		.pcihp_port = PC_PORT_PCIHP,
		.pcihp_gpe = PC_GPE_PCIHP,
		.power_port = p->power_source ? PC_PORT_POWER : 0,
		.power_gpe = PC_GPE_POWER,
		.cpuhp_port = vm->cpu_hotplug ? PC_PORT_CPUHP : 0,
		.cpuhp_gpe = PC_GPE_CPUHP,
		.cpu_present = cpu_hotplug_present(p->cpuhp),
		.intx_gsi = pci_intx_gsi,
		.vmbus = p->vmbus,
		.cpu_node = vm->numa.n_nodes ? cpu_node : NULL,
	};
	struct acpi_builder b;
	acpi_builder_init(&b, area, PC_ACPI_BASE, PC_ACPI_SIZE);
	int rc = acpi_build_pc_tables(&b, &info);
	if (rc == 0 && vm->numa.n_nodes)
		rc = pc_write_numa(&b, vm, cpu_node);
	if (rc == 0 && vm->mem.hp_size)
		rc = pc_write_memhp(&b, vm);
	if (rc == 0)
		rc = acpi_builder_finish(&b);
	if (rc < 0)
		return err_wrap(rc, "ACPI tables");
	p->rsdp_addr = b.rsdp_gpa;
	p->facs_addr = b.facs_gpa;
	return 0;
}

static uint64_t low_ram(const struct guest_memory *mem)
{
	return mem->ram_size < GMEM_LOW_RAM_END ? mem->ram_size : GMEM_LOW_RAM_END;
}

/* ---- the board table ---- */

/* Every device of the PC but the per-CPU local APICs, in the order their
 * state is saved (docs/devices.md "Snapshots") and reset.  A new device is
 * one row here (docs/architecture.md "How to add a device"). */
const struct pc_device pc_devices[] = {
	{ "pic", &pic_device, { PC_PORT_PIC_MASTER, PC_PORT_PIC_SLAVE, PC_PORT_ELCR }, { PC_LINE_PIC_INTR },
	  offsetof(struct platform, pic) },
	{ "ioapic", &ioapic_device, { GMEM_IOAPIC_BASE }, { 0 }, offsetof(struct platform, ioapic) },
	{ "pit", &pit_device, { PC_PORT_PIT, PC_PORT_SPEAKER }, { PC_LINE_PIT }, offsetof(struct platform, pit) },
	{ "rtc", &rtc_device, { PC_PORT_RTC }, { PC_LINE_RTC, PC_LINE_NMI_MASK }, offsetof(struct platform, rtc) },
	{ "hpet", &hpet_device, { GMEM_HPET_BASE }, { PC_LINE_GSI0, PC_LINE_HPET_LEGACY },
	  offsetof(struct platform, hpet) },
	{ "acpi-pm", &acpi_pm_device, { PC_PORT_ACPI_PM }, { PC_LINE_GSI(PC_IRQ_SCI) }, offsetof(struct platform, pm) },
	{ "uart.com1", &uart_device, { PC_PORT_COM1 }, { PC_LINE_GSI(PC_IRQ_COM1) }, offsetof(struct platform, com1) },
	{ "i8042", &i8042_device, { PC_PORT_I8042_DATA, PC_PORT_I8042_CMD },
	  { PC_LINE_GSI(PC_IRQ_KBD), PC_LINE_GSI(PC_IRQ_AUX) }, offsetof(struct platform, kbd) },
	{ "pci", &pci_host_device, { PC_PORT_PCI_CONFIG, GMEM_ECAM_BASE, GMEM_ECAM_SIZE }, { PC_LINE_GSI0 },
	  offsetof(struct platform, pci) },
	{ "fw-cfg", &fw_cfg_device, { PC_PORT_FW_CFG }, { 0 }, offsetof(struct platform, fw_cfg) },
	{ "port80", &port80_device, { PC_PORT_POST }, { 0 }, offsetof(struct platform, port80) },
	{ "reset", &reset_ctl_device, { PC_PORT_RESET }, { 0 }, offsetof(struct platform, reset) },
	{ "acpi-pmtmr", &pm_timer_device, { PC_PORT_ACPI_PM + ACPI_PM_TMR_OFF }, { 0 },
	  offsetof(struct platform, pm_timer) },
	{ "debug-exit", &debug_exit_device, { PC_PORT_DEBUG_EXIT }, { 0 }, offsetof(struct platform, debug_exit) },
	{ "pci-hotplug", &pci_hotplug_device, { PC_PORT_PCIHP }, { PC_LINE_GPE_PCIHP },
	  offsetof(struct platform, pcihp) },
	{ "power-supply", &power_supply_device, { PC_PORT_POWER }, { PC_LINE_GPE_POWER },
	  offsetof(struct platform, power) },
	{ "cpu-hotplug", &cpu_hotplug_device, { PC_PORT_CPUHP }, { PC_LINE_GPE_CPUHP },
	  offsetof(struct platform, cpuhp) },
	{ "mem-hotplug", &mem_hotplug_device, { PC_PORT_MEMHP }, { PC_LINE_GPE_MEMHP },
	  offsetof(struct platform, memhp) },
};
const unsigned pc_n_devices = sizeof(pc_devices) / sizeof(pc_devices[0]);
_Static_assert(sizeof(pc_devices) / sizeof(pc_devices[0]) <= PC_MAX_DEVICES, "PC_MAX_DEVICES too small");

/* A GSI as the wiring of pc.h says: the 8259 pair for ISA IRQs, the I/O
 * APIC for all (ISA IRQ0 on pin 2). */
static void platform_gsi_set(struct platform *p, unsigned gsi, bool level)
{
	if (gsi >= PC_NUM_GSI)
		return;
	p->gsi_level[gsi] = level;
	if (gsi < 16 && p->pic)
		pic_set_irq(p->pic, gsi, level);
	/* ISA IRQ0 is wired to I/O APIC pin 2 (MADT interrupt source override). */
	unsigned pin = gsi == 0 ? 2 : gsi;
	if (gsi == 2)
		return;   /* the cascade: no ISA device drives IRQ2 */
	if (p->ioapic)
		ioapic_set_irq(p->ioapic, pin, level);
}

/* The HPET's legacy replacement route takes IRQ0 and IRQ8 from the PIT
 * and the RTC (IA-PC HPET 1.0a, 2.3.9.2.1): their outputs reach the GSIs
 * only while it is off, and take the lines back when it goes off. */
static void platform_set_legacy(struct platform *p, bool on)
{
	bool was = p->hpet_legacy;
	p->hpet_legacy = on;
	if (was && !on) {
		platform_gsi_set(p, PC_IRQ_PIT, p->pit_out);
		platform_gsi_set(p, PC_IRQ_RTC, p->rtc_out);
	}
}

static void platform_line_set(void *opaque, unsigned n, bool level)
{
	struct platform *p = opaque;
	switch (n) {
	case PC_LINE_PIT:
		p->pit_out = level;
		if (!p->hpet_legacy)
			platform_gsi_set(p, PC_IRQ_PIT, level);
		break;
	case PC_LINE_RTC:
		/* The RTC's interrupt is also the RTC wake event (RTC_STS). */
		if (level && !p->rtc_out && p->pm && acpi_pm_rtc_event(p->pm))
			vm_request_wake(p->vm, VM_WAKE_ALARM);
		p->rtc_out = level;
		if (!p->hpet_legacy)
			platform_gsi_set(p, PC_IRQ_RTC, level);
		break;
	case PC_LINE_HPET_LEGACY:
		platform_set_legacy(p, level);
		break;
	case PC_LINE_NMI_MASK:
		p->nmi_masked = level;
		break;
	case PC_LINE_PIC_INTR:
		platform_pic_changed(p->vm);
		break;
	case PC_LINE_GPE_PCIHP:
	case PC_LINE_GPE_MEMHP:
		/* A latch: the status bit stays until the OS clears it. */
		if (level && p->pm)
			acpi_pm_raise_gpe(p->pm, n == PC_LINE_GPE_PCIHP ? PC_GPE_PCIHP : PC_GPE_MEMHP);
		break;
	case PC_LINE_GPE_POWER:
		if (level && p->pm)
			acpi_pm_raise_gpe(p->pm, PC_GPE_POWER);
		break;
	case PC_LINE_GPE_CPUHP:
		if (level && p->pm)
			acpi_pm_raise_gpe(p->pm, PC_GPE_CPUHP);
		break;
	default:
		if (n >= PC_LINE_GSI0 && n < PC_LINE_GSI0 + PC_NUM_GSI)
			platform_gsi_set(p, n - PC_LINE_GSI0, level);
		break;
	}
}

struct irq_line platform_line(struct platform *p, enum pc_line n)
{
	if (n == PC_LINE_NONE)
		return (struct irq_line){ 0 };
	return (struct irq_line){ .set = platform_line_set, .opaque = p, .n = n };
}

static void platform_request(void *opaque, enum dev_request req, int value)
{
	struct vm *vm = opaque;
	switch (req) {
	case DEV_REQ_RESET:
		vm_request_stop(vm, VM_STOP_RESET);
		break;
	case DEV_REQ_POWEROFF:
		vm_request_stop(vm, VM_STOP_POWEROFF);
		break;
	case DEV_REQ_HIBERNATE:
		vm_request_stop(vm, VM_STOP_HIBERNATE);
		break;
	case DEV_REQ_SUSPEND:
		vm_request_stop(vm, VM_STOP_SUSPEND);
		break;
	case DEV_REQ_STOP:
		/* First writer wins, like the stop reason. */
		if (atomic_load(&vm->stop_reason) == VM_STOP_NONE)
			vm->debug_exit_value = value;
		vm_request_stop(vm, VM_STOP_DEBUG_EXIT);
		break;
	}
}

void platform_dev_ctx(struct platform *p, const struct pc_device *row, struct dev_ctx *ctx)
{
	struct vm *vm = p->vm;
	*ctx = (struct dev_ctx){
		.name = row->name, .pio = &vm->pio, .mmio = &vm->mmio, .clock = p->timers,
		.lock = &vm->dev_lock, .request = platform_request, .request_opaque = vm,
	};
	memcpy(ctx->base, row->base, sizeof(ctx->base));
	for (unsigned i = 0; i < DEV_MAX_IRQS; i++)
		ctx->irq[i] = platform_line(p, row->irq[i]);
	if (row->type == &uart_device)
		ctx->arg = p->console;
	else if (row->type == &ioapic_device)
		ctx->arg = &p->apic_bus;
	else if (row->type == &power_supply_device)
		ctx->arg = (void *)p->power_source;
}

/* ---- the APIC bus ---- */

static void apic_bus_deliver(void *opaque, const struct apic_msg *m, struct lapic *src)
{
	struct platform *p = opaque;
	apic_deliver(p->lapics, p->vm->n_vcpus, m, src);
}

static void apic_bus_eoi(void *opaque, uint8_t vector)
{
	struct platform *p = opaque;
	if (p->ioapic)
		ioapic_eoi(p->ioapic, vector);
}

static void apic_bus_pic_changed(void *opaque)
{
	struct platform *p = opaque;
	platform_pic_changed(p->vm);
}

static int platform_devices_create(struct vm *vm, struct platform *p)
{
	p->apic_bus = (struct apic_bus){ .deliver = apic_bus_deliver, .eoi = apic_bus_eoi,
					 .pic_changed = apic_bus_pic_changed, .opaque = p, .lock = &vm->dev_lock };
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		if (!v)
			return err_set(-EINVAL, "vCPU %u does not exist", i);
		if (!(v->lapic = p->lapics[i] = lapic_new(v, p->timers, &p->apic_bus)))
			return -ENOMEM;
	}
	int rc;
	if (vm->n_vcpus && (rc = lapic_mmio_register(&vm->mmio, GMEM_LAPIC_BASE, p->lapics[0])) < 0)
		return rc;
	for (unsigned i = 0; i < pc_n_devices; i++) {
		const struct pc_device *row = &pc_devices[i];
		struct dev_ctx ctx;
		platform_dev_ctx(p, row, &ctx);
		void *dev = row->type->create(&ctx);
		if (!dev)
			return *err_msg() ? -EINVAL : -ENOMEM;
		p->devs[p->n_devs++] = dev;
		if (row->slot)
			*(void **)((char *)p + row->slot) = dev;
	}
	pci_host_set_cf9(p->pci, &reset_ctl_ops, p->reset);
	uint64_t low = low_ram(&vm->mem);
	rtc_set_memory_size(p->rtc, low, vm->mem.ram_size - low);
	if ((rc = fw_cfg_add_u64(p->fw_cfg, FW_CFG_RAM_SIZE, vm->mem.ram_size)) < 0 ||
	    (rc = fw_cfg_add_u16(p->fw_cfg, FW_CFG_NB_CPUS, (uint16_t)vm->n_vcpus)) < 0 ||
	    (rc = fw_cfg_add_u16(p->fw_cfg, FW_CFG_MAX_CPUS, (uint16_t)vm->n_vcpus)) < 0)
		return rc;
	return 0;
}

/* ---- snapshots (docs/devices.md "Snapshots") ---- */

/* The platform's own state, version 1: HPET legacy replacement, the NMI
 * mask of port 0x70 and the level of every GSI as last driven. */
static int64_t platform_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct platform *p = opaque;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_u8(&w, p->hpet_legacy);
	hw_snap_u8(&w, p->nmi_masked);
	hw_snap_bytes(&w, p->gsi_level, PC_NUM_GSI);
	return hw_snap_end(&w);
}

static int platform_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct platform *p = opaque;
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "platform", 1, 2 + PC_NUM_GSI);
	if (rc < 0)
		return rc;
	p->hpet_legacy = hw_snap_get_bool(&r);
	p->nmi_masked = hw_snap_get_bool(&r);
	for (unsigned i = 0; i < PC_NUM_GSI; i++)
		p->gsi_level[i] = hw_snap_get_bool(&r);
	return 0;
}

/* Whether row i's state goes into snapshots: the AC adapter and battery
 * only when the guest has them (--host-power-status), so that a snapshot
 * without them -- of a run without the option, or of an older vessel --
 * restores into a run without it. */
static bool platform_row_saved(const struct platform *p, unsigned i)
{
	if (!pc_devices[i].type->save)
		return false;
	return pc_devices[i].type != &power_supply_device || p->power_source;
}

static int platform_snapshot_register(struct vm *vm, struct platform *p)
{
	/* "vm-clock" first: the writer keeps registration order and the
	 * reader loads in file order, so the clock is set before any device
	 * re-arms a deadline on it. */
	int rc;
	if ((rc = snapshot_register_device("vm-clock", timer_service_snapshot_save, timer_service_snapshot_load,
					   p->timers)) < 0)
		return rc;
	p->snap_registered++;
	if ((rc = snapshot_register_device("platform", platform_snapshot_save, platform_snapshot_load, p)) < 0)
		return rc;
	p->snap_registered++;
	for (unsigned i = 0; i < p->n_devs; i++) {
		const struct pc_device *row = &pc_devices[i];
		if (!platform_row_saved(p, i))
			continue;
		if ((rc = snapshot_register_device(row->name, row->type->save, row->type->load, p->devs[i])) < 0)
			return rc;
		p->snap_registered++;
	}
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		char name[SNAPSHOT_DEVICE_NAME_MAX];
		snprintf(name, sizeof(name), "lapic.%u", i);
		if ((rc = snapshot_register_device(name, lapic_snapshot_save, lapic_snapshot_load, p->lapics[i])) < 0)
			return rc;
		p->snap_registered++;
	}
	return 0;
}

/* Unregisters exactly the names registered, in the same order. */
static void platform_snapshot_unregister(struct vm *vm, struct platform *p)
{
	unsigned n = p->snap_registered;
	const char *fixed[2 + PC_MAX_DEVICES];
	unsigned n_fixed = 0;
	fixed[n_fixed++] = "vm-clock";
	fixed[n_fixed++] = "platform";
	for (unsigned i = 0; i < p->n_devs; i++)
		if (platform_row_saved(p, i))
			fixed[n_fixed++] = pc_devices[i].name;
	for (unsigned i = 0; i < n_fixed && n; i++, n--)
		snapshot_unregister_device(fixed[i]);
	for (unsigned i = 0; i < vm->n_vcpus && n; i++, n--) {
		char name[SNAPSHOT_DEVICE_NAME_MAX];
		snprintf(name, sizeof(name), "lapic.%u", i);
		snapshot_unregister_device(name);
	}
	p->snap_registered = 0;
}

/* The vm->handle_msr hook: the APIC MSRs take the route to the LAPIC
 * (machine/accel.h).  -EINVAL is the architecture's #GP(0), which the
 * engine raises for an unhandled access; -ENOENT: not an APIC MSR. */
static bool platform_handle_msr(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	int rc = vcpu_apic_msr(vcpu, exit->msr.index, exit->msr.is_write, &exit->msr.data);
	exit->msr.handled = rc == 0;
	return rc != -ENOENT;
}

int platform_create_opts(struct vm *vm, const struct platform_options *opts)
{
	/* The device entry points are called both with vm->dev_lock held
	 * (device callbacks; the KVM engine around intr_ack) and without it
	 * (the emu engine's interrupt, MSR and CR8 hooks).  A recursive lock
	 * lets each of them take it whatever the caller did.  Nothing else
	 * uses the lock yet: no thread runs before the platform exists. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_destroy(&vm->dev_lock);
	pthread_mutex_init(&vm->dev_lock, &attr);
	pthread_mutexattr_destroy(&attr);

	struct platform *p = calloc(1, sizeof(*p));
	if (!p)
		return err_set(-ENOMEM, "out of memory");
	p->vm = vm;
	vm->platform = p;
	int rc = -ENOMEM;
	p->timers = timer_service_new(&vm->dev_lock);
	if (!p->timers)
		goto fail;
	if (opts && opts->clock)
		timer_service_set_clock(p->timers, opts->clock, opts->clock_opaque);
	timer_service_set_coalesce(p->timers, vm->compound & COMPOUND_TIMER);
	p->console = opts ? opts->console : NULL;
	p->power_source = opts ? opts->power_source : NULL;
	p->vmbus = opts && opts->vmbus;
	if (!p->console) {
		p->own_console = chardev_fd_new(-1, STDOUT_FILENO);
		if (!p->own_console)
			goto fail;
		p->console = p->own_console;
	}
	pthread_mutex_lock(&vm->dev_lock);
	rc = platform_devices_create(vm, p);
	/* The CPUs plugged in at power-on (docs/hotplug.md "CPUs"). */
	for (unsigned i = 0; rc == 0 && i < vm->n_vcpus; i++)
		if (!atomic_load(&vm->vcpus[i]->absent))
			cpu_hotplug_set_present(p->cpuhp, i);
	pthread_mutex_unlock(&vm->dev_lock);
	if (rc < 0) {
		if (rc == -ENOMEM && !*err_msg())
			err_set(rc, "out of memory");
		goto fail;
	}
	if ((rc = platform_write_acpi(vm, p)) < 0)
		goto fail;
	if ((rc = platform_snapshot_register(vm, p)) < 0)
		goto fail;
	vm->intr_ack = platform_intr_ack;
	vm->handle_msr = platform_handle_msr;
	vm->apic_ops = &lapic_apic_ops;
	if (!(opts && opts->manual_clock) && (rc = timer_service_start(p->timers)) < 0)
		goto fail;
	log_debug("platform", "PC created: %u CPUs, RSDP at %#llx", vm->n_vcpus, (unsigned long long)p->rsdp_addr);
	return 0;
fail:
	platform_destroy(vm);
	return rc;
}

int platform_create(struct vm *vm)
{
	/* Host time and the timer thread.  Deterministic mode needs a clock
	 * from the engine's instruction count: platform_create_opts() with
	 * clock and manual_clock, and timer_service_poll() from its owner. */
	struct platform_options opts = { 0 };
	return platform_create_opts(vm, &opts);
}

void platform_destroy(struct vm *vm)
{
	struct platform *p = vm->platform;
	if (!p)
		return;
	platform_snapshot_unregister(vm, p);
	/* Stop the timer thread first: nothing may fire into freed devices. */
	timer_service_free(p->timers);
	p->timers = NULL;
	pthread_mutex_lock(&vm->dev_lock);
	/* Each device releases its own bus ranges, so the buses never point
	 * at freed memory. */
	for (unsigned i = p->n_devs; i-- > 0;) {
		pc_devices[i].type->destroy(p->devs[i]);
		if (pc_devices[i].slot)
			*(void **)((char *)p + pc_devices[i].slot) = NULL;
	}
	p->n_devs = 0;
	if (p->lapics[0])
		bus_release(&vm->mmio, p->lapics[0]);
	pthread_mutex_unlock(&vm->dev_lock);
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		if (vm->vcpus[i])
			vm->vcpus[i]->lapic = NULL;
		lapic_free(p->lapics[i]);
		p->lapics[i] = NULL;
	}
	chardev_free(p->own_console);
	if (vm->intr_ack == platform_intr_ack)
		vm->intr_ack = NULL;
	if (vm->handle_msr == platform_handle_msr)
		vm->handle_msr = NULL;
	if (vm->apic_ops == &lapic_apic_ops)
		vm->apic_ops = NULL;
	free(p);
	vm->platform = NULL;
}

void platform_reset(struct vm *vm)
{
	struct platform *p = vm->platform;
	if (!p)
		return;
	pthread_mutex_lock(&vm->dev_lock);
	memset(p->gsi_level, 0, sizeof(p->gsi_level));
	p->hpet_legacy = false;
	p->nmi_masked = false;
	p->pit_out = p->rtc_out = false;
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		if (p->lapics[i])
			lapic_reset(p->lapics[i], false);
	for (unsigned i = 0; i < p->n_devs; i++)
		if (pc_devices[i].type->reset)
			pc_devices[i].type->reset(p->devs[i]);
	pthread_mutex_unlock(&vm->dev_lock);
	/* The ACPI tables live in guest RAM, which a reboot may have overwritten. */
	if (platform_write_acpi(vm, p) < 0)
		log_warn("platform", "reset: %s", err_msg());
}
