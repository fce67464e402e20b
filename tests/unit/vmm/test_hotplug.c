/* PCI hot-plug of virtio functions (src/vmm/hotplug.c, docs/hotplug.md)
 * on a whole board: slots, the controller's bits, the guest's eject, the
 * timeout, surprise removal and bad input, leaving nothing behind (the
 * ASan build checks leaks). */
#include "../hw/harness.h"

#include "hw/pci.h"
#include "hw/pci_hotplug.h"
#include "hw/netdev.h"
#include "vmm/hotplug.h"
#include "vmm/net.h"
#include "vmm/pc_virtio.h"
#include "vmm/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/socket.h>
#include <unistd.h>

#define HP PC_PORT_PCIHP

static char img[64];

static struct tvm *setup(void)
{
	snprintf(img, sizeof(img), "/tmp/vessel-hotplug-XXXXXX");
	int fd = mkstemp(img);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	return tvm_new(1);
}

static void teardown(struct tvm *t)
{
	pc_virtio_snapshot_unregister(t->vm.platform);
	pthread_mutex_lock(&t->vm.dev_lock);
	pc_virtio_destroy(t->vm.platform);
	pthread_mutex_unlock(&t->vm.dev_lock);
	tvm_free(t);
	unlink(img);
}

static const struct pc_virtio_backends *backends;

static int add(struct tvm *t, const char *type, const char *id, const char *params, int *slot)
{
	struct vm_device_config dev = { .type = (char *)type, .id = (char *)id, .params = (char *)params };
	char *out = NULL;
	err_clear();
	int rc = hotplug_add(&t->vm, &dev, backends, true, &out);
	if (rc == 0) {
		json_t *p = json_loads(out, 0, NULL);
		cr_assert(p, "params with the slot: %s", out);
		if (slot)
			*slot = (int)json_integer_value(json_object_get(p, "slot"));
		json_decref(p);
	}
	free(out);
	return rc;
}

static uint16_t vendor(struct tvm *t, unsigned slot)
{
	pthread_mutex_lock(&t->vm.dev_lock);
	uint16_t v = (uint16_t)pci_config_read(t->vm.platform->pci, 0, slot << 3, 0, 2);
	pthread_mutex_unlock(&t->vm.dev_lock);
	return v;
}

Test(hotplug, add_tells_the_guest_and_its_eject_frees_the_function)
{
	struct tvm *t = setup();
	char params[128];
	snprintf(params, sizeof(params), "{\"path\": \"%s\", \"format\": \"raw\"}", img);
	int blk = 0, rng = 0;
	cr_assert_eq(add(t, "virtio-blk", "d1", params, &blk), 0, "%s", err_msg());
	cr_assert_eq(add(t, "virtio-rng", "r1", "{\"slot\": 9}", &rng), 0, "%s", err_msg());
	cr_assert_eq(blk, 1);
	cr_assert_eq(rng, 9);
	cr_assert_eq(vendor(t, 1), 0x1af4, "virtio vendor in slot 1");
	cr_assert_eq(vendor(t, 9), 0x1af4);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_CHK), (1u << 1) | (1u << 9), "device checks for both");
	cr_assert_eq(hotplug_slot(&t->vm, NULL, "r1"), 9);

	/* Nobody ejects: the removal times out and the function stays. */
	cr_assert_eq(hotplug_remove(&t->vm, NULL, "d1", false, 30), -ETIMEDOUT);
	cr_assert(strstr(err_msg(), "did not release d1"), "%s", err_msg());
	cr_assert_eq(vendor(t, 1), 0x1af4);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_EJR), 1u << 1, "the eject request stays pending");
	/* The guest's _EJ0 of slot 1: the next removal finds it at once. */
	outl(t, HP + PCI_HOTPLUG_EJ, 1u << 1);
	cr_assert_eq(hotplug_remove(&t->vm, NULL, "d1", false, 10000), 0, "%s", err_msg());
	cr_assert_eq(vendor(t, 1), 0xffff, "slot 1 is empty");
	cr_assert_eq(hotplug_slot(&t->vm, NULL, "d1"), -ENOENT);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_CHK), 0, "no surprise: no device check");

	/* Surprise removal: the guest is told the slot's device is gone. */
	cr_assert_eq(hotplug_remove(&t->vm, NULL, "r1", true, 0), 0);
	cr_assert_eq(vendor(t, 9), 0xffff);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_CHK), 0);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_GONE), 1u << 9);
	cr_assert_eq(hotplug_remove(&t->vm, NULL, "r1", true, 0), -ENOENT);
	/* The image was closed: it can be added again, in the same slot. */
	cr_assert_eq(add(t, "virtio-blk", "d1", params, &blk), 0, "%s", err_msg());
	cr_assert_eq(blk, 1);
	teardown(t);
}

Test(hotplug, bad_input_is_refused_and_changes_nothing)
{
	struct tvm *t = setup();
	char params[160];
	cr_assert_eq(add(t, "virtio-rng", "r0", "{\"slot\": 4}", NULL), 0);
	cr_assert_eq(add(t, "virtio-rng", "r1", "{\"slot\": 4}", NULL), -EBUSY);
	cr_assert(strstr(err_msg(), "PCI slot 4 is taken by r0"), "%s", err_msg());
	cr_assert_eq(add(t, "virtio-rng", "r0", "{}", NULL), -EEXIST);
	cr_assert_eq(add(t, "virtio-rng", "pic", "{}", NULL), -EEXIST, "a board device's snapshot name");
	cr_assert(strstr(err_msg(), "the name pic is taken"), "%s", err_msg());
	cr_assert_eq(add(t, "virtio-rng", "r1", "{\"slot\": 0}", NULL), -EINVAL);
	cr_assert_eq(add(t, "virtio-rng", "r1", "{\"path\": \"x\"}", NULL), -EINVAL);
	cr_assert_eq(add(t, "virtio-rng", "r1", "[1]", NULL), -EINVAL);
	cr_assert_eq(add(t, "virtio-blk", "d1", "{}", NULL), -EINVAL);
	cr_assert(strstr(err_msg(), "params.path: missing"), "%s", err_msg());
	cr_assert_eq(add(t, "virtio-blk", "d1", "{\"path\": \"/nonexistent/x.raw\"}", NULL) < 0, 1);
	cr_assert(strstr(err_msg(), "/nonexistent/x.raw"), "%s", err_msg());
	snprintf(params, sizeof(params), "{\"path\": \"%s\", \"format\": \"qcow2\"}", img);
	cr_assert_eq(add(t, "virtio-blk", "d1", params, NULL), -EINVAL);
	snprintf(params, sizeof(params), "{\"path\": \"%s\", \"serial\": \"123456789012345678901\"}", img);
	cr_assert_eq(add(t, "virtio-blk", "d1", params, NULL), -EINVAL);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_CHK), 1u << 4, "only r0 was announced");
	/* Fill the bus: 30 more slots, then none. */
	for (int i = 0; i < 30; i++) {
		char id[16];
		snprintf(id, sizeof(id), "f%d", i);
		cr_assert_eq(add(t, "virtio-rng", id, "{}", NULL), 0, "%s: %s", id, err_msg());
	}
	cr_assert_eq(add(t, "virtio-rng", "full", "{}", NULL), -ENOSPC);
	cr_assert(strstr(err_msg(), "the PCI bus is full"), "%s", err_msg());
	snprintf(params, sizeof(params), "{\"path\": \"%s\"}", img);
	cr_assert_eq(add(t, "virtio-blk", "full", params, NULL), -ENOSPC, "the disk is not opened for a full bus");
	for (int i = 0; i < 30; i += 2) {
		char id[16];
		snprintf(id, sizeof(id), "f%d", i);
		cr_assert_eq(hotplug_remove(&t->vm, NULL, id, true, 0), 0);
	}
	cr_assert_eq(hotplug_remove(&t->vm, NULL, "nothing", true, 0), -ENOENT);
	teardown(t);   /* the rest go with the machine */
}

static char removed_ids[64];

static void on_removed(void *opaque, const char *id)
{
	strncat(removed_ids, id, sizeof(removed_ids) - strlen(removed_ids) - 2);
	strcat(removed_ids, " ");
}

/* The guest ejects a function on its own: the reaper frees it and says
 * so; an eject that answers a request is left to the waiting removal. */
Test(hotplug, the_guests_own_eject_frees_the_function)
{
	struct tvm *t = setup();
	int a = 0, b = 0;
	cr_assert_eq(add(t, "virtio-rng", "r1", "{}", &a), 0, "%s", err_msg());
	cr_assert_eq(add(t, "virtio-rng", "r2", "{}", &b), 0, "%s", err_msg());
	removed_ids[0] = 0;
	cr_assert_eq(hotplug_reap_guest_ejects(&t->vm, NULL, on_removed, NULL), 0, "nothing ejected");
	/* r2's removal was asked for (and timed out); r1 goes on its own. */
	cr_assert_eq(hotplug_remove(&t->vm, NULL, "r2", false, 10), -ETIMEDOUT);
	outl(t, HP + PCI_HOTPLUG_EJ, (1u << a) | (1u << b) | (1u << 20));   /* slot 20 holds nothing */
	cr_assert_eq(hotplug_reap_guest_ejects(&t->vm, NULL, on_removed, NULL), 1);
	cr_assert_str_eq(removed_ids, "r1 ");
	cr_assert_eq(vendor(t, (unsigned)a), 0xffff, "r1's slot is empty");
	cr_assert_eq(vendor(t, (unsigned)b), 0x1af4, "r2 waits for its removal");
	cr_assert_eq(hotplug_remove(&t->vm, NULL, "r2", false, 1000), 0, "%s", err_msg());
	cr_assert_eq(vendor(t, (unsigned)b), 0xffff);
	teardown(t);
}

/* A NIC takes an interface set aside for hot-plug and leaves it free; a
 * console appends to its file. */
Test(hotplug, nic_on_a_set_aside_interface_and_console_on_a_file)
{
	struct tvm *t = setup();
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct netdev *nd[2];
	cr_assert_eq(net_tap_open_fd(sv[0], "own", &nd[0]), 0, "%s", err_msg());
	cr_assert_eq(net_tap_open_fd(dup(sv[1]), "spare", &nd[1]), 0, "%s", err_msg());
	struct vm_config cfg = { .n_nets = 2 };
	cfg.nets[1].hotplug = true;
	struct pc_virtio_backends be = { .n_nets = 2, .nets = { nd[0], nd[1] } };
	t->vm.cfg = &cfg;
	cr_assert_eq(add(t, "virtio-net", "n1", "{}", NULL), -ENODEV,
		     "no backends at all");
	backends = &be;
	cr_assert_eq(add(t, "virtio-net", "n1", "{\"net\": 0}", NULL), -EINVAL);
	cr_assert(strstr(err_msg(), "interface 0 has its NIC from power-on"), "%s", err_msg());
	cr_assert_eq(add(t, "virtio-net", "n1", "{\"net\": 2}", NULL), -EINVAL);
	int slot = 0;
	cr_assert_eq(add(t, "virtio-net", "n1", "{}", &slot), 0, "%s", err_msg());
	cr_assert_eq(vendor(t, (unsigned)slot), 0x1af4);
	cr_assert_eq(add(t, "virtio-net", "n2", "{}", NULL), -EBUSY);
	cr_assert(strstr(err_msg(), "in use (the last by n1)"), "%s", err_msg());
	cr_assert_eq(hotplug_remove(&t->vm, NULL, "n1", true, 0), 0);
	cr_assert_eq(add(t, "virtio-net", "n2", "{\"net\": 1}", NULL), 0, "free again: %s", err_msg());

	char path[64], params[128];
	snprintf(path, sizeof(path), "%s.con", img);
	snprintf(params, sizeof(params), "{\"path\": \"%s\"}", path);
	cr_assert_eq(add(t, "virtio-console", "c1", "{}", NULL), -EINVAL);
	cr_assert_eq(add(t, "virtio-console", "c1", "{\"path\": \"/nonexistent/dir/f\"}", NULL), -ENOENT);
	cr_assert(strstr(err_msg(), "/nonexistent/dir/f"), "%s", err_msg());
	cr_assert_eq(add(t, "virtio-console", "c1", params, &slot), 0, "%s", err_msg());
	cr_assert_eq(access(path, F_OK), 0, "the file is created");
	cr_assert_eq(hotplug_remove(&t->vm, NULL, "c1", true, 0), 0);
	unlink(path);
	teardown(t);
	backends = NULL;
	netdev_free(nd[0]);
	netdev_free(nd[1]);
	close(sv[1]);
}

/* A plug-in's PCI function (docs/plugins.md "PCI functions") goes the way
 * of a virtio one: announced, removed on the guest's eject after a
 * request (a timeout first), by the guest's own eject, or by force. */
Test(hotplug, plugin_functions_are_announced_and_ejected)
{
	struct tvm *t = setup();
	struct plugin_registry reg;
	plugin_registry_init(&reg);
	cr_assert_eq(plugin_registry_load(&reg, PCI_EXAMPLE_PLUGIN), 0, "%s", err_msg());
	struct plugin_devices set;
	struct plugin_env env = { .pio = &t->vm.pio, .mmio = &t->vm.mmio, .dev_lock = &t->vm.dev_lock,
				  .mem = &t->vm.mem, .pci = t->vm.platform->pci, .apic = &t->vm.platform->apic_bus };
	plugin_devices_init(&set, &reg, &env);
	set.hotplug = true;
	const char *ids[] = { "e1", "e2", "e3" };
	int slots[3];
	for (unsigned i = 0; i < 3; i++) {
		struct vm_device_config c = { .type = "edu", .id = (char *)ids[i], .params = "{}" };
		cr_assert_eq(plugin_devices_add(&set, &c), 0, "%s", err_msg());
		slots[i] = hotplug_slot(&t->vm, &set, ids[i]);
		cr_assert_gt(slots[i], 0);
		hotplug_announce(&t->vm, (unsigned)slots[i]);
	}
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_CHK), (1u << slots[0]) | (1u << slots[1]) | (1u << slots[2]));
	cr_assert_eq(vendor(t, (unsigned)slots[0]), 0x1234);
	/* Asked to release e1, the guest does not in time: it stays. */
	cr_assert_eq(hotplug_remove(&t->vm, &set, "e1", false, 10), -ETIMEDOUT);
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_EJR), 1u << slots[0]);
	cr_assert_eq(hotplug_slot(&t->vm, &set, "e1"), slots[0]);
	/* Its eject, then the next removal finds it at once. */
	outl(t, HP + PCI_HOTPLUG_EJ, 1u << slots[0]);
	cr_assert_eq(hotplug_remove(&t->vm, &set, "e1", false, 1000), 0, "%s", err_msg());
	cr_assert_eq(vendor(t, (unsigned)slots[0]), 0xffff);
	cr_assert_eq(plugin_devices_slot(&set, "e1"), -ENOENT);
	/* e2 goes on the guest's own eject. */
	removed_ids[0] = 0;
	outl(t, HP + PCI_HOTPLUG_EJ, 1u << slots[1]);
	cr_assert_eq(hotplug_reap_guest_ejects(&t->vm, &set, on_removed, NULL), 1);
	cr_assert_str_eq(removed_ids, "e2 ");
	cr_assert_eq(vendor(t, (unsigned)slots[1]), 0xffff);
	/* e3 by force: the guest hears it went. */
	cr_assert_eq(hotplug_remove(&t->vm, &set, "e3", true, 0), 0, "%s", err_msg());
	cr_assert_eq(inl(t, HP + PCI_HOTPLUG_GONE), 1u << slots[2]);
	cr_assert_eq(set.n, 0);
	cr_assert_eq(hotplug_remove(&t->vm, &set, "e3", true, 0), -ENOENT);
	plugin_devices_destroy(&set);
	plugin_registry_free(&reg);
	teardown(t);
}
