/* The virtio-pci modern transport (virtio 1.2, section 4.1; see
 * virtio_pci.h): capabilities, common configuration, notifications, ISR,
 * MSI-X and INTx. */
#include "virtio/virtio_pci.h"

#include "hw/intc/lapic.h"
#include "hw/pci.h"
#include "machine/snap_state.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PCI_VENDOR_VIRTIO 0x1af4
#define PCI_DEVICE_VIRTIO_MODERN 0x1040   /* + device ID (section 4.1.2) */

/* Capability types (section 4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

/* BAR 0 layout: one 4 KiB page per structure. */
#define BAR0_SIZE     0x8000u
#define OFF_COMMON    0x0000u
#define LEN_COMMON    0x38u
#define OFF_ISR       0x1000u
#define OFF_DEVICE    0x2000u
#define OFF_NOTIFY    0x3000u
#define NOTIFY_MULT   4u
#define OFF_MSIX      0x4000u
#define OFF_PBA       0x5000u

/* MSI-X (PCI 3.0, 6.8.2): message control bits, vector control mask. */
#define MSIX_ENABLE    0x8000u
#define MSIX_MASKALL   0x4000u
#define MSIX_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)

struct virtio_pci {
	struct pci_device pci;
	struct dev_ctx ctx;
	struct virtio_board board;
	const struct virtio_device_ops *ops;
	void *dev;
	unsigned n_vectors;           /* one per queue and one for configuration */
	uint8_t msix_cap;             /* offset of the MSI-X capability */
	uint32_t dfselect, gfselect;
	uint64_t driver_features;
	uint16_t config_vector;
	uint8_t status, isr;
	uint16_t queue_sel;
	struct virtq q[VIRTIO_MAX_QUEUES];
	uint32_t msix[MSIX_MAX_VECTORS][4];   /* address low/high, data, vector control */
	uint64_t pba;
	struct timespec last_log;
	unsigned suppressed;
};

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }
static inline uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

const char *virtio_pci_name(const struct virtio_pci *t) { return t->ctx.name; }

static uint64_t offered_features(const struct virtio_pci *t)
{
	return t->ops->features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_INDIRECT_DESC |
	       1ull << VIRTIO_F_EVENT_IDX;
}

uint64_t virtio_pci_features(const struct virtio_pci *t)
{
	return t->status & VIRTIO_STATUS_FEATURES_OK ? t->driver_features : 0;
}

bool virtio_pci_driver_ok(const struct virtio_pci *t)
{
	return (t->status & VIRTIO_STATUS_DRIVER_OK) && !(t->status & VIRTIO_STATUS_NEEDS_RESET);
}

struct virtq *virtio_pci_queue(struct virtio_pci *t, unsigned q)
{
	return q < t->ops->n_queues ? &t->q[q] : NULL;
}

void virtio_pci_guest_error(struct virtio_pci *t, const char *fmt, ...)
{
	/* At most one line a second per device: a guest must not be able to
	 * flood the host's log. */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (t->last_log.tv_sec && now.tv_sec - t->last_log.tv_sec < 1) {
		t->suppressed++;
		return;
	}
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (t->suppressed)
		log_warn("virtio", "%s: %s (%u similar messages suppressed)", t->ctx.name, msg, t->suppressed);
	else
		log_warn("virtio", "%s: %s", t->ctx.name, msg);
	t->last_log = now;
	t->suppressed = 0;
}

/* ---- interrupts ---- */

static bool msix_enabled(const struct virtio_pci *t)
{
	return rd16(t->pci.config + t->msix_cap + 2) & MSIX_ENABLE;
}

static bool msix_masked(const struct virtio_pci *t, unsigned v)
{
	return (rd16(t->pci.config + t->msix_cap + 2) & MSIX_MASKALL) || (t->msix[v][3] & 1);
}

static void msix_send(struct virtio_pci *t, unsigned v)
{
	uint64_t addr = t->msix[v][0] | (uint64_t)t->msix[v][1] << 32;
	if (t->board.apic)
		apic_deliver_msi(t->board.apic, addr, t->msix[v][2]);
}

/* Delivers the pending vectors that are no longer masked (PCI 3.0, 6.8.2.9). */
static void msix_flush_pending(struct virtio_pci *t)
{
	if (!msix_enabled(t))
		return;
	for (unsigned v = 0; v < t->n_vectors; v++) {
		if ((t->pba >> v & 1) && !msix_masked(t, v)) {
			t->pba &= ~(1ull << v);
			msix_send(t, v);
		}
	}
}

static void update_intx(struct virtio_pci *t)
{
	pci_set_irq(&t->pci, t->isr && !msix_enabled(t));
}

/* isr_bit: 1 for a used buffer, 2 for a configuration change (4.1.4.5). */
static void raise_interrupt(struct virtio_pci *t, uint16_t vector, uint8_t isr_bit)
{
	if (msix_enabled(t)) {
		if (vector >= t->n_vectors)
			return;   /* VIRTIO_MSI_NO_VECTOR: the driver wants none */
		if (msix_masked(t, vector))
			t->pba |= 1ull << vector;
		else
			msix_send(t, vector);
		return;
	}
	t->isr |= isr_bit;
	update_intx(t);
}

void virtio_pci_queue_done(struct virtio_pci *t, unsigned q)
{
	if (q < t->ops->n_queues && virtq_should_notify(&t->q[q]))
		raise_interrupt(t, t->q[q].msix_vector, 1);
}

void virtio_pci_broken(struct virtio_pci *t, unsigned q)
{
	virtio_pci_guest_error(t, "queue %u: %s; device needs reset", q, err_msg());
	if (t->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	/* Section 2.1.2: NEEDS_RESET with a configuration change notification. */
	t->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		raise_interrupt(t, t->config_vector, 2);
}

/* ---- common configuration (section 4.1.4.3) ---- */

static void device_reset(struct virtio_pci *t)
{
	t->status = 0;
	t->isr = 0;
	t->dfselect = t->gfselect = 0;
	t->driver_features = 0;
	t->config_vector = VIRTIO_MSI_NO_VECTOR;
	t->queue_sel = 0;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		virtq_reset(&t->q[i]);
		if (i < t->ops->n_queues)
			t->q[i].size = t->ops->queue_max;
	}
	update_intx(t);
	if (t->ops->reset)
		t->ops->reset(t->dev);
}

static void common_image(const struct virtio_pci *t, uint8_t *img)
{
	memset(img, 0, 0x40);
	uint64_t f = offered_features(t);
	wr32(img + 0x00, t->dfselect);
	wr32(img + 0x04, t->dfselect < 2 ? (uint32_t)(f >> (32 * t->dfselect)) : 0);
	wr32(img + 0x08, t->gfselect);
	wr32(img + 0x0c, t->gfselect < 2 ? (uint32_t)(t->driver_features >> (32 * t->gfselect)) : 0);
	wr16(img + 0x10, t->config_vector);
	wr16(img + 0x12, (uint16_t)t->ops->n_queues);
	img[0x14] = t->status;
	img[0x15] = 0;   /* config_generation: the configuration never changes */
	wr16(img + 0x16, t->queue_sel);
	if (t->queue_sel < t->ops->n_queues) {
		const struct virtq *q = &t->q[t->queue_sel];
		wr16(img + 0x18, q->size);
		wr16(img + 0x1a, q->msix_vector);
		wr16(img + 0x1c, q->ready);
		wr16(img + 0x1e, t->queue_sel);   /* queue_notify_off */
		wr64(img + 0x20, q->desc);
		wr64(img + 0x28, q->avail);
		wr64(img + 0x30, q->used);
	}
}

static bool hit(uint64_t off, unsigned size, unsigned field, unsigned len)
{
	return off < field + len && field < off + size;
}

static uint16_t valid_vector(const struct virtio_pci *t, uint16_t v)
{
	/* Section 4.1.5.1.2: an unusable vector reads back as NO_VECTOR. */
	return v < t->n_vectors ? v : VIRTIO_MSI_NO_VECTOR;
}

static void set_status(struct virtio_pci *t, uint8_t val)
{
	if (val == 0) {
		device_reset(t);
		return;
	}
	if ((val & VIRTIO_STATUS_FEATURES_OK) && !(t->status & VIRTIO_STATUS_FEATURES_OK)) {
		/* Section 2.2.2: accept only a subset of what was offered, and
		 * section 6.1: a modern device requires VERSION_1. */
		uint64_t f = t->driver_features;
		if ((f & ~offered_features(t)) || !(f >> VIRTIO_F_VERSION_1 & 1)) {
			virtio_pci_guest_error(t, "driver features %#llx refused (offered %#llx)",
					       (unsigned long long)f, (unsigned long long)offered_features(t));
			val &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		} else {
			for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
				t->q[i].event_idx = f >> VIRTIO_F_EVENT_IDX & 1;
				t->q[i].indirect = f >> VIRTIO_F_INDIRECT_DESC & 1;
				t->q[i].packed = f >> VIRTIO_F_RING_PACKED & 1;
			}
		}
	}
	t->status = (uint8_t)(val | (t->status & VIRTIO_STATUS_NEEDS_RESET));
}

static void enable_queue(struct virtio_pci *t, struct virtq *q)
{
	if (q->ready)
		return;
	bool size_ok = q->packed ? virtq_packed_size_valid(q->size, t->ops->queue_max)
				 : virtq_size_valid(q->size, t->ops->queue_max);
	if (!size_ok || !virtq_rings_aligned(q)) {
		err_set(-EINVAL, "queue size %u (at most %u%s) or ring alignment (%#llx/%#llx/%#llx)", q->size,
			t->ops->queue_max, q->packed ? "" : ", a power of two", (unsigned long long)q->desc,
			(unsigned long long)q->avail, (unsigned long long)q->used);
		virtio_pci_broken(t, t->queue_sel);
		return;
	}
	q->ready = true;
}

static void common_write(struct virtio_pci *t, uint64_t off, unsigned size, uint64_t val)
{
	uint8_t img[0x40];
	common_image(t, img);
	for (unsigned i = 0; i < size && off + i < sizeof(img); i++)
		img[off + i] = (uint8_t)(val >> (8 * i));
	if (hit(off, size, 0x00, 4))
		t->dfselect = rd32(img + 0x00);
	if (hit(off, size, 0x08, 4))
		t->gfselect = rd32(img + 0x08);
	if (hit(off, size, 0x0c, 4) && t->gfselect < 2 && !(t->status & VIRTIO_STATUS_FEATURES_OK)) {
		unsigned sh = 32 * t->gfselect;
		t->driver_features = (t->driver_features & ~(0xffffffffull << sh)) | (uint64_t)rd32(img + 0x0c) << sh;
	}
	if (hit(off, size, 0x10, 2))
		t->config_vector = valid_vector(t, rd16(img + 0x10));
	if (hit(off, size, 0x14, 1))
		set_status(t, img[0x14]);
	if (hit(off, size, 0x16, 2))
		t->queue_sel = rd16(img + 0x16);
	if (t->queue_sel >= t->ops->n_queues)
		return;
	struct virtq *q = &t->q[t->queue_sel];
	if (hit(off, size, 0x1a, 2))
		q->msix_vector = valid_vector(t, rd16(img + 0x1a));
	/* Size and addresses are the driver's to set only while the queue
	 * is disabled (section 4.1.4.3.2). */
	if (!q->ready) {
		if (hit(off, size, 0x18, 2))
			q->size = rd16(img + 0x18);
		if (hit(off, size, 0x20, 8))
			q->desc = rd64(img + 0x20);
		if (hit(off, size, 0x28, 8))
			q->avail = rd64(img + 0x28);
		if (hit(off, size, 0x30, 8))
			q->used = rd64(img + 0x30);
	}
	if (hit(off, size, 0x1c, 2) && rd16(img + 0x1c) == 1)
		enable_queue(t, q);
}

/* ---- BAR 0 ---- */

static uint64_t bar_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	(void)vcpu;
	struct virtio_pci *t = opaque;
	uint8_t buf[VIRTIO_CONFIG_MAX + 8] = { 0 };
	uint64_t v = 0;
	if (off < OFF_COMMON + LEN_COMMON && off + size <= 0x40) {
		common_image(t, buf);
		memcpy(&v, buf + off, size);
	} else if (off == OFF_ISR) {
		/* Reading clears it and lowers INTx (section 4.1.4.5). */
		v = t->isr;
		t->isr = 0;
		update_intx(t);
	} else if (off >= OFF_DEVICE && off - OFF_DEVICE + size <= t->ops->config_len) {
		if (t->ops->config)
			t->ops->config(t->dev, buf);
		memcpy(&v, buf + (off - OFF_DEVICE), size);
	} else if (off >= OFF_MSIX && off + size <= OFF_MSIX + 16u * t->n_vectors && size >= 4) {
		unsigned e = (unsigned)(off - OFF_MSIX) / 16, w = (unsigned)(off - OFF_MSIX) % 16 / 4;
		v = t->msix[e][w];
		if (size == 8 && w < 3)
			v |= (uint64_t)t->msix[e][w + 1] << 32;
	} else if (off >= OFF_PBA && off + size <= OFF_PBA + 8) {
		v = t->pba >> (8 * (off - OFF_PBA));
	}
	return size == 8 ? v : v & ((1ull << (8 * size)) - 1);
}

static void msix_write(struct virtio_pci *t, uint64_t off, unsigned size, uint64_t val)
{
	if (size < 4 || off % 4)
		return;   /* PCI 3.0, 6.8.2: DWORD or QWORD accesses only */
	unsigned e = (unsigned)off / 16, w = (unsigned)off % 16 / 4;
	for (unsigned k = 0; k < size / 4 && w + k < 4; k++)
		t->msix[e][w + k] = (uint32_t)(val >> (32 * k));
	if (w + size / 4 > 3)
		msix_flush_pending(t);   /* vector control changed: maybe unmasked */
}

static void bar_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	(void)vcpu;
	struct virtio_pci *t = opaque;
	if (off < OFF_COMMON + LEN_COMMON && off + size <= 0x40) {
		common_write(t, off, size, val);
	} else if (off >= OFF_NOTIFY && off < OFF_NOTIFY + NOTIFY_MULT * t->ops->n_queues) {
		unsigned q = (unsigned)(off - OFF_NOTIFY) / NOTIFY_MULT;
		if (!virtio_pci_driver_ok(t)) {
			virtio_pci_guest_error(t, "queue %u notified %s", q,
					       t->status & VIRTIO_STATUS_NEEDS_RESET ? "while the device needs reset"
										    : "before DRIVER_OK");
			return;
		}
		if (t->q[q].ready && t->ops->notify)
			t->ops->notify(t->dev, q);
	} else if (off >= OFF_MSIX && off + size <= OFF_MSIX + 16u * t->n_vectors) {
		msix_write(t, off - OFF_MSIX, size, val);
	}
	/* The device configuration is read-only for these devices; the ISR
	 * and the PBA too. */
}

static const struct bus_ops bar_ops = { bar_read, bar_write };

static void config_written(struct pci_device *d, unsigned off, unsigned size, uint32_t val)
{
	(void)val;
	struct virtio_pci *t = d->opaque;
	if (off <= t->msix_cap + 3u && off + size > t->msix_cap + 2u) {
		/* MSI-X turned on, off or unmasked: INTx follows, pending go out. */
		update_intx(t);
		msix_flush_pending(t);
	}
}

/* ---- the PCI function ---- */

static int add_vendor_cap(struct pci_device *d, uint8_t type, uint32_t off, uint32_t len, unsigned cap_len)
{
	int at = pci_device_add_capability(d, PCI_CAP_ID_VNDR, cap_len);
	if (at < 0)
		return at;
	uint8_t *c = d->config + at;
	c[2] = (uint8_t)cap_len;
	c[3] = type;
	c[4] = 0;   /* BAR 0 */
	wr32(c + 8, off);
	wr32(c + 12, len);
	return at;
}

static void place_bar(struct virtio_pci *t)
{
	/* No firmware runs before the guest: place BAR 0 and enable decoding
	 * as a BIOS would; the guest may move it. */
	if (!t->board.bar0 || !t->pci.host)
		return;
	unsigned devfn = (unsigned)t->pci.slot << 3;
	pci_config_write(t->board.pci, 0, devfn, PCI_BAR0, 4, t->board.bar0);
	pci_config_write(t->board.pci, 0, devfn, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

struct virtio_pci *virtio_pci_new(const struct dev_ctx *ctx, const struct virtio_device_ops *ops, void *dev)
{
	const struct virtio_board *board = ctx->arg;
	if (!board || !board->dma || !board->pci) {
		err_set(-EINVAL, "%s: a virtio device needs guest memory and a PCI bus", ctx->name);
		return NULL;
	}
	if (ops->n_queues == 0 || ops->n_queues > VIRTIO_MAX_QUEUES || ops->config_len > VIRTIO_CONFIG_MAX ||
	    !virtq_size_valid(ops->queue_max, VIRTQ_MAX_SIZE)) {
		err_set(-EINVAL, "%s: bad virtio device description", ctx->name);
		return NULL;
	}
	struct virtio_pci *t = calloc(1, sizeof(*t));
	if (!t) {
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	t->ctx = *ctx;
	t->board = *board;
	t->ops = ops;
	t->dev = dev;
	t->n_vectors = ops->n_queues + 1;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		t->q[i].dma = board->dma;
		t->q[i].dma_written = board->dma_written;
		t->q[i].dma_opaque = board->dma_opaque;
	}
	struct pci_device *d = &t->pci;
	pci_device_init(d, ctx->name, PCI_VENDOR_VIRTIO, (uint16_t)(PCI_DEVICE_VIRTIO_MODERN + ops->device_id),
			ops->class_code, 1 /* INTA */);
	d->config[PCI_REVISION] = 1;   /* section 4.1.2.1: modern-only devices have revision >= 1 */
	wr16(d->config + PCI_SUBSYS_VENDOR, PCI_VENDOR_VIRTIO);
	wr16(d->config + PCI_SUBSYS_ID, 0x1100);
	d->opaque = t;
	d->config_write = config_written;
	int at;
	if (pci_device_set_bar(d, 0, PCI_BAR_MEM32, BAR0_SIZE, &bar_ops, t) < 0 ||
	    add_vendor_cap(d, VIRTIO_PCI_CAP_COMMON_CFG, OFF_COMMON, LEN_COMMON, 16) < 0 ||
	    (at = add_vendor_cap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, OFF_NOTIFY, NOTIFY_MULT * ops->n_queues, 20)) < 0 ||
	    add_vendor_cap(d, VIRTIO_PCI_CAP_ISR_CFG, OFF_ISR, 1, 16) < 0 ||
	    (ops->config_len && add_vendor_cap(d, VIRTIO_PCI_CAP_DEVICE_CFG, OFF_DEVICE, ops->config_len, 16) < 0))
		goto fail;
	wr32(d->config + at + 16, NOTIFY_MULT);   /* notify_off_multiplier */
	if ((at = pci_device_add_capability(d, PCI_CAP_ID_MSIX, 12)) < 0)
		goto fail;
	t->msix_cap = (uint8_t)at;
	wr16(d->config + at + 2, (uint16_t)(t->n_vectors - 1));   /* table size - 1 */
	d->wmask[at + 3] = (MSIX_ENABLE | MSIX_MASKALL) >> 8;
	wr32(d->config + at + 4, OFF_MSIX);   /* BIR 0 */
	wr32(d->config + at + 8, OFF_PBA);
	if (pci_register_device(board->pci, d, board->slot) < 0)
		goto fail;
	virtio_pci_reset(t);
	return t;
fail:
	free(t);
	return NULL;
}

void virtio_pci_reset(struct virtio_pci *t)
{
	for (unsigned v = 0; v < MSIX_MAX_VECTORS; v++) {
		memset(t->msix[v], 0, sizeof(t->msix[v]));
		t->msix[v][3] = 1;   /* masked at reset (PCI 3.0, 6.8.2.9) */
	}
	t->pba = 0;
	t->pci.config[t->msix_cap + 3] &= (uint8_t)~((MSIX_ENABLE | MSIX_MASKALL) >> 8);
	device_reset(t);
	place_bar(t);
}

void virtio_pci_free(struct virtio_pci *t)
{
	if (!t)
		return;
	if (t->pci.host)
		pci_unregister_device(t->board.pci, &t->pci);
	free(t);
}

/* ---- snapshots ---- */

#define SNAP_QUEUE_BYTES 36u
#define SNAP_PAYLOAD (PCI_CONFIG_SIZE + 4 + 4 + 8 + 2 + 1 + 1 + 2 + VIRTIO_MAX_QUEUES * SNAP_QUEUE_BYTES + \
		      MSIX_MAX_VECTORS * 16 + 8)

/* Version 1: the PCI configuration space, the transport registers, each
 * queue (size, enable, ring addresses, indices, vector) and the MSI-X
 * table and PBA.  Requests complete before the vCPU that notified goes
 * on, so nothing is in flight to save. */
int64_t virtio_pci_save(struct virtio_pci *t, void *buf, size_t cap)
{
	struct hw_snap_writer w;
	hw_snap_begin(&w, buf, cap, 1);
	hw_snap_bytes(&w, t->pci.config, PCI_CONFIG_SIZE);
	hw_snap_u32(&w, t->dfselect);
	hw_snap_u32(&w, t->gfselect);
	hw_snap_u64(&w, t->driver_features);
	hw_snap_u16(&w, t->config_vector);
	hw_snap_u8(&w, t->status);
	hw_snap_u8(&w, t->isr);
	hw_snap_u16(&w, t->queue_sel);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		const struct virtq *q = &t->q[i];
		hw_snap_u16(&w, q->size);
		hw_snap_u8(&w, q->ready);
		hw_snap_u64(&w, q->desc);
		hw_snap_u64(&w, q->avail);
		hw_snap_u64(&w, q->used);
		/* A packed queue's indices are below 32768: bit 15 carries its
		 * wrap counter, as the event suppression structures do (2.8.10). */
		hw_snap_u16(&w, (uint16_t)(q->last_avail | (q->packed && q->avail_wrap ? 0x8000 : 0)));
		hw_snap_u16(&w, (uint16_t)(q->used_idx | (q->packed && q->used_wrap ? 0x8000 : 0)));
		hw_snap_u16(&w, q->signalled_used);
		hw_snap_u8(&w, q->signalled_valid);
		hw_snap_u16(&w, q->msix_vector);
	}
	for (unsigned v = 0; v < MSIX_MAX_VECTORS; v++)
		for (unsigned k = 0; k < 4; k++)
			hw_snap_u32(&w, t->msix[v][k]);
	hw_snap_u64(&w, t->pba);
	return hw_snap_end(&w);
}

int virtio_pci_load(struct virtio_pci *t, const void *buf, size_t len)
{
	struct hw_snap_reader r;
	int rc = hw_snap_open(&r, buf, len, t->ctx.name, 1, SNAP_PAYLOAD);
	if (rc < 0)
		return rc;
	uint8_t *config = malloc(PCI_CONFIG_SIZE);
	if (!config)
		return err_set(-ENOMEM, "out of memory");
	hw_snap_get_bytes(&r, config, PCI_CONFIG_SIZE);
	if (memcmp(config, t->pci.config, 4)) {
		free(config);
		return err_set(-EINVAL, "%s state: PCI IDs differ from this device's", t->ctx.name);
	}
	struct virtio_pci s = *t;   /* loaded into a copy: a refused blob changes nothing */
	s.dfselect = hw_snap_get_u32(&r);
	s.gfselect = hw_snap_get_u32(&r);
	s.driver_features = hw_snap_get_u64(&r);
	s.config_vector = hw_snap_get_u16(&r);
	s.status = hw_snap_get_u8(&r);
	s.isr = hw_snap_get_u8(&r);
	s.queue_sel = hw_snap_get_u16(&r);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct virtq *q = &s.q[i];
		q->size = hw_snap_get_u16(&r);
		q->ready = hw_snap_get_bool(&r);
		q->desc = hw_snap_get_u64(&r);
		q->avail = hw_snap_get_u64(&r);
		q->used = hw_snap_get_u64(&r);
		q->last_avail = hw_snap_get_u16(&r);
		q->used_idx = hw_snap_get_u16(&r);
		q->signalled_used = hw_snap_get_u16(&r);
		q->signalled_valid = hw_snap_get_bool(&r);
		q->msix_vector = hw_snap_get_u16(&r);
		bool used = i < t->ops->n_queues;
		bool packed = (s.status & VIRTIO_STATUS_FEATURES_OK) && (s.driver_features >> VIRTIO_F_RING_PACKED & 1);
		bool size_ok = packed ? virtq_packed_size_valid(q->size, t->ops->queue_max)
				      : virtq_size_valid(q->size, t->ops->queue_max);
		if ((q->ready && (!used || !size_ok)) ||
		    (q->msix_vector != VIRTIO_MSI_NO_VECTOR && q->msix_vector >= t->n_vectors)) {
			free(config);
			return err_set(-EINVAL, "%s state: queue %u has size %u or vector %u out of range", t->ctx.name,
				       i, q->size, q->msix_vector);
		}
		q->event_idx = (s.status & VIRTIO_STATUS_FEATURES_OK) && (s.driver_features >> VIRTIO_F_EVENT_IDX & 1);
		q->indirect = (s.status & VIRTIO_STATUS_FEATURES_OK) &&
			      (s.driver_features >> VIRTIO_F_INDIRECT_DESC & 1);
		q->packed = (s.status & VIRTIO_STATUS_FEATURES_OK) && (s.driver_features >> VIRTIO_F_RING_PACKED & 1);
		q->avail_wrap = q->used_wrap = true;
		if (q->packed) {
			q->avail_wrap = q->last_avail >> 15;
			q->used_wrap = q->used_idx >> 15;
			q->last_avail &= 0x7fff;
			q->used_idx &= 0x7fff;
			if (q->ready && (q->last_avail >= q->size || q->used_idx >= q->size)) {
				free(config);
				return err_set(-EINVAL, "%s state: queue %u has indices %u/%u past its size %u", t->ctx.name,
					       i, q->last_avail, q->used_idx, q->size);
			}
		}
	}
	for (unsigned v = 0; v < MSIX_MAX_VECTORS; v++)
		for (unsigned k = 0; k < 4; k++)
			s.msix[v][k] = hw_snap_get_u32(&r);
	s.pba = hw_snap_get_u64(&r);
	if (s.config_vector != VIRTIO_MSI_NO_VECTOR && s.config_vector >= t->n_vectors) {
		free(config);
		return err_set(-EINVAL, "%s state: configuration vector %u out of range", t->ctx.name, s.config_vector);
	}
	/* Identity, write masks and capabilities stay this build's; the
	 * guest-writable bytes come from the blob. */
	for (unsigned i = 0; i < PCI_CONFIG_SIZE; i++)
		s.pci.config[i] = (uint8_t)((t->pci.config[i] & ~t->pci.wmask[i]) | (config[i] & t->pci.wmask[i]));
	free(config);
	*t = s;
	/* Re-map BAR 0 where the saved configuration has it (the command
	 * register write makes the bus follow). */
	if (t->pci.host)
		pci_config_write(t->board.pci, 0, (unsigned)t->pci.slot << 3, PCI_COMMAND, 2,
				 rd16(t->pci.config + PCI_COMMAND));
	update_intx(t);
	return 0;
}
