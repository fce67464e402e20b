#include "machine/bus.h"

#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

void bus_destroy(struct bus *bus)
{
	free(bus->ranges);
	memset(bus, 0, sizeof(*bus));
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque, const char *name)
{
	if (len == 0 || base + len - 1 < base)
		return err_set(-EINVAL, "%s: bad range %#llx+%#llx for %s", bus->name,
			       (unsigned long long)base, (unsigned long long)len, name);
	unsigned pos = 0;
	while (pos < bus->n && bus->ranges[pos].base < base)
		pos++;
	const struct bus_range *prev = pos ? &bus->ranges[pos - 1] : NULL;
	const struct bus_range *next = pos < bus->n ? &bus->ranges[pos] : NULL;
	if ((prev && prev->base + prev->len > base) || (next && base + len > next->base)) {
		const struct bus_range *o = (prev && prev->base + prev->len > base) ? prev : next;
		return err_set(-EBUSY, "%s: %s at %#llx overlaps %s at %#llx", bus->name, name,
			       (unsigned long long)base, o->name, (unsigned long long)o->base);
	}
	if (bus->n == bus->cap) {
		unsigned cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_range *r = realloc(bus->ranges, cap * sizeof(*r));
		if (!r)
			return err_set(-ENOMEM, "out of memory");
		bus->ranges = r;
		bus->cap = cap;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->n - pos) * sizeof(*bus->ranges));
	bus->ranges[pos] = (struct bus_range){ .base = base, .len = len, .ops = ops, .opaque = opaque, .name = name };
	bus->n++;
	return 0;
}

int bus_unregister(struct bus *bus, uint64_t base, void *opaque)
{
	for (unsigned i = 0; i < bus->n; i++) {
		if (bus->ranges[i].base == base && bus->ranges[i].opaque == opaque) {
			memmove(&bus->ranges[i], &bus->ranges[i + 1], (bus->n - i - 1) * sizeof(*bus->ranges));
			bus->n--;
			return 0;
		}
	}
	return -ENOENT;
}

void bus_release(struct bus *bus, void *opaque)
{
	if (!bus)
		return;
	for (unsigned i = 0; i < bus->n;) {
		if (bus->ranges[i].opaque == opaque)
			bus_unregister(bus, bus->ranges[i].base, opaque);
		else
			i++;
	}
}

struct bus_range *bus_find(struct bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->n;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		struct bus_range *r = &bus->ranges[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool bus_read(struct bus *bus, struct vcpu *vcpu, uint64_t addr, unsigned size, uint64_t *val)
{
	struct bus_range *r = bus_find(bus, addr);
	if (!r || !r->ops->read) {
		*val = size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
		return false;
	}
	r->reads++;
	*val = r->ops->read(r->opaque, vcpu, addr - r->base, size);
	return true;
}

bool bus_write(struct bus *bus, struct vcpu *vcpu, uint64_t addr, unsigned size, uint64_t val)
{
	struct bus_range *r = bus_find(bus, addr);
	if (!r || !r->ops->write)
		return false;
	r->writes++;
	r->ops->write(r->opaque, vcpu, addr - r->base, size, val);
	return true;
}
