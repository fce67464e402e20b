/* Fixed-layout device state blobs for snapshots (docs/snapshot.md
 * "Devices", docs/devices.md "Snapshots").
 *
 * Every blob starts with a 16-byte header: "VDEV" magic, u16 version,
 * u16 reserved (0), u32 payload length, u32 reserved (0).  All fields are
 * little-endian with explicit sizes, so a blob does not depend on the
 * host's struct layout.  Times are VM-clock nanoseconds: the "vm-clock"
 * blob (saved first) makes the restored VM clock continue from the saved
 * value, so saved deadlines stay valid and devices re-arm them as they are.
 *
 * A reader never trusts the blob: hw_snap_open() checks magic, version and
 * exact length, the getters stop at the end, and each device validates
 * ranges before touching its state (a refused blob leaves it unchanged). */
#ifndef VESSEL_MACHINE_SNAP_STATE_H
#define VESSEL_MACHINE_SNAP_STATE_H

#include "machine/timer.h"
#include "util/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HW_SNAP_MAGIC 0x56454456u   /* the bytes "VDEV" as a little-endian u32 */
#define HW_SNAP_HEADER 16u

struct hw_snap_writer {
	uint8_t *buf;
	size_t cap, len;     /* len may pass cap: the caller asks for more room */
};

struct hw_snap_reader {
	const uint8_t *buf;
	size_t len, pos;
};

static inline void hw_snap_put(struct hw_snap_writer *w, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++, w->len++)
		if (w->len < w->cap)
			w->buf[w->len] = (uint8_t)(v >> (8 * i));
}
static inline void hw_snap_u8(struct hw_snap_writer *w, uint8_t v) { hw_snap_put(w, v, 1); }
static inline void hw_snap_u16(struct hw_snap_writer *w, uint16_t v) { hw_snap_put(w, v, 2); }
static inline void hw_snap_u32(struct hw_snap_writer *w, uint32_t v) { hw_snap_put(w, v, 4); }
static inline void hw_snap_u64(struct hw_snap_writer *w, uint64_t v) { hw_snap_put(w, v, 8); }
static inline void hw_snap_bytes(struct hw_snap_writer *w, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		hw_snap_u8(w, ((const uint8_t *)p)[i]);
}
/* An armed flag and the absolute VM-clock deadline. */
static inline void hw_snap_timer(struct hw_snap_writer *w, const struct vm_timer *t)
{
	hw_snap_u8(w, t->armed);
	hw_snap_u64(w, t->armed ? t->deadline : 0);
}

static inline void hw_snap_begin(struct hw_snap_writer *w, void *buf, size_t cap, uint16_t version)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	hw_snap_u32(w, HW_SNAP_MAGIC);
	hw_snap_u16(w, version);
	hw_snap_u16(w, 0);
	hw_snap_u32(w, 0);   /* payload length, patched by hw_snap_end() */
	hw_snap_u32(w, 0);
}

/* The byte count for snapshot_save_fn, or -ENOSPC to be called with more. */
static inline int64_t hw_snap_end(struct hw_snap_writer *w)
{
	if (w->len > w->cap)
		return -ENOSPC;
	uint32_t payload = (uint32_t)(w->len - HW_SNAP_HEADER);
	for (unsigned i = 0; i < 4; i++)
		w->buf[8 + i] = (uint8_t)(payload >> (8 * i));
	return (int64_t)w->len;
}

static inline uint64_t hw_snap_get(struct hw_snap_reader *r, unsigned bytes)
{
	uint64_t v = 0;
	/* hw_snap_open() checked the length, so this never runs past it;
	 * the check stays in case a device's reader and writer disagree. */
	for (unsigned i = 0; i < bytes && r->pos < r->len; i++, r->pos++)
		v |= (uint64_t)r->buf[r->pos] << (8 * i);
	return v;
}
static inline uint8_t hw_snap_get_u8(struct hw_snap_reader *r) { return (uint8_t)hw_snap_get(r, 1); }
static inline uint16_t hw_snap_get_u16(struct hw_snap_reader *r) { return (uint16_t)hw_snap_get(r, 2); }
static inline uint32_t hw_snap_get_u32(struct hw_snap_reader *r) { return (uint32_t)hw_snap_get(r, 4); }
static inline uint64_t hw_snap_get_u64(struct hw_snap_reader *r) { return hw_snap_get(r, 8); }
static inline bool hw_snap_get_bool(struct hw_snap_reader *r) { return hw_snap_get(r, 1) != 0; }
static inline void hw_snap_get_bytes(struct hw_snap_reader *r, void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)p)[i] = hw_snap_get_u8(r);
}

/* A saved timer: armed flag and deadline. */
struct hw_snap_timer_state {
	bool armed;
	uint64_t deadline;
};
static inline struct hw_snap_timer_state hw_snap_get_timer(struct hw_snap_reader *r)
{
	struct hw_snap_timer_state s;
	s.armed = hw_snap_get_bool(r);
	s.deadline = hw_snap_get_u64(r);
	return s;
}
/* Re-arms t as saved (lock held). */
static inline void hw_snap_rearm(struct vm_timer *t, struct hw_snap_timer_state s)
{
	if (s.armed)
		timer_mod(t, s.deadline);
	else
		timer_del(t);
}

/* Checks the header: magic, version and an exact payload size (every
 * version of every device has a fixed layout).  -EINVAL with err_set(). */
static inline int hw_snap_open(struct hw_snap_reader *r, const void *buf, size_t len, const char *dev,
			       uint16_t version, size_t payload)
{
	r->buf = buf;
	r->len = len;
	r->pos = 0;
	if (!buf || len < HW_SNAP_HEADER)
		return err_set(-EINVAL, "%s state: %zu bytes, shorter than the header", dev, len);
	uint32_t magic = hw_snap_get_u32(r);
	uint16_t ver = hw_snap_get_u16(r);
	hw_snap_get_u16(r);
	uint32_t plen = hw_snap_get_u32(r);
	hw_snap_get_u32(r);
	if (magic != HW_SNAP_MAGIC)
		return err_set(-EINVAL, "%s state: not a device state blob (bad magic)", dev);
	if (ver != version)
		return err_set(-EINVAL, "%s state: version %u, this build reads version %u", dev, ver, version);
	/* Two checks, so that the message says which size is wrong. */
	if (plen != payload)
		return err_set(-EINVAL, "%s state: header gives a %u-byte payload, this build's is %zu bytes", dev,
			       plen, payload);
	if (len != HW_SNAP_HEADER + payload)
		return err_set(-EINVAL, "%s state: %zu bytes, expected %zu", dev, len, HW_SNAP_HEADER + payload);
	return 0;
}

#endif
