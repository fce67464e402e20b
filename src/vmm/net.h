/* The host side of the guest's network interfaces (docs/virtio.md
 * "virtio-net"): user networking through libslirp (net_slirp.c) and tap
 * devices (net_tap.c), each a backend of hw/netdev.h with a thread of its
 * own.  They are opened once per run, before the sandbox, and outlive the
 * machines a guest reboot builds. */
#ifndef VESSEL_VMM_NET_H
#define VESSEL_VMM_NET_H

#include "vmm/config.h"

struct netdev;

/* --net TYPE[,OPT...]: user[,hostfwd=...][,mac=...] or tap,ifname=NAME[,mac=...]
 * into n (cleared first; vm_config_free() frees it).  0 or -EINVAL with
 * err_set() naming the bad part. */
int net_parse(const char *spec, struct vm_net_config *n);
/* One hostfwd rule, "tcp:[ADDR]:HOSTPORT-:GUESTPORT" (or udp:). */
int net_parse_hostfwd(const char *s, struct vm_hostfwd *fwd);
/* "52:54:00:12:34:56": six hex bytes, not multicast. */
int net_parse_mac(const char *s, uint8_t mac[6]);
/* Checks a configuration from the manifest as net_parse() does. */
int net_config_check(const struct vm_net_config *n, const char *where);

/* Opens interface index of a configuration; netdev_start() starts its
 * thread. */
int net_open(const struct vm_net_config *n, unsigned index, struct netdev **out);

/* The backends (their own files). */
int net_slirp_open(const struct vm_net_config *n, struct netdev **out);
int net_tap_open(const struct vm_net_config *n, struct netdev **out);
/* A tap backend on a descriptor that is already open (any packet
 * descriptor: a socketpair in the tests); it takes the descriptor. */
int net_tap_open_fd(int fd, const char *name, struct netdev **out);

#endif
