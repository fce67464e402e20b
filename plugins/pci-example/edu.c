/* Example vessel device plug-in: `edu`, a PCI function for teaching and
 * testing drivers, with a DMA engine and an interrupt.
 *
 * Built out of tree against <vessel/plugin.h> only (see Makefile).  vessel
 * builds the configuration space from the descriptor below (IDs, class,
 * BARs, MSI capability, INTA) and places the BARs; this file serves the
 * BAR accesses.  A Linux guest can drive it from user space through
 * /sys/bus/pci/devices/.../resource0 and count its interrupts with
 * uio_pci_generic (tests/integration/test_pci_plugin.py).
 *
 * BAR 0, 8 KiB of memory (BAR 1, 16 I/O ports, mirrors its first 16
 * bytes); registers are 32-bit unless said:
 *   0x000 ID        read: EDU_ID (0x45440001: "ED", version 1)
 *   0x004 LIVENESS  read: the bitwise NOT of the last value written
 *   0x008 FACTORIAL write n: reads back n! (modulo 2^32)
 *   0x020 STATUS    read: interrupt causes pending (bit 0 raised by RAISE,
 *                   bit 8 a DMA completed)
 *   0x024 RAISE     write: set these cause bits
 *   0x028 ACK       write: clear these cause bits; the interrupt stays
 *                   asserted (INTx) while any is set, and each raise sends
 *                   one message (MSI)
 *   0x040 DMA_SRC   64-bit: source, guest-physical or buffer offset
 *   0x048 DMA_DST   64-bit: destination, likewise
 *   0x050 DMA_LEN   bytes, at most the buffer's 4096
 *   0x058 DMA_CMD   bit 0 start (reads 0 once done), bit 1 direction
 *                   (0: guest memory to buffer, 1: buffer to guest memory),
 *                   bit 2 raise the interrupt when done, bit 3 (read)
 *                   the last transfer failed (not RAM, bus mastering off,
 *                   or out of the buffer)
 *   0x060 DMA_COUNT transfers completed
 *   0x1000-0x1fff   the device buffer */
#include <vessel/plugin.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EDU_ID 0x45440001u
#define EDU_BUF 4096u

#define REG_ID        0x000
#define REG_LIVENESS  0x004
#define REG_FACTORIAL 0x008
#define REG_STATUS    0x020
#define REG_RAISE     0x024
#define REG_ACK       0x028
#define REG_DMA_SRC   0x040
#define REG_DMA_DST   0x048
#define REG_DMA_LEN   0x050
#define REG_DMA_CMD   0x058
#define REG_DMA_COUNT 0x060
#define BUF_OFF       0x1000

#define CMD_START 0x1u
#define CMD_TO_RAM 0x2u
#define CMD_IRQ   0x4u
#define CMD_ERROR 0x8u
#define STATUS_DMA 0x100u

enum { RES_PCI };

struct edu {
	const struct vessel_host *host;
	uint32_t liveness, factorial, status, cmd, len, count;
	uint64_t src, dst;
	uint8_t buf[EDU_BUF];
};

static void update_irq(struct edu *e)
{
	e->host->pci_irq(e->host->ctx, RES_PCI, 0, e->status != 0);
}

static void raise_cause(struct edu *e, uint32_t bits)
{
	if (!bits)
		return;
	/* A message per raise with MSI: drop the level first, so that level
	 * 1 is an event again (INTx just stays asserted). */
	e->status |= bits;
	e->host->pci_irq(e->host->ctx, RES_PCI, 0, 0);
	update_irq(e);
}

static void run_dma(struct edu *e)
{
	int to_ram = (e->cmd & CMD_TO_RAM) != 0;
	uint64_t off = to_ram ? e->src : e->dst, gpa = to_ram ? e->dst : e->src;
	int rc = -EINVAL;
	if (e->len <= EDU_BUF && off <= EDU_BUF - e->len)
		rc = to_ram ? e->host->mem_write(e->host->ctx, gpa, e->buf + off, e->len)
			    : e->host->mem_read(e->host->ctx, gpa, e->buf + off, e->len);
	e->cmd &= ~(CMD_START | CMD_ERROR);
	if (rc < 0)
		e->cmd |= CMD_ERROR;
	else
		e->count++;
	if (e->cmd & CMD_IRQ)
		raise_cause(e, STATUS_DMA);
}

static uint32_t factorial(uint32_t n)
{
	uint32_t r = 1;
	for (uint32_t i = 2; i <= n && i < 64; i++)
		r *= i;
	return n >= 64 ? 0 : r;   /* 2^32 divides n! from 34! on */
}

static uint64_t edu_bar_read(void *dev, uint32_t res, uint32_t bar, uint64_t off, uint32_t size)
{
	struct edu *e = dev;
	(void)res;
	(void)bar;   /* BAR 1 mirrors BAR 0's first 16 bytes */
	if (off >= BUF_OFF) {
		uint64_t v = 0;
		if (off - BUF_OFF + size <= EDU_BUF)
			memcpy(&v, e->buf + (off - BUF_OFF), size);
		return v;
	}
	switch (off) {
	case REG_ID: return EDU_ID;
	case REG_LIVENESS: return ~e->liveness & 0xffffffffu;
	case REG_FACTORIAL: return e->factorial;
	case REG_STATUS: return e->status;
	case REG_DMA_SRC: return size == 8 ? e->src : (uint32_t)e->src;
	case REG_DMA_SRC + 4: return e->src >> 32;
	case REG_DMA_DST: return size == 8 ? e->dst : (uint32_t)e->dst;
	case REG_DMA_DST + 4: return e->dst >> 32;
	case REG_DMA_LEN: return e->len;
	case REG_DMA_CMD: return e->cmd;
	case REG_DMA_COUNT: return e->count;
	default: return 0;
	}
}

static void set64(uint64_t *r, uint64_t off, uint32_t size, uint64_t v)
{
	if (size == 8)
		*r = v;
	else if (off & 4)
		*r = (*r & 0xffffffffu) | (uint64_t)(uint32_t)v << 32;
	else
		*r = (*r & ~0xffffffffull) | (uint32_t)v;
}

static void edu_bar_write(void *dev, uint32_t res, uint32_t bar, uint64_t off, uint32_t size, uint64_t v)
{
	struct edu *e = dev;
	(void)res;
	(void)bar;
	if (off >= BUF_OFF) {
		if (off - BUF_OFF + size <= EDU_BUF)
			memcpy(e->buf + (off - BUF_OFF), &v, size);
		return;
	}
	switch (off & ~7ull) {
	case REG_DMA_SRC: set64(&e->src, off, size, v); return;
	case REG_DMA_DST: set64(&e->dst, off, size, v); return;
	}
	switch (off) {
	case REG_LIVENESS: e->liveness = (uint32_t)v; break;
	case REG_FACTORIAL: e->factorial = factorial((uint32_t)v); break;
	case REG_RAISE: raise_cause(e, (uint32_t)v); break;
	case REG_ACK:
		e->status &= ~(uint32_t)v;
		update_irq(e);
		break;
	case REG_DMA_LEN: e->len = (uint32_t)v; break;
	case REG_DMA_CMD:
		e->cmd = (uint32_t)v & (CMD_START | CMD_TO_RAM | CMD_IRQ);
		if (e->cmd & CMD_START)
			run_dma(e);
		break;
	}
}

static int edu_create(const struct vessel_host *host, const union vessel_param_value *params, void **dev)
{
	(void)params;
	if (host->size < sizeof(struct vessel_host) || host->abi_version != VESSEL_PLUGIN_ABI_VERSION)
		return -ENOTSUP;
	struct edu *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->host = host;
	*dev = e;
	return 0;
}

static void edu_destroy(void *dev) { free(dev); }

static void edu_reset(void *dev)
{
	struct edu *e = dev;
	const struct vessel_host *host = e->host;
	memset(e, 0, sizeof(*e));
	e->host = host;
}

/* Snapshot: a version word, then the registers and the buffer. */
#define EDU_STATE_VERSION 1u
#define EDU_STATE_LEN (4 * 7 + 8 * 2 + EDU_BUF)

static int64_t edu_save(void *dev, void *buf, size_t cap)
{
	struct edu *e = dev;
	if (cap < EDU_STATE_LEN)
		return -ENOSPC;
	uint32_t w[7] = { EDU_STATE_VERSION, e->liveness, e->factorial, e->status, e->cmd, e->len, e->count };
	uint8_t *p = buf;
	memcpy(p, w, sizeof(w));
	memcpy(p + sizeof(w), &e->src, 8);
	memcpy(p + sizeof(w) + 8, &e->dst, 8);
	memcpy(p + sizeof(w) + 16, e->buf, EDU_BUF);
	return EDU_STATE_LEN;
}

static int edu_load(void *dev, const void *buf, size_t len)
{
	struct edu *e = dev;
	uint32_t w[7];
	if (len != EDU_STATE_LEN)
		return -EINVAL;
	memcpy(w, buf, sizeof(w));
	if (w[0] != EDU_STATE_VERSION)
		return -EINVAL;
	const uint8_t *p = buf;
	e->liveness = w[1];
	e->factorial = w[2];
	e->status = w[3];
	e->cmd = w[4] & (CMD_TO_RAM | CMD_IRQ | CMD_ERROR);
	e->len = w[5];
	e->count = w[6];
	memcpy(&e->src, p + sizeof(w), 8);
	memcpy(&e->dst, p + sizeof(w) + 8, 8);
	memcpy(e->buf, p + sizeof(w) + 16, EDU_BUF);
	return 0;
}

static const struct vessel_pci_bar edu_bars[] = {
	{ .size = 0x2000, .flags = VESSEL_PCI_BAR_MEM },
	{ .size = 16, .flags = VESSEL_PCI_BAR_IO },
};

static const struct vessel_pci_function edu_function = {
	.vendor_id = 0x1234,          /* the ID QEMU's test devices use: no driver claims it */
	.device_id = 0x7ed0,
	.subsystem_vendor_id = 0x1234,
	.subsystem_id = 0x0001,
	.class_code = 0x00ff00,       /* unclassified, other */
	.revision = 1,
	.interrupt_pin = 1,           /* INTA */
	.msi_vectors = 1,
	.bars = edu_bars,
	.n_bars = 2,
};

static const struct vessel_resource_spec edu_resources[] = {
	[RES_PCI] = { .kind = VESSEL_RES_PCI, .name = "function", .base = 0, .len = 1, .pci = &edu_function },
};

static const struct vessel_device_type edu_type = {
	.size = sizeof(struct vessel_device_type),
	.name = "edu",
	.description = "PCI function with a DMA engine, an interrupt, an ID and a factorial register",
	.resources = edu_resources,
	.n_resources = 1,
	.create = edu_create,
	.destroy = edu_destroy,
	.reset = edu_reset,
	.save = edu_save,
	.load = edu_load,
	.bar_read = edu_bar_read,
	.bar_write = edu_bar_write,
};

VESSEL_PLUGIN_EXPORT("pci-example", "1.0", "an edu-like PCI function", &edu_type);
