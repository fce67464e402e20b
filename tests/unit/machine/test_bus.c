#include <criterion/criterion.h>
#include <errno.h>

#include "machine/bus.h"

struct fake_dev {
	uint64_t last_off, last_val;
	unsigned last_size;
};

static uint64_t fake_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size)
{
	struct fake_dev *d = opaque;
	d->last_off = off;
	d->last_size = size;
	return 0x1234 + off;
}

static void fake_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct fake_dev *d = opaque;
	d->last_off = off;
	d->last_size = size;
	d->last_val = val;
}

static const struct bus_ops fake_ops = { fake_read, fake_write };

Test(bus, dispatch_relative_offset)
{
	struct bus b;
	struct fake_dev a = { 0 }, c = { 0 };
	bus_init(&b, "pio");
	cr_assert_eq(bus_register(&b, 0x3f8, 8, &fake_ops, &a, "uart"), 0);
	cr_assert_eq(bus_register(&b, 0x60, 1, &fake_ops, &c, "kbd"), 0);
	uint64_t v;
	cr_assert(bus_read(&b, NULL, 0x3fd, 1, &v));
	cr_assert_eq(v, 0x1234 + 5);
	cr_assert_eq(a.last_off, 5);
	cr_assert(bus_write(&b, NULL, 0x60, 1, 0xfe));
	cr_assert_eq(c.last_val, 0xfe);
	cr_assert_eq(bus_find(&b, 0x3f8)->reads, 1);
	bus_destroy(&b);
}

Test(bus, unclaimed_reads_ones)
{
	struct bus b;
	bus_init(&b, "pio");
	uint64_t v = 0;
	cr_assert_not(bus_read(&b, NULL, 0x80, 2, &v));
	cr_assert_eq(v, 0xffff);
	cr_assert_not(bus_write(&b, NULL, 0x80, 1, 1));
	bus_destroy(&b);
}

Test(bus, overlap_refused_and_unregister)
{
	struct bus b;
	struct fake_dev a;
	bus_init(&b, "mmio");
	cr_assert_eq(bus_register(&b, 0x1000, 0x100, &fake_ops, &a, "x"), 0);
	cr_assert_eq(bus_register(&b, 0x10ff, 2, &fake_ops, &a, "y"), -EBUSY);
	cr_assert_eq(bus_register(&b, 0xfff, 2, &fake_ops, &a, "z"), -EBUSY);
	cr_assert_eq(bus_register(&b, 0x1100, 2, &fake_ops, &a, "w"), 0);
	cr_assert_eq(bus_register(&b, 0, 0, &fake_ops, &a, "empty"), -EINVAL);
	cr_assert_eq(bus_unregister(&b, 0x1000, &a), 0);
	cr_assert_eq(bus_unregister(&b, 0x1000, &a), -ENOENT);
	cr_assert_null(bus_find(&b, 0x1000));
	cr_assert_not_null(bus_find(&b, 0x1101));
	bus_destroy(&b);
}
