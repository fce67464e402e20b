/* The PC platform: creates every device, wires interrupts, writes the
 * ACPI tables and CMOS memory size (see pc.h). */
#include "hw/pc.h"

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
#include "hw/pit.h"
#include "hw/pm_timer.h"
#include "hw/port80.h"
#include "hw/reset_ctl.h"
#include "hw/rtc.h"
#include "machine/timer.h"
#include "machine/snap_state.h"
#include "hw/uart.h"
#include "machine/device_registry.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
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

bool platform_handle_msr(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	if (exit->reason != VCPU_EXIT_MSR || !vcpu->lapic)
		return false;
	int rc = exit->msr.is_write ? lapic_msr_write(vcpu, exit->msr.index, exit->msr.data)
				    : lapic_msr_read(vcpu, exit->msr.index, &exit->msr.data);
	if (rc == -ENOENT)
		return false;
	/* -EINVAL: the architecture's #GP(0), which the engine raises for an
	 * unhandled MSR access. */
	exit->msr.handled = rc == 0;
	return true;
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

static int platform_write_acpi(struct vm *vm, struct platform *p)
{
	uint8_t *area = gmem_ptr(&vm->mem, PC_ACPI_BASE, PC_ACPI_SIZE);
	if (!area)
		return err_set(-EFAULT, "no guest RAM at %#llx for the ACPI tables",
			       (unsigned long long)PC_ACPI_BASE);
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
		.reset_port = PC_PORT_RESET,
		.reset_value = RESET_CTL_VALUE,
		.ecam_base = GMEM_ECAM_BASE,
		.ecam_end_bus = (uint8_t)((GMEM_ECAM_SIZE >> 20) - 1),
		.pci_mmio_base = GMEM_PCI_MMIO_BASE,
		.pci_mmio_end = GMEM_IOAPIC_BASE - 1,
		.com1_port = PC_PORT_COM1,
		.com1_irq = PC_IRQ_COM1,
		.fw_cfg_port = PC_PORT_FW_CFG,
		.intx_gsi = pci_intx_gsi,
	};
	struct acpi_builder b;
	acpi_builder_init(&b, area, PC_ACPI_BASE, PC_ACPI_SIZE);
	int rc = acpi_build_pc_tables(&b, &info);
	unsigned nodes = p->numa_nodes;
	if (rc == 0 && nodes > 1) {
		struct acpi_numa_info numa = { .n_nodes = nodes };
		for (unsigned i = 0; i < vm->mem.n_regions && i < 8; i++) {
			numa.ram[i].base = vm->mem.regions[i].gpa;
			numa.ram[i].size = vm->mem.regions[i].size;
			numa.n_ram++;
		}
		rc = acpi_build_srat(&b, vm->n_vcpus, &numa);
	}
	if (rc == 0)
		rc = acpi_builder_finish(&b);
	if (rc < 0)
		return err_wrap(rc, "ACPI tables");
	p->rsdp_addr = b.rsdp_gpa;
	return 0;
}

static uint64_t low_ram(const struct guest_memory *mem)
{
	return mem->ram_size < GMEM_LOW_RAM_END ? mem->ram_size : GMEM_LOW_RAM_END;
}

static int platform_devices_create(struct vm *vm, struct platform *p)
{
	struct timer_service *ts = p->timers;
	int rc;
	if (!(p->pic = pic_new(vm)) || !(p->ioapic = ioapic_new(vm)) || !(p->pit = pit_new(vm, ts)) ||
	    !(p->rtc = rtc_new(vm, ts)) || !(p->hpet = hpet_new(vm, ts)) || !(p->pm = acpi_pm_new(vm)) ||
	    !(p->kbd = i8042_new(vm)) || !(p->pci = pci_host_new(vm)) || !(p->fw_cfg = fw_cfg_new()) ||
	    !(p->port80 = port80_new()) || !(p->reset = reset_ctl_new(vm)) ||
	    !(p->debug_exit = debug_exit_new(vm)) || !(p->com1 = uart_new(vm, PC_IRQ_COM1, p->console)))
		return -ENOMEM;
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		if (!v)
			return err_set(-EINVAL, "vCPU %u does not exist", i);
		if (!(v->lapic = lapic_new(v, ts)))
			return -ENOMEM;
	}
	pci_host_set_cf9(p->pci, &reset_ctl_ops, p->reset);
	if ((rc = pic_register(p->pic, &vm->pio)) < 0 ||
	    (rc = ioapic_register(p->ioapic, &vm->mmio, GMEM_IOAPIC_BASE)) < 0 ||
	    (rc = lapic_mmio_register(vm)) < 0 ||
	    (rc = pit_register(p->pit, &vm->pio)) < 0 ||
	    (rc = rtc_register(p->rtc, &vm->pio)) < 0 ||
	    (rc = hpet_register(p->hpet, &vm->mmio, GMEM_HPET_BASE)) < 0 ||
	    (rc = acpi_pm_register(p->pm, &vm->pio, PC_PORT_ACPI_PM)) < 0 ||
	    (rc = pm_timer_register(ts, &vm->pio, PC_PORT_ACPI_PM + ACPI_PM_TMR_OFF)) < 0 ||
	    (rc = i8042_register(p->kbd, &vm->pio)) < 0 ||
	    (rc = pci_host_register(p->pci, &vm->pio, &vm->mmio)) < 0 ||
	    (rc = fw_cfg_register(p->fw_cfg, &vm->pio)) < 0 ||
	    (rc = port80_register(p->port80, &vm->pio)) < 0 ||
	    (rc = debug_exit_register(p->debug_exit, &vm->pio)) < 0 ||
	    (rc = uart_register(p->com1, &vm->pio, PC_PORT_COM1)) < 0)
		return rc;
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

struct platform_snap_entry {
	char name[SNAPSHOT_DEVICE_NAME_MAX];
	snapshot_save_fn save;
	snapshot_load_fn load;
	void *opaque;
};

/* Names registered by this platform, to unregister exactly those. */
#define PLATFORM_SNAP_FIXED 13

static int platform_snapshot_register(struct vm *vm, struct platform *p)
{
	/* "vm-clock" first: the writer keeps registration order and the
	 * reader loads in file order, so the clock is set before any device
	 * re-arms a deadline on it. */
	const struct platform_snap_entry fixed[PLATFORM_SNAP_FIXED] = {
		{ "vm-clock", timer_service_snapshot_save, timer_service_snapshot_load, p->timers },
		{ "platform", platform_snapshot_save, platform_snapshot_load, p },
		{ "pic", pic_snapshot_save, pic_snapshot_load, p->pic },
		{ "ioapic", ioapic_snapshot_save, ioapic_snapshot_load, p->ioapic },
		{ "pit", pit_snapshot_save, pit_snapshot_load, p->pit },
		{ "rtc", rtc_snapshot_save, rtc_snapshot_load, p->rtc },
		{ "hpet", hpet_snapshot_save, hpet_snapshot_load, p->hpet },
		{ "acpi-pm", acpi_pm_snapshot_save, acpi_pm_snapshot_load, p->pm },
		{ "uart.com1", uart_snapshot_save, uart_snapshot_load, p->com1 },
		{ "i8042", i8042_snapshot_save, i8042_snapshot_load, p->kbd },
		{ "pci", pci_host_snapshot_save, pci_host_snapshot_load, p->pci },
		{ "fw-cfg", fw_cfg_snapshot_save, fw_cfg_snapshot_load, p->fw_cfg },
		{ "port80", port80_snapshot_save, port80_snapshot_load, p->port80 },
	};
	int rc;
	for (unsigned i = 0; i < PLATFORM_SNAP_FIXED; i++) {
		if ((rc = snapshot_register_device(fixed[i].name, fixed[i].save, fixed[i].load, fixed[i].opaque)) < 0)
			return rc;
		p->snap_registered++;
	}
	if ((rc = snapshot_register_device("reset", reset_ctl_snapshot_save, reset_ctl_snapshot_load, p->reset)) < 0)
		return rc;
	p->snap_registered++;
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		char name[SNAPSHOT_DEVICE_NAME_MAX];
		snprintf(name, sizeof(name), "lapic.%u", i);
		if ((rc = snapshot_register_device(name, lapic_snapshot_save, lapic_snapshot_load, vm->vcpus[i]->lapic)) < 0)
			return rc;
		p->snap_registered++;
	}
	return 0;
}

static void platform_snapshot_unregister(struct vm *vm, struct platform *p)
{
	static const char *const fixed[] = { "vm-clock", "platform", "pic", "ioapic", "pit", "rtc", "hpet",
					     "acpi-pm", "uart.com1", "i8042", "pci", "fw-cfg", "port80", "reset" };
	unsigned n = p->snap_registered;
	for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]) && n; i++, n--)
		snapshot_unregister_device(fixed[i]);
	for (unsigned i = 0; i < vm->n_vcpus && n; i++, n--) {
		char name[SNAPSHOT_DEVICE_NAME_MAX];
		snprintf(name, sizeof(name), "lapic.%u", i);
		snapshot_unregister_device(name);
	}
	p->snap_registered = 0;
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
	p->console = opts ? opts->console : NULL;
	p->numa_nodes = opts ? opts->numa_nodes : 0;
	if (!p->console) {
		p->own_console = chardev_fd_new(-1, STDOUT_FILENO);
		if (!p->own_console)
			goto fail;
		p->console = p->own_console;
	}
	pthread_mutex_lock(&vm->dev_lock);
	rc = platform_devices_create(vm, p);
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

/* Releases a device's bus ranges so the buses never point at freed memory. */
static void unregister_all(struct bus *bus, void *opaque)
{
	for (unsigned i = 0; i < bus->n;) {
		if (bus->ranges[i].opaque == opaque)
			bus_unregister(bus, bus->ranges[i].base, opaque);
		else
			i++;
	}
}

void platform_destroy(struct vm *vm)
{
	struct platform *p = vm->platform;
	if (!p)
		return;
	lapic_set_current_vcpu(NULL);
	platform_snapshot_unregister(vm, p);
	/* Stop the timer thread first: nothing may fire into freed devices. */
	timer_service_free(p->timers);
	p->timers = NULL;
	pthread_mutex_lock(&vm->dev_lock);
	void *devs[] = { p->pic, p->ioapic, p->pit, p->rtc, p->hpet, p->pm, p->kbd, p->pci, p->fw_cfg,
			 p->port80, p->debug_exit, p->com1, vm };
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		if (devs[i]) {
			unregister_all(&vm->pio, devs[i]);
			unregister_all(&vm->mmio, devs[i]);
		}
	}
	/* The PM timer's range carries the timer service as opaque. */
	for (unsigned i = 0; i < vm->pio.n; i++) {
		if (!strcmp(vm->pio.ranges[i].name, "acpi-pmtmr")) {
			bus_unregister(&vm->pio, vm->pio.ranges[i].base, vm->pio.ranges[i].opaque);
			break;
		}
	}
	uart_free(p->com1);
	pthread_mutex_unlock(&vm->dev_lock);
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		if (vm->vcpus[i] && vm->vcpus[i]->lapic) {
			lapic_free(vm->vcpus[i]->lapic);
			vm->vcpus[i]->lapic = NULL;
		}
	}
	pic_free(p->pic);
	ioapic_free(p->ioapic);
	pit_free(p->pit);
	rtc_free(p->rtc);
	hpet_free(p->hpet);
	acpi_pm_free(p->pm);
	i8042_free(p->kbd);
	pci_host_free(p->pci);
	fw_cfg_free(p->fw_cfg);
	port80_free(p->port80);
	reset_ctl_free(p->reset);
	debug_exit_free(p->debug_exit);
	chardev_free(p->own_console);
	if (vm->intr_ack == platform_intr_ack)
		vm->intr_ack = NULL;
	if (vm->handle_msr == platform_handle_msr)
		vm->handle_msr = NULL;
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
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		if (vm->vcpus[i] && vm->vcpus[i]->lapic)
			lapic_reset(vm->vcpus[i]->lapic, false);
	pic_reset(p->pic);
	ioapic_reset(p->ioapic);
	pit_reset(p->pit);
	rtc_reset(p->rtc);
	hpet_reset(p->hpet);
	acpi_pm_reset(p->pm);
	i8042_reset(p->kbd);
	pci_host_reset(p->pci);
	fw_cfg_reset(p->fw_cfg);
	reset_ctl_reset(p->reset);
	uart_reset(p->com1);
	pthread_mutex_unlock(&vm->dev_lock);
	/* The ACPI tables live in guest RAM, which a reboot may have overwritten. */
	if (platform_write_acpi(vm, p) < 0)
		log_warn("platform", "reset: %s", err_msg());
}
