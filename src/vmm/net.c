/* The backend each configured interface gets (see net.h). */
#include "vmm/net.h"

#include "hw/netdev.h"

#include <string.h>

int net_open(const struct vm_net_config *n, unsigned index, struct netdev **out)
{
	int rc = !strcmp(n->type, "tap") ? net_tap_open(n, out) : net_slirp_open(n, out);
	if (rc < 0)
		return rc;
	if (n->has_mac) {
		memcpy((*out)->mac, n->mac, 6);
	} else {
		/* QEMU's default address, one per interface. */
		static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
		memcpy((*out)->mac, base, 6);
		(*out)->mac[5] = (uint8_t)(base[5] + index);
	}
	return 0;
}
