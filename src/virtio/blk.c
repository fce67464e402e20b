/* virtio-blk (virtio 1.2, section 5.2) over the block layer: IN, OUT,
 * FLUSH and GET_ID, read-only disks.  Requests run synchronously on the
 * vCPU thread that notifies (docs/virtio.md "Limits"). */
#include "virtio/blk.h"

#include "block/block.h"
#include "util/error.h"
#include "virtio/virtio_pci.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Feature bits (section 5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

/* Request types and status (section 5.2.6). */
#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20

#define BLK_QUEUE_SIZE 256
#define BLK_CONFIG_LEN 60     /* up to write_zeroes_may_unmap and padding */
#define BLK_HDR_LEN 16

struct virtio_blk {
	struct virtio_pci *t;
	struct block_dev *disk;
	bool readonly;
	char serial[VIRTIO_BLK_ID_BYTES];
	struct virtq_elem elem;
	struct iovec data[VIRTQ_MAX_SEGS];
};

static void blk_config(void *dev, uint8_t *buf)
{
	struct virtio_blk *b = dev;
	uint64_t cap = htole64(b->disk->sectors);
	uint32_t seg_max = htole32(BLK_QUEUE_SIZE - 2), blk_size = htole32(BLOCK_SECTOR_SIZE);
	memcpy(buf + 0, &cap, 8);          /* capacity, in 512-byte sectors */
	memcpy(buf + 12, &seg_max, 4);     /* seg_max: header and status take two */
	memcpy(buf + 20, &blk_size, 4);    /* blk_size */
}

/* Data buffers of a request: the iovecs from byte skip of the readable
 * (out) or writable (in) part, less trim bytes at the end. */
static int blk_data_iov(struct virtio_blk *b, bool in, uint64_t skip, uint64_t trim, uint64_t *total)
{
	const struct iovec *iov = in ? b->elem.iov + b->elem.n_out : b->elem.iov;
	unsigned n = in ? b->elem.n_in : b->elem.n_out;
	uint64_t left = (in ? b->elem.in_len : b->elem.out_len) - skip - trim;
	int cnt = 0;
	*total = left;
	for (unsigned i = 0; i < n && left; i++) {
		uint64_t len = iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		uint64_t k = len - skip < left ? len - skip : left;
		b->data[cnt++] = (struct iovec){ .iov_base = (uint8_t *)iov[i].iov_base + skip, .iov_len = k };
		left -= k;
		skip = 0;
	}
	return cnt;
}

static uint8_t blk_rw(struct virtio_blk *b, bool write, uint64_t sector, uint32_t *written)
{
	/* Section 5.2.6: a read's data is device-writable and a write's
	 * device-readable; data on the wrong side is a broken request. */
	if (write ? b->elem.in_len != 1 : b->elem.out_len != BLK_HDR_LEN) {
		virtio_pci_guest_error(b->t, "%s with %llu device-%s bytes besides header and status",
				       write ? "write" : "read",
				       (unsigned long long)(write ? b->elem.in_len - 1 : b->elem.out_len - BLK_HDR_LEN),
				       write ? "writable" : "readable");
		return VIRTIO_BLK_S_IOERR;
	}
	uint64_t bytes;
	int cnt = write ? blk_data_iov(b, false, BLK_HDR_LEN, 0, &bytes) : blk_data_iov(b, true, 0, 1, &bytes);
	if (bytes % BLOCK_SECTOR_SIZE) {
		virtio_pci_guest_error(b->t, "%s of %llu bytes: not whole sectors", write ? "write" : "read",
				       (unsigned long long)bytes);
		return VIRTIO_BLK_S_IOERR;
	}
	uint64_t count = bytes / BLOCK_SECTOR_SIZE;
	if (sector > b->disk->sectors || count > b->disk->sectors - sector) {
		virtio_pci_guest_error(b->t, "%s of %llu sectors at %llu: past the end (%llu sectors)",
				       write ? "write" : "read", (unsigned long long)count,
				       (unsigned long long)sector, (unsigned long long)b->disk->sectors);
		return VIRTIO_BLK_S_IOERR;
	}
	if (write && b->readonly)
		return VIRTIO_BLK_S_IOERR;   /* section 5.2.6.2: the driver was told VIRTIO_BLK_F_RO */
	if (!count)
		return VIRTIO_BLK_S_OK;
	int rc = write ? block_writev(b->disk, sector, b->data, cnt) : block_readv(b->disk, sector, b->data, cnt);
	if (rc < 0) {
		virtio_pci_guest_error(b->t, "disk %s: %s at byte %llu failed: %s", b->disk->name,
				       write ? "write" : "read", (unsigned long long)sector * BLOCK_SECTOR_SIZE,
				       err_msg());
		return VIRTIO_BLK_S_IOERR;
	}
	if (!write)
		*written = (uint32_t)bytes;
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_request(struct virtio_blk *b, uint32_t *written)
{
	uint8_t hdr[BLK_HDR_LEN];
	if (virtq_copy_from(&b->elem, 0, hdr, sizeof(hdr)) < sizeof(hdr)) {
		virtio_pci_guest_error(b->t, "request with a %llu-byte header",
				       (unsigned long long)b->elem.out_len);
		return VIRTIO_BLK_S_IOERR;
	}
	uint32_t type;
	uint64_t sector;
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	type = le32toh(type);
	sector = le64toh(sector);
	switch (type) {
	case VIRTIO_BLK_T_IN:
		return blk_rw(b, false, sector, written);
	case VIRTIO_BLK_T_OUT:
		return blk_rw(b, true, sector, written);
	case VIRTIO_BLK_T_FLUSH:
		if (block_flush(b->disk) < 0) {
			virtio_pci_guest_error(b->t, "disk %s: flush failed: %s", b->disk->name, err_msg());
			return VIRTIO_BLK_S_IOERR;
		}
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID: {
		/* Section 5.2.6.1: 20 bytes, not NUL-terminated when full. */
		uint64_t room = b->elem.in_len - 1;
		size_t n = room < VIRTIO_BLK_ID_BYTES ? (size_t)room : VIRTIO_BLK_ID_BYTES;
		*written = (uint32_t)virtq_copy_to(&b->elem, 0, b->serial, n);
		return VIRTIO_BLK_S_OK;
	}
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

static void blk_notify(void *dev, unsigned qi)
{
	struct virtio_blk *b = dev;
	struct virtq *q = virtio_pci_queue(b->t, qi);
	bool pushed = false;
	for (;;) {
		int rc = virtq_pop(q, &b->elem);
		if (rc == 0) {
			if (virtq_enable_notify(q))
				continue;   /* a request arrived as we looked: take it */
			break;
		}
		if (rc < 0) {
			virtio_pci_broken(b->t, qi);
			break;
		}
		if (!b->elem.in_len) {
			err_set(-EINVAL, "request without a status byte");
			virtio_pci_broken(b->t, qi);
			break;
		}
		uint32_t written = 0;
		uint8_t status = blk_request(b, &written);
		virtq_copy_to(&b->elem, b->elem.in_len - 1, &status, 1);
		if (virtq_push(q, &b->elem, written + 1) < 0) {
			virtio_pci_broken(b->t, qi);
			break;
		}
		pushed = true;
	}
	if (pushed)
		virtio_pci_queue_done(b->t, qi);
}

static const struct virtio_device_ops blk_ops_rw = {
	.device_id = VIRTIO_ID_BLOCK, .class_code = 0x018000, .n_queues = 1, .queue_max = BLK_QUEUE_SIZE,
	.features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH,
	.config_len = BLK_CONFIG_LEN, .config = blk_config, .notify = blk_notify,
};

static const struct virtio_device_ops blk_ops_ro = {
	.device_id = VIRTIO_ID_BLOCK, .class_code = 0x018000, .n_queues = 1, .queue_max = BLK_QUEUE_SIZE,
	.features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH |
		    1ull << VIRTIO_BLK_F_RO,
	.config_len = BLK_CONFIG_LEN, .config = blk_config, .notify = blk_notify,
};

static void *blk_create(const struct dev_ctx *ctx)
{
	const struct virtio_board *board = ctx->arg;
	const struct virtio_blk_conf *conf = board ? board->conf : NULL;
	if (!conf || !conf->disk) {
		err_set(-EINVAL, "%s: no disk", ctx->name);
		return NULL;
	}
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b) {
		block_close(conf->disk);
		err_set(-ENOMEM, "out of memory");
		return NULL;
	}
	b->disk = conf->disk;
	b->readonly = conf->readonly || conf->disk->rdonly;
	if (conf->serial) {
		size_t n = strlen(conf->serial);
		memcpy(b->serial, conf->serial, n < sizeof(b->serial) ? n : sizeof(b->serial));
	}
	if (!(b->t = virtio_pci_new(ctx, b->readonly ? &blk_ops_ro : &blk_ops_rw, b))) {
		block_close(b->disk);
		free(b);
		return NULL;
	}
	return b;
}

static void blk_reset(void *dev)
{
	virtio_pci_reset(((struct virtio_blk *)dev)->t);
}

static int64_t blk_save(void *dev, void *buf, size_t cap)
{
	return virtio_pci_save(((struct virtio_blk *)dev)->t, buf, cap);
}

static int blk_load(void *dev, const void *buf, size_t len)
{
	return virtio_pci_load(((struct virtio_blk *)dev)->t, buf, len);
}

static void blk_destroy(void *dev)
{
	struct virtio_blk *b = dev;
	if (!b)
		return;
	virtio_pci_free(b->t);
	block_flush(b->disk);   /* what the guest wrote is on the file when the VM ends */
	block_close(b->disk);
	free(b);
}

const struct dev_desc virtio_blk_device = {
	.name = "virtio-blk", .create = blk_create, .reset = blk_reset,
	.save = blk_save, .load = blk_load, .destroy = blk_destroy,
};
