/* Snapshots: round trips through a fake engine and registered devices, and
 * refusal of truncated, corrupted, incompatible and mismatched files. */
#include "vmm/snapshot.h"
#include "util/error.h"
#include "machine/machine.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- a fake engine: CPU state in plain memory, a few MSRs modelled ---- */

struct fake_cpu {
	struct x86_regs regs;
	struct x86_sregs sregs;
	struct x86_fpu fpu;
	uint64_t lstar, star, tsc;
};

static uint64_t *fake_msr(struct fake_cpu *c, uint32_t index)
{
	switch (index) {
	case MSR_LSTAR: return &c->lstar;
	case MSR_STAR: return &c->star;
	case MSR_IA32_TSC: return &c->tsc;
	default: return NULL;
	}
}

static int f_get_regs(struct vcpu *v, struct x86_regs *r) { *r = ((struct fake_cpu *)v->accel)->regs; return 0; }
static int f_set_regs(struct vcpu *v, const struct x86_regs *r) { ((struct fake_cpu *)v->accel)->regs = *r; return 0; }
static int f_get_sregs(struct vcpu *v, struct x86_sregs *r) { *r = ((struct fake_cpu *)v->accel)->sregs; return 0; }
static int f_set_sregs(struct vcpu *v, const struct x86_sregs *r) { ((struct fake_cpu *)v->accel)->sregs = *r; return 0; }
static int f_get_fpu(struct vcpu *v, struct x86_fpu *f) { *f = ((struct fake_cpu *)v->accel)->fpu; return 0; }
static int f_set_fpu(struct vcpu *v, const struct x86_fpu *f) { ((struct fake_cpu *)v->accel)->fpu = *f; return 0; }

/* A VM clock as src/hw/timer.c keeps it (host time plus an offset that a
 * restore sets) and, when clock_tsc is on, a TSC that counts it at 2 GHz
 * plus a per-CPU offset, as the emu engine's does (docs/architecture.md
 * "Time"): writing IA32_TSC sets the offset against the clock as it
 * reads at that moment. */
static struct {
	uint64_t host_ns, offset_ns;
	bool clock_tsc;
} fclock;

static uint64_t fclock_now(void) { return fclock.host_ns + fclock.offset_ns; }

static int64_t fclock_save(void *opaque, void *buf, size_t cap)
{
	(void)opaque;
	if (cap < 8)
		return -ENOSPC;
	uint64_t now = fclock_now();
	memcpy(buf, &now, 8);
	return 8;
}

static int fclock_load(void *opaque, const void *buf, size_t len)
{
	(void)opaque;
	uint64_t saved;
	if (len != 8)
		return err_set(-EINVAL, "vm-clock: bad state");
	memcpy(&saved, buf, 8);
	fclock.offset_ns = saved - fclock.host_ns;
	return 0;
}

static int f_get_msrs(struct vcpu *v, struct x86_msr_entry *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fclock.clock_tsc && m[i].index == MSR_IA32_TSC) {
			m[i].value = fclock_now() * 2 + ((struct fake_cpu *)v->accel)->tsc;
			continue;
		}
		uint64_t *p = fake_msr(v->accel, m[i].index);
		if (!p)
			return (int)i;
		m[i].value = *p;
	}
	return (int)n;
}

static int f_set_msrs(struct vcpu *v, const struct x86_msr_entry *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fclock.clock_tsc && m[i].index == MSR_IA32_TSC) {
			((struct fake_cpu *)v->accel)->tsc = m[i].value - fclock_now() * 2;
			continue;
		}
		uint64_t *p = fake_msr(v->accel, m[i].index);
		if (!p)
			return (int)i;
		*p = m[i].value;
	}
	return (int)n;
}

static const struct accel_ops fake_accel = {
	.name = "emu", .get_regs = f_get_regs, .set_regs = f_set_regs, .get_sregs = f_get_sregs,
	.set_sregs = f_set_sregs, .get_fpu = f_get_fpu, .set_fpu = f_set_fpu, .get_msrs = f_get_msrs,
	.set_msrs = f_set_msrs,
};

/* ---- a device with state ---- */

struct counter {
	uint64_t value;
	int fail_save, fail_load;
};

static int64_t counter_save(void *opaque, void *buf, size_t cap)
{
	struct counter *c = opaque;
	if (c->fail_save)
		return err_set(-EIO, "counter: disk on fire");
	if (cap < 8)
		return -ENOSPC;
	memcpy(buf, &c->value, 8);
	return 8;
}

static int counter_load(void *opaque, const void *buf, size_t len)
{
	struct counter *c = opaque;
	if (len != 8 || c->fail_load)
		return err_set(-EINVAL, "counter: bad state");
	memcpy(&c->value, buf, 8);
	return 0;
}

/* ---- fixture ---- */

struct test_vm {
	struct vm vm;
	struct fake_cpu cpu[4];
	struct vcpu vcpu[4];
	struct vm_config cfg;
};

static struct test_vm tv;
static struct counter ctr;
static char dir[64], path[128];

static void make_vm(struct test_vm *t, unsigned cpus, uint64_t ram)
{
	memset(t, 0, sizeof(*t));
	t->vm.accel = &fake_accel;
	t->vm.cfg = &t->cfg;
	pthread_mutex_init(&t->vm.dev_lock, NULL);
	cr_assert_eq(gmem_init(&t->vm.mem, ram), 0);
	t->vm.n_vcpus = cpus;
	for (unsigned i = 0; i < cpus; i++) {
		t->vcpu[i].vm = &t->vm;
		t->vcpu[i].id = i;
		t->vcpu[i].accel = &t->cpu[i];
		pthread_mutex_init(&t->vcpu[i].lock, NULL);
		t->vm.vcpus[i] = &t->vcpu[i];
	}
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/vessel-snap-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vm.snap", dir);
	snapshot_unregister_all();
	make_vm(&tv, 2, 32ULL << 20);
	memset(&ctr, 0, sizeof(ctr));
	memset(&fclock, 0, sizeof(fclock));
	cr_assert_eq(snapshot_register_device("ctr0", counter_save, counter_load, &ctr), 0);
}

static void teardown(void)
{
	gmem_destroy(&tv.vm.mem);
	snapshot_unregister_all();
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[256];
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

TestSuite(snapshot, .init = setup, .fini = teardown);

static void fill_state(struct test_vm *t)
{
	for (unsigned i = 0; i < t->vm.n_vcpus; i++) {
		struct fake_cpu *c = &t->cpu[i];
		for (int g = 0; g < 16; g++)
			c->regs.gpr[g] = 0x1000u * (i + 1) + (unsigned)g;
		c->regs.rip = 0xffffffff81000000ull + i;
		c->regs.rflags = 0x246;
		c->sregs.cr0 = 0x80050033;
		c->sregs.cr3 = 0x1000 * (i + 7);
		c->sregs.efer = 0xd01;
		c->sregs.seg[SEG_CS].selector = 0x10;
		c->sregs.seg[SEG_CS].l = 1;
		c->fpu.fxsave[0] = 0x7f;
		c->fpu.fxsave[511] = (uint8_t)(0xa0 + i);
		c->fpu.xcr0 = 7;
		c->lstar = 0xffffffff81800000ull;
		c->star = 0x0023001000000000ull;
		c->tsc = 123456789 + i;
	}
	t->vcpu[1].run_state = VCPU_HALTED;
	t->vcpu[1].sipi_vector = 0x9a;
	uint8_t *ram = t->vm.mem.regions[0].host;
	for (uint64_t off = 0; off < (1u << 20); off += 4096)
		memset(ram + off, (int)(off >> 12) | 1, 64);
	/* Near the end of RAM, whatever its size. */
	memcpy(ram + t->vm.mem.regions[0].size - 4096, "the end of the text", 20);
}

static void scramble(struct test_vm *t)
{
	memset(t->cpu, 0xee, sizeof(t->cpu));
	for (unsigned i = 0; i < t->vm.n_vcpus; i++)
		t->vcpu[i].run_state = VCPU_RUNNABLE;
	memset(t->vm.mem.regions[0].host, 0x55, t->vm.mem.regions[0].size);
}

static void assert_state(struct test_vm *t)
{
	struct test_vm want;
	make_vm(&want, t->vm.n_vcpus, 32ULL << 20);
	fill_state(&want);
	for (unsigned i = 0; i < t->vm.n_vcpus; i++) {
		cr_assert_arr_eq(&t->cpu[i].regs, &want.cpu[i].regs, sizeof(struct x86_regs));
		cr_assert_eq(t->cpu[i].sregs.cr3, want.cpu[i].sregs.cr3);
		cr_assert_eq(t->cpu[i].sregs.efer, 0xd01);
		cr_assert_eq(t->cpu[i].sregs.seg[SEG_CS].l, 1);
		cr_assert_arr_eq(t->cpu[i].fpu.fxsave, want.cpu[i].fpu.fxsave, 512);
		cr_assert_eq(t->cpu[i].lstar, want.cpu[i].lstar);
		cr_assert_eq(t->cpu[i].tsc, want.cpu[i].tsc);
	}
	cr_assert_eq(t->vcpu[1].run_state, VCPU_HALTED);
	cr_assert_eq(t->vcpu[1].sipi_vector, 0x9a);
	cr_assert_eq(memcmp(t->vm.mem.regions[0].host, want.vm.mem.regions[0].host, t->vm.mem.regions[0].size), 0,
		     "RAM differs");
	gmem_destroy(&want.vm.mem);
}

static void save_ok(void)
{
	err_clear();
	cr_assert_eq(snapshot_save(&tv.vm, path, NULL), 0, "%s", err_msg());
}

Test(snapshot, round_trip_mapped_and_read)
{
	fill_state(&tv);
	ctr.value = 41;
	struct snapshot_stats st;
	cr_assert_eq(snapshot_save(&tv.vm, path, &st), 0, "%s", err_msg());
	cr_assert_eq(st.n_devices, 1);
	cr_assert_eq(st.ram_bytes, 32ULL << 20);
	for (int map = 0; map <= 1; map++) {
		scramble(&tv);
		ctr.value = 0;
		struct snapshot_restore_opts o = { .map_memory = map, .verify_memory = true };
		cr_assert_eq(snapshot_restore(&tv.vm, path, &o), 0, "%s", err_msg());
		assert_state(&tv);
		cr_assert_eq(ctr.value, 41);
	}
	/* The mapping is private: guest writes never reach the file. */
	memset(tv.vm.mem.regions[0].host, 0x77, 4096);
	scramble(&tv);
	cr_assert_eq(snapshot_restore(&tv.vm, path, NULL), 0, "%s", err_msg());
	assert_state(&tv);
}

Test(snapshot, zero_pages_are_holes_and_memory_is_page_aligned)
{
	fill_state(&tv);
	struct snapshot_stats st;
	cr_assert_eq(snapshot_save(&tv.vm, path, &st), 0);
	/* 256 touched pages + one with text of 8192 pages. */
	cr_assert_eq(st.zero_pages, 8192 - 257);
	cr_assert_geq(st.file_bytes, 32ULL << 20);
	cr_assert_lt(st.disk_bytes, 8ULL << 20, "zero pages took disk space: %llu", (unsigned long long)st.disk_bytes);
	struct snap_reader r;
	cr_assert_eq(snap_reader_open(&r, path), 0);
	const struct snap_section_header *m = snap_reader_find(&r, SNAP_SEC_MEMORY, NULL);
	cr_assert_not_null(m);
	cr_assert_eq(m->data_offset % 4096, 0);
	cr_assert_eq(m->arg, 0);
	cr_assert_eq(r.sections[r.n - 1].type, SNAP_SEC_END);
	snap_reader_close(&r);
}

static unsigned count_files(void)
{
	unsigned n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

Test(snapshot, failed_save_leaves_no_file)
{
	fill_state(&tv);
	ctr.fail_save = 1;
	cr_assert_lt(snapshot_save(&tv.vm, path, NULL), 0);
	cr_assert(strstr(err_msg(), "snapshot: device ctr0: counter: disk on fire"), "%s", err_msg());
	cr_assert_eq(count_files(), 0, "a partial or temporary file was left");
	/* An earlier good snapshot under the name survives a failed save. */
	ctr.fail_save = 0;
	save_ok();
	struct stat a, b;
	stat(path, &a);
	ctr.fail_save = 1;
	cr_assert_lt(snapshot_save(&tv.vm, path, NULL), 0);
	cr_assert_eq(stat(path, &b), 0);
	cr_assert_eq(a.st_ino, b.st_ino);
	cr_assert_eq(count_files(), 1);
}

static void expect_refused(const char *fragment)
{
	scramble(&tv);
	cr_assert_lt(snapshot_restore(&tv.vm, path, NULL), 0, "restore accepted a bad file");
	cr_assert(strstr(err_msg(), fragment), "message '%s' lacks '%s'", err_msg(), fragment);
}

Test(snapshot, truncated_files_are_refused)
{
	fill_state(&tv);
	save_ok();
	struct stat st;
	stat(path, &st);
	off_t cuts[] = { st.st_size - 1, st.st_size - 200, st.st_size / 2, 4096, 100, 10, 0 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		cr_assert_eq(truncate(path, cuts[i]), 0);
		expect_refused("truncated");
	}
}

static void patch(off_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_RDWR);
	cr_assert_eq(pwrite(fd, bytes, n, off), (ssize_t)n);
	close(fd);
}

Test(snapshot, corrupted_sections_are_refused)
{
	fill_state(&tv);
	save_ok();
	struct snap_reader r;
	cr_assert_eq(snap_reader_open(&r, path), 0);
	struct snap_section_header cpu = *snap_reader_find(&r, SNAP_SEC_CPU, "cpu1");
	struct snap_section_header mem = *snap_reader_find(&r, SNAP_SEC_MEMORY, NULL);
	struct snap_section_header dev = *snap_reader_find(&r, SNAP_SEC_DEVICE, "ctr0");
	snap_reader_close(&r);
	uint8_t x = 0xff;
	patch((off_t)cpu.data_offset + 20, &x, 1);
	expect_refused("cpu section 'cpu1' is corrupted (CRC mismatch)");
	save_ok();
	patch((off_t)dev.data_offset, &x, 1);
	expect_refused("device section 'ctr0' is corrupted (CRC mismatch)");
	save_ok();
	patch((off_t)mem.data_offset + (5u << 20) + 17, &x, 1);
	expect_refused("memory section at 0 is corrupted (CRC mismatch)");
	save_ok();
	patch((off_t)dev.data_offset - (off_t)sizeof(struct snap_section_header) + 8, &x, 1);
	expect_refused("corrupted section header at offset");
	save_ok();
	patch(30, &x, 1);
	expect_refused("corrupted file header");
}

/* Rewrites n bytes at off in the payload of a (non-memory) section and
 * fixes its CRCs, so that the check behind the CRCs sees them. */
static void patch_section(uint32_t type, const char *name, off_t off, const void *bytes, size_t n)
{
	struct snap_reader r;
	cr_assert_eq(snap_reader_open(&r, path), 0, "%s", err_msg());
	struct snap_section_header h = *snap_reader_find(&r, type, name);
	snap_reader_close(&r);
	uint8_t *data = malloc(h.length);
	int fd = open(path, O_RDWR);
	cr_assert_eq(pread(fd, data, h.length, (off_t)h.data_offset), (ssize_t)h.length);
	memcpy(data + off, bytes, n);
	h.data_crc = (uint32_t)crc32(0, data, (uInt)h.length);
	h.crc = 0;
	h.crc = (uint32_t)crc32(0, (const Bytef *)&h, sizeof(h));
	cr_assert_eq(pwrite(fd, data, h.length, (off_t)h.data_offset), (ssize_t)h.length);
	cr_assert_eq(pwrite(fd, &h, sizeof(h), (off_t)h.data_offset - (off_t)sizeof(h)), (ssize_t)sizeof(h));
	close(fd);
	free(data);
}

/* Each refusal of a CPU section says what differs, never "sizes
 * 144/280/528, expected 144/280/528" for a count or a state that is wrong. */
Test(snapshot, cpu_section_refusals_name_what_differs)
{
	fill_state(&tv);
	save_ok();
	uint32_t v = 1000;
	patch_section(SNAP_SEC_CPU, "cpu1", 12, &v, 4);    /* n_msrs */
	expect_refused("cpu1 state holds 1000 MSRs, at most");
	save_ok();
	struct snap_reader r;
	cr_assert_eq(snap_reader_open(&r, path), 0);
	uint32_t n_msrs;
	cr_assert_eq(pread(r.fd, &n_msrs, 4, (off_t)snap_reader_find(&r, SNAP_SEC_CPU, "cpu1")->data_offset + 12), 4);
	snap_reader_close(&r);
	cr_assert_gt(n_msrs, 0);
	v = n_msrs - 1;
	patch_section(SNAP_SEC_CPU, "cpu1", 12, &v, 4);
	expect_refused("for its");
	cr_assert(strstr(err_msg(), "cpu1 state is") && !strstr(err_msg(), "register block sizes"), "%s", err_msg());
	save_ok();
	v = 77;
	patch_section(SNAP_SEC_CPU, "cpu1", 16, &v, 4);    /* run_state */
	expect_refused("cpu1 state has run state 77");
	save_ok();
	v = 100;
	patch_section(SNAP_SEC_CPU, "cpu1", 0, &v, 4);     /* regs_size */
	expect_refused("register block sizes 100/");
}

Test(snapshot, refusal_leaves_the_vm_untouched)
{
	fill_state(&tv);
	save_ok();
	uint8_t x = 0xff;
	struct snap_reader r;
	cr_assert_eq(snap_reader_open(&r, path), 0);
	off_t off = (off_t)snap_reader_find(&r, SNAP_SEC_DEVICE, "ctr0")->data_offset;
	snap_reader_close(&r);
	patch(off, &x, 1);
	scramble(&tv);
	uint8_t before = *(uint8_t *)tv.vm.mem.regions[0].host;
	cr_assert_lt(snapshot_restore(&tv.vm, path, NULL), 0);
	cr_assert_eq(*(uint8_t *)tv.vm.mem.regions[0].host, before, "RAM changed by a refused restore");
	cr_assert_eq(tv.cpu[0].regs.rip, 0xeeeeeeeeeeeeeeeeull);
}

Test(snapshot, other_format_version_and_foreign_files)
{
	fill_state(&tv);
	save_ok();
	struct snap_file_header h;
	int fd = open(path, O_RDWR);
	cr_assert_eq(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	h.version = 2;
	h.crc = 0;
	h.crc = (uint32_t)crc32(0, (const Bytef *)&h, sizeof(h));
	cr_assert_eq(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	expect_refused("format version 2, but this vessel reads version 1");
	patch(0, "NOTSNAP!", 8);
	expect_refused("not a vessel snapshot (bad magic)");
	unlink(path);
	expect_refused("No such file or directory");
}

Test(snapshot, shape_and_device_mismatches_are_refused)
{
	fill_state(&tv);
	save_ok();
	struct test_vm one;
	make_vm(&one, 1, 32ULL << 20);
	cr_assert_lt(snapshot_restore(&one.vm, path, NULL), 0);
	cr_assert(strstr(err_msg(), "made for 2 vCPUs, this VM has 1"), "%s", err_msg());
	gmem_destroy(&one.vm.mem);
	struct test_vm big;
	make_vm(&big, 2, 64ULL << 20);
	cr_assert_lt(snapshot_restore(&big.vm, path, NULL), 0);
	cr_assert(strstr(err_msg(), "made for 32 MiB of RAM, this VM has 64 MiB"), "%s", err_msg());
	gmem_destroy(&big.vm.mem);
	/* A device the VM lacks, then one the snapshot lacks. */
	snapshot_unregister_device("ctr0");
	expect_refused("the snapshot holds device ctr0, which this VM does not have");
	struct counter other = { 0 };
	cr_assert_eq(snapshot_register_device("ctr0", counter_save, counter_load, &ctr), 0);
	cr_assert_eq(snapshot_register_device("ctr1", counter_save, counter_load, &other), 0);
	expect_refused("this VM has device ctr1, which the snapshot does not hold");
	snapshot_unregister_device("ctr1");
	ctr.fail_load = 1;
	expect_refused("device ctr0: counter: bad state");
}

Test(snapshot, config_gives_the_vm_shape_and_devices)
{
	fill_state(&tv);
	tv.cfg.numa_nodes = 2;
	tv.cfg.n_plugin_dirs = 2;
	tv.cfg.plugin_dirs[0] = (char *)"/opt/plugins";
	tv.cfg.plugin_dirs[1] = (char *)"/srv/plugins";
	json_t *devs = json_pack("[{s:s, s:s, s:{s:i}, s:s}]", "id", "mb0", "type", "mailbox", "params", "port", 1536,
				 "plugin", "device-example");
	cr_assert_eq(snapshot_save_with_devices(&tv.vm, path, devs, NULL), 0, "%s", err_msg());
	json_decref(devs);
	struct vm_config cfg;
	vm_config_defaults(&cfg);
	cfg.n_plugin_dirs = 1;
	cfg.plugin_dirs[0] = strdup("/srv/plugins");
	cr_assert_eq(snapshot_load_config(path, &cfg), 0, "%s", err_msg());
	/* A snapshot never names code: the VM's plug-in directories are not
	 * in it, and the restoring command's stay as given. */
	cr_assert_eq(cfg.n_plugin_dirs, 1);
	cr_assert_str_eq(cfg.plugin_dirs[0], "/srv/plugins");
	cr_assert_str_eq(cfg.engine, "emu");
	cr_assert_eq(cfg.cpus, 2);
	cr_assert_eq(cfg.mem_bytes, 32ULL << 20);
	cr_assert_eq(cfg.numa_nodes, 2);
	cr_assert_eq(cfg.n_devices, 1);
	cr_assert_str_eq(cfg.devices[0].id, "mb0");
	cr_assert_str_eq(cfg.devices[0].type, "mailbox");
	cr_assert_str_eq(cfg.devices[0].params, "{\"port\":1536}");
	vm_config_free(&cfg);
}

Test(snapshot, device_registry_rules)
{
	cr_assert_eq(snapshot_register_device("ctr0", counter_save, counter_load, &ctr), -EEXIST);
	cr_assert_eq(snapshot_register_device("", counter_save, counter_load, &ctr), -EINVAL);
	cr_assert_eq(snapshot_register_device("x", NULL, counter_load, &ctr), -EINVAL);
	err_set(-EIO, "the error being cleaned up after");
	cr_assert_eq(snapshot_unregister_device("nope"), -ENOENT);
	cr_assert_str_eq(err_msg(), "the error being cleaned up after");   /* cleanup keeps it */
	cr_assert_eq(snapshot_unregister_device("ctr0"), 0);
	snapshot_load_fn l;
	void *o;
	cr_assert_eq(snapshot_find_device("ctr0", &l, &o), -ENOENT);
}

Test(snapshot, ram_that_is_not_whole_pages_round_trips)
{
	struct test_vm odd;
	uint64_t size = (16ULL << 20) + 100;
	make_vm(&odd, 1, size);
	uint8_t *ram = odd.vm.mem.regions[0].host;
	memset(ram + size - 100, 0xab, 100);
	ram[12345] = 7;
	cr_assert_eq(snapshot_save(&odd.vm, path, NULL), 0, "%s", err_msg());
	for (int map = 0; map <= 1; map++) {
		memset(ram + size - 100, 0, 100);
		ram[12345] = 0;
		struct snapshot_restore_opts o = { .map_memory = map, .verify_memory = true };
		cr_assert_eq(snapshot_restore(&odd.vm, path, &o), 0, "%s", err_msg());
		ram = odd.vm.mem.regions[0].host;
		cr_assert_eq(ram[12345], 7);
		for (int i = 0; i < 100; i++)
			cr_assert_eq(ram[size - 100 + (uint64_t)i], 0xab);
	}
	gmem_destroy(&odd.vm.mem);
}

/* Random damage anywhere in a small snapshot: every restore either
 * refuses with a message or (damage in padding the format does not cover)
 * restores the saved state exactly; never anything in between. */
Test(snapshot, random_damage_is_refused_or_harmless)
{
	struct test_vm small;
	make_vm(&small, 1, 16ULL << 20);
	fill_state(&small);
	cr_assert_eq(snapshot_save(&small.vm, path, NULL), 0, "%s", err_msg());
	struct stat st;
	stat(path, &st);
	int fd = open(path, O_RDONLY);
	uint8_t *orig = malloc((size_t)st.st_size);
	cr_assert_eq(pread(fd, orig, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	/* Damage the interesting part: everything but the bulk of RAM. */
	struct snap_reader r;
	cr_assert_eq(snap_reader_open(&r, path), 0);
	uint64_t mem_start = snap_reader_find(&r, SNAP_SEC_MEMORY, NULL)->data_offset;
	snap_reader_close(&r);
	uint64_t x = 12345;
	unsigned refused = 0, restored = 0;
	fd = open(path, O_WRONLY);
	for (int iter = 0; iter < 120; iter++) {
		uint64_t offs[3];
		int n = 1 + iter % 3;
		for (int k = 0; k < n; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			offs[k] = x % (iter % 2 ? mem_start : (uint64_t)st.st_size);
			uint8_t cur = orig[offs[k]] ^ ((uint8_t)(x >> 32) | 1);
			cr_assert_eq(pwrite(fd, &cur, 1, (off_t)offs[k]), 1);
		}
		memset(small.cpu, 0, sizeof(small.cpu));
		err_clear();
		if (snapshot_restore(&small.vm, path, NULL) < 0) {
			cr_assert(strncmp(err_msg(), "snapshot ", 9) == 0, "unexpected message: %s", err_msg());
			refused++;
		} else {
			cr_assert_eq(small.cpu[0].regs.rip, 0xffffffff81000000ull, "damaged state was restored");
			restored++;
		}
		for (int k = 0; k < n; k++)
			cr_assert_eq(pwrite(fd, &orig[offs[k]], 1, (off_t)offs[k]), 1);
	}
	close(fd);
	/* Most bytes outside RAM are covered by a CRC; padding is not. */
	cr_assert_gt(refused, 0);
	free(orig);
	gmem_destroy(&small.vm.mem);
}

/* A guest saved 50 s into its life and restored in a process whose VM
 * clock reads 3 s: its TSC must go on from the saved value, in step with
 * the VM clock (the HPET, PM timer and LAPIC timer count that), not jump
 * ahead by the clock's saved value because the clock was restored after
 * the TSC.  The clock's section is not the first here, so the reader must
 * pick it out by name. */
Test(snapshot, tsc_continues_with_the_vm_clock)
{
	cr_assert_eq(snapshot_register_device(SNAPSHOT_CLOCK_DEVICE, fclock_save, fclock_load, NULL), 0);
	fill_state(&tv);
	fclock.clock_tsc = true;
	fclock.host_ns = 50000000000ull;
	tv.cpu[0].tsc = 0;          /* TSC = 2 x clock */
	tv.cpu[1].tsc = 1000;       /* a guest that wrote IA32_TSC */
	save_ok();
	fclock.host_ns = 3000000000ull;
	fclock.offset_ns = 0;
	tv.cpu[0].tsc = tv.cpu[1].tsc = 777;
	cr_assert_eq(snapshot_restore(&tv.vm, path, NULL), 0, "%s", err_msg());
	cr_assert_eq(fclock_now(), 50000000000ull);
	struct x86_msr_entry e = { .index = MSR_IA32_TSC };
	cr_assert_eq(f_get_msrs(&tv.vcpu[0], &e, 1), 1);
	cr_assert_eq(e.value, 100000000000ull, "TSC %llu after the restore, saved 100000000000",
		     (unsigned long long)e.value);
	/* One second later both have moved by one second. */
	fclock.host_ns += 1000000000ull;
	cr_assert_eq(f_get_msrs(&tv.vcpu[1], &e, 1), 1);
	cr_assert_eq(e.value, 102000001000ull);
	cr_assert_eq(fclock_now(), 51000000000ull);
}
