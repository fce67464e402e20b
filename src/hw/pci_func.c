/* A PCI function served through callbacks: configuration space from a
 * description, BAR dispatch, MSI and INTx (see pci_func.h). */
#include "hw/pci_func.h"

#include "hw/device.h"
#include "hw/intc/lapic.h"
#include "machine/snap_state.h"
#include "util/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* MSI capability with a 64-bit address and per-vector masking (PCI 3.0,
 * 6.8.1, figure 6-9): control, address low/high, data, mask, pending. */
#define MSI_LEN      24u
#define MSI_CTRL     2u
#define MSI_ADDR_LO  4u
#define MSI_ADDR_HI  8u
#define MSI_DATA     12u
#define MSI_MASK     16u
#define MSI_PENDING  20u
#define MSI_CTRL_ENABLE 0x0001u
#define MSI_CTRL_MME    0x0070u   /* multiple message enable, log2 */
#define MSI_CTRL_64BIT  0x0080u
#define MSI_CTRL_PVM    0x0100u   /* per-vector masking capable */

struct pci_func_bar_ctx {
	struct pci_func *f;
	unsigned bar;
};

struct pci_func {
	struct pci_device pci;
	struct pci_host *host;
	const struct apic_bus *apic;
	struct pci_func_desc desc;
	struct pci_func_bar_ctx bar_ctx[PCI_NUM_BARS];
	uint8_t msi;               /* offset of the MSI capability, 0: none */
	uint32_t level;            /* vectors held at level 1 */
};

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static bool pow2(uint64_t v) { return v && !(v & (v - 1)); }

int pci_func_check(const struct pci_func_desc *d, const char *what)
{
	if (d->vendor == 0 || d->vendor == 0xffff)
		return err_set(-EINVAL, "%s.vendor_id 0x%04x is not a vendor ID (0xffff is an empty slot's, 0 none's)",
			       what, d->vendor);
	if (d->device == 0xffff)
		return err_set(-EINVAL, "%s.device_id 0xffff is not a device ID (an empty slot reads as all ones)", what);
	if (d->class_code > 0xffffff)
		return err_set(-EINVAL, "%s.class_code %#" PRIx32 " is wider than 24 bits (class, subclass, interface)",
			       what, d->class_code);
	if (d->irq_pin > 4)
		return err_set(-EINVAL, "%s.interrupt_pin %u is not 0 (none) or 1-4 (INTA-INTD)", what, d->irq_pin);
	if (d->msi_vectors && (!pow2(d->msi_vectors) || d->msi_vectors > PCI_FUNC_MAX_MSI))
		return err_set(-EINVAL, "%s.msi_vectors %u is not 0 or a power of two up to %d", what, d->msi_vectors,
			       PCI_FUNC_MAX_MSI);
	uint64_t mem = 0, io = 0;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_func_bar *b = &d->bars[i];
		if (!b->size)
			continue;
		uint64_t min = b->io ? 4 : 16;
		if (!pow2(b->size) || b->size < min)
			return err_set(-EINVAL, "%s.bars[%u].size %#" PRIx64 " is not a power of two from %" PRIu64, what, i,
				       b->size, min);
		if (b->io && b->prefetch)
			return err_set(-EINVAL, "%s.bars[%u].flags: an I/O BAR cannot be prefetchable", what, i);
		if (b->io)
			io += b->size;
		else
			mem += b->size;
	}
	if (mem > PCI_FUNC_MEM_STEP)
		return err_set(-EINVAL, "%s.bars: %" PRIu64 " KiB of memory BARs, more than the %llu KiB one function may have",
			       what, mem >> 10, PCI_FUNC_MEM_STEP >> 10);
	if (io > PCI_FUNC_IO_STEP)
		return err_set(-EINVAL, "%s.bars: %" PRIu64 " bytes of I/O BARs, more than the %u one function may have", what,
			       io, PCI_FUNC_IO_STEP);
	return 0;
}

/* ---- BARs ---- */

static uint64_t bar_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	(void)vcpu;
	struct pci_func_bar_ctx *c = opaque;
	const struct pci_func_desc *d = &c->f->desc;
	uint64_t all = size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
	return d->read ? d->read(d->opaque, c->bar, off, size) & all : all;
}

static void bar_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	(void)vcpu;
	struct pci_func_bar_ctx *c = opaque;
	const struct pci_func_desc *d = &c->f->desc;
	if (d->write)
		d->write(d->opaque, c->bar, off, size, val);
}

static const struct bus_ops bar_ops = { bar_read, bar_write };

/* Power-on placement (pci_func.h): largest BAR first, so that each lands
 * naturally aligned in the slot's share. */
static void place_bars(struct pci_func *f)
{
	unsigned devfn = (unsigned)f->pci.slot << 3;
	uint64_t mem = PCI_FUNC_MEM_BASE + f->pci.slot * PCI_FUNC_MEM_STEP;
	uint32_t io = PCI_FUNC_IO_BASE + f->pci.slot * PCI_FUNC_IO_STEP;
	bool done[PCI_NUM_BARS] = { false };
	for (;;) {
		int pick = -1;
		for (unsigned i = 0; i < PCI_NUM_BARS; i++)
			if (!done[i] && f->desc.bars[i].size &&
			    (pick < 0 || f->desc.bars[i].size > f->desc.bars[pick].size))
				pick = (int)i;
		if (pick < 0)
			break;
		done[pick] = true;
		const struct pci_func_bar *b = &f->desc.bars[pick];
		uint32_t addr = b->io ? io : (uint32_t)mem;
		if (b->io)
			io += (uint32_t)b->size;
		else
			mem += b->size;
		pci_config_write(f->host, 0, devfn, PCI_BAR0 + 4 * (unsigned)pick, 4, addr);
	}
	pci_config_write(f->host, 0, devfn, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/* ---- interrupts ---- */

static uint16_t msi_ctrl(const struct pci_func *f)
{
	return f->msi ? rd16(f->pci.config + f->msi + MSI_CTRL) : 0;
}

static bool msi_enabled(const struct pci_func *f)
{
	return msi_ctrl(f) & MSI_CTRL_ENABLE;
}

/* The vector a message of `vector` goes out as: the guest may have
 * allocated fewer than asked for (multiple message enable). */
static unsigned msi_allocated(const struct pci_func *f, unsigned vector)
{
	unsigned n = 1u << ((msi_ctrl(f) & MSI_CTRL_MME) >> 4);
	return vector & (n - 1);
}

static void msi_send(struct pci_func *f, unsigned v)
{
	const uint8_t *c = f->pci.config + f->msi;
	uint64_t addr = rd32(c + MSI_ADDR_LO) | (uint64_t)rd32(c + MSI_ADDR_HI) << 32;
	/* The function sets the low bits of the data to the vector (6.8.1.7). */
	uint32_t data = (rd16(c + MSI_DATA) & ~((1u << ((msi_ctrl(f) & MSI_CTRL_MME) >> 4)) - 1)) | v;
	if (f->apic)
		apic_deliver_msi(f->apic, addr, data);
}

/* Pending vectors no longer masked go out (6.8.1.8: the function sends a
 * pending message once its mask bit clears). */
static void msi_flush(struct pci_func *f)
{
	if (!msi_enabled(f))
		return;
	uint8_t *c = f->pci.config + f->msi;
	uint32_t pending = rd32(c + MSI_PENDING), mask = rd32(c + MSI_MASK);
	for (unsigned v = 0; v < 32; v++) {
		if ((pending >> v & 1) && !(mask >> v & 1)) {
			pending &= ~(1u << v);
			msi_send(f, v);
		}
	}
	wr32(c + MSI_PENDING, pending);
}

static void update_intx(struct pci_func *f)
{
	pci_set_irq(&f->pci, f->level && !msi_enabled(f));
}

int pci_func_irq(struct pci_func *f, unsigned vector, bool level)
{
	unsigned n = f->desc.msi_vectors ? f->desc.msi_vectors : 1;
	if (vector >= n)
		return -EINVAL;
	if (level)
		f->level |= 1u << vector;
	else
		f->level &= ~(1u << vector);
	if (msi_enabled(f)) {
		if (!level)
			return 0;
		unsigned v = msi_allocated(f, vector);
		uint8_t *c = f->pci.config + f->msi;
		if (rd32(c + MSI_MASK) >> v & 1)
			wr32(c + MSI_PENDING, rd32(c + MSI_PENDING) | 1u << v);
		else
			msi_send(f, v);
		return 0;
	}
	update_intx(f);
	return 0;
}

static void config_written(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
	(void)val;
	struct pci_func *f = d->opaque;
	if (f->msi && off < f->msi + MSI_LEN && off + size > f->msi) {
		/* MSI turned on or off, or a vector unmasked: INTx follows, the
		 * pending go out. */
		update_intx(f);
		msi_flush(f);
	}
}

bool pci_func_bus_master(const struct pci_func *f)
{
	return rd16(f->pci.config + PCI_COMMAND) & PCI_COMMAND_MASTER;
}

unsigned pci_func_slot(const struct pci_func *f) { return f->pci.slot; }

struct pci_device *pci_func_device(struct pci_func *f) { return &f->pci; }

/* ---- the function ---- */

struct pci_func *pci_func_new(struct pci_host *h, const struct apic_bus *apic, const char *name,
			      const struct pci_func_desc *desc, unsigned slot, bool place)
{
	if (pci_func_check(desc, name) < 0)
		return NULL;
	if (slot == 0 || slot >= PCI_MAX_DEVICES) {
		err_set(-EINVAL, "%s: PCI slot %u out of range (1-%d)", name, slot, PCI_MAX_DEVICES - 1);
		return NULL;
	}
	struct pci_func *f = calloc(1, sizeof(*f));
	if (!f) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	f->host = h;
	f->apic = apic;
	f->desc = *desc;
	struct pci_device *d = &f->pci;
	pci_device_init(d, name, desc->vendor, desc->device, desc->class_code, desc->irq_pin);
	d->config[PCI_REVISION] = desc->revision;
	wr16(d->config + PCI_SUBSYS_VENDOR, desc->subsys_vendor);
	wr16(d->config + PCI_SUBSYS_ID, desc->subsys);
	d->opaque = f;
	d->config_write = config_written;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_func_bar *b = &desc->bars[i];
		if (!b->size)
			continue;
		f->bar_ctx[i] = (struct pci_func_bar_ctx){ .f = f, .bar = i };
		if (pci_device_set_bar(d, i, b->io ? PCI_BAR_IO : PCI_BAR_MEM32, b->size, &bar_ops, &f->bar_ctx[i]) < 0)
			goto fail;
		if (b->prefetch)
			d->config[PCI_BAR0 + 4 * i] |= 0x8;   /* prefetchable (6.2.5.1) */
	}
	if (desc->msi_vectors) {
		int at = pci_device_add_capability(d, PCI_CAP_ID_MSI, MSI_LEN);
		if (at < 0)
			goto fail;
		f->msi = (uint8_t)at;
		unsigned mmc = (unsigned)__builtin_ctz(desc->msi_vectors);
		wr16(d->config + at + MSI_CTRL, (uint16_t)(mmc << 1 | MSI_CTRL_64BIT | MSI_CTRL_PVM));
		wr16(d->wmask + at + MSI_CTRL, MSI_CTRL_ENABLE | MSI_CTRL_MME);
		wr32(d->wmask + at + MSI_ADDR_LO, 0xfffffffc);
		wr32(d->wmask + at + MSI_ADDR_HI, 0xffffffff);
		wr16(d->wmask + at + MSI_DATA, 0xffff);
		wr32(d->wmask + at + MSI_MASK, desc->msi_vectors == 32 ? 0xffffffffu : (1u << desc->msi_vectors) - 1);
	}
	if (pci_register_device(h, d, slot) < 0)
		goto fail;
	if (place)
		place_bars(f);
	return f;
fail:
	free(f);
	return NULL;
}

void pci_func_free(struct pci_func *f)
{
	if (!f)
		return;
	if (f->pci.host)
		pci_unregister_device(f->host, &f->pci);
	free(f);
}

/* ---- snapshots ---- */

/* Version 1: the configuration space and the vectors at level 1. */
int64_t pci_func_save(struct pci_func *f, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_bytes(&w, f->pci.config, PCI_CONFIG_SIZE);
	hw_snap_u32(&w, f->level);
	return hw_snap_end(&w);
}

int pci_func_load(struct pci_func *f, const void *buf, size_t len)
{
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, f->pci.name, 1, PCI_CONFIG_SIZE + 4);
	if (rc < 0)
		return rc;
	uint8_t *config = malloc(PCI_CONFIG_SIZE);
	if (!config)
		return err_set(-ENOMEM, "out of memory");
	hw_snap_get_bytes(&r, config, PCI_CONFIG_SIZE);
	uint32_t level = hw_snap_get_u32(&r);
	if (memcmp(config, f->pci.config, 4)) {
		uint32_t ids = rd32(config);
		free(config);
		return err_set(-EINVAL, "%s state: PCI IDs %04x:%04x differ from this function's", f->pci.name,
			       ids & 0xffff, ids >> 16);
	}
	/* Identity, write masks and capabilities stay this build's; the
	 * guest-writable bytes and the MSI pending bits come from the blob. */
	for (unsigned i = 0; i < PCI_CONFIG_SIZE; i++)
		f->pci.config[i] = (uint8_t)((f->pci.config[i] & ~f->pci.wmask[i]) | (config[i] & f->pci.wmask[i]));
	if (f->msi)
		memcpy(f->pci.config + f->msi + MSI_PENDING, config + f->msi + MSI_PENDING, 4);
	unsigned n = f->desc.msi_vectors ? f->desc.msi_vectors : 1;
	f->level = level & (n == 32 ? 0xffffffffu : (1u << n) - 1);
	free(config);
	/* The bus follows the saved BARs and command register. */
	if (f->pci.host)
		pci_config_write(f->host, 0, (unsigned)f->pci.slot << 3, PCI_COMMAND, 2,
				 rd16(f->pci.config + PCI_COMMAND));
	update_intx(f);
	return 0;
}
