/* Example vessel device plug-in: a mailbox on I/O ports with an IRQ line.
 *
 * Built out of tree against <vessel/plugin.h> only (see Makefile).  The
 * guest writes 32-bit words to DATA; each write is counted and, if
 * enabled, raises the IRQ line until the guest acknowledges it.  A write
 * of a guest-physical address to REPORT makes the device store a record
 * {last word, count} into guest memory through the host's bounds-checked
 * service.
 *
 * Registers (offsets from the "port" parameter, 32-bit):
 *   0x0 DATA    read: last word written; write: post a word
 *   0x4 COUNT   read: words posted since reset; write: acknowledge (lower IRQ)
 *   0x8 REPORT  read: 0 if the last report was stored, 1 if its address was
 *               not guest RAM; write: store {DATA, COUNT} (2 x u32) at this
 *               guest-physical address */
#include <vessel/plugin.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { RES_REGS, RES_IRQ };
enum { P_PORT, P_IRQ, P_IRQ_ENABLED, P_LABEL };

struct mailbox {
	const struct vessel_host *host;
	int irq_enabled;
	char label[32];
	uint32_t data, count, report_status, irq_level;
};

/* State layout in snapshots: version then the four registers, all
 * little-endian u32 (hosts are x86-64). */
#define MAILBOX_STATE_VERSION 1u

static void set_irq(struct mailbox *mb, uint32_t level)
{
	mb->irq_level = level;
	if (mb->irq_enabled)
		mb->host->irq_set(mb->host->ctx, RES_IRQ, (int)level);
}

static int mailbox_create(const struct vessel_host *host, const union vessel_param_value *params, void **dev)
{
	if (host->size < sizeof(struct vessel_host) || host->abi_version != VESSEL_PLUGIN_ABI_VERSION)
		return -ENOTSUP;
	struct mailbox *mb = calloc(1, sizeof(*mb));
	if (!mb)
		return -ENOMEM;
	mb->host = host;
	mb->irq_enabled = (int)params[P_IRQ_ENABLED].i;
	snprintf(mb->label, sizeof(mb->label), "%s", params[P_LABEL].s);
	char msg[96];
	snprintf(msg, sizeof(msg), "mailbox '%s' at port %#llx, irq %llu", mb->label,
		 (unsigned long long)host->resource_base(host->ctx, RES_REGS),
		 (unsigned long long)host->resource_base(host->ctx, RES_IRQ));
	host->log(host->ctx, VESSEL_LOG_INFO, msg);
	*dev = mb;
	return 0;
}

static void mailbox_destroy(void *dev)
{
	free(dev);
}

static uint64_t mailbox_read(void *dev, uint32_t res, uint64_t off, uint32_t size)
{
	struct mailbox *mb = dev;
	(void)res; /* one PIO resource: always RES_REGS */
	(void)size;
	switch (off) {
	case 0x0: return mb->data;
	case 0x4: return mb->count;
	case 0x8: return mb->report_status;
	default: return ~0ULL;
	}
}

static void mailbox_write(void *dev, uint32_t res, uint64_t off, uint32_t size, uint64_t value)
{
	struct mailbox *mb = dev;
	(void)res;
	(void)size;
	switch (off) {
	case 0x0:
		mb->data = (uint32_t)value;
		mb->count++;
		set_irq(mb, 1);
		break;
	case 0x4:
		set_irq(mb, 0);
		break;
	case 0x8: {
		uint32_t rec[2] = { mb->data, mb->count };
		mb->report_status = mb->host->mem_write(mb->host->ctx, (uint32_t)value, rec, sizeof(rec)) < 0;
		break;
	}
	default:
		break;
	}
}

static void mailbox_reset(void *dev)
{
	struct mailbox *mb = dev;
	mb->data = mb->count = mb->report_status = 0;
	set_irq(mb, 0);
}

static int64_t mailbox_save(void *dev, void *buf, size_t cap)
{
	struct mailbox *mb = dev;
	uint32_t s[5] = { MAILBOX_STATE_VERSION, mb->data, mb->count, mb->report_status, mb->irq_level };
	if (cap < sizeof(s))
		return -ENOSPC;
	memcpy(buf, s, sizeof(s));
	return sizeof(s);
}

static int mailbox_load(void *dev, const void *buf, size_t len)
{
	struct mailbox *mb = dev;
	uint32_t s[5];
	if (len != sizeof(s))
		return -EINVAL;
	memcpy(s, buf, sizeof(s));
	if (s[0] != MAILBOX_STATE_VERSION || s[4] > 1)
		return -EINVAL;
	mb->data = s[1];
	mb->count = s[2];
	mb->report_status = s[3];
	set_irq(mb, s[4]);
	return 0;
}

static const struct vessel_param_spec mailbox_params[] = {
	[P_PORT] = { "port", VESSEL_PARAM_INT, "first of the 12 I/O ports (the default is free on the PC board)", "0x530", 0, 0xfff4 },
	[P_IRQ] = { "irq", VESSEL_PARAM_INT, "interrupt line (GSI) raised on each posted word", "5", 0, 23 },
	[P_IRQ_ENABLED] = { "irq_enabled", VESSEL_PARAM_BOOL, "raise the IRQ line at all", "true", 0, 0 },
	[P_LABEL] = { "label", VESSEL_PARAM_STRING, "name shown in the log", "mailbox", 0, 0 },
};

static const struct vessel_resource_spec mailbox_resources[] = {
	[RES_REGS] = { VESSEL_RES_PIO, "regs", 0x530, "port", 12, NULL },
	[RES_IRQ] = { VESSEL_RES_IRQ, "irq", 5, "irq", 1, NULL },
};

static const struct vessel_device_type mailbox_type = {
	.size = sizeof(struct vessel_device_type),
	.name = "mailbox",
	.description = "32-bit mailbox on I/O ports: counts posted words, raises an IRQ, reports to guest memory",
	.params = mailbox_params,
	.n_params = sizeof(mailbox_params) / sizeof(mailbox_params[0]),
	.resources = mailbox_resources,
	.n_resources = sizeof(mailbox_resources) / sizeof(mailbox_resources[0]),
	.create = mailbox_create,
	.destroy = mailbox_destroy,
	.read = mailbox_read,
	.write = mailbox_write,
	.reset = mailbox_reset,
	.save = mailbox_save,
	.load = mailbox_load,
};

VESSEL_PLUGIN_EXPORT("device-example", "1.0", "example devices for the vessel plug-in ABI", &mailbox_type);
