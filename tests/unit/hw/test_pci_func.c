/* A PCI function served through callbacks (hw/pci_func.h): the
 * configuration space built from a description, BAR sizing and power-on
 * placement, BAR dispatch, MSI with masking and INTx, the description's
 * checks, snapshots. */
#include "hw/device.h"
#include "hw/intc/lapic.h"
#include "hw/pci_func.h"
#include "machine/bus.h"
#include "machine/memory.h"
#include "util/error.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

static struct bus pio, mmio;
static struct pci_host *host;
static int gsi = -1, gsi_level = -1;
static struct apic_msg msgs[8];
static unsigned n_msgs;
static uint64_t last_off, last_val;
static unsigned last_bar, last_size, writes;

static void fake_irq(void *opaque, unsigned n, bool level)
{
	gsi = (int)n;
	gsi_level = level;
}

static void fake_deliver(void *opaque, const struct apic_msg *m, struct lapic *src)
{
	if (n_msgs < 8)
		msgs[n_msgs] = *m;
	n_msgs++;
}

static const struct apic_bus apic = { .deliver = fake_deliver };

static uint64_t fn_read(void *opaque, unsigned bar, uint64_t off, unsigned size)
{
	return 0x1000u * bar + off;   /* tells which BAR and offset were reached */
}

static void fn_write(void *opaque, unsigned bar, uint64_t off, unsigned size, uint64_t val)
{
	last_bar = bar;
	last_off = off;
	last_size = size;
	last_val = val;
	writes++;
}

static void setup(void)
{
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	struct dev_ctx ctx = { .name = "pci", .pio = &pio, .mmio = &mmio,
			       .base = { 0xcf8, GMEM_ECAM_BASE, GMEM_ECAM_SIZE } };
	ctx.irq[0] = (struct irq_line){ .set = fake_irq };
	host = pci_host_new(&ctx);
	cr_assert_not_null(host);
	gsi = gsi_level = -1;
	n_msgs = writes = 0;
}

static void teardown(void)
{
	pci_host_free(host);
	bus_destroy(&pio);
	bus_destroy(&mmio);
}

TestSuite(pci_func, .init = setup, .fini = teardown);

static struct pci_func_desc desc(void)
{
	return (struct pci_func_desc){
		.vendor = 0x1234, .device = 0x7ed0, .subsys_vendor = 0x1af4, .subsys = 0x0042,
		.class_code = 0x00ff00, .revision = 3, .irq_pin = 1, .msi_vectors = 4,
		.bars = { [0] = { .size = 0x2000 }, [2] = { .size = 16, .io = true }, [3] = { .size = 0x100000,
											 .prefetch = true } },
		.read = fn_read, .write = fn_write,
	};
}

static uint32_t cfg(unsigned slot, unsigned off, unsigned size)
{
	return pci_config_read(host, 0, slot << 3, off, size);
}

static void cfg_w(unsigned slot, unsigned off, unsigned size, uint32_t v)
{
	pci_config_write(host, 0, slot << 3, off, size, v);
}

Test(pci_func, header_holds_the_descriptions_identity)
{
	struct pci_func_desc d = desc();
	struct pci_func *f = pci_func_new(host, &apic, "edu0", &d, 6, false);
	cr_assert_not_null(f, "%s", err_msg());
	cr_assert_eq(pci_func_slot(f), 6);
	cr_assert_eq(cfg(6, PCI_VENDOR_ID, 4), 0x7ed01234u);
	cr_assert_eq(cfg(6, PCI_REVISION, 4), 0x00ff0003u, "class 00ff00, revision 3");
	cr_assert_eq(cfg(6, PCI_SUBSYS_VENDOR, 4), 0x00421af4u);
	cr_assert_eq(cfg(6, PCI_INTERRUPT_PIN, 1), 1);
	cr_assert_eq(cfg(6, PCI_HEADER_TYPE, 1), 0);
	/* The capability list: MSI, 64-bit, per-vector masking, 4 vectors. */
	cr_assert(cfg(6, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	unsigned cap = cfg(6, PCI_CAP_PTR, 1);
	cr_assert_geq(cap, 0x40);
	cr_assert_eq(cfg(6, cap, 1), PCI_CAP_ID_MSI);
	cr_assert_eq(cfg(6, cap + 1, 1), 0, "the last capability");
	cr_assert_eq(cfg(6, cap + 2, 2), 0x0100 | 0x0080 | (2 << 1));
	/* Not placed: BARs at 0, decoding off, nothing on the buses. */
	cr_assert_eq(cfg(6, PCI_BAR0, 4), 0);
	cr_assert_eq(cfg(6, PCI_COMMAND, 2), 0);
	cr_assert_eq(pci_find_device(host, 6), pci_func_device(f));
	pci_func_free(f);
	cr_assert_null(pci_find_device(host, 6));
	cr_assert_eq(cfg(6, PCI_VENDOR_ID, 4), 0xffffffffu, "the slot is empty again");
}

Test(pci_func, bars_size_as_the_description_says_and_dispatch)
{
	struct pci_func_desc d = desc();
	struct pci_func *f = pci_func_new(host, &apic, "edu0", &d, 3, false);
	cr_assert_not_null(f);
	/* Sizing (PCI 3.0, 6.2.5.1): all ones written, the size mask read back. */
	cfg_w(3, PCI_BAR0, 4, 0xffffffff);
	cr_assert_eq(cfg(3, PCI_BAR0, 4), 0xffffe000u);
	cfg_w(3, PCI_BAR0 + 4, 4, 0xffffffff);
	cr_assert_eq(cfg(3, PCI_BAR0 + 4, 4), 0, "BAR 1 is not implemented");
	cfg_w(3, PCI_BAR0 + 8, 4, 0xffffffff);
	cr_assert_eq(cfg(3, PCI_BAR0 + 8, 4), 0xfffffff1u, "16 I/O ports");
	cfg_w(3, PCI_BAR0 + 12, 4, 0xffffffff);
	cr_assert_eq(cfg(3, PCI_BAR0 + 12, 4), 0xfff00008u, "1 MiB, prefetchable");
	/* The guest places BAR 0 and 2 and enables decoding. */
	cfg_w(3, PCI_BAR0, 4, 0xc2000000);
	cfg_w(3, PCI_BAR0 + 8, 4, 0x2000);
	cfg_w(3, PCI_BAR0 + 12, 4, 0xc2100000);
	uint64_t v = 0;
	cr_assert(!bus_read(&mmio, NULL, 0xc2000010, 4, &v), "no decoding before the command register says");
	cfg_w(3, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	cr_assert(bus_read(&mmio, NULL, 0xc2000010, 4, &v));
	cr_assert_eq(v, 0x10);
	cr_assert(bus_read(&pio, NULL, 0x2004, 2, &v));
	cr_assert_eq(v, 0x2004);
	cr_assert(bus_read(&mmio, NULL, 0xc2100008, 4, &v));
	cr_assert_eq(v, 0x3008);
	cr_assert(bus_write(&mmio, NULL, 0xc2001ffc, 4, 0xabcd));
	cr_assert_eq(writes, 1);
	cr_assert(last_bar == 0 && last_off == 0x1ffc && last_size == 4 && last_val == 0xabcd);
	cr_assert(!bus_read(&mmio, NULL, 0xc2002000, 4, &v), "past BAR 0's 8 KiB");
	/* Moved by the guest: the bus follows. */
	cfg_w(3, PCI_BAR0, 4, 0xc4000000);
	cr_assert(!bus_read(&mmio, NULL, 0xc2000010, 4, &v));
	cr_assert(bus_read(&mmio, NULL, 0xc4000010, 4, &v));
	pci_func_free(f);
	cr_assert(!bus_read(&mmio, NULL, 0xc4000010, 4, &v), "unplugged: unmapped");
}

Test(pci_func, power_on_placement_is_per_slot_largest_first)
{
	struct pci_func_desc d = desc();
	struct pci_func *f = pci_func_new(host, &apic, "edu0", &d, 5, true);
	cr_assert_not_null(f);
	uint64_t base = PCI_FUNC_MEM_BASE + 5 * PCI_FUNC_MEM_STEP;
	cr_assert_eq(cfg(5, PCI_BAR0 + 12, 4) & ~0xfu, base, "the 1 MiB BAR first");
	cr_assert_eq(cfg(5, PCI_BAR0, 4) & ~0xfu, base + 0x100000, "then 8 KiB, aligned");
	cr_assert_eq(cfg(5, PCI_BAR0 + 8, 4) & ~0x3u, PCI_FUNC_IO_BASE + 5 * PCI_FUNC_IO_STEP);
	cr_assert_eq(cfg(5, PCI_COMMAND, 2), PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	cr_assert(pci_func_bus_master(f));
	uint64_t v;
	cr_assert(bus_read(&mmio, NULL, base + 0x100000 + 4, 4, &v));
	cr_assert_eq(v, 4);
	/* A second function does not overlap the first. */
	struct pci_func *g = pci_func_new(host, &apic, "edu1", &d, 6, true);
	cr_assert_not_null(g);
	cr_assert(bus_read(&mmio, NULL, base + PCI_FUNC_MEM_STEP + 0x100000, 4, &v));
	/* A taken slot is refused. */
	cr_assert_null(pci_func_new(host, &apic, "edu2", &d, 6, true));
	cr_assert(strstr(err_msg(), "PCI slot 6 is taken by edu1"), "%s", err_msg());
	cfg_w(5, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	cr_assert(!pci_func_bus_master(f), "the guest took bus mastering away");
	pci_func_free(g);
	pci_func_free(f);
}

Test(pci_func, intx_follows_the_level_and_interrupt_disable)
{
	struct pci_func_desc d = desc();
	struct pci_func *f = pci_func_new(host, &apic, "edu0", &d, 2, true);
	cr_assert_eq(pci_func_irq(f, 0, true), 0);
	cr_assert_eq(gsi, (int)pci_intx_gsi(2, 1));
	cr_assert_eq(gsi_level, 1);
	cr_assert(cfg(2, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, "Interrupt Status set");
	/* uio_pci_generic masks with Interrupt Disable; the status stays. */
	cfg_w(2, PCI_COMMAND, 2, cfg(2, PCI_COMMAND, 2) | PCI_COMMAND_INTX_DISABLE);
	cr_assert_eq(gsi_level, 0);
	cr_assert(cfg(2, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	cfg_w(2, PCI_COMMAND, 2, cfg(2, PCI_COMMAND, 2) & ~PCI_COMMAND_INTX_DISABLE);
	cr_assert_eq(gsi_level, 1, "unmasked while still pending: asserted again");
	/* Two vectors at level 1: INTx stays up until both drop. */
	cr_assert_eq(pci_func_irq(f, 3, true), 0);
	cr_assert_eq(pci_func_irq(f, 0, false), 0);
	cr_assert_eq(gsi_level, 1);
	cr_assert_eq(pci_func_irq(f, 3, false), 0);
	cr_assert_eq(gsi_level, 0);
	cr_assert(!(cfg(2, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT));
	cr_assert_eq(pci_func_irq(f, 4, true), -EINVAL, "past the 4 vectors");
	cr_assert_eq(n_msgs, 0, "no MSI without its enable bit");
	pci_func_free(f);
}

Test(pci_func, msi_sends_the_vectors_message_and_holds_masked_ones)
{
	struct pci_func_desc d = desc();
	struct pci_func *f = pci_func_new(host, &apic, "edu0", &d, 2, true);
	unsigned cap = cfg(2, PCI_CAP_PTR, 1);
	/* Linux's order: address, data, then enable with 2 of 4 vectors. */
	cfg_w(2, cap + 4, 4, 0xfee01000);   /* destination APIC 1 */
	cfg_w(2, cap + 8, 4, 0);
	cfg_w(2, cap + 12, 2, 0x0040);      /* vector 0x40 */
	cfg_w(2, cap + 2, 2, 0x0001 | (1 << 4));
	cr_assert_eq(cfg(2, cap + 2, 2) & 0x71, 0x11);
	cr_assert_eq(pci_func_irq(f, 1, true), 0);
	cr_assert_eq(n_msgs, 1);
	cr_assert_eq(msgs[0].vector, 0x41, "the low data bits carry the vector");
	cr_assert_eq(msgs[0].dest, 1);
	cr_assert_neq(gsi_level, 1, "no INTx with MSI on");
	/* Vector 2 of 4 with 2 allocated goes out as 0. */
	cr_assert_eq(pci_func_irq(f, 2, true), 0);
	cr_assert_eq(msgs[1].vector, 0x40);
	/* Masked: pending, then sent on unmasking. */
	cfg_w(2, cap + 16, 4, 0x2);
	cr_assert_eq(pci_func_irq(f, 1, false), 0);
	cr_assert_eq(pci_func_irq(f, 1, true), 0);
	cr_assert_eq(n_msgs, 2);
	cr_assert_eq(cfg(2, cap + 20, 4), 0x2, "the pending bit");
	cfg_w(2, cap + 20, 4, 0);
	cr_assert_eq(cfg(2, cap + 20, 4), 0x2, "pending bits are the function's");
	cfg_w(2, cap + 16, 4, 0);
	cr_assert_eq(n_msgs, 3);
	cr_assert_eq(msgs[2].vector, 0x41);
	cr_assert_eq(cfg(2, cap + 20, 4), 0);
	/* MSI off with a vector still at level 1: INTx takes over. */
	cfg_w(2, cap + 2, 2, 0);
	cr_assert_eq(gsi_level, 1);
	pci_func_free(f);
}

static void refused(const struct pci_func_desc *d, const char *needle)
{
	cr_assert_eq(pci_func_check(d, "pci"), -EINVAL, "%s accepted", needle);
	cr_assert(strstr(err_msg(), needle), "'%s' not in '%s'", needle, err_msg());
	cr_assert_null(pci_func_new(host, &apic, "bad", d, 4, true));
	cr_assert_null(pci_find_device(host, 4), "nothing plugged");
}

Test(pci_func, descriptions_are_checked_naming_the_field)
{
	struct pci_func_desc d = desc();
	cr_assert_eq(pci_func_check(&d, "pci"), 0, "%s", err_msg());
	d.bars[0].size = 0x3000;
	refused(&d, "pci.bars[0].size 0x3000 is not a power of two");
	d = desc();
	d.bars[0].size = 8;
	refused(&d, "pci.bars[0].size 0x8 is not a power of two from 16");
	d = desc();
	d.bars[2].size = 2;
	refused(&d, "pci.bars[2].size 0x2 is not a power of two from 4");
	d = desc();
	d.bars[1].size = 32u << 20;
	refused(&d, "pci.bars: 33800 KiB of memory BARs, more than the 16384 KiB");
	d = desc();
	d.bars[4] = (struct pci_func_bar){ .size = 256, .io = true };
	refused(&d, "pci.bars: 272 bytes of I/O BARs, more than the 256");
	d = desc();
	d.bars[2].prefetch = true;
	refused(&d, "pci.bars[2].flags: an I/O BAR cannot be prefetchable");
	d = desc();
	d.vendor = 0xffff;
	refused(&d, "pci.vendor_id 0xffff is not a vendor ID");
	d = desc();
	d.vendor = 0;
	refused(&d, "pci.vendor_id 0x0000 is not a vendor ID");
	d = desc();
	d.device = 0xffff;
	refused(&d, "pci.device_id 0xffff");
	d = desc();
	d.class_code = 0x1000000;
	refused(&d, "pci.class_code 0x1000000 is wider than 24 bits");
	d = desc();
	d.msi_vectors = 3;
	refused(&d, "pci.msi_vectors 3 is not 0 or a power of two up to 32");
	d = desc();
	d.msi_vectors = 64;
	refused(&d, "pci.msi_vectors 64");
	d = desc();
	d.irq_pin = 5;
	refused(&d, "pci.interrupt_pin 5 is not 0 (none) or 1-4");
	d = desc();
	cr_assert_null(pci_func_new(host, &apic, "edu0", &d, 0, true));
	cr_assert(strstr(err_msg(), "PCI slot 0 out of range"), "%s", err_msg());
}

Test(pci_func, state_round_trips_and_other_ids_are_refused)
{
	struct pci_func_desc d = desc();
	struct pci_func *f = pci_func_new(host, &apic, "edu0", &d, 2, false);
	unsigned cap = cfg(2, PCI_CAP_PTR, 1);
	cfg_w(2, PCI_BAR0, 4, 0xc3000000);
	cfg_w(2, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	cfg_w(2, cap + 4, 4, 0xfee00000);
	cfg_w(2, cap + 16, 4, 0x1);
	cfg_w(2, cap + 2, 2, 0x1);
	pci_func_irq(f, 0, true);   /* masked: pending */
	uint8_t buf[8192];
	int64_t n = pci_func_save(f, buf, sizeof(buf));
	cr_assert_gt(n, PCI_CONFIG_SIZE);
	uint8_t small[100];
	cr_assert_eq(pci_func_save(f, small, sizeof(small)), -ENOSPC);
	pci_func_free(f);
	/* A new function, as a restore builds it, takes the saved state. */
	f = pci_func_new(host, &apic, "edu0", &d, 2, false);
	cr_assert_eq(pci_func_load(f, buf, (size_t)n), 0, "%s", err_msg());
	uint64_t v;
	cr_assert(bus_read(&mmio, NULL, 0xc3000020, 4, &v), "BAR 0 mapped where the guest had it");
	cr_assert(pci_func_bus_master(f));
	cr_assert_eq(cfg(2, cap + 20, 4), 1, "the pending vector");
	cfg_w(2, cap + 16, 4, 0);
	cr_assert_eq(n_msgs, 1, "sent once unmasked");
	pci_func_free(f);
	d.device = 0x1111;
	f = pci_func_new(host, &apic, "other", &d, 2, false);
	cr_assert_eq(pci_func_load(f, buf, (size_t)n), -EINVAL);
	cr_assert(strstr(err_msg(), "PCI IDs 1234:7ed0 differ"), "%s", err_msg());
	cr_assert_eq(cfg(2, PCI_BAR0, 4), 0, "a refused state changes nothing");
	pci_func_free(f);
}
