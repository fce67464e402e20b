/* The host's NUMA topology from sysfs (host_numa.h). */
#include "machine/host_numa.h"
#include "util/error.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int host_numa_parse_list(const char *s, uint64_t *bits, cpu_set_t *cpus)
{
	if (bits)
		*bits = 0;
	if (cpus)
		CPU_ZERO(cpus);
	while (*s && *s != '\n') {
		char *end;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		unsigned long lo = strtoul(s, &end, 10), hi = lo;
		if (*end == '-') {
			if (!isdigit((unsigned char)end[1]))
				return -EINVAL;
			hi = strtoul(end + 1, &end, 10);
		}
		if (hi < lo || hi >= 1u << 20)
			return -EINVAL;
		for (unsigned long n = lo; n <= hi; n++) {
			if (bits && n < 64)
				*bits |= 1ull << n;
			if (cpus && n < CPU_SETSIZE)
				CPU_SET(n, cpus);
		}
		s = end;
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return -EINVAL;
	}
	return 0;
}

/* The first line of root/name into buf; false if it cannot be read. */
static bool read_line(const char *root, const char *name, char *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, name);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	return ok;
}

/* "Node N MemFree:   1234 kB" in nodeN/meminfo. */
static uint64_t node_free_bytes(const char *root, unsigned n)
{
	char path[4096], line[256];
	snprintf(path, sizeof(path), "%s/node%u/meminfo", root, n);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	uint64_t kb = 0;
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "MemFree:");
		if (p) {
			kb = strtoull(p + 8, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb << 10;
}

/* The nodes a cpuset lets this process use (proc(5), Mems_allowed_list). */
static uint64_t mems_allowed(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return ~0ull;
	char line[4096];
	uint64_t bits = ~0ull;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Mems_allowed_list:", 18)) {
			const char *p = line + 18;
			while (*p == ' ' || *p == '\t')
				p++;
			if (host_numa_parse_list(p, &bits, NULL) < 0)
				bits = ~0ull;
			break;
		}
	}
	fclose(f);
	return bits;
}

int host_numa_read(struct host_numa *h, const char *root)
{
	memset(h, 0, sizeof(*h));
	bool real = !root;
	if (real)
		root = HOST_NUMA_SYSFS;
	DIR *d = opendir(root);
	if (!d)
		return 0;   /* no NUMA in this kernel: no nodes */
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		if (strncmp(e->d_name, "node", 4) || !isdigit((unsigned char)e->d_name[4]))
			continue;
		unsigned long n = strtoul(e->d_name + 4, &end, 10);
		if (*end || n >= HOST_NUMA_MAX_NODES)
			continue;
		h->nodes |= 1ull << n;
	}
	closedir(d);
	uint64_t listed = h->nodes;   /* a distance line has one number per node listed */
	if (real)
		h->nodes &= mems_allowed();
	for (unsigned n = 0; n < HOST_NUMA_MAX_NODES; n++) {
		if (!(h->nodes & (1ull << n)))
			continue;
		char name[64], buf[4096];
		snprintf(name, sizeof(name), "node%u/cpulist", n);
		if (read_line(root, name, buf, sizeof(buf)) && host_numa_parse_list(buf, NULL, &h->cpus[n]) < 0)
			return err_set(-EINVAL, "host numa: %s/%s: not a CPU list", root, name);
		h->free_bytes[n] = node_free_bytes(root, n);
		snprintf(name, sizeof(name), "node%u/hugepages/hugepages-2048kB/free_hugepages", n);
		h->free_huge[n] = read_line(root, name, buf, sizeof(buf)) ? strtoull(buf, NULL, 10) : 0;
		snprintf(name, sizeof(name), "node%u/hugepages/hugepages-1048576kB/free_hugepages", n);
		h->free_huge_1g[n] = read_line(root, name, buf, sizeof(buf)) ? strtoull(buf, NULL, 10) : 0;
		if (h->free_bytes[n])
			h->with_free |= 1ull << n;
		/* distance: one number per node of the tree, in node order. */
		snprintf(name, sizeof(name), "node%u/distance", n);
		if (read_line(root, name, buf, sizeof(buf))) {
			char *p = buf;
			for (uint64_t rest = listed; rest && *p && *p != '\n'; rest &= rest - 1) {
				unsigned long dist = strtoul(p, &p, 10);
				h->distance[n][__builtin_ctzll(rest)] = dist > 255 ? 255 : (uint8_t)dist;
				while (*p == ' ')
					p++;
			}
		}
	}
	return 0;
}

void host_numa_cpus_of(const struct host_numa *h, uint64_t mask, cpu_set_t *out)
{
	CPU_ZERO(out);
	for (unsigned n = 0; n < HOST_NUMA_MAX_NODES; n++) {
		if (mask & (1ull << n))
			CPU_OR(out, out, &h->cpus[n]);
	}
}

void host_numa_list(uint64_t mask, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = 0;
	for (unsigned n = 0; n < HOST_NUMA_MAX_NODES && off < len; n++) {
		if (mask & (1ull << n))
			off += (size_t)snprintf(buf + off, len - off, "%s%u", off ? "," : "", n);
	}
}
