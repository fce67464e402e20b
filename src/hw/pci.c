/* PCI host bridge: type-1 and ECAM configuration access, BAR mapping. */
#include "hw/pci.h"

#include "hw/device.h"
#include "machine/snap_state.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pci_host {
	/* base[0]: CONFIG_ADDRESS (CONFIG_DATA at +4), base[1]/base[2]: the
	 * ECAM window and its size; irq[0]: the interrupt controller's inputs
	 * as a bank (INTx drives line n + pci_intx_gsi()). */
	struct dev_ctx ctx;
	uint32_t config_address;   /* 0xcf8 */
	/* Byte accesses to 0xcf9 are the reset control register, not CONFIG_ADDRESS. */
	const struct bus_ops *cf9_ops;
	void *cf9_opaque;
	struct pci_device *devs[PCI_MAX_DEVICES];
	struct pci_device bridge;  /* 00:00.0 */
};

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

unsigned pci_intx_gsi(unsigned slot, unsigned pin)
{
	/* The usual swizzle, onto the 8 I/O APIC pins 16-23. */
	return 16 + ((slot + pin - 1) & 7);
}

void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t irq_pin)
{
	memset(d->config, 0, sizeof(d->config));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->w1cmask, 0, sizeof(d->w1cmask));
	memset(d->bars, 0, sizeof(d->bars));
	d->name = name;
	d->cap_free = 0x40;
	wr16(d->config + PCI_VENDOR_ID, vendor);
	wr16(d->config + PCI_DEVICE_ID, device);
	d->config[PCI_CLASS_PROG] = (uint8_t)class_code;
	wr16(d->config + PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
	d->config[PCI_INTERRUPT_PIN] = irq_pin;
	wr16(d->wmask + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
				     PCI_COMMAND_INTX_DISABLE | 0x140 /* parity, SERR */);
	/* Status error bits are write-1-to-clear (PCI 3.0, 6.2.3). */
	wr16(d->w1cmask + PCI_STATUS, 0xf900);
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	d->wmask[0x0c] = 0xff;   /* cache line size */
	d->wmask[0x0d] = 0xff;   /* latency timer */
}

int pci_device_set_bar(struct pci_device *d, unsigned idx, enum pci_bar_type type, uint64_t size,
		       const struct bus_ops *ops, void *opaque)
{
	if (idx >= PCI_NUM_BARS || (type == PCI_BAR_MEM64 && idx == PCI_NUM_BARS - 1))
		return err_set(-EINVAL, "%s: BAR %u cannot be %s", d->name, idx,
			       type == PCI_BAR_MEM64 ? "64-bit" : "used");
	if (size & (size - 1) || size < (type == PCI_BAR_IO ? 4u : 16u))
		return err_set(-EINVAL, "%s: BAR %u size %#llx is not a power of two", d->name, idx,
			       (unsigned long long)size);
	struct pci_bar *b = &d->bars[idx];
	b->type = type;
	b->size = size;
	b->ops = ops;
	b->opaque = opaque;
	uint8_t *cfg = d->config + PCI_BAR0 + 4 * idx, *wm = d->wmask + PCI_BAR0 + 4 * idx;
	uint64_t mask = ~(size - 1);
	switch (type) {
	case PCI_BAR_IO:
		wr32(cfg, 0x1);
		wr32(wm, (uint32_t)mask & 0xfffffffc);
		break;
	case PCI_BAR_MEM32:
		wr32(cfg, 0x0);
		wr32(wm, (uint32_t)mask & 0xfffffff0);
		break;
	case PCI_BAR_MEM64:
		wr32(cfg, 0x4);
		wr32(wm, (uint32_t)mask & 0xfffffff0);
		wr32(wm + 4, (uint32_t)(mask >> 32));
		d->bars[idx + 1].type = PCI_BAR_NONE;
		break;
	default:
		break;
	}
	return 0;
}

int pci_device_add_capability(struct pci_device *d, uint8_t cap_id, unsigned len)
{
	/* Capabilities live in the device-specific part of the 256-byte
	 * space (from 0x40), dword aligned, linked in the order added. */
	unsigned at = (d->cap_free + 3) & ~3u;
	if (len < 2 || at < 0x40 || at + len > 0x100)
		return err_set(-ENOSPC, "%s: no room for a %u-byte capability", d->name, len);
	unsigned last = 0;
	for (unsigned off = d->config[PCI_CAP_PTR], guard = 0; off && guard < 48; guard++) {
		last = off;
		off = d->config[off + 1];
	}
	d->config[at] = cap_id;
	d->config[at + 1] = 0;
	if (last)
		d->config[last + 1] = (uint8_t)at;
	else
		d->config[PCI_CAP_PTR] = (uint8_t)at;
	d->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->cap_free = (uint16_t)(at + len);
	return (int)at;
}

static uint64_t bar_address(const struct pci_device *d, unsigned idx)
{
	const struct pci_bar *b = &d->bars[idx];
	uint32_t lo = rd32(d->config + PCI_BAR0 + 4 * idx);
	switch (b->type) {
	case PCI_BAR_IO: return lo & ~3u;
	case PCI_BAR_MEM32: return lo & ~15u;
	case PCI_BAR_MEM64: return (lo & ~15ull) | ((uint64_t)rd32(d->config + PCI_BAR0 + 4 * idx + 4) << 32);
	default: return 0;
	}
}

/* Maps each BAR where the guest placed it, if decoding is enabled and the
 * address is sane (not 0, not the all-ones sizing pattern). */
static void pci_update_mappings(struct pci_device *d)
{
	struct dev_ctx *ctx = &d->host->ctx;
	uint16_t cmd = rd16(d->config + PCI_COMMAND);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		if (b->type == PCI_BAR_NONE || !b->ops)
			continue;
		bool io = b->type == PCI_BAR_IO;
		struct bus *bus = io ? ctx->pio : ctx->mmio;
		uint64_t addr = bar_address(d, i);
		bool enable = (cmd & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) && addr &&
			      addr + b->size - 1 > addr && (io ? addr + b->size <= 0x10000 : true);
		uint64_t want = enable ? addr : 0;
		if (b->mapped == want)
			continue;
		if (b->mapped)
			bus_unregister(bus, b->mapped, b->opaque);
		b->mapped = 0;
		if (want && bus_register(bus, want, b->size, b->ops, b->opaque, d->name) == 0)
			b->mapped = want;
		else if (want)
			log_debug("pci", "%s: BAR %u at %#llx overlaps another device; not mapped", d->name, i,
				  (unsigned long long)want);
	}
}

static uint32_t dev_config_read(struct pci_device *d, unsigned off, unsigned size)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)d->config[off + i] << (8 * i);
	if (d->config_read)
		v = d->config_read(d, off, size, v);
	return v;
}

static void dev_config_write(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
	bool remap = false;
	for (unsigned i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t b = (uint8_t)(val >> (8 * i));
		uint8_t wm = d->wmask[o], w1c = d->w1cmask[o];
		d->config[o] = (uint8_t)((d->config[o] & ~wm) | (b & wm));
		d->config[o] &= (uint8_t)~(b & w1c);
		if ((o >= PCI_COMMAND && o < PCI_COMMAND + 2) || (o >= PCI_BAR0 && o < PCI_BAR0 + 24))
			remap = true;
	}
	if (remap)
		pci_update_mappings(d);
	if (d->config_write)
		d->config_write(d, off, size, val);
	if (off <= PCI_COMMAND + 1 && off + size > PCI_COMMAND + 1 && d->intx_level)
		pci_set_irq(d, true);   /* re-evaluate INTx after INTX_DISABLE changes */
}

static struct pci_device *lookup(struct pci_host *h, unsigned bus, unsigned devfn)
{
	/* Single-function devices on bus 0 only. */
	if (bus != 0 || (devfn & 7))
		return NULL;
	return h->devs[devfn >> 3];
}

uint32_t pci_config_read(struct pci_host *h, unsigned bus, unsigned devfn, unsigned off, unsigned size)
{
	struct pci_device *d = lookup(h, bus, devfn);
	if (!d || off + size > PCI_CONFIG_SIZE)
		return size >= 4 ? 0xffffffff : (1u << (8 * size)) - 1;
	return dev_config_read(d, off, size);
}

void pci_config_write(struct pci_host *h, unsigned bus, unsigned devfn, unsigned off, unsigned size, uint32_t val)
{
	struct pci_device *d = lookup(h, bus, devfn);
	if (!d || off + size > PCI_CONFIG_SIZE)
		return;
	dev_config_write(d, off, size, val);
}

void pci_set_irq(struct pci_device *d, bool level)
{
	d->intx_level = level;
	unsigned pin = d->config[PCI_INTERRUPT_PIN];
	if (!pin || pin > 4 || !d->host)
		return;
	if (level)
		d->config[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
	else
		d->config[PCI_STATUS] &= ~PCI_STATUS_INTERRUPT;
	bool disabled = rd16(d->config + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
	irq_line_set_at(&d->host->ctx.irq[0], pci_intx_gsi(d->slot, pin), level && !disabled);
}

/* ---- type-1 access: 0xcf8 address, 0xcfc-0xcff data ---- */

static uint64_t cf8_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	if (off == 0 && size == 4)
		return h->config_address;
	if (off == 1 && size == 1 && h->cf9_ops)
		return h->cf9_ops->read(h->cf9_opaque, vcpu, 0, 1);
	return 0xffffffffull >> (32 - 8 * (size > 4 ? 4 : size));
}

static void cf8_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_host *h = opaque;
	/* Only dword accesses hit CONFIG_ADDRESS (PCI 3.0, 3.2.2.3.2). */
	if (off == 0 && size == 4)
		h->config_address = (uint32_t)val & 0x80fffffc;
	else if (off == 1 && size == 1 && h->cf9_ops)
		h->cf9_ops->write(h->cf9_opaque, vcpu, 0, 1, val);
}

void pci_host_set_cf9(struct pci_host *h, const struct bus_ops *ops, void *opaque)
{
	h->cf9_ops = ops;
	h->cf9_opaque = opaque;
}

static uint64_t cfc_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct pci_host *h = opaque;
	uint32_t a = h->config_address;
	if (!(a & 0x80000000u) || off + size > 4)
		return 0xffffffffull >> (32 - 8 * (size > 4 ? 4 : size));
	return pci_config_read(h, (a >> 16) & 0xff, (a >> 8) & 0xff, (a & 0xfc) + (unsigned)off, size);
}

static void cfc_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct pci_host *h = opaque;
	uint32_t a = h->config_address;
	if (!(a & 0x80000000u) || off + size > 4)
		return;
	pci_config_write(h, (a >> 16) & 0xff, (a >> 8) & 0xff, (a & 0xfc) + (unsigned)off, size, (uint32_t)val);
}

/* ---- ECAM: bus << 20 | devfn << 12 | offset ---- */

static uint64_t ecam_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	unsigned reg = off & 0xfff;
	if (size > 4 || (reg & (size - 1)))
		return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
	return pci_config_read(opaque, (unsigned)(off >> 20) & 0xff, (unsigned)(off >> 12) & 0xff, reg, size);
}

static void ecam_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	unsigned reg = off & 0xfff;
	if (size > 4 || (reg & (size - 1)))
		return;
	pci_config_write(opaque, (unsigned)(off >> 20) & 0xff, (unsigned)(off >> 12) & 0xff, reg, size, (uint32_t)val);
}

static const struct bus_ops cf8_ops = { cf8_read, cf8_write };
static const struct bus_ops cfc_ops = { cfc_read, cfc_write };
static const struct bus_ops ecam_ops = { ecam_read, ecam_write };

int pci_register_device(struct pci_host *h, struct pci_device *d, unsigned slot)
{
	if (slot == 0) {
		for (slot = 1; slot < PCI_MAX_DEVICES && h->devs[slot]; slot++)
			;
		if (slot == PCI_MAX_DEVICES)
			return err_set(-ENOSPC, "no free PCI slot for %s", d->name);
	}
	if (slot >= PCI_MAX_DEVICES)
		return err_set(-EINVAL, "PCI slot %u out of range for %s", slot, d->name);
	if (h->devs[slot])
		return err_set(-EBUSY, "PCI slot %u is taken by %s", slot, h->devs[slot]->name);
	d->slot = (uint8_t)slot;
	d->host = h;
	h->devs[slot] = d;
	return 0;
}

int pci_unregister_device(struct pci_host *h, struct pci_device *d)
{
	if (d->slot >= PCI_MAX_DEVICES || h->devs[d->slot] != d)
		return err_set(-ENOENT, "%s is not on the PCI bus", d->name);
	wr16(d->config + PCI_COMMAND, 0);
	pci_update_mappings(d);
	if (d->intx_level)
		pci_set_irq(d, false);
	h->devs[d->slot] = NULL;
	d->host = NULL;
	return 0;
}

struct pci_device *pci_find_device(struct pci_host *h, unsigned slot)
{
	return slot < PCI_MAX_DEVICES ? h->devs[slot] : NULL;
}

void pci_host_reset(struct pci_host *h)
{
	h->config_address = 0;
	for (unsigned i = 0; i < PCI_MAX_DEVICES; i++) {
		struct pci_device *d = h->devs[i];
		if (!d)
			continue;
		wr16(d->config + PCI_COMMAND, 0);
		for (unsigned b = 0; b < PCI_NUM_BARS; b++)
			if (d->bars[b].type != PCI_BAR_NONE)
				wr32(d->config + PCI_BAR0 + 4 * b, rd32(d->config + PCI_BAR0 + 4 * b) & ~rd32(d->wmask + PCI_BAR0 + 4 * b));
		pci_update_mappings(d);
	}
}

struct pci_host *pci_host_new(const struct dev_ctx *ctx)
{
	struct pci_host *h = calloc(1, sizeof(*h));
	if (!h) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	h->ctx = *ctx;
	/* Host bridge: Intel Q35 MCH (82G33 DRAM controller) IDs, class 06/00. */
	pci_device_init(&h->bridge, "host-bridge", 0x8086, 0x29c0, 0x060000, 0);
	h->bridge.host = h;
	h->bridge.slot = 0;
	h->devs[0] = &h->bridge;
	if (bus_register(ctx->pio, ctx->base[0], 4, &cf8_ops, h, "pci-cf8") < 0 ||
	    bus_register(ctx->pio, ctx->base[0] + 4, 4, &cfc_ops, h, "pci-cfc") < 0 ||
	    bus_register(ctx->mmio, ctx->base[1], ctx->base[2], &ecam_ops, h, "pci-ecam") < 0) {
		pci_host_free(h);
		return NULL;
	}
	return h;
}

void pci_host_free(struct pci_host *h)
{
	if (!h)
		return;
	bus_release(h->ctx.pio, h);
	bus_release(h->ctx.mmio, h);
	free(h);
}

static void *pci_host_create(const struct dev_ctx *ctx) { return pci_host_new(ctx); }
static void pci_host_reset_dev(void *dev) { pci_host_reset(dev); }
static void pci_host_destroy(void *dev) { pci_host_free(dev); }

const struct dev_desc pci_host_device = {
	.name = "pci", .create = pci_host_create, .reset = pci_host_reset_dev,
	.save = pci_host_snapshot_save, .load = pci_host_snapshot_load, .destroy = pci_host_destroy,
};

/* Snapshot state, version 1: CONFIG_ADDRESS (0xcf8) and the host bridge's
 * configuration space.  Devices on the bus save their own configuration
 * with the rest of their state (their BARs map memory they own). */
int64_t pci_host_snapshot_save(void *opaque, void *buf, size_t cap)
{
	struct pci_host *h = opaque;
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_u32(&w, h->config_address);
	hw_snap_bytes(&w, h->bridge.config, sizeof(h->bridge.config));
	return hw_snap_end(&w);
}

int pci_host_snapshot_load(void *opaque, const void *buf, size_t len)
{
	struct pci_host *h = opaque;
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, "pci", 1, 4 + sizeof(h->bridge.config));
	if (rc < 0)
		return rc;
	uint32_t addr = hw_snap_get_u32(&r);
	uint8_t config[sizeof(h->bridge.config)];
	hw_snap_get_bytes(&r, config, sizeof(config));
	/* Identity registers are the bridge's, not the blob's to choose. */
	if (memcmp(config, h->bridge.config, 4))
		return err_set(-EINVAL, "pci state: host bridge IDs %02x%02x:%02x%02x differ from this build's",
			       config[1], config[0], config[3], config[2]);
	h->config_address = addr;
	memcpy(h->bridge.config, config, sizeof(config));
	return 0;
}
