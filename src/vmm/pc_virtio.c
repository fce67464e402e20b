/* The PC's virtio devices (docs/virtio.md): one virtio-blk function per
 * configured disk and a virtio-rng when asked for, on PCI bus 0 after the
 * board table's devices.  Unlike the table's rows they depend on the VM's
 * configuration, which the board may not see (docs/architecture.md
 * "Layers"), so the VMM creates, saves and destroys them here, around the
 * board's own (vm.c), on the same device contract. */
#include "vmm/pc_virtio.h"

#include "block/block.h"
#include "hw/chardev.h"
#include "block/crypt_disk.h"
#include "board/pc.h"
#include "machine/accel.h"
#include "machine/compound.h"
#include "machine/device_registry.h"
#include "util/error.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/virtio_pci.h"
#include "vmm/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where BAR 0 of the i-th virtio function goes at power-on: 64 KiB apart
 * from 16 MiB into the 32-bit PCI window (docs/devices.md). */
#define PC_VIRTIO_BAR_BASE (GMEM_PCI_MMIO_BASE + 0x1000000ull)
#define PC_VIRTIO_BAR_STEP 0x10000ull

struct pc_virtio_dev {
	const struct dev_desc *type;
	void *dev;
	char name[SNAPSHOT_DEVICE_NAME_MAX];
	struct virtio_board board;
	union {   /* the device's own options: virtio_board.conf */
		struct virtio_blk_conf blk;
		struct virtio_net_conf net;
		struct virtio_console_conf console;
		struct virtio_rng_conf rng;
	} conf;
	bool registered;
	/* A hot-plugged console's backend: its file and the chardev on it,
	 * both the entry's (-1 and NULL otherwise). */
	int out_fd;
	struct chardev *out_cd;
};

struct pc_virtio {
	struct pc_virtio_dev devs[PC_MAX_VIRTIO];
	unsigned n;
};

/* Guest RAM for device DMA: all of [gpa, gpa + len) in one RAM region,
 * never the firmware ROM. */
static void *pc_virtio_dma(void *opaque, uint64_t gpa, uint64_t len)
{
	const struct guest_memory *mem = &((struct vm *)opaque)->mem;
	const struct gmem_region *r = gmem_find_region(mem, gpa);
	if (!len || !r || r->rom)
		return NULL;
	return gmem_ptr(mem, gpa, len);
}

/* Device writes to guest RAM: the engine forgets code it decoded there. */
static void pc_virtio_dma_written(void *opaque, uint64_t gpa, uint64_t len)
{
	struct vm *vm = opaque;
	if (vm->accel && vm->accel->memory_written)
		vm->accel->memory_written(vm, gpa, len);
}

/* Creates a function of type in the first free entry; slot 0 takes the
 * first free PCI slot and a BAR 0 placed as firmware would, a hot-plugged
 * one (slot given) leaves BAR 0 to the guest. */
static int pc_virtio_add(struct vm *vm, struct platform *p, const struct dev_desc *type, const char *name,
			 const void *conf, size_t conf_size, unsigned slot)
{
	struct pc_virtio *v = p->virtio;
	unsigned i = 0;
	while (i < v->n && v->devs[i].dev)
		i++;
	if (i >= PC_MAX_VIRTIO)
		return err_set(-ENOSPC, "at most %d virtio devices", PC_MAX_VIRTIO);
	struct pc_virtio_dev *d = &v->devs[i];
	memset(d, 0, sizeof(*d));
	d->out_fd = -1;
	d->type = type;
	snprintf(d->name, sizeof(d->name), "%s", name);
	if (conf)
		memcpy(&d->conf, conf, conf_size < sizeof(d->conf) ? conf_size : sizeof(d->conf));
	d->board = (struct virtio_board){
		.dma = pc_virtio_dma, .dma_written = pc_virtio_dma_written, .dma_opaque = vm, .apic = &p->apic_bus, .pci = p->pci,
		.slot = slot, .bar0 = slot ? 0 : (uint32_t)(PC_VIRTIO_BAR_BASE + PC_VIRTIO_BAR_STEP * i),
		.conf = &d->conf,
	};
	struct pc_device row = { .name = d->name, .type = type };
	struct dev_ctx ctx;
	platform_dev_ctx(p, &row, &ctx);
	ctx.arg = &d->board;
	if (!(d->dev = type->create(&ctx)))
		return *err_msg() ? -EINVAL : -ENOMEM;
	if (i == v->n)
		v->n++;
	return 0;
}

/* A disk's virtio-blk settings (the image is opened apart). */
static void blk_conf(const struct vm_config *cfg, const struct vm_disk_config *dc, struct virtio_blk_conf *blk)
{
	/* One request queue per vCPU unless the disk says (section 5.2.5:
	 * the driver maps its hardware queues onto CPUs). */
	unsigned queues = dc->queues ? dc->queues : cfg ? cfg->cpus : 1;
	unsigned compound = COMPOUND_ALL;
	if (cfg)
		compound_parse(cfg->compound, &compound);   /* checked by vm_config_validate() */
	*blk = (struct virtio_blk_conf){
		.readonly = dc->readonly, .serial = dc->serial,
		.cache = dc->cache == VM_DISK_CACHE_NONE     ? VIRTIO_BLK_CACHE_NONE
			 : dc->cache == VM_DISK_CACHE_UNSAFE ? VIRTIO_BLK_CACHE_UNSAFE
							     : VIRTIO_BLK_CACHE_WRITEBACK,
		.queues = queues < VIRTIO_BLK_MAX_QUEUES ? queues : VIRTIO_BLK_MAX_QUEUES,
		.split_only = dc->split_only,
		.batch = compound & COMPOUND_BLOCK,
	};
}

/* --compound net: a NIC's transmit batching (the backend's own is set
 * when it is opened, vm_run()). */
static bool net_batch(const struct vm_config *cfg)
{
	unsigned compound = COMPOUND_ALL;
	if (cfg)
		compound_parse(cfg->compound, &compound);   /* checked by vm_config_validate() */
	return compound & COMPOUND_NET;
}

int pc_virtio_create(struct vm *vm, struct platform *p, const struct pc_virtio_backends *be)
{
	const struct vm_config *cfg = vm->cfg;
	unsigned n_nets = be ? be->n_nets : 0;
	struct chardev *console = be ? be->console : NULL;
	if (!cfg || (!cfg->n_disks && !cfg->rng && !n_nets && !console))
		return 0;
	if (!(p->virtio = calloc(1, sizeof(*p->virtio))))
		return err_set(-ENOMEM, "out of memory");
	int rc;
	for (unsigned i = 0; i < cfg->n_disks; i++) {
		const struct vm_disk_config *dc = &cfg->disks[i];
		struct virtio_blk_conf blk;
		blk_conf(cfg, dc, &blk);
		if ((rc = crypt_disk_open_vm((const char *const *)cfg->plugin_dirs, cfg->n_plugin_dirs, dc, &blk.disk)) < 0)
			return err_wrap(rc, "disk %s", dc->path);
		char name[SNAPSHOT_DEVICE_NAME_MAX];
		snprintf(name, sizeof(name), "virtio-blk.%u", i);
		if ((rc = pc_virtio_add(vm, p, &virtio_blk_device, name, &blk, sizeof(blk), 0)) < 0)
			return err_wrap(rc, "disk %s", dc->path);   /* the device closed the disk */
	}
	for (unsigned i = 0; i < n_nets; i++) {
		/* Set aside for a device-add (docs/hotplug.md). */
		if (cfg->nets[i].hotplug)
			continue;
		char name[SNAPSHOT_DEVICE_NAME_MAX];
		snprintf(name, sizeof(name), "virtio-net.%u", i);
		struct virtio_net_conf net = { .backend = be->nets[i], .batch = net_batch(cfg) };
		if ((rc = pc_virtio_add(vm, p, &virtio_net_device, name, &net, sizeof(net), 0)) < 0)
			return err_wrap(rc, "network interface %u", i);
	}
	if (console) {
		struct virtio_console_conf con = { .backend = console };
		if ((rc = pc_virtio_add(vm, p, &virtio_console_device, "virtio-console", &con, sizeof(con), 0)) < 0)
			return rc;
	}
	struct virtio_rng_conf rng = { .rate = cfg->rng_rate };
	if (cfg->rng && (rc = pc_virtio_add(vm, p, &virtio_rng_device, "virtio-rng", &rng, sizeof(rng), 0)) < 0)
		return rc;
	return 0;
}

void pc_virtio_detach(struct platform *p)
{
	for (unsigned i = 0; p->virtio && i < p->virtio->n; i++)
		if (p->virtio->devs[i].type == &virtio_net_device)
			virtio_net_detach(p->virtio->devs[i].dev);
}

/* Destroys entry d's device, then what it alone used. */
static void pc_virtio_free_dev(struct pc_virtio_dev *d)
{
	d->type->destroy(d->dev);
	if (d->out_cd)
		chardev_free(d->out_cd);
	if (d->out_fd >= 0)
		close(d->out_fd);
	memset(d, 0, sizeof(*d));
	d->out_fd = -1;
}

void pc_virtio_destroy(struct platform *p)
{
	struct pc_virtio *v = p->virtio;
	if (!v)
		return;
	for (unsigned i = v->n; i-- > 0;)
		if (v->devs[i].dev)
			pc_virtio_free_dev(&v->devs[i]);
	free(v);
	p->virtio = NULL;
}

int pc_virtio_snapshot_register(struct platform *p)
{
	for (unsigned i = 0; p->virtio && i < p->virtio->n; i++) {
		struct pc_virtio_dev *d = &p->virtio->devs[i];
		if (!d->dev || d->registered)
			continue;
		int rc = snapshot_register_device(d->name, d->type->save, d->type->load, d->dev);
		if (rc < 0)
			return rc;
		d->registered = true;
	}
	return 0;
}

void pc_virtio_snapshot_unregister(struct platform *p)
{
	for (unsigned i = 0; p->virtio && i < p->virtio->n; i++) {
		if (p->virtio->devs[i].registered)
			snapshot_unregister_device(p->virtio->devs[i].name);
		p->virtio->devs[i].registered = false;
	}
}

/* ---- hot-plug (docs/hotplug.md) ---- */

/* The types a device-add may name; a new virtio device is one row. */
enum pc_virtio_backend { BACKEND_NONE, BACKEND_DISK, BACKEND_NET, BACKEND_FILE };

static const struct {
	const char *type;
	const struct dev_desc *desc;
	enum pc_virtio_backend backend;   /* what struct pc_virtio_hot gives it */
} pc_virtio_types[] = {
	{ "virtio-blk", &virtio_blk_device, BACKEND_DISK },
	{ "virtio-rng", &virtio_rng_device, BACKEND_NONE },
	{ "virtio-net", &virtio_net_device, BACKEND_NET },
	{ "virtio-console", &virtio_console_device, BACKEND_FILE },
};

static int pc_virtio_type(const char *type)
{
	for (unsigned i = 0; i < sizeof(pc_virtio_types) / sizeof(pc_virtio_types[0]); i++)
		if (type && !strcmp(type, pc_virtio_types[i].type))
			return (int)i;
	return -1;
}

bool pc_virtio_type_known(const char *type) { return pc_virtio_type(type) >= 0; }

static struct pc_virtio_dev *pc_virtio_find(struct platform *p, const char *name)
{
	for (unsigned i = 0; p->virtio && i < p->virtio->n; i++)
		if (p->virtio->devs[i].dev && !strcmp(p->virtio->devs[i].name, name))
			return &p->virtio->devs[i];
	return NULL;
}

int pc_virtio_slot(struct platform *p, const char *name)
{
	struct pc_virtio_dev *d = pc_virtio_find(p, name);
	return d ? (int)d->board.slot : -ENOENT;
}

/* The entry whose virtio-net uses backend nd, or NULL. */
static struct pc_virtio_dev *pc_virtio_net_user(struct platform *p, const struct netdev *nd)
{
	for (unsigned i = 0; p->virtio && i < p->virtio->n; i++)
		if (p->virtio->devs[i].dev && p->virtio->devs[i].type == &virtio_net_device &&
		    p->virtio->devs[i].conf.net.backend == nd)
			return &p->virtio->devs[i];
	return NULL;
}

/* The interface hot->net names, or the first free one set aside for
 * hot-plug (--net ...,hotplug): its backend. */
static int pc_virtio_pick_net(struct vm *vm, struct platform *p, const struct pc_virtio_backends *be,
			      struct pc_virtio_hot *hot, struct netdev **out)
{
	const struct vm_config *cfg = vm->cfg;
	unsigned n = be && cfg ? be->n_nets : 0, standby = 0;
	const char *user = NULL;
	if (hot->net >= 0) {
		if ((unsigned)hot->net >= n)
			return err_set(-EINVAL, "params.net: this VM has no network interface %d (it has %u)", hot->net, n);
		if (!cfg->nets[hot->net].hotplug)
			return err_set(-EINVAL, "params.net: interface %d has its NIC from power-on (only those given "
						"with --net ...,hotplug can be added)", hot->net);
		const struct pc_virtio_dev *d = pc_virtio_net_user(p, be->nets[hot->net]);
		if (d)
			return err_set(-EBUSY, "params.net: interface %d is in use by %s", hot->net, d->name);
		*out = be->nets[hot->net];
		return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!cfg->nets[i].hotplug)
			continue;
		standby++;
		const struct pc_virtio_dev *d = pc_virtio_net_user(p, be->nets[i]);
		if (!d) {
			hot->net = (int)i;
			*out = be->nets[i];
			return 0;
		}
		user = d->name;
	}
	if (!standby)
		return err_set(-ENODEV, "no network interface is set aside for hot-plug (start the VM with "
					"--net user,hotplug or nets[].hotplug)");
	return err_set(-EBUSY, "every network interface set aside for hot-plug is in use (the last by %s)", user);
}

int pc_virtio_plug(struct vm *vm, struct platform *p, const char *type, const char *name, struct pc_virtio_hot *hot,
		   const struct pc_virtio_backends *be, unsigned slot)
{
	int t = pc_virtio_type(type);
	if (t < 0)
		return err_set(-ENOENT, "%s is not a virtio device type", type);
	if (slot == 0 || slot >= 32)
		return err_set(-EINVAL, "PCI slot %u out of range (1-31)", slot);
	if (pc_virtio_find(p, name))
		return err_set(-EEXIST, "a device named %s exists", name);
	if (!p->virtio && !(p->virtio = calloc(1, sizeof(*p->virtio))))
		return err_set(-ENOMEM, "out of memory");
	union {
		struct virtio_blk_conf blk;
		struct virtio_net_conf net;
		struct virtio_console_conf con;
	} conf;
	memset(&conf, 0, sizeof(conf));
	const void *c = NULL;
	int rc, fd = -1;
	switch (pc_virtio_types[t].backend) {
	case BACKEND_DISK: {
		const struct vm_disk_config *disk = hot ? hot->disk : NULL;
		if (!disk || !disk->path)
			return err_set(-EINVAL, "%s needs a disk path", type);
		const struct vm_config *cfg = vm->cfg;
		blk_conf(cfg, disk, &conf.blk);
		if ((rc = crypt_disk_open_vm(cfg ? (const char *const *)cfg->plugin_dirs : NULL,
					     cfg ? cfg->n_plugin_dirs : 0, disk, &conf.blk.disk)) < 0)
			return err_wrap(rc, "disk %s", disk->path);
		c = &conf.blk;
		break;
	}
	case BACKEND_NET:
		if (!hot)
			return err_set(-EINVAL, "%s needs a network interface", type);
		if ((rc = pc_virtio_pick_net(vm, p, be, hot, &conf.net.backend)) < 0)
			return rc;
		conf.net.batch = net_batch(vm->cfg);
		c = &conf.net;
		break;
	case BACKEND_FILE:
		/* The guest's output is appended to the file; it has no input
		 * (docs/hotplug.md). */
		if (!hot || !hot->path)
			return err_set(-EINVAL, "%s needs a file path", type);
		if ((fd = open(hot->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600)) < 0)
			return err_set(-errno, "file %s: %s", hot->path, strerror(errno));
		if (!(conf.con.backend = chardev_fd_new(-1, fd))) {
			close(fd);
			return -ENOMEM;
		}
		c = &conf.con;
		break;
	case BACKEND_NONE:
		break;
	}
	if ((rc = pc_virtio_add(vm, p, pc_virtio_types[t].desc, name, c, sizeof(conf), slot)) < 0) {
		/* The device closed a disk; a console's file is this code's. */
		if (fd >= 0) {
			chardev_free(conf.con.backend);
			close(fd);
		}
		return rc;
	}
	struct pc_virtio_dev *d = pc_virtio_find(p, name);
	d->out_fd = fd;
	d->out_cd = fd >= 0 ? conf.con.backend : NULL;
	if ((rc = snapshot_register_device(d->name, d->type->save, d->type->load, d->dev)) < 0) {
		pc_virtio_free_dev(d);
		return rc == -EEXIST ? err_set(rc, "the name %s is taken by another device", name) : rc;
	}
	d->registered = true;
	return 0;
}

int pc_virtio_unplug(struct platform *p, const char *name)
{
	struct pc_virtio_dev *d = pc_virtio_find(p, name);
	if (!d)
		return err_set(-ENOENT, "no virtio device named %s", name);
	if (d->registered)
		snapshot_unregister_device(d->name);
	int slot = (int)d->board.slot;
	pc_virtio_free_dev(d);
	return slot;
}

void pc_virtio_unplug_detach(struct platform *p, const char *name)
{
	struct pc_virtio_dev *d = pc_virtio_find(p, name);
	if (d && d->type == &virtio_net_device)
		virtio_net_detach(d->dev);
}

int pc_virtio_slot_owner(struct platform *p, unsigned slot, char *name, size_t cap)
{
	for (unsigned i = 0; p->virtio && i < p->virtio->n; i++) {
		if (p->virtio->devs[i].dev && p->virtio->devs[i].board.slot == slot) {
			snprintf(name, cap, "%s", p->virtio->devs[i].name);
			return 0;
		}
	}
	return -ENOENT;
}

void pc_virtio_quiesce(struct platform *p)
{
	for (unsigned i = 0; p && p->virtio && i < p->virtio->n; i++) {
		if (p->virtio->devs[i].type == &virtio_blk_device)
			virtio_blk_drain(p->virtio->devs[i].dev);
		else if (p->virtio->devs[i].type == &virtio_net_device)
			virtio_net_quiesce(p->virtio->devs[i].dev);
	}
}
