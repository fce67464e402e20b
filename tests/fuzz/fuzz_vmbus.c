/* libFuzzer target: the VMBus host's guest-to-host message parser and its
 * ring reader (src/hv/vmbus.c).  A fixed start connects, makes a GPADL and
 * opens one channel, as Linux does; then the input is a list of steps,
 * each an operation byte and a length byte then that many bytes:
 *   0: HvCallPostMessage of the bytes (first byte of the type from them)
 *   1: bytes written into the channel's rings at an offset (2 bytes)
 *   2: HvCallSignalEvent of the channel (the host reads its ring)
 *   3: a host packet of the bytes on the channel
 *   4: the SynIC slot came free
 * Whatever the guest writes, the host stays inside guest memory and
 * within its own buffers (ASan, UBSan). */
#include "hv/vmbus.h"
#include "machine/memory.h"

#include <stdint.h>
#include <string.h>

#define RAM (1u << 20)
#define PAGE 4096u
#define RING_GPA 0x10000ull
#define RING_PAGES 8u

static int post(void *opaque, unsigned vp, const void *msg, unsigned len) { return (len & 1) ? -11 : 0; }
static void sig(void *opaque, unsigned vp, unsigned flag) {}
static void opened(struct vmbus_channel *ch, void *opaque) {}
static void closed(struct vmbus_channel *ch, void *opaque) {}
static int packet(struct vmbus_channel *ch, void *opaque, const uint8_t *d, size_t len, uint64_t t)
{
	return len && d[0] == 0xff ? -1 : 0;
}

static const struct vmbus_device_ops dev = { .name = "fuzz", .opened = opened, .closed = closed, .packet = packet };

static void msg(struct vmbus *b, const uint32_t *w, unsigned words)
{
	vmbus_post_message(b, VMBUS_MESSAGE_CONNECTION_ID, 1, w, words * 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_memory mem;
	static int ready;
	if (!ready) {
		if (gmem_init(&mem, RAM) < 0)
			return 0;
		ready = 1;
	}
	memset(gmem_ptr(&mem, 0, RAM), 0, RAM);
	struct vmbus_transport t = { .post = post, .signal = sig, .n_vps = 2 };
	struct vmbus *b = vmbus_new(&mem, &t, NULL);
	if (!b)
		return 0;
	vmbus_add_device(b, &dev, NULL);
	uint32_t ic[10] = { 14, 0, 0x40000 };
	msg(b, ic, 10);
	uint32_t g[7 + 2 * RING_PAGES] = { 8, 0, 1, 7, (8 + 8 * RING_PAGES) | (1u << 16), RING_PAGES * PAGE, 0 };
	for (unsigned i = 0; i < RING_PAGES; i++)
		g[7 + 2 * i] = (uint32_t)(RING_GPA / PAGE) + i;
	msg(b, g, 7 + 2 * RING_PAGES);
	uint32_t o[37] = { 5, 0, 1, 1, 7, 0, 4 };
	msg(b, o, 37);
	size_t i = 0;
	while (i + 2 <= size) {
		uint8_t op = data[i], len = data[i + 1];
		i += 2;
		if (len > size - i)
			len = (uint8_t)(size - i);
		const uint8_t *p = data + i;
		i += len;
		switch (op % 5) {
		case 0:
			vmbus_post_message(b, VMBUS_MESSAGE_CONNECTION_ID, 1, p, len);
			break;
		case 1:
			if (len >= 2) {
				uint32_t off = ((uint32_t)p[0] | (uint32_t)p[1] << 8) * 8 % (RING_PAGES * PAGE);
				uint32_t n = len - 2u;
				if (off + n > RING_PAGES * PAGE)
					n = RING_PAGES * PAGE - off;
				memcpy(gmem_ptr(&mem, RING_GPA + off, n ? n : 1), p + 2, n);
			}
			break;
		case 2:
			vmbus_signal_event(b, VMBUS_CHANNEL_CONNECTION_BASE + 1, 0);
			break;
		case 3: {
			struct vmbus_channel *ch = vmbus_channel_of(b, 1);
			if (ch)
				vmbus_channel_send(ch, p, len, 1);
			break;
		}
		default:
			vmbus_slot_freed(b);
			break;
		}
	}
	vmbus_free(b);
	return 0;
}
