/* UART, i8042, PCI host, fw_cfg, ACPI PM, reset and debug ports through
 * their guest interfaces. */
#include "harness.h"

#include "hw/chardev.h"
#include "hw/fw_cfg.h"
#include "hw/pci.h"
#include "hw/uart.h"
#include "hw/acpi_pm.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#define COM1 0x3f8

static int ack(struct tvm *t) { return tvm_intr_ack(&t->cpu[0]); }

Test(uart, output_reaches_the_chardev)
{
	int out[2];
	cr_assert_eq(pipe(out), 0);
	struct tvm *t = tvm_new_with_console(1, chardev_fd_new(-1, out[1]));
	cr_assert_eq(inb(t, COM1 + 5), 0x60, "THR and transmitter empty");
	const char *msg = "hello";
	for (const char *p = msg; *p; p++)
		outb(t, COM1, (uint8_t)*p);
	char buf[8] = { 0 };
	cr_assert_eq(read(out[0], buf, 5), 5);
	cr_assert_str_eq(buf, "hello");
	tvm_free(t);
	close(out[0]);
	close(out[1]);
}

Test(uart, divisor_scratch_and_registers)
{
	struct tvm *t = tvm_new(1);
	outb(t, COM1 + 3, 0x80);                  /* DLAB */
	outb(t, COM1, 0x01);
	outb(t, COM1 + 1, 0x00);                  /* 115200 */
	cr_assert_eq(inb(t, COM1), 0x01);
	outb(t, COM1 + 3, 0x03);                  /* 8N1 */
	cr_assert_eq(inb(t, COM1 + 3), 0x03);
	outb(t, COM1 + 7, 0x5a);
	cr_assert_eq(inb(t, COM1 + 7), 0x5a);
	cr_assert_eq(inb(t, COM1 + 2), 0x01, "no interrupt, FIFOs off");
	outb(t, COM1 + 2, 0x07);
	cr_assert_eq(inb(t, COM1 + 2), 0xc1, "16550A: FIFO enabled bits");
	tvm_free(t);
}

Test(uart, thre_and_rx_interrupts_gated_by_out2)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0xef, 0xff);
	outb(t, COM1 + 1, 0x03);                  /* RX data + THRE */
	cr_assert_eq(inb(t, COM1 + 2) & 0x0f, 0x02, "THRE pending at once");
	cr_assert_eq(ack(t), -1, "IRQ4 gated while OUT2 is low");
	outb(t, COM1 + 1, 0x00);
	outb(t, COM1 + 1, 0x03);
	outb(t, COM1 + 4, 0x08);                  /* OUT2 */
	cr_assert_eq(ack(t), 0x24);
	outb(t, 0x20, 0x20);
	cr_assert_eq(inb(t, COM1 + 2) & 0x0f, 0x02);
	cr_assert_eq(inb(t, COM1 + 2) & 0x0f, 0x01, "reading IIR acknowledged THRE");
	/* Input: RX data available has priority over THRE. */
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_eq(uart_receive(t->vm.platform->com1, (const uint8_t *)"ab", 2), 1, "FIFO off: one byte");
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(ack(t), 0x24);
	outb(t, 0x20, 0x20);
	cr_assert_eq(inb(t, COM1 + 2) & 0x0f, 0x04);
	cr_assert_eq(inb(t, COM1 + 5) & 1, 1);
	cr_assert_eq(inb(t, COM1), 'a');
	cr_assert_eq(inb(t, COM1 + 5) & 1, 0);
	cr_assert_eq(inb(t, COM1 + 2) & 0x0f, 0x01);
	tvm_free(t);
}

Test(uart, fifo_trigger_overrun_and_loopback)
{
	struct tvm *t = tvm_new(1);
	outb(t, COM1 + 2, 0x87);                  /* FIFO, trigger 8 */
	outb(t, COM1 + 1, 0x05);
	uint8_t data[20];
	for (int i = 0; i < 20; i++)
		data[i] = (uint8_t)('A' + i);
	pthread_mutex_lock(&t->vm.dev_lock);
	struct uart *u = t->vm.platform->com1;
	cr_assert_eq(uart_receive(u, data, 4), 4);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inb(t, COM1 + 2) & 0x0f, 0x0c, "below trigger: character timeout");
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_eq(uart_receive(u, data + 4, 16), 12, "flow control: only the free space");
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inb(t, COM1 + 2) & 0x0f, 0x04, "at trigger level");
	for (int i = 0; i < 16; i++)
		cr_assert_eq(inb(t, COM1), 'A' + i);
	/* Loopback: transmitted bytes come back; MSR mirrors MCR. */
	outb(t, COM1 + 4, 0x1f);
	cr_assert_eq(inb(t, COM1 + 6) & 0xf0, 0xf0);
	outb(t, COM1, 'z');
	cr_assert_eq(inb(t, COM1 + 5) & 1, 1);
	cr_assert_eq(inb(t, COM1), 'z');
	outb(t, COM1 + 4, 0x10);
	cr_assert_eq(inb(t, COM1 + 6) & 0xf0, 0x00);
	/* Overrun: more than 16 bytes in loopback. */
	for (int i = 0; i < 17; i++)
		outb(t, COM1, 'x');
	cr_assert_eq(inb(t, COM1 + 5) & 0x02, 0x02, "overrun error");
	cr_assert_eq(inb(t, COM1 + 5) & 0x02, 0x00, "cleared by reading LSR");
	tvm_free(t);
}

Test(uart, fd_backend_input_with_flow_control)
{
	int in[2], out[2];
	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(out), 0);
	struct tvm *t = tvm_new_with_console(1, chardev_fd_new(in[0], out[1]));
	outb(t, COM1 + 2, 0x01);                  /* FIFO on: 16 bytes of room */
	char msg[40];
	memset(msg, 'q', sizeof(msg));
	cr_assert_eq(write(in[1], msg, sizeof(msg)), (ssize_t)sizeof(msg));
	/* Read everything the guest way, waiting for the reader thread. */
	int got = 0;
	for (int spins = 0; got < 40 && spins < 2000; spins++) {
		if (inb(t, COM1 + 5) & 1) {
			cr_assert_eq(inb(t, COM1), 'q');
			got++;
		} else {
			usleep(1000);
		}
	}
	cr_assert_eq(got, 40, "all input arrived through a 16-byte FIFO");
	cr_assert_eq(inb(t, COM1 + 5) & 0x02, 0, "never overran");
	tvm_free(t);
	close(in[0]); close(in[1]); close(out[0]); close(out[1]);
}

Test(i8042, self_test_command_byte_and_identify)
{
	struct tvm *t = tvm_new(1);
	cr_assert_eq(inb(t, 0x64) & 0x01, 0, "output buffer empty");
	outb(t, 0x64, 0xaa);
	cr_assert_eq(inb(t, 0x64) & 0x01, 1);
	cr_assert_eq(inb(t, 0x60), 0x55);
	outb(t, 0x64, 0x20);
	uint8_t ctr = inb(t, 0x60);
	outb(t, 0x64, 0x60);
	outb(t, 0x60, ctr & ~0x03);               /* interrupts off */
	outb(t, 0x64, 0x20);
	cr_assert_eq(inb(t, 0x60), ctr & ~0x03);
	outb(t, 0x60, 0xf2);                      /* keyboard identify */
	cr_assert_eq(inb(t, 0x60), 0xfa);
	cr_assert_eq(inb(t, 0x60), 0xab);
	inb(t, 0x60);
	outb(t, 0x60, 0xff);                      /* keyboard reset */
	cr_assert_eq(inb(t, 0x60), 0xfa);
	cr_assert_eq(inb(t, 0x60), 0xaa);
	/* AUX loopback (Linux's i8042_check_aux). */
	outb(t, 0x64, 0xd3);
	outb(t, 0x60, 0x5a);
	cr_assert_eq(inb(t, 0x64) & 0x21, 0x21, "byte from the aux port");
	cr_assert_eq(inb(t, 0x60), 0x5a);
	tvm_free(t);
}

Test(i8042, keyboard_irq1)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0xfd, 0xff);
	outb(t, 0x60, 0xf4);                      /* enable scanning: ACK raises IRQ1 */
	cr_assert_eq(ack(t), 0x21);
	cr_assert_eq(inb(t, 0x60), 0xfa);
	outb(t, 0x20, 0x20);
	/* Identify answers three bytes: one edge-triggered interrupt each. */
	outb(t, 0x60, 0xf2);
	static const uint8_t want[] = { 0xfa, 0xab, 0x41 };
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(ack(t), 0x21, "interrupt for byte %d", i);
		cr_assert_eq(inb(t, 0x60), want[i]);
		outb(t, 0x20, 0x20);
	}
	cr_assert_eq(ack(t), -1);
	tvm_free(t);
}

Test(i8042, reset_command_requests_reset)
{
	struct tvm *t = tvm_new(1);
	outb(t, 0x64, 0xfe);
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_RESET);
	tvm_free(t);
}

Test(reset, cf9_resets_and_cf8_still_works)
{
	struct tvm *t = tvm_new(1);
	outl(t, 0xcf8, 0x80000000);
	cr_assert_eq(inl(t, 0xcf8), 0x80000000);
	outb(t, 0xcf9, 0x02);
	cr_assert_eq(inb(t, 0xcf9), 0x02);
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_NONE);
	cr_assert_eq(inl(t, 0xcf8), 0x80000000, "byte access to 0xcf9 left CONFIG_ADDRESS alone");
	outb(t, 0xcf9, 0x06);
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_RESET);
	tvm_free(t);
}

Test(debug_exit, stores_value_and_stops)
{
	struct tvm *t = tvm_new(1);
	outb(t, 0x80, 0x42);
	cr_assert_eq(inb(t, 0x80), 0x42);
	outl(t, 0xf4, 0x31);
	cr_assert_eq(t->vm.debug_exit_value, 0x31);
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_DEBUG_EXIT);
	tvm_free(t);
}

static uint32_t cfg_read(struct tvm *t, unsigned dev, unsigned off)
{
	outl(t, 0xcf8, 0x80000000u | dev << 11 | (off & 0xfc));
	return inl(t, 0xcfc);
}

static void cfg_write(struct tvm *t, unsigned dev, unsigned off, uint32_t v)
{
	outl(t, 0xcf8, 0x80000000u | dev << 11 | (off & 0xfc));
	outl(t, 0xcfc, v);
}

struct bar_dev {
	uint64_t last;
};

static uint64_t bar_read(void *o, struct vcpu *vcpu, uint64_t off, unsigned size) { return 0xab00 + off; }
static void bar_write(void *o, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t v) { ((struct bar_dev *)o)->last = v; }
static const struct bus_ops bar_ops = { bar_read, bar_write };

Test(pci, host_bridge_type1_and_ecam)
{
	struct tvm *t = tvm_new(1);
	cr_assert_eq(cfg_read(t, 0, 0), 0x29c08086);
	cr_assert_eq(cfg_read(t, 0, 8) >> 8, 0x060000, "host bridge class");
	cr_assert_eq(cfg_read(t, 3, 0), 0xffffffff, "empty slot");
	cr_assert_eq(mmio_read(t, GMEM_ECAM_BASE, 4), 0x29c08086);
	cr_assert_eq(mmio_read(t, GMEM_ECAM_BASE + (1 << 20), 4), 0xffffffff, "bus 1 is empty");
	outl(t, 0xcf8, 0x80000000);
	cr_assert_eq(inw(t, 0xcfe), 0x29c0, "word access at 0xcfe");
	tvm_free(t);
}

Test(pci, device_bars_size_and_map)
{
	struct tvm *t = tvm_new(1);
	static struct pci_device d;
	struct bar_dev bd = { 0 };
	pci_device_init(&d, "test-dev", 0x1af4, 0x1000, 0x020000, 1);
	cr_assert_eq(pci_device_set_bar(&d, 0, PCI_BAR_IO, 32, &bar_ops, &bd), 0);
	cr_assert_eq(pci_device_set_bar(&d, 1, PCI_BAR_MEM32, 4096, &bar_ops, &bd), 0);
	cr_assert_lt(pci_device_set_bar(&d, 2, PCI_BAR_MEM32, 3000, &bar_ops, &bd), 0);
	/* Two capabilities, linked from the capability pointer. */
	cr_assert_eq(pci_device_add_capability(&d, 0x09, 6), 0x40);
	cr_assert_eq(pci_device_add_capability(&d, 0x11, 12), 0x48);
	cr_assert_lt(pci_device_add_capability(&d, 0x09, 200), 0, "no room");
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_eq(pci_register_device(t->vm.platform->pci, &d, 4), 0);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(cfg_read(t, 4, 0), 0x10001af4);
	cr_assert(cfg_read(t, 4, 4) & (PCI_STATUS_CAP_LIST << 16), "capability list present");
	cr_assert_eq(cfg_read(t, 4, 0x34) & 0xff, 0x40);
	cr_assert_eq(cfg_read(t, 4, 0x40) & 0xffff, 0x4809, "ID 9, next 0x48");
	cr_assert_eq(cfg_read(t, 4, 0x48) & 0xffff, 0x0011, "ID 0x11, end of list");
	/* Sizing: write all ones, read the mask back. */
	cfg_write(t, 4, 0x10, 0xffffffff);
	cr_assert_eq(cfg_read(t, 4, 0x10), 0xffffffe1);
	cfg_write(t, 4, 0x14, 0xffffffff);
	cr_assert_eq(cfg_read(t, 4, 0x14), 0xfffff000);
	cfg_write(t, 4, 0x10, 0xc000);
	cfg_write(t, 4, 0x14, 0xc0001000);
	cr_assert_eq(in_n(t, 0xc004, 4), 0xffffffff, "not decoded before COMMAND enables it");
	cfg_write(t, 4, 0x04, 0x3);
	cr_assert_eq(in_n(t, 0xc004, 4), 0xab04);
	cr_assert_eq(mmio_read(t, 0xc0001010, 4), 0xab10);
	mmio_write(t, 0xc0001000, 4, 77);
	cr_assert_eq(bd.last, 77);
	/* Moving the BAR moves the mapping. */
	cfg_write(t, 4, 0x14, 0xc0002000);
	cr_assert_eq(mmio_read(t, 0xc0001010, 4), 0xffffffff);
	cr_assert_eq(mmio_read(t, 0xc0002010, 4), 0xab10);
	/* INTA of slot 4 is GSI 20. */
	cr_assert_eq(cfg_read(t, 4, 0x3c) >> 8 & 0xff, 1);
	cr_assert_eq(pci_intx_gsi(4, 1), 20);
	pthread_mutex_lock(&t->vm.dev_lock);
	pci_set_irq(&d, true);
	cr_assert(t->vm.platform->gsi_level[20]);
	pci_set_irq(&d, false);
	cr_assert_eq(pci_unregister_device(t->vm.platform->pci, &d), 0);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(mmio_read(t, 0xc0002010, 4), 0xffffffff, "unplugged: unmapped");
	cr_assert_eq(cfg_read(t, 4, 0), 0xffffffff);
	tvm_free(t);
}

static void fw_sel(struct tvm *t, uint16_t key) { outw(t, 0x510, key); }
static uint64_t fw_read_le(struct tvm *t, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)inb(t, 0x511) << (8 * i);
	return v;
}

Test(fw_cfg, signature_cpus_ram_and_files)
{
	struct tvm *t = tvm_new(2);
	fw_sel(t, FW_CFG_SIGNATURE);
	char sig[5] = { 0 };
	for (int i = 0; i < 4; i++)
		sig[i] = (char)inb(t, 0x511);
	cr_assert_str_eq(sig, "QEMU");
	fw_sel(t, FW_CFG_ID);
	cr_assert_eq(fw_read_le(t, 4), 1);
	fw_sel(t, FW_CFG_NB_CPUS);
	cr_assert_eq(fw_read_le(t, 2), 2);
	fw_sel(t, FW_CFG_RAM_SIZE);
	cr_assert_eq(fw_read_le(t, 8), 64ull << 20);
	pthread_mutex_lock(&t->vm.dev_lock);
	int key = fw_cfg_add_file(t->vm.platform->fw_cfg, "etc/vessel-test", "abc", 3);
	cr_assert_lt(fw_cfg_add_file(t->vm.platform->fw_cfg, "etc/vessel-test", "x", 1), 0, "duplicate");
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(key, FW_CFG_FILE_FIRST);
	fw_sel(t, FW_CFG_FILE_DIR);
	uint32_t count = 0;
	for (int i = 0; i < 4; i++)
		count = count << 8 | inb(t, 0x511);
	cr_assert_eq(count, 1);
	uint32_t size = 0;
	for (int i = 0; i < 4; i++)
		size = size << 8 | inb(t, 0x511);
	cr_assert_eq(size, 3);
	uint16_t sel = (uint16_t)(inb(t, 0x511) << 8);
	sel |= inb(t, 0x511);
	cr_assert_eq(sel, key);
	inb(t, 0x511); inb(t, 0x511);
	char name[56];
	for (int i = 0; i < 56; i++)
		name[i] = (char)inb(t, 0x511);
	cr_assert_str_eq(name, "etc/vessel-test");
	fw_sel(t, (uint16_t)key);
	cr_assert_eq(fw_read_le(t, 3), 0x636261);
	cr_assert_eq(inb(t, 0x511), 0, "past the end reads 0");
	tvm_free(t);
}

Test(acpi_pm, s5_powers_off)
{
	struct tvm *t = tvm_new(1);
	cr_assert_eq(inw(t, 0x604) & 1, 1, "SCI_EN: already in ACPI mode");
	outw(t, 0x604, (2 << 10) | (1 << 13));    /* SLP_TYP 2: not in the DSDT, ignored */
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_NONE);
	outw(t, 0x604, (5 << 10) | (1 << 13));
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_POWEROFF);
	tvm_free(t);
}

/* ACPI S4 (docs/power.md "Hibernate"): SLP_TYP 4 with SLP_EN is a final
 * stop of its own, distinct from S5's power-off. */
Test(acpi_pm, s4_hibernates)
{
	struct tvm *t = tvm_new(1);
	outw(t, 0x604, (4 << 10) | (1 << 13));
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_HIBERNATE);
	vm_request_stop(&t->vm, VM_STOP_POWEROFF);
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_HIBERNATE, "final: a later power-off does not replace it");
	tvm_free(t);
}

/* ACPI S3 (docs/power.md): SLP_TYP 1 with SLP_EN suspends (not final:
 * a power-off still wins); while suspended, the buttons and an enabled
 * RTC event ask for a wake; the wake shows WAK_STS and the source and
 * keeps SLP_TYP. */
Test(acpi_pm, s3_suspends_and_wake_sources_are_seen)
{
	struct tvm *t = tvm_new(1);
	outw(t, 0x604, (1 << 10) | (1 << 13));
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_SUSPEND);
	cr_assert_eq((inw(t, 0x604) >> 10) & 7, 1, "SLP_TYP kept");
	cr_assert_eq(inw(t, 0x604) & (1 << 13), 0, "SLP_EN reads 0");
	cr_assert_eq(inw(t, 0x600) & 0x8000, 0, "no WAK_STS before a wake");

	/* Not suspended yet (the run loop sets it): no wake is recorded. */
	platform_press_sleep_button(&t->vm);
	cr_assert_eq(atomic_load(&t->vm.wake_reason), VM_WAKE_NONE);
	outw(t, 0x600, 0x200);
	atomic_store(&t->vm.suspended, true);
	platform_press_sleep_button(&t->vm);
	cr_assert_eq(atomic_load(&t->vm.wake_reason), VM_WAKE_SLEEP_BUTTON);
	platform_press_power_button(&t->vm);
	cr_assert_eq(atomic_load(&t->vm.wake_reason), VM_WAKE_SLEEP_BUTTON, "the first source is kept");

	cr_assert_eq(platform_suspend(&t->vm), VM_WAKE_POWER_BUTTON, "a press while stopping is a pending wake");
	platform_wake(&t->vm, VM_WAKE_SLEEP_BUTTON);
	cr_assert_eq(inw(t, 0x600) & 0x8200, 0x8200, "WAK_STS and SLPBTN_STS");
	cr_assert_eq((inw(t, 0x604) >> 10) & 7, 1, "SLP_TYP still tells a resume");

	/* RTC_STS wakes only when RTC_EN is set (4.8.3.1.1). */
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert_not(acpi_pm_rtc_event(t->vm.platform->pm));
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inw(t, 0x600) & 0x400, 0x400, "RTC_STS");
	outw(t, 0x602, 0x400);
	pthread_mutex_lock(&t->vm.dev_lock);
	cr_assert(acpi_pm_rtc_event(t->vm.platform->pm));
	pthread_mutex_unlock(&t->vm.dev_lock);

	/* A final stop replaces the suspend; a second suspend does not. */
	vm_request_stop(&t->vm, VM_STOP_SUSPEND);
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_SUSPEND);
	vm_request_stop(&t->vm, VM_STOP_POWEROFF);
	cr_assert_eq(atomic_load(&t->vm.stop_reason), VM_STOP_POWEROFF);
	tvm_free(t);
}

Test(acpi_pm, power_button_raises_level_sci)
{
	struct tvm *t = tvm_new(1);
	apic_w(t, 0xf0, 0x1ff);
	apic_w(t, 0x350, 0x10700);
	ioapic_w(t, 9, 0x49 | (1 << 15));         /* SCI: level */
	platform_press_power_button(&t->vm);
	cr_assert_eq(inw(t, 0x600) & 0x100, 0x100, "PWRBTN_STS");
	cr_assert_eq(ack(t), -1, "not enabled");
	outw(t, 0x602, 0x100);                    /* PWRBTN_EN */
	cr_assert_eq(ack(t), 0x49);
	outw(t, 0x600, 0x100);                    /* clear the status */
	apic_w(t, 0xb0, 0);
	cr_assert_eq(ack(t), -1, "SCI dropped");
	/* GPE0. */
	outb(t, 0x628, 0x01);                     /* GPE0_EN bit 0 */
	pthread_mutex_lock(&t->vm.dev_lock);
	acpi_pm_raise_gpe(t->vm.platform->pm, 0);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(inb(t, 0x620), 0x01);
	cr_assert_eq(ack(t), 0x49);
	tvm_free(t);
}

Test(platform, reset_restores_power_on_state)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0x12, 0x34);
	outb(t, COM1 + 7, 0x99);
	apic_w(t, 0xf0, 0x1ff);
	platform_reset(&t->vm);
	cr_assert_eq(inb(t, 0x21), 0x00);
	cr_assert_eq(inb(t, COM1 + 7), 0x00);
	cr_assert_eq(apic_r(t, 0xf0), 0xff);
	uint8_t *rsdp = gmem_ptr(&t->vm.mem, platform_rsdp_address(&t->vm), 8);
	cr_assert(rsdp && !memcmp(rsdp, "RSD PTR ", 8), "ACPI tables rewritten");
	tvm_free(t);
}

Test(platform, real_clock_thread_delivers_pit_ticks)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vcpu *cpu = calloc(1, sizeof(*cpu));
	cr_assert(vm && cpu);
	cr_assert_eq(gmem_init(&vm->mem, 16ull << 20), 0);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	pthread_mutex_init(&vm->dev_lock, NULL);
	cpu->vm = vm;
	pthread_mutex_init(&cpu->lock, NULL);
	pthread_cond_init(&cpu->wake, NULL);
	vm->vcpus[0] = cpu;
	vm->n_vcpus = 1;
	cr_assert_eq(platform_create(vm), 0, "%s", err_msg());
	cr_assert_eq(platform_rsdp_address(vm), 0xe0000);
	pthread_mutex_lock(&vm->dev_lock);
	/* 8259 at 0x20, only IRQ0; PIT channel 0 periodic at about 1 kHz. */
	static const uint8_t init[][2] = { { 0x20, 0x11 }, { 0x21, 0x20 }, { 0x21, 0x04 }, { 0x21, 0x01 },
					   { 0x21, 0xfe }, { 0x43, 0x34 }, { 0x40, 0xa9 }, { 0x40, 0x04 } };
	for (size_t i = 0; i < sizeof(init) / sizeof(init[0]); i++)
		bus_write(&vm->pio, NULL, init[i][0], 1, init[i][1]);
	pthread_mutex_unlock(&vm->dev_lock);
	int vec = -1;
	for (int i = 0; i < 5000 && vec < 0; i++) {
		if (atomic_load(&cpu->events) & VCPU_EVT_INTR) {
			pthread_mutex_lock(&vm->dev_lock);
			vec = vm->intr_ack(cpu);
			pthread_mutex_unlock(&vm->dev_lock);
		} else {
			usleep(1000);
		}
	}
	cr_assert_eq(vec, 0x20, "the timer thread raised IRQ0");
	platform_destroy(vm);
	cr_assert_null(vm->platform);
	cr_assert_null(cpu->lapic);
	cr_assert_eq(vm->pio.n, 0, "every port released");
	cr_assert_eq(vm->mmio.n, 0, "every MMIO range released");
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	gmem_destroy(&vm->mem);
	free(cpu);
	free(vm);
}
