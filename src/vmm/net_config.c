/* --net and the manifest's "nets": parsing and checks (see net.h); apart
 * from the backends (net.c) so that the manifest's parsers, and their fuzz
 * targets, need no network code. */
#include "vmm/net.h"

#include "util/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int net_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6 ||
	    strlen(s) != 17)
		return err_set(-EINVAL, "mac '%s' is not six hex bytes like 52:54:00:12:34:56", s);
	if (v[0] & 1)
		return err_set(-EINVAL, "mac '%s' is a multicast address (the first byte is odd)", s);
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

static int parse_port(const char *s, size_t len, uint16_t *port)
{
	char buf[8];
	if (!len || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = 0;
	char *end;
	unsigned long v = strtoul(buf, &end, 10);
	if (*end || buf[0] == '-' || buf[0] == '+' || v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int net_parse_hostfwd(const char *s, struct vm_hostfwd *fwd)
{
	/* QEMU's spelling: PROTO:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT;
	 * the guest address is the one DHCP gives, so it must be empty. */
	memset(fwd, 0, sizeof(*fwd));
	const char *p;
	if (!strncmp(s, "tcp:", 4))
		p = s + 4;
	else if (!strncmp(s, "udp:", 4)) {
		fwd->udp = true;
		p = s + 4;
	} else {
		goto bad;
	}
	const char *colon = strchr(p, ':'), *dash = colon ? strchr(colon, '-') : NULL;
	if (!colon || !dash || dash[1] != ':')
		goto bad;
	if (colon > p) {
		char addr[16];
		struct in_addr a;
		if ((size_t)(colon - p) >= sizeof(addr))
			goto bad;
		memcpy(addr, p, (size_t)(colon - p));
		addr[colon - p] = 0;
		if (inet_pton(AF_INET, addr, &a) != 1)
			goto bad;
		fwd->host_addr = ntohl(a.s_addr);
	}
	if (parse_port(colon + 1, (size_t)(dash - colon - 1), &fwd->host_port) < 0 ||
	    parse_port(dash + 2, strlen(dash + 2), &fwd->guest_port) < 0)
		goto bad;
	return 0;
bad:
	return err_set(-EINVAL, "hostfwd '%s' is not tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT (ports 1-65535)", s);
}

int net_config_check(const struct vm_net_config *n, const char *where)
{
	if (!n->type || (strcmp(n->type, "user") && strcmp(n->type, "tap")))
		return err_set(-EINVAL, "%s: type '%s' is neither user nor tap", where, n->type ? n->type : "");
	if (!strcmp(n->type, "tap") && (!n->ifname || !*n->ifname))
		return err_set(-EINVAL, "%s: a tap interface needs ifname=NAME", where);
	if (n->ifname && strlen(n->ifname) >= 16)
		return err_set(-EINVAL, "%s: ifname '%s' is longer than 15 characters", where, n->ifname);
	if (!strcmp(n->type, "user") && n->ifname)
		return err_set(-EINVAL, "%s: ifname applies to tap only", where);
	if (!strcmp(n->type, "tap") && n->n_hostfwd)
		return err_set(-EINVAL, "%s: hostfwd applies to user networking only", where);
	return 0;
}

int net_parse(const char *spec, struct vm_net_config *n)
{
	memset(n, 0, sizeof(*n));
	char *copy = strdup(spec);
	if (!copy)
		return err_set(-ENOMEM, "out of memory");
	char *save = NULL, *tok = strtok_r(copy, ",", &save);
	int rc = 0;
	if (!tok || (strcmp(tok, "user") && strcmp(tok, "tap"))) {
		rc = err_set(-EINVAL, "--net: '%s' does not start with user or tap", spec);
		goto out;
	}
	n->type = strdup(tok);
	while (rc == 0 && (tok = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(tok, '=');
		if (!strcmp(tok, "hotplug")) {
			n->hotplug = true;
			continue;
		}
		if (!eq) {
			rc = err_set(-EINVAL, "--net: bad option '%s' (expected hostfwd=RULE, mac=ADDR, ifname=NAME, hotplug)", tok);
			break;
		}
		*eq = 0;
		const char *val = eq + 1;
		if (!strcmp(tok, "hostfwd")) {
			if (n->n_hostfwd >= VM_MAX_HOSTFWD)
				rc = err_set(-EINVAL, "--net: at most %d hostfwd rules", VM_MAX_HOSTFWD);
			else if (net_parse_hostfwd(val, &n->hostfwd[n->n_hostfwd]) == 0)
				n->n_hostfwd++;
			else
				rc = err_wrap(-EINVAL, "--net");
		} else if (!strcmp(tok, "mac")) {
			if ((rc = net_parse_mac(val, n->mac)) < 0)
				err_wrap(rc, "--net");
			n->has_mac = true;
		} else if (!strcmp(tok, "ifname")) {
			free(n->ifname);
			n->ifname = strdup(val);
		} else {
			rc = err_set(-EINVAL, "--net: bad option '%s=%s' (expected hostfwd=RULE, mac=ADDR, ifname=NAME, hotplug)", tok,
				     val);
		}
	}
	if (rc == 0)
		rc = net_config_check(n, "--net");
out:
	free(copy);
	return rc;
}
