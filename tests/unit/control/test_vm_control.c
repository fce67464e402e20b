/* vm_control: the control plane around a VM object whose vCPU threads
 * loop as src/vm/vm.c's do (gate checkpoint, run until kicked), driven
 * through the real API socket. */
#include "snapshot/snapshot.h"
#include "util/error.h"
#include "vm/api.h"
#include "vm/lifecycle.h"
#include "vm/machine.h"
#include "vm/manifest.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- engine stand-in ---- */

static int g_regs(struct vcpu *v, struct x86_regs *r) { memset(r, 0, sizeof(*r)); r->rip = 0x1000 + v->id; return 0; }
static int s_regs(struct vcpu *v, const struct x86_regs *r) { return 0; }
static int g_sregs(struct vcpu *v, struct x86_sregs *s) { memset(s, 0, sizeof(*s)); return 0; }
static int s_sregs(struct vcpu *v, const struct x86_sregs *s) { return 0; }
static int g_fpu(struct vcpu *v, struct x86_fpu *f) { memset(f, 0, sizeof(*f)); return 0; }
static int s_fpu(struct vcpu *v, const struct x86_fpu *f) { return 0; }
static const struct accel_ops engine = { .name = "emu", .get_regs = g_regs, .set_regs = s_regs,
	.get_sregs = g_sregs, .set_sregs = s_sregs, .get_fpu = g_fpu, .set_fpu = s_fpu };

/* ---- the machine ---- */

#define NCPU 2
static struct vm vm;
static struct vcpu vcpus[NCPU];
static struct vm_config cfg;
static struct vm_control *ctl;
static _Atomic unsigned long work[NCPU];
static int power_presses, irq_line = -1, irq_level = -1;
static char sock_path[108], snap_path[128];

static void fake_power_button(struct vm *m) { power_presses++; }
static int fake_irq(struct vm *m, unsigned line, int level)
{
	irq_line = (int)line;
	irq_level = level;
	return 0;
}

static bool stopping(void) { return atomic_load(&vm.stop_reason) != VM_STOP_NONE; }

static void *vcpu_loop(void *arg)
{
	struct vcpu *v = arg;
	struct vcpu_gate *gate = vm_control_gate(ctl);
	while (!stopping()) {
		if (vcpu_gate_checkpoint(gate) && stopping())
			break;
		atomic_fetch_add(&work[v->id], 1);
		/* "vcpu_run" until kicked, as the engines return VCPU_EXIT_KICK. */
		pthread_mutex_lock(&v->lock);
		while (!(atomic_load(&v->events) & VCPU_EVT_KICK) && !stopping())
			pthread_cond_wait(&v->wake, &v->lock);
		pthread_mutex_unlock(&v->lock);
		atomic_fetch_and(&v->events, ~VCPU_EVT_KICK);
	}
	vcpu_gate_leave(gate);
	return NULL;
}

static void machine_build(void)
{
	memset(&vm, 0, sizeof(vm));
	vm.cfg = &cfg;
	vm.accel = &engine;
	pthread_mutex_init(&vm.dev_lock, NULL);
	bus_init(&vm.pio, "pio");
	bus_init(&vm.mmio, "mmio");
	cr_assert_eq(gmem_init(&vm.mem, 16ULL << 20), 0);
	vm.n_vcpus = NCPU;
	for (int i = 0; i < NCPU; i++) {
		memset(&vcpus[i], 0, sizeof(vcpus[i]));
		vcpus[i].vm = &vm;
		vcpus[i].id = (unsigned)i;
		pthread_mutex_init(&vcpus[i].lock, NULL);
		pthread_cond_init(&vcpus[i].wake, NULL);
		vm.vcpus[i] = &vcpus[i];
		atomic_store(&work[i], 0);
	}
}

static void machine_start(void)
{
	for (int i = 0; i < NCPU; i++)
		pthread_create(&vcpus[i].thread, NULL, vcpu_loop, &vcpus[i]);
}

static void machine_join(void)
{
	for (int i = 0; i < NCPU; i++)
		pthread_join(vcpus[i].thread, NULL);
}

static void machine_free(void)
{
	bus_destroy(&vm.pio);
	bus_destroy(&vm.mmio);
	gmem_destroy(&vm.mem);
}

static void setup(void)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/vessel-vmctl-%d.sock", getpid());
	snprintf(snap_path, sizeof(snap_path), "/tmp/vessel-vmctl-%d.snap", getpid());
	snapshot_unregister_all();
	vm_config_defaults(&cfg);
	cfg.cpus = NCPU;
	cfg.api_socket = strdup(sock_path);
	cfg.n_plugin_dirs = 1;
	cfg.plugin_dirs[0] = strdup(EXAMPLE_PLUGIN_DIR);
	cfg.n_devices = 1;
	cfg.devices[0] = (struct vm_device_config){ strdup("mailbox"), strdup("mb0"), strdup("{\"port\": 1536}") };
	struct vm_control_hooks hooks = { .power_button = fake_power_button, .irq_set = fake_irq };
	power_presses = 0;
	cr_assert_eq(vm_control_open(&ctl, &cfg, &hooks), 0, "%s", err_msg());
	machine_build();
	cr_assert_eq(vm_control_attach(ctl, &vm), 0, "%s", err_msg());
	machine_start();
}

static void teardown(void)
{
	vm_request_stop(&vm, VM_STOP_QUIT);
	vm_control_detach(ctl, &vm, false); /* also unparks */
	machine_join();
	vm_control_close(ctl);
	machine_free();
	vm_config_free(&cfg);
	unlink(snap_path);
}

TestSuite(vm_control, .init = setup, .fini = teardown);

/* ---- a small client ---- */

static int cl_fd = -1;
static char cl_buf[1 << 16];
static size_t cl_len;

static json_t *cl_line(void)
{
	for (;;) {
		char *nl = memchr(cl_buf, '\n', cl_len);
		if (nl) {
			*nl = 0;
			json_t *j = json_loads(cl_buf, 0, NULL);
			size_t used = (size_t)(nl - cl_buf) + 1;
			memmove(cl_buf, cl_buf + used, cl_len - used);
			cl_len -= used;
			return j;
		}
		ssize_t n = recv(cl_fd, cl_buf + cl_len, sizeof(cl_buf) - cl_len, 0);
		cr_assert_gt(n, 0, "connection closed");
		cl_len += (size_t)n;
	}
}

static json_t *call(const char *req)
{
	if (cl_fd < 0) {
		cl_fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		strcpy(a.sun_path, sock_path);
		cr_assert_eq(connect(cl_fd, (struct sockaddr *)&a, sizeof(a)), 0);
		struct timeval tv = { .tv_sec = 30 };
		setsockopt(cl_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		cl_len = 0;
		json_decref(cl_line()); /* hello */
	}
	cr_assert_eq(send(cl_fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	cr_assert_eq(send(cl_fd, "\n", 1, MSG_NOSIGNAL), 1);
	for (;;) {
		json_t *r = cl_line();
		if (!json_object_get(r, "event"))
			return r;
		json_decref(r);
	}
}

static void ok(const char *req)
{
	json_t *r = call(req);
	cr_assert(json_is_true(json_object_get(r, "ok")), "%s: %s", req,
		  json_string_value(json_object_get(json_object_get(r, "error"), "message")));
	json_decref(r);
}

static void cl_close(void)
{
	if (cl_fd >= 0)
		close(cl_fd);
	cl_fd = -1;
}

static enum vm_state state(void) { return lifecycle_state(vm_control_lifecycle(ctl)); }

static void wait_work_beyond(int cpu, unsigned long n)
{
	while (atomic_load(&work[cpu]) <= n) {
		vcpu_signal(&vcpus[cpu], VCPU_EVT_KICK);
		usleep(200);
	}
}

/* ---- tests ---- */

Test(vm_control, attach_creates_manifest_devices_and_runs)
{
	cr_assert_eq(state(), VM_STATE_RUNNING);
	uint64_t v;
	cr_assert(bus_read(&vm.pio, 1536 + 4, 4, &v), "manifest device not on the bus");
	json_t *r = call("{\"cmd\": \"status\"}");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "result"), "state")), "running");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "result"), "cpus")), NCPU);
	json_decref(r);
	/* The plug-in's IRQ reaches the VM's interrupt lines. */
	pthread_mutex_lock(&vm.dev_lock);
	bus_write(&vm.pio, 1536, 4, 1);
	pthread_mutex_unlock(&vm.dev_lock);
	cr_assert_eq(irq_line, 5);
	cr_assert_eq(irq_level, 1);
	cl_close();
}

Test(vm_control, pause_parks_every_vcpu_and_resume_lets_them_go)
{
	wait_work_beyond(0, 0);
	wait_work_beyond(1, 0);
	ok("{\"cmd\": \"pause\"}");
	cr_assert_eq(state(), VM_STATE_PAUSED);
	cr_assert(vcpu_gate_all_parked(vm_control_gate(ctl)));
	unsigned long w0 = atomic_load(&work[0]), w1 = atomic_load(&work[1]);
	for (int i = 0; i < 20; i++) {
		vcpu_signal(&vcpus[0], VCPU_EVT_KICK);
		vcpu_signal(&vcpus[1], VCPU_EVT_KICK);
		usleep(100);
	}
	cr_assert_eq(atomic_load(&work[0]), w0, "a paused vCPU ran");
	cr_assert_eq(atomic_load(&work[1]), w1, "a paused vCPU ran");
	ok("{\"cmd\": \"resume\"}");
	cr_assert_eq(state(), VM_STATE_RUNNING);
	wait_work_beyond(0, w0);
	wait_work_beyond(1, w1);
	cl_close();
}

Test(vm_control, save_stops_the_vcpus_records_devices_and_goes_back)
{
	pthread_mutex_lock(&vm.dev_lock);
	bus_write(&vm.pio, 1536, 4, 77);
	pthread_mutex_unlock(&vm.dev_lock);
	char req[256];
	snprintf(req, sizeof(req), "{\"cmd\": \"save\", \"args\": {\"file\": \"%s\"}}", snap_path);
	ok(req);
	cr_assert_eq(state(), VM_STATE_RUNNING);
	cr_assert_not(vcpu_gate_all_parked(vm_control_gate(ctl)));
	struct vm_config c;
	vm_config_defaults(&c);
	cr_assert_eq(snapshot_load_config(snap_path, &c), 0, "%s", err_msg());
	cr_assert_eq(c.cpus, NCPU);
	cr_assert_eq(c.n_devices, 1);
	cr_assert_str_eq(c.devices[0].id, "mb0");
	vm_config_free(&c);
	/* Saved while paused: stays paused. */
	ok("{\"cmd\": \"pause\"}");
	ok(req);
	cr_assert_eq(state(), VM_STATE_PAUSED);
	cr_assert(vcpu_gate_all_parked(vm_control_gate(ctl)));
	ok("{\"cmd\": \"resume\"}");
	cl_close();
}

Test(vm_control, powerdown_presses_the_button)
{
	ok("{\"cmd\": \"powerdown\"}");
	cr_assert_eq(power_presses, 1);
	cr_assert_eq(state(), VM_STATE_POWERING_DOWN);
	cl_close();
}

Test(vm_control, poweroff_of_a_paused_vm_ends_it)
{
	ok("{\"cmd\": \"pause\"}");
	ok("{\"cmd\": \"poweroff\"}");
	cr_assert_eq(atomic_load(&vm.stop_reason), VM_STOP_POWEROFF);
	machine_join(); /* parked threads were let go and saw the stop */
	vm_control_detach(ctl, &vm, false);
	cr_assert_eq(state(), VM_STATE_TEARING_DOWN);
	json_t *r = call("{\"cmd\": \"status\"}");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "result"), "state")), "tearing-down");
	json_decref(r);
	r = call("{\"cmd\": \"device-list\"}");
	cr_assert(json_is_false(json_object_get(r, "ok")));
	json_decref(r);
	cl_close();
	/* teardown's join/detach on finished threads are harmless */
	for (int i = 0; i < NCPU; i++)
		pthread_create(&vcpus[i].thread, NULL, vcpu_loop, &vcpus[i]);
}

Test(vm_control, reset_rebuilds_the_machine_with_its_devices)
{
	ok("{\"cmd\": \"reset\"}");
	cr_assert_eq(atomic_load(&vm.stop_reason), VM_STOP_RESET);
	machine_join();
	vm_control_detach(ctl, &vm, true);
	cr_assert_eq(state(), VM_STATE_POWERING_UP);
	uint64_t v;
	cr_assert_not(bus_read(&vm.pio, 1536, 4, &v), "device left on the old machine");
	machine_free();
	machine_build();
	cr_assert_eq(vm_control_attach(ctl, &vm), 0, "%s", err_msg());
	cr_assert_eq(state(), VM_STATE_RUNNING);
	cr_assert(bus_read(&vm.pio, 1536 + 4, 4, &v));
	cr_assert_eq(v, 0, "device state survived a cold reset");
	machine_start();
	cl_close();
}

Test(vm_control, restore_brings_back_device_state)
{
	/* Run one VM (the fixture's), save it... */
	pthread_mutex_lock(&vm.dev_lock);
	bus_write(&vm.pio, 1536, 4, 11);
	bus_write(&vm.pio, 1536, 4, 12);
	pthread_mutex_unlock(&vm.dev_lock);
	char req[256];
	snprintf(req, sizeof(req), "{\"cmd\": \"save\", \"args\": {\"file\": \"%s\"}}", snap_path);
	ok(req);
	cl_close();
	vm_request_stop(&vm, VM_STOP_QUIT);
	vm_control_detach(ctl, &vm, false);
	machine_join();
	vm_control_close(ctl);
	machine_free();
	/* ... and start another from the snapshot. */
	struct vm_config saved_devices;
	vm_config_defaults(&saved_devices);
	cr_assert_eq(snapshot_load_config(snap_path, &saved_devices), 0, "%s", err_msg());
	cfg.restore = strdup(snap_path);
	for (unsigned i = 0; i < cfg.n_devices; i++)
		vm_device_config_free(&cfg.devices[i]);
	cfg.n_devices = saved_devices.n_devices;
	memcpy(cfg.devices, saved_devices.devices, sizeof(cfg.devices));
	saved_devices.n_devices = 0;
	vm_config_free(&saved_devices);
	struct vm_control_hooks hooks = { .power_button = fake_power_button, .irq_set = fake_irq };
	cr_assert_eq(vm_control_open(&ctl, &cfg, &hooks), 0, "%s", err_msg());
	machine_build();
	cr_assert_eq(vm_control_attach(ctl, &vm), 0, "%s", err_msg());
	cr_assert_eq(state(), VM_STATE_RUNNING);
	uint64_t v;
	cr_assert(bus_read(&vm.pio, 1536, 4, &v));
	cr_assert_eq(v, 12);
	cr_assert(bus_read(&vm.pio, 1536 + 4, 4, &v));
	cr_assert_eq(v, 2);
	machine_start(); /* the fixture's teardown ends this one */
}
