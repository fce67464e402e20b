/* End to end on a hardware CPU: load a kernel with boot_load_mem(), reset
 * the vCPU to its power-up state (vcpu_reset_state) and run it under the
 * KVM engine from the reset vector, through the ROM stub, into the kernel,
 * which reports what it found on the debug console port 0xe9.  Skipped
 * where /dev/kvm is not usable. */
#include "boot_test.h"

#include "machine/accel.h"
#include "cpu/engines.h"
#include "util/error.h"
#include "machine/machine.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "kvm_linux.h"
#include "kvm_mb.h"

#define MiB (1ull << 20)

struct fixture {
	struct vm vm;
	struct vcpu vcpu;
	char out[256];
	size_t n_out;
};

static uint64_t con_read(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size) { return 0; }
static void con_write(void *opaque, struct vcpu *vcpu, uint64_t off, unsigned size, uint64_t val)
{
	struct fixture *f = opaque;
	if (f->n_out < sizeof(f->out) - 1)
		f->out[f->n_out++] = (char)val;
}
static const struct bus_ops con_ops = { con_read, con_write };

static struct fixture *fx;
static struct boot_config cfg;
static struct boot_info info;
static bool kvm_up;

static void teardown(void)
{
	if (!fx)
		return;
	if (kvm_up) {
		accel_kvm.vcpu_destroy(&fx->vcpu);
		accel_kvm.vm_destroy(&fx->vm);
	}
	bus_destroy(&fx->vm.pio);
	bus_destroy(&fx->vm.mmio);
	gmem_destroy(&fx->vm.mem);
	free(fx);
	fx = NULL;
	kvm_up = false;
}

TestSuite(boot_kvm, .fini = teardown);

/* Hang guard, not a timing assertion: a broken boot path can leave the
 * guest spinning without exits, so after a generous delay the vCPU is
 * kicked out of KVM_RUN and the test fails instead of hanging. */
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t guard_cond = PTHREAD_COND_INITIALIZER;
static bool guard_done, guard_fired;

static void *guard_thread(void *arg)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&guard_lock);
	while (!guard_done && pthread_cond_timedwait(&guard_cond, &guard_lock, &until) == 0)
		;
	if (!guard_done) {
		guard_fired = true;
		accel_kvm.vcpu_kick(arg);
	}
	pthread_mutex_unlock(&guard_lock);
	return NULL;
}

static void guard_stop(pthread_t t)
{
	pthread_mutex_lock(&guard_lock);
	guard_done = true;
	pthread_cond_signal(&guard_cond);
	pthread_mutex_unlock(&guard_lock);
	pthread_join(t, NULL);
}

/* The kernel is loaded before the engine starts: KVM maps the guest
 * memory regions, the ROM included, when the VM is created. */
static void boot_and_run(void)
{
	fx = calloc(1, sizeof(*fx));
	bt_mem_init(&fx->vm.mem, 64 * MiB);
	bus_init(&fx->vm.pio, "pio");
	bus_init(&fx->vm.mmio, "mmio");
	pthread_mutex_init(&fx->vm.dev_lock, NULL);
	bus_register(&fx->vm.pio, 0xe9, 1, &con_ops, fx, "debugcon");
	fx->vm.accel = &accel_kvm;
	fx->vcpu.vm = &fx->vm;
	pthread_mutex_init(&fx->vcpu.lock, NULL);
	pthread_cond_init(&fx->vcpu.wake, NULL);
	fx->vm.vcpus[0] = &fx->vcpu;
	fx->vm.n_vcpus = 1;
	cr_assert_eq(boot_load_mem(&fx->vm.mem, &cfg, NULL, &info), 0, "%s", err_msg());
	if (accel_kvm.vm_init(&fx->vm) < 0)
		cr_skip_test("no usable /dev/kvm on this host: %s", err_msg());
	if (accel_kvm.vcpu_init(&fx->vcpu) < 0) {
		accel_kvm.vm_destroy(&fx->vm);
		cr_skip_test("no usable /dev/kvm on this host: %s", err_msg());
	}
	kvm_up = true;
	cr_assert_eq(vcpu_reset_state(&fx->vcpu), 0, "%s", err_msg());
	struct vcpu_exit exit = { 0 };
	pthread_t guard;
	guard_done = guard_fired = false;
	cr_assert_eq(pthread_create(&guard, NULL, guard_thread, &fx->vcpu), 0);
	int rc = 0;
	for (int i = 0; i < 8 && !guard_fired; i++) {
		memset(&exit, 0, sizeof(exit));
		if ((rc = accel_kvm.vcpu_run(&fx->vcpu, &exit)) < 0 || exit.reason != VCPU_EXIT_KICK)
			break;
	}
	guard_stop(guard);
	cr_assert_eq(rc, 0, "%s", err_msg());
	cr_assert_not(guard_fired, "the guest never halted (output so far \"%s\")", fx->out);
	cr_assert_eq(exit.reason, VCPU_EXIT_HLT, "vCPU stopped: %s %s (output so far \"%s\")",
		     vcpu_exit_reason_name(exit.reason), exit.error.message, fx->out);
}

Test(boot_kvm, multiboot_kernel_runs_from_the_reset_vector)
{
	const char *mod = bt_write_file(2, "MOD1rest", 8);
	bt_config(&cfg, bt_write_file(0, kvm_mb, kvm_mb_len), mod, "hello world");
	boot_and_run();
	char want[300];
	snprintf(want, sizeof(want), "MB:%s hello world:MOD1", cfg.kernel);
	cr_assert_str_eq(fx->out, want);
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* bzImage around 64-bit code: the payload is a gzip'd ELF64 vmlinux with
 * the code at 16 MiB, and the protected-mode part has the same code at
 * its 64-bit entry (+0x200) for in-guest decompression mode. */
static const char *make_kernel(void)
{
	uint8_t elf[0x200 + sizeof(kvm_linux)];
	memset(elf, 0, sizeof(elf));
	memcpy(elf, "\x7f" "ELF\x02\x01\x01", 7);
	put16(elf + 16, 2);
	put16(elf + 18, 62);
	put32(elf + 20, 1);
	put64(elf + 24, 0x1000000);
	put64(elf + 32, 64);
	put16(elf + 52, 64);
	put16(elf + 54, 56);
	put16(elf + 56, 1);
	put32(elf + 64, 1);
	put64(elf + 64 + 8, 0x200);
	put64(elf + 64 + 16, 0xffffffff81000000ull);
	put64(elf + 64 + 24, 0x1000000);
	put64(elf + 64 + 32, sizeof(kvm_linux));
	put64(elf + 64 + 40, 0x10000);
	memcpy(elf + 0x200, kvm_linux, sizeof(kvm_linux));

	uint8_t gz[4096];
	z_stream zs = { 0 };
	cr_assert_eq(deflateInit2(&zs, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = elf, zs.avail_in = sizeof(elf), zs.next_out = gz, zs.avail_out = sizeof(gz);
	cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	size_t gz_len = zs.total_out;
	deflateEnd(&zs);

	size_t setup = 5 * 512, pm = 0x200 + sizeof(kvm_linux) + 0x100 + gz_len;
	uint8_t *k = calloc(1, setup + pm);
	k[0x1f1] = 4;
	put16(k + 0x1fe, 0xaa55);
	k[0x200] = 0xeb;
	k[0x201] = 0x26c - 0x202;
	memcpy(k + 0x202, "HdrS", 4);
	put16(k + 0x206, 0x020f);
	k[0x211] = 0x01;                                  /* LOADED_HIGH */
	put32(k + 0x214, 0x100000);
	put32(k + 0x22c, 0x7fffffff);
	put32(k + 0x230, 0x200000);
	k[0x234] = 1;
	put16(k + 0x236, 0x3);                            /* XLF_KERNEL_64 | CAN_BE_LOADED_ABOVE_4G */
	put32(k + 0x238, 2047);
	put32(k + 0x248, 0x200 + sizeof(kvm_linux) + 0x100);
	put32(k + 0x24c, (uint32_t)gz_len);
	put64(k + 0x258, 0x1000000);
	put32(k + 0x260, 0x100000);
	memcpy(k + setup + 0x200, kvm_linux, sizeof(kvm_linux));
	memcpy(k + setup + 0x200 + sizeof(kvm_linux) + 0x100, gz, gz_len);
	const char *path = bt_write_file(0, k, setup + pm);
	free(k);
	return path;
}

Test(boot_kvm, linux_kernel_decompressed_on_the_host_runs_from_the_reset_vector)
{
	bt_config(&cfg, make_kernel(), NULL, "console=ttyS0 quiet");
	boot_and_run();
	cr_assert(info.decompressed);
	cr_assert_str_eq(fx->out, "L:console=ttyS0 quiet:A6");
}

Test(boot_kvm, linux_kernel_entered_at_its_64_bit_entry_without_decompression)
{
	bt_config(&cfg, make_kernel(), NULL, "nodecompress");
	cfg.decompress_kernel = false;
	boot_and_run();
	cr_assert_not(info.decompressed);
	cr_assert_eq(info.stub.entry, 0x1000200);
	cr_assert_str_eq(fx->out, "L:nodecompress:A6");
}
