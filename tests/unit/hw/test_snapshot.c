/* Device state across a snapshot: each device is programmed through the
 * buses as a guest would, every registered blob is saved, the platform is
 * destroyed and created again (a fresh process in miniature), the blobs
 * are loaded, and guest-visible registers, pending interrupts and armed
 * timers must behave as before.  Bad blobs are refused, the device left
 * as it was. */
#include "harness.h"

#include "hw/pit.h"
#include "machine/device_registry.h"

#include <errno.h>

#define MAX_BLOBS 64

struct blob {
	char name[SNAPSHOT_DEVICE_NAME_MAX];
	void *data;
	size_t len;
};

struct blobs {
	struct blob b[MAX_BLOBS];
	unsigned n;
};

static int save_one(void *arg, const char *name, snapshot_save_fn save, void *opaque)
{
	struct blobs *bs = arg;
	cr_assert_lt(bs->n, MAX_BLOBS);
	struct blob *b = &bs->b[bs->n++];
	strcpy(b->name, name);
	return snapshot_device_save(name, save, opaque, &b->data, &b->len);
}

/* Every registered device, under the device lock like the snapshot writer. */
static struct blobs *save_all(struct tvm *t)
{
	struct blobs *bs = calloc(1, sizeof(*bs));
	cr_assert(bs);
	pthread_mutex_lock(&t->vm.dev_lock);
	int rc = snapshot_foreach_device(save_one, bs);
	pthread_mutex_unlock(&t->vm.dev_lock);
	cr_assert_eq(rc, 0, "save: %s", err_msg());
	return bs;
}

static int load_blob(struct tvm *t, const char *name, const void *data, size_t len)
{
	snapshot_load_fn load;
	void *opaque;
	cr_assert_eq(snapshot_find_device(name, &load, &opaque), 0, "%s not registered", name);
	pthread_mutex_lock(&t->vm.dev_lock);
	int rc = load(opaque, data, len);
	pthread_mutex_unlock(&t->vm.dev_lock);
	return rc;
}

/* In file order, as the snapshot reader does. */
static void load_all(struct tvm *t, const struct blobs *bs)
{
	for (unsigned i = 0; i < bs->n; i++)
		cr_assert_eq(load_blob(t, bs->b[i].name, bs->b[i].data, bs->b[i].len), 0, "load %s: %s",
			     bs->b[i].name, err_msg());
}

static void free_blobs(struct blobs *bs)
{
	for (unsigned i = 0; i < bs->n; i++)
		free(bs->b[i].data);
	free(bs);
}

static const struct blob *find_blob(const struct blobs *bs, const char *name)
{
	for (unsigned i = 0; i < bs->n; i++)
		if (!strcmp(bs->b[i].name, name))
			return &bs->b[i];
	cr_assert_fail("no blob named %s", name);
	return NULL;
}

/* Save everything, destroy, create a platform whose clock restarts
 * elsewhere (as in a new process), load.  Returns the new VM. */
static struct tvm *roundtrip(struct tvm *t, unsigned ncpus)
{
	struct blobs *bs = save_all(t);
	tvm_free(t);
	struct tvm *n = tvm_new(ncpus);
	n->now = 3000000000ull;   /* the fresh clock is 7 s behind: vm-clock makes up for it */
	load_all(n, bs);
	free_blobs(bs);
	return n;
}

static uint16_t pit_read_count0(struct tvm *t)
{
	outb(t, 0x43, 0x00);   /* counter latch, channel 0 */
	uint8_t lo = inb(t, 0x40);
	return (uint16_t)(lo | inb(t, 0x40) << 8);
}

Test(snapshot, names_are_registered_and_unique)
{
	struct tvm *t = tvm_new(2);
	static const char *const want[] = { "vm-clock", "platform", "pic", "ioapic", "pit", "rtc", "hpet", "acpi-pm",
					    "uart.com1", "i8042", "pci", "fw-cfg", "port80", "reset", "pci-hotplug", "cpu-hotplug", "mem-hotplug", "lapic.0",
					    "lapic.1" };
	struct blobs *bs = save_all(t);
	cr_assert_eq(bs->n, sizeof(want) / sizeof(want[0]));
	for (unsigned i = 0; i < bs->n; i++)
		cr_assert_str_eq(bs->b[i].name, want[i]);
	free_blobs(bs);
	tvm_free(t);
	/* Destroy unregistered them all: a second platform registers again. */
	struct blobs none = { 0 };
	cr_assert_eq(snapshot_foreach_device(save_one, &none), 0);
	cr_assert_eq(none.n, 0);
}

Test(snapshot, pit_count_and_irq0_continue)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0xfe, 0xff);
	outb(t, 0x43, 0x34);   /* channel 0, lo/hi, mode 2 */
	outb(t, 0x40, 1000 & 0xff);
	outb(t, 0x40, 1000 >> 8);
	tvm_advance(t, 300000);   /* 0.3 ms: ~358 of 1000 input clocks */
	uint16_t before = pit_read_count0(t);
	cr_assert(before > 0 && before < 1000, "count %u", before);
	t = roundtrip(t, 1);
	cr_assert_eq(pit_read_count0(t), before, "the count reads the same after restore");
	/* The next IRQ0 is still armed: 1000 clocks are ~838 us. */
	take_events(t, 0);
	tvm_advance(t, 200000);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), -1, "no interrupt before the period ends");
	tvm_advance(t, 400000);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x20, "IRQ0 at the end of the period");
	tvm_free(t);
}

Test(snapshot, pic_pending_and_masks)
{
	struct tvm *t = tvm_new(1);
	pic_init_linux(t, 0xf7 & ~0x04, 0xfd);
	irq_line(t, 3, true);      /* edge on IRQ3: pending */
	irq_line(t, 9, true);      /* slave IRQ1: pending */
	outb(t, 0x20, 0x0a);       /* OCW3: read IRR */
	uint8_t irr = inb(t, 0x20);
	uint8_t imr0 = inb(t, 0x21), imr1 = inb(t, 0xa1);
	cr_assert(irr & 0x08);
	t = roundtrip(t, 1);
	outb(t, 0x20, 0x0a);
	cr_assert_eq(inb(t, 0x20), irr);
	cr_assert_eq(inb(t, 0x21), imr0);
	cr_assert_eq(inb(t, 0xa1), imr1);
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x29, "IRQ9 (through IRQ2) outranks IRQ3");
	tvm_free(t);
}

Test(snapshot, ioapic_redirection_table)
{
	struct tvm *t = tvm_new(1);
	ioapic_w(t, 5, 0x0200000000018035ull);
	ioapic_w(t, 17, 0x010000000000a041ull);
	mmio_write(t, GMEM_IOAPIC_BASE, 4, 0x10 + 2 * 17);
	t = roundtrip(t, 1);
	cr_assert_eq(mmio_read(t, GMEM_IOAPIC_BASE, 4), 0x10 + 2 * 17, "IOREGSEL kept");
	cr_assert_eq(mmio_read(t, GMEM_IOAPIC_BASE + 0x10, 4), 0xa041);
	mmio_write(t, GMEM_IOAPIC_BASE, 4, 0x10 + 2 * 5 + 1);
	cr_assert_eq(mmio_read(t, GMEM_IOAPIC_BASE + 0x10, 4), 0x02000000);
	tvm_free(t);
}

Test(snapshot, lapic_registers_and_periodic_timer)
{
	struct tvm *t = tvm_new(2);
	apic_w(t, 0xf0, 0x1ff);
	apic_w(t, 0x80, 0x20);            /* TPR */
	apic_w(t, 0x3e0, 0x3);            /* divide by 16 */
	apic_w(t, 0x320, 0x20040);        /* periodic, vector 0x40 */
	apic_w(t, 0x380, 100000);         /* 100000 * 16 / 25 MHz = 64 ms */
	tvm_advance(t, 10000000);
	uint32_t cur = apic_r(t, 0x390);
	cr_assert(cur > 0 && cur < 100000);
	t = roundtrip(t, 2);
	cr_assert_eq(apic_r(t, 0x390), cur, "current count reads the same");
	cr_assert_eq(apic_r(t, 0x80), 0x20);
	cr_assert_eq(apic_r(t, 0x320), 0x20040);
	cr_assert_eq(apic_r(t, 0x3e0), 0x3);
	cr_assert_eq(apic_r(t, 0x380), 100000);
	cr_assert_not(lapic_test_irr(t->cpu[0].lapic, 0x40));
	tvm_advance(t, 54000000 + 1000);
	cr_assert(lapic_test_irr(t->cpu[0].lapic, 0x40), "the period ended on time after restore");
	/* And it stays periodic. */
	cr_assert_eq(tvm_intr_ack(&t->cpu[0]), 0x40);
	apic_w(t, 0xb0, 0);
	tvm_advance(t, 64000000);
	cr_assert(lapic_test_irr(t->cpu[0].lapic, 0x40));
	tvm_free(t);
}

Test(snapshot, rtc_cmos_and_periodic_interrupt)
{
	struct tvm *t = tvm_new(1);
	outb(t, 0x70, 0x40);
	outb(t, 0x71, 0x5a);       /* NVRAM byte */
	outb(t, 0x70, 0x0a);
	outb(t, 0x71, 0x26);       /* 1024 Hz periodic rate */
	outb(t, 0x70, 0x0b);
	outb(t, 0x71, 0x42);       /* PIE, 24-hour */
	outb(t, 0x70, 0x0c);
	inb(t, 0x71);              /* clear flags */
	t = roundtrip(t, 1);
	outb(t, 0x70, 0x40);
	cr_assert_eq(inb(t, 0x71), 0x5a);
	outb(t, 0x70, 0x0b);
	cr_assert_eq(inb(t, 0x71), 0x42);
	tvm_advance(t, 1000000);   /* ~1 ms: one periodic tick */
	outb(t, 0x70, 0x0c);
	cr_assert(inb(t, 0x71) & 0x40, "periodic flag raised after restore");
	tvm_free(t);
}

Test(snapshot, hpet_counter_and_comparator)
{
	struct tvm *t = tvm_new(1);
	mmio_write(t, GMEM_HPET_BASE + 0x100, 8, 0x4);        /* timer 0: interrupt enable, edge */
	mmio_write(t, GMEM_HPET_BASE + 0x108, 8, 100000000);  /* comparator */
	mmio_write(t, GMEM_HPET_BASE + 0x10, 8, 1);           /* enable */
	tvm_advance(t, 1000000);
	uint64_t cnt = mmio_read(t, GMEM_HPET_BASE + 0xf0, 8);
	cr_assert(cnt > 0);
	t = roundtrip(t, 1);
	cr_assert_eq(mmio_read(t, GMEM_HPET_BASE + 0xf0, 8), cnt, "main counter continues from the saved value");
	cr_assert_eq(mmio_read(t, GMEM_HPET_BASE + 0x108, 8), 100000000);
	cr_assert_eq(mmio_read(t, GMEM_HPET_BASE + 0x10, 8) & 1, 1);
	cr_assert_neq(timer_service_next_deadline(t->vm.platform->timers), UINT64_MAX, "comparator re-armed");
	tvm_free(t);
}

Test(snapshot, uart_i8042_pm_fwcfg_port80)
{
	struct tvm *t = tvm_new(1);
	outb(t, 0x3fb, 0x83);      /* DLAB */
	outb(t, 0x3f8, 0x0c);      /* 9600 baud */
	outb(t, 0x3f9, 0x00);
	outb(t, 0x3fb, 0x03);      /* 8N1 */
	outb(t, 0x3f9, 0x05);      /* IER */
	outb(t, 0x3ff, 0xa5);      /* scratch */
	outb(t, 0x3fc, 0x0b);      /* MCR */
	outb(t, 0x64, 0x60);
	outb(t, 0x60, 0x45);       /* command byte */
	outw(t, PC_PORT_ACPI_PM + 2, 0x0100);   /* PM1_EN: power button */
	outw(t, PC_PORT_FW_CFG, 0x0000);        /* signature */
	uint8_t q = inb(t, PC_PORT_FW_CFG + 1);
	cr_assert_eq(q, 'Q');
	outb(t, 0x80, 0x42);
	outl(t, 0xcf8, 0x80000004);             /* host bridge command register */
	outw(t, 0xcfc, 0x0006);
	uint16_t cmd = inw(t, 0xcfc);
	outb(t, 0xcf9, 0x02);                   /* RST_CNT without RST_CPU: kept */
	t = roundtrip(t, 1);
	cr_assert_eq(inl(t, 0xcf8), 0x80000004, "CONFIG_ADDRESS kept");
	cr_assert_eq(inw(t, 0xcfc), cmd);
	cr_assert_eq(inb(t, 0xcf9), 0x02);
	cr_assert_eq(inb(t, 0x3fb), 0x03);
	cr_assert_eq(inb(t, 0x3f9), 0x05);
	cr_assert_eq(inb(t, 0x3ff), 0xa5);
	cr_assert_eq(inb(t, 0x3fc), 0x0b);
	outb(t, 0x3fb, 0x83);
	cr_assert_eq(inb(t, 0x3f8), 0x0c, "divisor latch kept");
	outb(t, 0x3fb, 0x03);
	outb(t, 0x64, 0x20);
	cr_assert_eq(inb(t, 0x60), 0x45);
	cr_assert_eq(inw(t, PC_PORT_ACPI_PM + 2), 0x0100);
	cr_assert_eq(inb(t, PC_PORT_FW_CFG + 1), 'E', "fw_cfg read goes on at the saved offset");
	cr_assert_eq(inb(t, 0x80), 0x42);
	tvm_free(t);
}

/* Whole platform: several devices at once, every blob saved and loaded,
 * and each blob saved again after the load equals the one saved before. */
Test(snapshot, whole_platform_blobs_roundtrip)
{
	struct tvm *t = tvm_new(2);
	pic_init_linux(t, 0xfa, 0xff);
	outb(t, 0x43, 0x34);
	outb(t, 0x40, 0x00);
	outb(t, 0x40, 0x10);
	apic_w(t, 0xf0, 0x1ff);
	apic_w(t, 0x320, 0x20041);
	apic_w(t, 0x380, 5000);
	ioapic_w(t, 2, 0x30);
	mmio_write(t, GMEM_HPET_BASE + 0x10, 8, 1);
	outb(t, 0x70, 0x0b);
	outb(t, 0x71, 0x12);
	outb(t, 0x3f9, 0x02);
	tvm_advance(t, 2500000);
	struct blobs *before = save_all(t);
	tvm_free(t);
	t = tvm_new(2);
	load_all(t, before);
	struct blobs *after = save_all(t);
	cr_assert_eq(after->n, before->n);
	for (unsigned i = 0; i < before->n; i++) {
		cr_assert_str_eq(after->b[i].name, before->b[i].name);
		cr_assert_eq(after->b[i].len, before->b[i].len, "%s", before->b[i].name);
		cr_assert_eq(memcmp(after->b[i].data, before->b[i].data, before->b[i].len), 0, "%s differs",
			     before->b[i].name);
	}
	free_blobs(before);
	free_blobs(after);
	tvm_free(t);
}

/* Truncated, wrong version, wrong magic, random bytes and empty blobs are
 * refused with -EINVAL and a message, and leave the device unchanged. */
Test(snapshot, bad_blobs_are_refused)
{
	struct tvm *t = tvm_new(1);
	outb(t, 0x43, 0x34);
	outb(t, 0x40, 0x34);
	outb(t, 0x40, 0x12);
	struct blobs *good = save_all(t);
	srand(1234);
	for (unsigned i = 0; i < good->n; i++) {
		const struct blob *b = &good->b[i];
		uint8_t *bad = malloc(b->len + 8);
		cr_assert(bad);
		cr_assert_eq(load_blob(t, b->name, b->data, b->len - 1), -EINVAL, "%s truncated", b->name);
		cr_assert(strlen(err_msg()) > 0);
		memcpy(bad, b->data, b->len);
		memset(bad + b->len, 0, 8);
		cr_assert_eq(load_blob(t, b->name, bad, b->len + 8), -EINVAL, "%s too long", b->name);
		bad[4] ^= 0x7f;
		cr_assert_eq(load_blob(t, b->name, bad, b->len), -EINVAL, "%s wrong version", b->name);
		cr_assert(strstr(err_msg(), "version"), "%s: %s", b->name, err_msg());
		memcpy(bad, b->data, b->len);
		bad[0] ^= 1;
		cr_assert_eq(load_blob(t, b->name, bad, b->len), -EINVAL, "%s bad magic", b->name);
		/* A payload length in the header that is not this build's: the
		 * message names that field, not "N bytes, expected N". */
		memcpy(bad, b->data, b->len);
		bad[8] ^= 4;
		cr_assert_eq(load_blob(t, b->name, bad, b->len), -EINVAL, "%s payload length", b->name);
		cr_assert(strstr(err_msg(), "-byte payload, this build's is"), "%s: %s", b->name, err_msg());
		for (unsigned k = 0; k < 50; k++) {
			for (size_t j = 0; j < b->len; j++)
				bad[j] = (uint8_t)rand();
			cr_assert_eq(load_blob(t, b->name, bad, b->len), -EINVAL, "%s random bytes", b->name);
		}
		cr_assert_eq(load_blob(t, b->name, NULL, 0), -EINVAL);
		free(bad);
	}
	/* Nothing changed: every blob saves as before. */
	struct blobs *again = save_all(t);
	for (unsigned i = 0; i < good->n; i++) {
		if (!strcmp(good->b[i].name, "vm-clock"))
			continue;
		cr_assert_eq(memcmp(again->b[i].data, good->b[i].data, good->b[i].len), 0, "%s changed",
			     good->b[i].name);
	}
	free_blobs(again);
	free_blobs(good);
	tvm_free(t);
}

/* A header that is right around hostile fields: the fields that divide or
 * index are checked, so such a blob is refused instead of crashing later. */
Test(snapshot, hostile_fields_in_a_valid_header)
{
	struct tvm *t = tvm_new(1);
	struct blobs *good = save_all(t);
	const struct blob *pit = find_blob(good, "pit");
	uint8_t *bad = malloc(pit->len);
	cr_assert(bad);
	memcpy(bad, pit->data, pit->len);
	memset(bad + 16, 0, 4);    /* channel 0 count 0: would divide by zero */
	cr_assert_eq(load_blob(t, "pit", bad, pit->len), -EINVAL);
	free(bad);
	const struct blob *uart = find_blob(good, "uart.com1");
	bad = malloc(uart->len);
	cr_assert(bad);
	memcpy(bad, uart->data, uart->len);
	bad[16 + 9] = 200;         /* receive FIFO count beyond the FIFO */
	cr_assert_eq(load_blob(t, "uart.com1", bad, uart->len), -EINVAL);
	free(bad);
	const struct blob *rtc = find_blob(good, "rtc");
	bad = malloc(rtc->len);
	cr_assert(bad);
	memcpy(bad, rtc->data, rtc->len);
	memset(bad + 16 + 128 + 1, 0xff, 7);   /* time base near INT64_MAX seconds */
	bad[16 + 128 + 1 + 7] = 0x7f;
	cr_assert_eq(load_blob(t, "rtc", bad, rtc->len), -EINVAL);
	free(bad);
	free_blobs(good);
	/* The PIT still counts: load changed nothing. */
	outb(t, 0x43, 0x34);
	outb(t, 0x40, 0x00);
	outb(t, 0x40, 0x01);
	tvm_advance(t, 100000);
	cr_assert_lt(pit_read_count0(t), 0x100);
	tvm_free(t);
}
