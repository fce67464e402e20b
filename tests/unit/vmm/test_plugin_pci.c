/* Plug-in PCI functions (docs/plugins.md "PCI functions"): the example
 * edu plug-in on a real PCI host with buses and guest memory -- slot and
 * BAR placement, BAR dispatch, DMA through the bounds-checked services
 * gated by Bus Master Enable, INTx and MSI through pci_irq, removal,
 * snapshots -- and the checks on malformed PCI descriptors. */
#include "hw/device.h"
#include "hw/intc/lapic.h"
#include "hw/pci_func.h"
#include "machine/bus.h"
#include "machine/device_registry.h"
#include "machine/memory.h"
#include "util/error.h"
#include "vmm/plugin.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct plugin_registry reg;
static struct bus pio, mmio;
static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct guest_memory mem;
static struct plugin_devices set;
static struct pci_host *host;
static int gsi_level = -1;
static unsigned gsi, n_msgs;
static uint8_t last_vector;

static void fake_irq(void *opaque, unsigned n, bool level)
{
	gsi = n;
	gsi_level = level;
}

static void fake_deliver(void *opaque, const struct apic_msg *m, struct lapic *src)
{
	last_vector = m->vector;
	n_msgs++;
}

static const struct apic_bus apic = { .deliver = fake_deliver };
static uint64_t written_gpa, written_len;

static void fake_written(void *opaque, uint64_t gpa, uint64_t len)
{
	written_gpa = gpa;
	written_len = len;
}

static void setup(void)
{
	plugin_registry_init(&reg);
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	cr_assert_eq(gmem_init(&mem, 16ULL << 20), 0);
	struct dev_ctx ctx = { .name = "pci", .pio = &pio, .mmio = &mmio,
			       .base = { 0xcf8, GMEM_ECAM_BASE, GMEM_ECAM_SIZE } };
	ctx.irq[0] = (struct irq_line){ .set = fake_irq };
	host = pci_host_new(&ctx);
	cr_assert_not_null(host);
	struct plugin_env env = { .pio = &pio, .mmio = &mmio, .dev_lock = &dev_lock, .mem = &mem, .pci = host,
				  .apic = &apic, .mem_written = fake_written };
	plugin_devices_init(&set, &reg, &env);
	gsi_level = -1;
	n_msgs = 0;
	written_gpa = written_len = 0;
	snapshot_unregister_all();
	cr_assert_eq(plugin_registry_load(&reg, PCI_EXAMPLE_PLUGIN), 0, "%s", err_msg());
}

static void teardown(void)
{
	plugin_devices_destroy(&set);
	plugin_registry_free(&reg);
	pci_host_free(host);
	bus_destroy(&pio);
	bus_destroy(&mmio);
	gmem_destroy(&mem);
}

TestSuite(plugin_pci, .init = setup, .fini = teardown);

static int add(const char *id, const char *params)
{
	struct vm_device_config c = { .type = "edu", .id = (char *)id, .params = (char *)params };
	return plugin_devices_add(&set, &c);
}

static uint32_t cfg(unsigned slot, unsigned off, unsigned size)
{
	return pci_config_read(host, 0, slot << 3, off, size);
}

static uint64_t rd(uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	cr_assert(bus_read(&mmio, NULL, addr, size, &v), "%#llx unclaimed", (unsigned long long)addr);
	return v;
}

static void wr(uint64_t addr, unsigned size, uint64_t v)
{
	cr_assert(bus_write(&mmio, NULL, addr, size, v), "%#llx unclaimed", (unsigned long long)addr);
}

Test(plugin_pci, at_power_on_vessel_places_the_function_and_its_bars)
{
	cr_assert_eq(add("edu0", "{}"), 0, "%s", err_msg());
	cr_assert_eq(plugin_devices_slot(&set, "edu0"), 1, "the first free slot");
	cr_assert_eq(cfg(1, PCI_VENDOR_ID, 4), 0x7ed01234u);
	cr_assert_eq(cfg(1, PCI_CLASS_DEVICE, 2), 0x00ff);
	cr_assert_str_eq(plugin_devices_params(&set, "edu0"), "{\"slot\":1}");
	uint64_t bar0 = cfg(1, PCI_BAR0, 4) & ~0xfu;
	cr_assert_eq(bar0, PCI_FUNC_MEM_BASE + PCI_FUNC_MEM_STEP);
	cr_assert_eq(rd(bar0, 4), 0x45440001u, "the ID register");
	wr(bar0 + 4, 4, 0x12345678);
	cr_assert_eq(rd(bar0 + 4, 4), ~0x12345678u, "liveness");
	wr(bar0 + 8, 4, 10);
	cr_assert_eq(rd(bar0 + 8, 4), 3628800, "10!");
	/* BAR 1, I/O, mirrors the first registers. */
	uint32_t io = cfg(1, PCI_BAR0 + 4, 4) & ~0x3u;
	cr_assert_eq(io, PCI_FUNC_IO_BASE + PCI_FUNC_IO_STEP);
	uint64_t v;
	cr_assert(bus_read(&pio, NULL, io, 4, &v));
	cr_assert_eq(v, 0x45440001u);
	struct plugin_device_info info;
	cr_assert_eq(plugin_devices_info(&set, 0, &info), 0);
	cr_assert_eq(info.specs[0].kind, VESSEL_RES_PCI);
	cr_assert_eq(info.bases[0], 1);
}

Test(plugin_pci, dma_moves_data_only_while_bus_mastering_is_on)
{
	cr_assert_eq(add("edu0", "{\"slot\": 4}"), 0, "%s", err_msg());
	uint64_t bar0 = cfg(4, PCI_BAR0, 4) & ~0xfu;
	cr_assert_eq(bar0, PCI_FUNC_MEM_BASE + 4 * PCI_FUNC_MEM_STEP);
	const char msg[] = "guest data for the device";
	cr_assert_eq(gmem_write(&mem, 0x2000, msg, sizeof(msg)), 0);
	/* Guest memory to the buffer, interrupt when done (INTx: no MSI yet). */
	wr(bar0 + 0x40, 8, 0x2000);
	wr(bar0 + 0x48, 8, 0x100);
	wr(bar0 + 0x50, 4, sizeof(msg));
	wr(bar0 + 0x58, 4, 0x1 | 0x4);
	cr_assert_eq(rd(bar0 + 0x58, 4), 0x4, "done, no error");
	cr_assert_eq(rd(bar0 + 0x60, 4), 1);
	cr_assert_eq(rd(bar0 + 0x1100, 8), 0x6164207473657567ull, "\"guest da\" in the buffer");
	cr_assert_eq(rd(bar0 + 0x20, 4), 0x100, "DMA completion cause");
	cr_assert_eq(gsi_level, 1);
	cr_assert_eq(gsi, pci_intx_gsi(4, 1));
	wr(bar0 + 0x28, 4, 0x100);
	cr_assert_eq(gsi_level, 0, "acknowledged");
	/* Buffer back to another place in guest memory. */
	wr(bar0 + 0x40, 8, 0x100);
	wr(bar0 + 0x48, 8, 0x3000);
	wr(bar0 + 0x58, 4, 0x1 | 0x2);
	char back[sizeof(msg)];
	cr_assert_eq(gmem_read(&mem, 0x3000, back, sizeof(back)), 0);
	cr_assert_str_eq(back, msg);
	cr_assert(written_gpa == 0x3000 && written_len == sizeof(msg), "the engine hears of the DMA write");
	/* Not RAM: refused by the host, nothing copied. */
	wr(bar0 + 0x48, 8, (16u << 20) - 8);
	wr(bar0 + 0x58, 4, 0x1 | 0x2);
	cr_assert_eq(rd(bar0 + 0x58, 4), 0x2 | 0x8, "error bit");
	/* The guest turns bus mastering off: no DMA. */
	pci_config_write(host, 0, 4 << 3, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
	memset(back, 0, sizeof(back));
	cr_assert_eq(gmem_write(&mem, 0x4000, back, sizeof(back)), 0);
	wr(bar0 + 0x48, 8, 0x4000);
	wr(bar0 + 0x58, 4, 0x1 | 0x2);
	cr_assert_eq(rd(bar0 + 0x58, 4), 0x2 | 0x8);
	cr_assert_eq(gmem_read(&mem, 0x4000, back, sizeof(back)), 0);
	cr_assert_eq(back[0], 0, "nothing written");
	cr_assert_eq(rd(bar0 + 0x60, 4), 2);
}

Test(plugin_pci, msi_carries_the_interrupt_once_the_guest_enables_it)
{
	cr_assert_eq(add("edu0", "{}"), 0, "%s", err_msg());
	unsigned cap = cfg(1, PCI_CAP_PTR, 1);
	cr_assert_eq(cfg(1, cap, 1), PCI_CAP_ID_MSI);
	pci_config_write(host, 0, 1 << 3, cap + 4, 4, 0xfee00000);
	pci_config_write(host, 0, 1 << 3, cap + 12, 2, 0x51);
	pci_config_write(host, 0, 1 << 3, cap + 2, 2, 1);
	uint64_t bar0 = cfg(1, PCI_BAR0, 4) & ~0xfu;
	wr(bar0 + 0x24, 4, 1);   /* RAISE */
	cr_assert_eq(n_msgs, 1);
	cr_assert_eq(last_vector, 0x51);
	wr(bar0 + 0x24, 4, 1);
	cr_assert_eq(n_msgs, 2, "one message per raise");
	cr_assert_neq(gsi_level, 1, "no INTx with MSI");
}

Test(plugin_pci, hot_plugged_leaves_bars_to_the_guest_and_removal_unplugs)
{
	set.hotplug = true;
	cr_assert_eq(add("edu0", "{\"slot\": 9}"), 0, "%s", err_msg());
	cr_assert_eq(cfg(9, PCI_BAR0, 4), 0, "no BAR placed");
	cr_assert_eq(cfg(9, PCI_COMMAND, 2), 0);
	char id[32];
	cr_assert_eq(plugin_devices_slot_owner(&set, 9, id, sizeof(id)), 0);
	cr_assert_str_eq(id, "edu0");
	/* Another function in the same slot, a bad slot: refused. */
	cr_assert_eq(add("edu1", "{\"slot\": 9}"), -EBUSY);
	cr_assert(strstr(err_msg(), "device edu1: PCI slot 9 is taken by edu0"), "%s", err_msg());
	cr_assert_eq(add("edu1", "{\"slot\": 32}"), -EINVAL);
	cr_assert(strstr(err_msg(), "params.slot: not a PCI slot (expected 1 to 31)"), "%s", err_msg());
	cr_assert_eq(add("edu1", "{\"bogus\": 1}"), -EINVAL);
	cr_assert(strstr(err_msg(), "params.bogus: unknown parameter of edu"), "%s", err_msg());
	cr_assert_eq(set.n, 1);
	cr_assert_eq(plugin_devices_remove(&set, "edu0"), 0);
	cr_assert_null(pci_find_device(host, 9));
	cr_assert_eq(plugin_devices_slot(&set, "edu0"), -ENOENT);
}

Test(plugin_pci, a_full_bus_is_refused)
{
	char id[16];
	for (unsigned i = 1; i < 32; i++) {
		snprintf(id, sizeof(id), "e%u", i);
		cr_assert_eq(add(id, "{}"), 0, "%s: %s", id, err_msg());
	}
	cr_assert_eq(add("one-more", "{}"), -ENOSPC);
	cr_assert(strstr(err_msg(), "the PCI bus is full"), "%s", err_msg());
}

struct saved {
	void **blob;
	size_t *len;
};

static int save_one(void *arg, const char *name, snapshot_save_fn save, void *opaque)
{
	struct saved *s = arg;
	return strcmp(name, "edu0") ? 0 : snapshot_device_save(name, save, opaque, s->blob, s->len);
}

Test(plugin_pci, state_holds_the_configuration_space_and_the_device)
{
	set.hotplug = true;
	cr_assert_eq(add("edu0", "{\"slot\": 3}"), 0, "%s", err_msg());
	/* The guest places BAR 0 itself. */
	pci_config_write(host, 0, 3 << 3, PCI_BAR0, 4, 0xc5000000);
	pci_config_write(host, 0, 3 << 3, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	wr(0xc5000000 + 4, 4, 7);
	void *blob;
	size_t len;
	cr_assert_eq(snapshot_foreach_device(save_one, &(struct saved){ &blob, &len }), 0);
	cr_assert_eq(plugin_devices_remove(&set, "edu0"), 0);
	/* A restore: the device again in its slot, then its state. */
	set.hotplug = false;
	cr_assert_eq(add("edu0", "{\"slot\": 3}"), 0, "%s", err_msg());
	snapshot_load_fn load;
	void *opaque;
	cr_assert_eq(snapshot_find_device("edu0", &load, &opaque), 0);
	cr_assert_eq(load(opaque, blob, len), 0, "%s", err_msg());
	cr_assert_eq(rd(0xc5000000 + 4, 4), ~7u, "BAR where the guest had it, registers back");
	cr_assert_lt(load(opaque, blob, len - 1), 0, "truncated state accepted");
	/* Shorter than the function state's length word, on a buffer of its
	 * own size (an over-read would show under ASan). */
	void *tiny = malloc(3);
	memcpy(tiny, blob, 3);
	cr_assert_lt(load(opaque, tiny, 3), 0);
	free(tiny);
	/* A length word past the end. */
	((uint8_t *)blob)[3] = 0x7f;
	cr_assert_lt(load(opaque, blob, len), 0);
	cr_assert_eq(rd(0xc5000000 + 4, 4), ~7u, "refused states changed nothing");
	free(blob);
}

/* ---- malformed descriptors ---- */

static int dummy_create(const struct vessel_host *h, const union vessel_param_value *p, void **d) { return 0; }
static void dummy_destroy(void *d) { }

static void refused(struct vessel_pci_function *f, const char *needle)
{
	struct vessel_resource_spec r = { .kind = VESSEL_RES_PCI, .name = "fn", .len = 1, .pci = f };
	struct vessel_device_type t = { .size = sizeof(t), .name = "bad", .create = dummy_create,
					.destroy = dummy_destroy, .resources = &r, .n_resources = 1 };
	const struct vessel_device_type *list[] = { &t };
	struct vessel_plugin p = { .magic = VESSEL_PLUGIN_MAGIC, .abi_version = VESSEL_PLUGIN_ABI_VERSION,
				   .size = sizeof(p), .name = "p", .devices = list, .n_devices = 1 };
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), -ENOEXEC, "accepted: %s", needle);
	cr_assert(strstr(err_msg(), needle), "'%s' not in '%s'", needle, err_msg());
	cr_assert(strstr(err_msg(), "plug-in p.so: device bad: resource fn: pci."), "%s", err_msg());
}

Test(plugin_pci, malformed_pci_descriptors_are_refused_naming_the_field)
{
	struct vessel_pci_bar bars[7] = { { .size = 0x1000 } };
	struct vessel_pci_function f = { .vendor_id = 0x1234, .device_id = 1, .bars = bars, .n_bars = 1 };
	struct vessel_resource_spec r = { .kind = VESSEL_RES_PCI, .name = "fn", .len = 1, .pci = &f };
	struct vessel_device_type t = { .size = sizeof(t), .name = "ok", .create = dummy_create,
					.destroy = dummy_destroy, .resources = &r, .n_resources = 1 };
	const struct vessel_device_type *list[] = { &t };
	struct vessel_plugin p = { .magic = VESSEL_PLUGIN_MAGIC, .abi_version = VESSEL_PLUGIN_ABI_VERSION,
				   .size = sizeof(p), .name = "p", .devices = list, .n_devices = 1 };
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), 0, "%s", err_msg());
	bars[0].size = 0x1800;
	refused(&f, "pci.bars[0].size 0x1800 is not a power of two");
	bars[0].size = 0x1000;
	f.n_bars = 7;
	refused(&f, "pci.n_bars 7 is more than the 6 BARs of a PCI function");
	f.n_bars = 1;
	bars[0].flags = 0x10;
	refused(&f, "pci.bars[0].flags 0x10 has unknown bits");
	bars[0].flags = 0;
	f.vendor_id = 0xffff;
	refused(&f, "pci.vendor_id 0xffff is not a vendor ID");
	f.vendor_id = 0x1234;
	f.msi_vectors = 5;
	refused(&f, "pci.msi_vectors 5");
	f.msi_vectors = 0;
	r.pci = NULL;
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), -ENOEXEC);
	cr_assert(strstr(err_msg(), "resource fn: pci is NULL"), "%s", err_msg());
	r.pci = &f;
	r.base = 32;
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), -ENOEXEC);
	cr_assert(strstr(err_msg(), "resource fn: base 32 is not a PCI slot"), "%s", err_msg());
	r.base = 0;
	struct vessel_resource_spec two[2] = { r, r };
	t.resources = two;
	t.n_resources = 2;
	cr_assert_eq(plugin_validate_descriptor(&p, "p.so"), -ENOEXEC);
	cr_assert(strstr(err_msg(), "a device has at most one PCI function"), "%s", err_msg());
}

Test(plugin_pci, without_a_pci_bus_a_function_is_refused)
{
	struct plugin_devices none;
	struct plugin_env env = { .pio = &pio, .mmio = &mmio, .dev_lock = &dev_lock, .mem = &mem };
	plugin_devices_init(&none, &reg, &env);
	struct vm_device_config c = { .type = "edu", .id = "edu0", .params = "{}" };
	cr_assert_eq(plugin_devices_add(&none, &c), -ENODEV);
	cr_assert(strstr(err_msg(), "device edu0: function: this machine has no PCI bus"), "%s", err_msg());
	plugin_devices_destroy(&none);
}
