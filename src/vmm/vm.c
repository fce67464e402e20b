/* The VM object: builds the machine from a vm_config, runs one host thread
 * per vCPU, serves the console on the main thread, and returns why the run
 * ended (the CLI turns that into an exit code, docs/cli.md).
 *
 * vCPU scheduling: one host thread per vCPU (docs/architecture.md).  A
 * vCPU that executes HLT sleeps on its condition variable until an
 * interrupt, NMI, INIT/SIPI or stop request is signalled. */
#include "vmm/vm.h"

#include "boot/boot.h"
#include "cpu/engines.h"
#include "machine/accel.h"
#include "cpu/engines.h"
#include "hv/hv_vmbus.h"
#include "hv/hyperv.h"
#include "vmm/api.h"
#include "hw/chardev.h"
#include "hw/netdev.h"
#include "board/pc.h"
#include "hw/intc/lapic.h"
#include "util/error.h"
#include "util/hostcall.h"
#include "vmm/snapshot.h"
#include "util/log.h"
#include "vmm/console.h"
#include "vmm/host_power.h"
#include "vmm/control.h"
#include "vmm/hotplug.h"
#include "vmm/net.h"
#include "vmm/pc_virtio.h"
#include "machine/compound.h"
#include "machine/device_registry.h"
#include "machine/machine.h"
#include "vmm/sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(VM_MAX_CPUS <= MACHINE_MAX_CPUS, "a configured VM fits the machine");

/* What a vCPU thread needs besides its vCPU. */
struct vcpu_thread_arg {
	struct vcpu *vcpu;
	struct vcpu_gate *gate;
	struct console *con;
};

/* SDM vol. 3A, 9.4.4 / 10.4.7: a SIPI starts the AP in real mode at
 * vector * 4 KiB, CS = vector << 8, IP = 0. */
static int vcpu_start_at_sipi(struct vcpu *vcpu, uint8_t vector)
{
	const struct accel_ops *a = vcpu->vm->accel;
	struct x86_sregs s;
	struct x86_regs r;
	int rc = a->get_sregs(vcpu, &s);
	if (rc == 0)
		rc = a->get_regs(vcpu, &r);
	if (rc < 0)
		return rc;
	s.seg[SEG_CS].selector = (uint16_t)(vector << 8);
	s.seg[SEG_CS].base = (uint64_t)vector << 12;
	r.rip = 0;
	rc = a->set_sregs(vcpu, &s);
	return rc < 0 ? rc : a->set_regs(vcpu, &r);
}

static bool vm_stopping(struct vm *vm)
{
	return atomic_load(&vm->stop_reason) != VM_STOP_NONE;
}

/* Sleeps until one of mask's events is signalled or the VM stops. */
static uint32_t vcpu_wait(struct vcpu *vcpu, uint32_t mask)
{
	uint32_t ev;
	pthread_mutex_lock(&vcpu->lock);
	while (!((ev = atomic_load(&vcpu->events)) & mask) && !vm_stopping(vcpu->vm))
		pthread_cond_wait(&vcpu->wake, &vcpu->lock);
	pthread_mutex_unlock(&vcpu->lock);
	return ev;
}

static void *vcpu_thread(void *opaque)
{
	const struct vcpu_thread_arg *arg = opaque;
	struct vcpu *vcpu = arg->vcpu;
	struct vm *vm = vcpu->vm;
	struct vcpu_exit exit;

	atomic_store(&vcpu->tid, (int)gettid());
	while (!vm_stopping(vm)) {
		/* Parks here while the control API holds the vCPUs (pause, save). */
		vcpu_gate_checkpoint(arg->gate);
		if (vm_stopping(vm))
			break;
		if (atomic_load(&vcpu->absent)) {
			/* Not plugged in: INIT and SIPI reach no processor.  A
			 * `cpu add` kicks it out of this wait. */
			atomic_fetch_and(&vcpu->events, ~(VCPU_EVT_INIT | VCPU_EVT_SIPI));
			vcpu_wait(vcpu, VCPU_EVT_KICK);
			atomic_fetch_and(&vcpu->events, ~VCPU_EVT_KICK);
			continue;
		}
		uint32_t ev = atomic_load(&vcpu->events);
		if (ev & VCPU_EVT_INIT) {
			/* INIT resets the processor; an AP then waits for a SIPI
			 * (SDM vol. 3A, 9.4).  A SIPI already pending came after
			 * the INIT (software waits between the two), so it stays. */
			atomic_fetch_and(&vcpu->events, ~VCPU_EVT_INIT);
			if (vcpu_reset_state(vcpu) < 0) {
				log_error("vcpu", "cpu%u: INIT failed: %s", vcpu->id, err_msg());
				vm_request_stop(vm, VM_STOP_ERROR);
				break;
			}
			if (vcpu->id != 0)
				vcpu->run_state = VCPU_WAIT_FOR_SIPI;
		} else if ((ev & VCPU_EVT_SIPI) && vcpu->run_state != VCPU_WAIT_FOR_SIPI) {
			/* A SIPI is ignored unless the processor waits for one
			 * (SDM vol. 3A, 10.4.7.4): Linux sends two. */
			atomic_fetch_and(&vcpu->events, ~VCPU_EVT_SIPI);
		}
		if (vcpu->run_state == VCPU_WAIT_FOR_SIPI) {
			ev = vcpu_wait(vcpu, VCPU_EVT_SIPI | VCPU_EVT_INIT | VCPU_EVT_KICK);
			atomic_fetch_and(&vcpu->events, ~VCPU_EVT_KICK);
			if ((ev & VCPU_EVT_SIPI) && !(ev & VCPU_EVT_INIT)) {
				atomic_fetch_and(&vcpu->events, ~VCPU_EVT_SIPI);
				if (vcpu_start_at_sipi(vcpu, vcpu->sipi_vector) < 0) {
					log_error("vcpu", "cpu%u: cannot start at SIPI: %s", vcpu->id, err_msg());
					vm_request_stop(vm, VM_STOP_ERROR);
					break;
				}
				vcpu->run_state = VCPU_RUNNABLE;
			}
			continue;
		}
		memset(&exit, 0, sizeof(exit));
		/* Set before the engine first looks at its events: a remote
		 * TLB flush (vcpu_flush_tlbs) waits for this vCPU only while
		 * it runs, and one made before this store is served first. */
		atomic_store(&vcpu->in_run, true);
		int rc = vm->accel->vcpu_run(vcpu, &exit);
		atomic_store(&vcpu->in_run, false);
		/* The guest stopped running on this vCPU (idle, a stop, a
		 * crash): the console output it held back for compounding goes
		 * out now, before anything vessel prints about it. */
		console_flush(arg->con);
		if (rc < 0) {
			log_error("vcpu", "cpu%u: %s", vcpu->id, err_msg());
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
		atomic_fetch_add_explicit(&vcpu->exit_counts[exit.reason], 1, memory_order_relaxed);
		switch (exit.reason) {
		case VCPU_EXIT_HLT: {
			/* With IF=0 only NMI, INIT, SIPI and stop requests end HLT. */
			struct x86_regs r;
			uint32_t mask = VCPU_EVT_NMI | VCPU_EVT_INIT | VCPU_EVT_SIPI | VCPU_EVT_KICK;
			if (vm->accel->get_regs(vcpu, &r) == 0 && (r.rflags & X86_FLAG_IF))
				mask |= VCPU_EVT_INTR;
			vcpu_wait(vcpu, mask);
			break;
		}
		case VCPU_EXIT_KICK:
			atomic_fetch_and(&vcpu->events, ~VCPU_EVT_KICK);
			break;
		case VCPU_EXIT_SHUTDOWN:
			fprintf(stderr, "\r\nvessel: guest triple fault on cpu%u: %s\r\n", vcpu->id, exit.error.message);
			vcpu_dump_state(vcpu, stderr);
			vm_request_stop(vm, VM_STOP_TRIPLE_FAULT);
			break;
		case VCPU_EXIT_INTERNAL_ERROR:
			fprintf(stderr, "\r\nvessel: cpu%u stopped: %s\r\n", vcpu->id, exit.error.message);
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		default:
			break;
		}
	}
	vcpu_gate_leave(arg->gate);
	return NULL;
}

static void vm_destroy(struct vm *vm)
{
	if (vm->platform) {
		/* The virtio functions leave the PCI bus before the board frees it. */
		pc_virtio_snapshot_unregister(vm->platform);
		if (vm->hv)
			snapshot_unregister_device(HV_SNAPSHOT_DEVICE);
		/* VMBus's heartbeat timer lives on the board's timer service. */
		if (hv_vm_vmbus(vm)) {
			snapshot_unregister_device(HV_VMBUS_SNAPSHOT_DEVICE);
			pthread_mutex_lock(&vm->dev_lock);
			hv_vmbus_destroy(hv_vm_vmbus(vm));
			hv_vm_set_vmbus(vm, NULL);
			pthread_mutex_unlock(&vm->dev_lock);
		}
		pc_virtio_detach(vm->platform);   /* backend threads take the lock */
		pthread_mutex_lock(&vm->dev_lock);
		pc_virtio_destroy(vm->platform);
		pthread_mutex_unlock(&vm->dev_lock);
		platform_destroy(vm);
	}
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		if (vm->accel->vcpu_destroy)
			vm->accel->vcpu_destroy(v);
		pthread_mutex_destroy(&v->lock);
		pthread_cond_destroy(&v->wake);
		free(v);
	}
	if (vm->accel_state && vm->accel->vm_destroy)
		vm->accel->vm_destroy(vm);
	hv_vm_destroy(vm);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	gmem_destroy(&vm->mem);
	pthread_mutex_destroy(&vm->dev_lock);
	free(vm);
}

/* The Hyper-V interface (src/hv), on unless --hyperv off, on either
 * engine (docs/hyperv.md "The KVM engine"), with what the engine can
 * serve: remote TLB flushes need an engine whose translations vessel can
 * drop (accel_ops.tlb_flush), and the time features its guest TSC rate. */
static int vm_create_hyperv(struct vm *vm)
{
	bool on;
	uint32_t features;
	int rc = hv_parse(vm->cfg->hyperv, &on, &features);
	if (rc < 0 || !on)
		return rc;
	uint64_t tsc_hz = vm->accel->guest_tsc_hz ? vm->accel->guest_tsc_hz(vm) : LAPIC_DEFAULT_TSC_HZ;
	if (!vm->accel->tlb_flush)
		features &= ~(1u << HV_FEAT_TLBFLUSH);
	if (!tsc_hz) {
		log_warn("hyperv", "the %s engine cannot tell its TSC rate: no reference time, TSC frequency or "
			 "synthetic timers", vm->accel->name);
		features &= ~((1u << HV_FEAT_TIME) | (1u << HV_FEAT_FREQUENCIES) | (1u << HV_FEAT_STIMER));
	}
	rc = hv_vm_create(vm, features, tsc_hz, LAPIC_TIMER_HZ);
	if (rc == 0) {
		vm->handle_hypercall = hv_hypercall;
		vm->hv_cpuid = hv_cpuid;
		vm->hv_msr = hv_msr;
		vm->hv_msr_ranges = hv_msr_ranges;
		vm->hv_n_msr_ranges = HV_MSR_RANGES;
	}
	return rc;
}

/* VMBus integration services' events ("heartbeat-stopped"...) for the
 * control API's clients. */
static void vmbus_event(void *opaque, const char *name)
{
	struct vm_session *sess = opaque;
	api_server_post_event(sess->api, json_pack("{s:s}", "event", name));
}

static int vm_create(struct vm_session *sess, const struct vm_config *cfg, const struct numa_config *numa,
		     struct chardev *console, const struct pc_virtio_backends *be, struct vm **out)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return err_set(-ENOMEM, "out of memory");
	vm->cfg = cfg;
	vm->accel = accel_find(cfg->engine);
	/* Checked by vm_config_validate(). */
	if (compound_parse(cfg->compound, &vm->compound) < 0)
		vm->compound = COMPOUND_ALL;
	vm->jit_hot = cfg->jit ? EMU_JIT_HOT : 0;
	/* Checked by vm_config_validate(): a spec that fails here leaves max. */
	if (cfg->cpu)
		cpu_model_parse(cfg->cpu, !strcmp(cfg->engine, "emu"), &vm->cpu_model);
	vm->code_cache_bytes = cfg->code_cache_bytes;
	pthread_mutex_init(&vm->dev_lock, NULL);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	vm->numa = *numa;
	int rc = gmem_init_pages(&vm->mem, cfg->mem_bytes, cfg->mem_hotplug, cfg->memory_backend, cfg->memory_page);
	/* Before anything touches guest RAM: each page lands where its node's
	 * policy says. */
	if (rc == 0)
		rc = vnuma_bind_memory(&vm->numa, &vm->mem);
	/* The firmware ROM exists before the engine maps guest memory; the
	 * boot loader fills it later (src/boot). */
	if (rc == 0)
		rc = gmem_add_rom(&vm->mem, GMEM_ROM_BASE, GMEM_ROM_SIZE, NULL);
	if (rc == 0)
		rc = vm->accel->vm_init(vm);
	if (rc == 0)
		rc = vm_create_hyperv(vm);
	/* Every possible CPU has its vCPU from the start; those beyond the
	 * ones plugged in at power-on (and those `cpu add` plugged in since,
	 * which stay across a reboot) wait, absent (docs/hotplug.md "CPUs"). */
	unsigned n_cpus = vm_config_possible_cpus(cfg);
	vm->planned_vcpus = n_cpus;
	vm->cpu_hotplug = n_cpus > cfg->cpus;
	for (unsigned i = 0; rc == 0 && i < n_cpus; i++) {
		struct vcpu *v = calloc(1, sizeof(*v));
		if (!v) {
			rc = err_set(-ENOMEM, "out of memory");
			break;
		}
		v->vm = vm;
		v->id = i;
		v->run_state = i == 0 ? VCPU_RUNNABLE : VCPU_WAIT_FOR_SIPI;
		atomic_store(&v->absent, i >= cfg->cpus && !(sess->cpus_added >> i & 1));
		pthread_mutex_init(&v->lock, NULL);
		pthread_cond_init(&v->wake, NULL);
		vm->vcpus[vm->n_vcpus++] = v;
		rc = vm->accel->vcpu_init(v);
	}
	if (rc == 0) {
		struct platform_options opts = { .console = console, .power_source = sess->power_source,
						 .vmbus = hv_has_feature(vm, HV_FEAT_VMBUS) };
		rc = platform_create_opts(vm, &opts);
	}
	if (rc == 0) {
		/* The configuration's virtio devices, after the board's table
		 * (docs/virtio.md). */
		pthread_mutex_lock(&vm->dev_lock);
		rc = pc_virtio_create(vm, vm->platform, be);
		pthread_mutex_unlock(&vm->dev_lock);
		if (rc == 0)
			rc = pc_virtio_snapshot_register(vm->platform);
	}
	/* The Hyper-V state after the LAPICs it hooks (docs/snapshot.md). */
	if (rc == 0 && vm->hv)
		rc = snapshot_register_device(HV_SNAPSHOT_DEVICE, hv_snapshot_save, hv_snapshot_load, vm);
	/* VMBus after the LAPICs whose timers pace its heartbeat. */
	if (rc == 0 && vm->hv)
		rc = hv_vmbus_create(vm, vmbus_event, sess);
	if (rc == 0 && hv_vm_vmbus(vm))
		rc = snapshot_register_device(HV_VMBUS_SNAPSHOT_DEVICE, hv_vmbus_snapshot_save, hv_vmbus_snapshot_load,
					      vm);
	if (rc < 0) {
		vm_destroy(vm);
		return rc;
	}
	*out = vm;
	return 0;
}

/* The host's side while the machine runs or sleeps: the console's escapes
 * and a quit signal, each stop naming its cause (docs/api.md "Reasons").
 * Waits up to 100 ms for the console. */
static void poll_host(struct vm_session *sess, struct vm *vm, struct console *con, const struct vm_run_opts *opts)
{
	switch (console_poll(con, 100)) {
	case CONSOLE_QUIT:
		vm_session_stop(sess, vm, VM_STOP_QUIT, "console: quit");
		break;
	case CONSOLE_RESET:
		vm_session_stop(sess, vm, VM_STOP_RESET, "console: reset");
		break;
	case CONSOLE_POWERDOWN:
		vm_session_press_button(sess, vm, false);
		break;
	default:
		break;
	}
	if (opts && opts->quit && atomic_load(opts->quit))
		vm_session_stop(sess, vm, VM_STOP_QUIT, "signal");
	vm_session_poll(sess);
}

struct numa_follow_state {
	time_t last_sec;
	bool known;
	cpu_set_t allowed;
};

/* --numa-follow (docs/numa.md): once a second, the CPUs this process may
 * use (the run loop's thread is never pinned, so its affinity is the
 * process's: a cgroup cpuset change or a CPU going offline changes it);
 * when they changed, each vCPU thread gets what vnuma_follow() leaves its
 * node. */
static void numa_follow_check(struct vm_session *sess, struct vm *vm, struct numa_follow_state *st)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!vm->numa.follow || !vm->numa.host_bound || now.tv_sec == st->last_sec)
		return;
	st->last_sec = now.tv_sec;
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0 || CPU_EQUAL(&allowed, &st->allowed))
		return;
	bool first = !st->known;
	st->allowed = allowed;
	st->known = true;
	if (first)
		return;
	struct host_numa h;
	struct numa_config c;
	pthread_mutex_lock(&sess->lock);
	c = sess->numa;
	pthread_mutex_unlock(&sess->lock);
	static cpu_set_t out[NUMA_MAX_NODES];
	if (host_numa_read(&h, NULL) < 0 || vnuma_follow(&c, &h, &allowed, out) < 0)
		return;
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		int node = vnuma_node_of_cpu(&c, i);
		if (node >= 0)
			pthread_setaffinity_np(vm->vcpus[i]->thread, sizeof(cpu_set_t), &out[node]);
	}
	char list[256] = "";
	for (int cpu = 0, n = 0; cpu < CPU_SETSIZE && n < 40; cpu++) {
		if (CPU_ISSET(cpu, &allowed)) {
			size_t len = strlen(list);
			snprintf(list + len, sizeof(list) - len, "%s%d", n++ ? "," : "", cpu);
		}
	}
	log_info("numa", "the host CPUs of this VM changed (now %s): vCPU threads re-pinned", list);
}

/* Runs the machine until it stops; returns the stop reason. */
static enum vm_stop_reason vm_run_once(struct vm_session *sess, struct vm *vm, struct console *con,
				       const struct vm_run_opts *opts)
{
	struct vcpu_thread_arg args[MACHINE_MAX_CPUS];
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		args[i] = (struct vcpu_thread_arg){ .vcpu = vm->vcpus[i], .gate = &sess->gate, .con = con };
		if (pthread_create(&vm->vcpus[i]->thread, NULL, vcpu_thread, &args[i]) != 0) {
			log_error("vm", "cannot start the thread of cpu%u", i);
			vm_request_stop(vm, VM_STOP_ERROR);
			for (unsigned j = 0; j < i; j++)
				pthread_join(vm->vcpus[j]->thread, NULL);
			return VM_STOP_ERROR;
		}
		/* A vCPU runs on the host CPUs of its node's host nodes. */
		if (vnuma_pin_thread(&vm->numa, i, vm->vcpus[i]->thread) < 0)
			log_warn("vm", "%s", err_msg());
	}
	struct numa_follow_state follow = { 0 };
	while (!vm_stopping(vm)) {
		poll_host(sess, vm, con, opts);
		vm_session_poll_devices(sess, vm);
		numa_follow_check(sess, vm, &follow);
	}
	/* A paused machine's vCPUs are parked in the gate: let them see the
	 * stop, whoever asked for it (a signal, Ctrl-A x, the guest). */
	vcpu_gate_stop(&sess->gate);
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		pthread_join(vm->vcpus[i]->thread, NULL);
	return (enum vm_stop_reason)atomic_load(&vm->stop_reason);
}

static const char *wake_reason_name(enum vm_wake_reason r)
{
	switch (r) {
	case VM_WAKE_HOST: return "wake: control API";
	case VM_WAKE_POWER_BUTTON: return "wake: power button";
	case VM_WAKE_SLEEP_BUTTON: return "wake: sleep button";
	case VM_WAKE_ALARM: return "wake: RTC alarm";
	default: return "wake";
	}
}

/* The processors after a wake from S3: power-on state (SDM vol. 3A,
 * 9.1.1), the boot processor at the reset vector, whose ROM stub jumps to
 * the FACS's waking vector; the others wait for the OS's INIT/SIPI. */
static int vm_reset_vcpus_for_wake(struct vm *vm)
{
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		atomic_store(&v->events, 0);
		int rc = vcpu_reset_state(v);
		if (rc < 0)
			return rc;
		v->run_state = i == 0 ? VCPU_RUNNABLE : VCPU_WAIT_FOR_SIPI;
	}
	return 0;
}

/* ACPI S3 (docs/power.md): the vCPU threads have ended, memory and the
 * devices stay.  Waits, using no CPU but a poll of the console every
 * 100 ms, until a wake source fires (vm_request_wake) or a final stop is
 * asked for.  VM_STOP_NONE when the machine woke and may run again;
 * otherwise the stop reason. */
static enum vm_stop_reason vm_sleep(struct vm_session *sess, struct vm *vm, struct console *con,
				    const struct vm_run_opts *opts)
{
	atomic_store(&vm->wake_reason, VM_WAKE_NONE);
	atomic_store(&vm->suspended, true);
	/* A source that fired while the processors were stopping (before
	 * `suspended` was set) still wakes the machine. */
	enum vm_wake_reason pending = platform_suspend(vm);
	if (pending != VM_WAKE_NONE)
		vm_request_wake(vm, pending);
	lifecycle_transition(&sess->lc, VM_STATE_SUSPENDED, vm_session_stop_reason(sess, VM_STOP_SUSPEND));
	enum vm_wake_reason wake = VM_WAKE_NONE;
	while (atomic_load(&vm->stop_reason) == VM_STOP_SUSPEND &&
	       (wake = (enum vm_wake_reason)atomic_load(&vm->wake_reason)) == VM_WAKE_NONE) {
		poll_host(sess, vm, con, opts);   /* the power button wakes it */
	}
	atomic_store(&vm->suspended, false);
	/* A press that woke the guest is no request it answers later. */
	atomic_store(&sess->sleep_button_ms, 0);
	atomic_store(&sess->power_button_ms, 0);
	int cur = VM_STOP_SUSPEND;
	if (!atomic_compare_exchange_strong(&vm->stop_reason, &cur, VM_STOP_NONE))
		return (enum vm_stop_reason)cur;
	/* Firmware finds no waking vector: it boots, as a PC does. */
	uint64_t facs = platform_facs_address(vm);
	const uint8_t *f = facs ? gmem_ptr(&vm->mem, facs, 64) : NULL;
	uint32_t vector = f ? (uint32_t)f[12] | (uint32_t)f[13] << 8 | (uint32_t)f[14] << 16 | (uint32_t)f[15] << 24
			    : 0;
	if (!vector) {
		log_warn("vm", "woke from S3 but the guest left no waking vector: rebooting");
		vm_request_stop(vm, VM_STOP_RESET);
		return VM_STOP_RESET;
	}
	platform_wake(vm, wake);
	int rc = vm_reset_vcpus_for_wake(vm);
	if (rc == 0)
		rc = boot_set_resume(&vm->mem, (uint32_t)facs);
	if (rc < 0) {
		log_error("vm", "cannot wake from S3: %s", err_msg());
		vm_request_stop(vm, VM_STOP_ERROR);
		return VM_STOP_ERROR;
	}
	vcpu_gate_rejoin(&sess->gate, vm->n_vcpus);
	log_info("vm", "waking from S3 at %#x (%s)", vector, wake_reason_name(wake));
	/* VMBus: the interrupts pending when the guest slept are lost with
	 * its LAPIC's state, and its clock stood still (docs/hyperv.md). */
	hv_vmbus_wake(vm);
	lifecycle_transition(&sess->lc, VM_STATE_RUNNING, wake_reason_name(wake));
	return VM_STOP_NONE;
}

/* Catches the commonest mistakes before any memory is allocated; the
 * loaders check the contents. */
static int check_input_files(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->n_disks; i++) {
		const struct vm_disk_config *d = &cfg->disks[i];
		if (access(d->path, d->readonly ? R_OK : R_OK | W_OK) < 0)
			return err_set(-errno, "disk %s: %s", d->path, strerror(errno));
	}
	/* Parsed so that a manifest stays checkable, but there is no second
	 * UART or virtio console yet: refused rather than silently ignored. */
	if (cfg->n_consoles)
		return err_set(-ENOTSUP, "consoles[0]: consoles besides the serial port are not supported yet (no second "
			       "UART or virtio console); use `serial` for COM1");
	const char *files[][2] = { { "kernel", cfg->kernel }, { "initrd", cfg->initrd }, { "snapshot", cfg->restore } };
	for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i][1] && access(files[i][1], R_OK) < 0)
			return err_set(-errno, "%s %s: %s", files[i][0], files[i][1], strerror(errno));
	}
	return 0;
}

/* Ends a failed start: the message of the error that caused it survives
 * the clean-up. */
static enum vm_stop_reason vm_abandon(struct vm_session *sess, struct vm *vm, int rc, enum vm_stop_reason why)
{
	/* Tearing down may set messages of its own: keep the reason. */
	char *msg = strdup(err_msg());
	if (vm) {
		vm_session_detach(sess);
		vm_destroy(vm);
	}
	err_set(rc, "%s", msg ? msg : "out of memory");
	free(msg);
	return why;
}

/* Builds the machine and puts the guest in it: a snapshot's state, or a
 * kernel through the boot loader.  VM_STOP_NONE when ready; otherwise the
 * machine is gone and err_msg() says why. */
static enum vm_stop_reason vm_prepare(struct vm_session *sess, struct chardev *serial, const char *restore,
				      const char *reason, struct vm **out)
{
	const struct vm_config *cfg = sess->cfg;
	struct vm *vm = NULL;
	int rc = vm_create(sess, cfg, &sess->numa, serial, &sess->backends, &vm);
	if (rc == 0 && (rc = vm_session_add_memory(sess, vm)) < 0)
		return vm_abandon(sess, vm, rc, VM_STOP_START_FAILED);
	/* A snapshot is accepted before its devices are created, which loads
	 * their plug-ins. */
	if (rc == 0 && restore && (rc = snapshot_check(vm, restore)) < 0)
		return vm_abandon(sess, vm, rc, VM_STOP_BAD_INPUT);   /* not attached: detach does nothing */
	bool bad_device = false;
	if (rc == 0) {
		rc = vm_session_attach(sess, vm);
		/* A device the configuration describes wrongly (unknown type,
		 * bad params, an id twice, a resource taken) is bad input, from
		 * the snapshot or the manifest that holds it (docs/cli.md). */
		bad_device = rc == -EINVAL || rc == -ENOENT || rc == -EEXIST || rc == -ENODEV || rc == -ENOSPC ||
			     rc == -EBUSY || rc == -ENOTSUP || rc == -ERANGE;
		if (rc < 0 && restore)
			err_wrap(rc, "snapshot %s", restore);
		else if (rc < 0 && cfg->manifest)
			err_wrap(rc, "manifest %s", cfg->manifest);
	}
	if (rc < 0)
		return vm_abandon(sess, vm, rc, bad_device ? VM_STOP_BAD_INPUT : VM_STOP_START_FAILED);
	if (restore) {
		/* The RAM's CRC is checked unless asked not to: it costs one read
		 * of the file (docs/snapshot.md "Guarantees"). */
		struct snapshot_restore_opts opts = { .map_memory = true, .verify_memory = !cfg->restore_no_verify };
		rc = lifecycle_transition(&sess->lc, VM_STATE_LOADING_STATE, "restore");
		if (rc == 0)
			rc = snapshot_restore(vm, restore, &opts);
		/* The CPUs plugged in when it was saved. */
		if (rc == 0)
			sess->cpus_added = hotplug_cpus_sync(vm);
	} else {
		rc = lifecycle_transition(&sess->lc, VM_STATE_POWERING_UP, reason);
		if (rc == 0) {
			struct boot_config boot = {
				.kernel = cfg->kernel, .initrd = cfg->initrd, .cmdline = cfg->cmdline,
				.decompress_kernel = cfg->decompress_kernel,
			};
			struct boot_options opt = { .rsdp_addr = platform_rsdp_address(vm) };
			rc = boot_load_mem(&vm->mem, &boot, &opt, NULL);
		}
	}
	if (rc < 0)
		return vm_abandon(sess, vm, rc, VM_STOP_BAD_INPUT);
	*out = vm;
	return VM_STOP_NONE;
}

/* After the last machine is gone: no device is attached any more. */
static void vm_free_backends(struct pc_virtio_backends *be)
{
	for (unsigned i = 0; i < be->n_nets; i++)
		netdev_free(be->nets[i]);
	be->n_nets = 0;
}

static struct console *sandboxed_console;

/* The log's flush hook: guest output before vessel's own messages. */
static void flush_console_hook(void *opaque)
{
	console_flush(opaque);
}

/* Runs in the SIGSYS handler: the guest's output held back for
 * compounding goes out before the sandbox's message, and the terminal
 * goes back to cooked mode. */
static void sandbox_exit_hook(void)
{
	if (sandboxed_console) {
		console_flush_at_exit(sandboxed_console);
		console_restore_terminal(sandboxed_console);
	}
}

enum vm_stop_reason vm_run(const struct vm_config *cfg, const struct vm_run_opts *opts, int *debug_exit_value)
{
	if (check_input_files(cfg) < 0)
		return VM_STOP_BAD_INPUT;
	/* The snapshot's file and config are accepted before the session
	 * looks for plug-ins (docs/security.md "Plug-ins"). */
	if (cfg->restore && snapshot_check(NULL, cfg->restore) < 0)
		return VM_STOP_BAD_INPUT;
	/* The network backends are opened with the privileges a tap or a
	 * low forwarded port needs, and their threads start after the drop. */
	struct pc_virtio_backends be = { 0 };
	enum vm_stop_reason why = VM_STOP_START_FAILED;
	unsigned compound = COMPOUND_ALL;
	compound_parse(cfg->compound, &compound);   /* checked by vm_config_validate() */
	for (unsigned i = 0; i < cfg->n_nets; i++) {
		if (net_open(&cfg->nets[i], i, &be.nets[i]) < 0) {
			vm_free_backends(&be);
			return VM_STOP_START_FAILED;
		}
		/* --compound net (docs/compounding.md "Network"): the backend
		 * outlives the machines of the run, so it is told here, before
		 * its thread starts, rather than by the device. */
		be.nets[i]->batch = compound & COMPOUND_NET;
		be.n_nets++;
		if (!strcmp(cfg->nets[i].type, "user"))
			sandbox_allow_outbound_sockets();
	}
	/* Before any thread exists, so that every thread has none
	 * (capabilities are per thread). */
	if (cfg->sandbox && sandbox_drop_capabilities() < 0) {
		vm_free_backends(&be);
		return VM_STOP_START_FAILED;
	}
	for (unsigned i = 0; i < be.n_nets; i++) {
		if (netdev_start(be.nets[i]) < 0) {
			vm_free_backends(&be);
			return VM_STOP_START_FAILED;
		}
	}
	/* The host's power supplies: a directory that cannot be listed is
	 * the user's mistake (docs/cli.md "Messages"). */
	struct host_power *host_power = NULL;
	if (cfg->host_power_status && host_power_start(cfg->host_power_status, 0, &host_power) < 0) {
		err_wrap(-EINVAL, "--host-power-status");
		vm_free_backends(&be);
		return VM_STOP_BAD_INPUT;
	}
	struct console *con;
	if (console_open(&con, cfg->serial) < 0) {
		host_power_stop(host_power);
		vm_free_backends(&be);
		return VM_STOP_BAD_INPUT;
	}

	console_set_compound(con, compound & COMPOUND_CONSOLE);
	log_set_flush_hook(flush_console_hook, con);

	struct chardev *serial = console_chardev_new(con);
	/* --console virtio: the console is the guest's hvc0, COM1 is left
	 * unconnected. */
	struct chardev *uart = serial;
	if (serial && cfg->virtio_console) {
		be.console = serial;
		uart = chardev_null_new();
	}
	struct vm_session sess;
	if (!serial || !uart || vm_session_start(&sess, cfg) < 0) {
		if (serial && uart) {
			char msg[512];
			snprintf(msg, sizeof(msg), "%s", err_msg());
			vm_session_finish(&sess);
			err_set(-EIO, "%s", msg);
		}
		goto out;
	}
	sess.console = con;
	sess.backends = be;
	sess.power_source = host_power_source(host_power);
	const char *reboot_reason = NULL;   /* the reboot's, after the first machine */
	for (const char *restore = cfg->restore;; restore = NULL) {
		struct vm *vm;
		why = vm_prepare(&sess, uart, restore, reboot_reason, &vm);
		if (why != VM_STOP_NONE)
			break;
		/* Set-up is over (console, control API, plug-in registry, the
		 * first machine): from here on, only the calls the sandbox
		 * allows.  Later reboots build the machine inside it. */
		if (cfg->sandbox && !sandboxed_console) {
			sandboxed_console = con;
			sandbox_set_exit_hook(sandbox_exit_hook);
			if (sandbox_enter() < 0) {
				why = vm_abandon(&sess, vm, -EPERM, VM_STOP_START_FAILED);
				break;
			}
		}
		lifecycle_transition(&sess.lc, VM_STATE_RUNNING, NULL);
		why = vm_run_once(&sess, vm, con, opts);
		/* Suspend to RAM: the same machine runs again when it wakes. */
		while (why == VM_STOP_SUSPEND && (why = vm_sleep(&sess, vm, con, opts)) == VM_STOP_NONE)
			why = vm_run_once(&sess, vm, con, opts);
		if (why == VM_STOP_DEBUG_EXIT && debug_exit_value)
			*debug_exit_value = vm->debug_exit_value;
		bool reboot = why == VM_STOP_RESET && !cfg->no_reboot;
		/* A restored VM reboots into the kernel given beside --restore: a
		 * snapshot names no files to boot (docs/snapshot.md "Restoring").
		 * Without one the run cannot go on as the guest asked: say so
		 * and fail rather than end as if it had powered off. */
		bool cannot_reboot = reboot && !cfg->kernel;
		if (cannot_reboot) {
			log_flush_before_output();
			fprintf(stderr, "vessel: the guest rebooted, but this VM was restored from a snapshot without "
					"--kernel, so there is nothing to boot (give --kernel, and --initrd and --append if "
					"needed, with --restore to let it reboot)\n");
			reboot = false;
		}
		/* The lifecycle: a reset powers the machine up again; everything
		 * else powers it down for good. */
		const char *reason = vm_session_stop_reason(&sess, why);
		if (!reboot && (why == VM_STOP_POWEROFF || why == VM_STOP_RESET || why == VM_STOP_HIBERNATE ||
				why == VM_STOP_PANIC))
			lifecycle_transition(&sess.lc, VM_STATE_POWERING_DOWN, reason);
		else if (!reboot && reason)
			lifecycle_transition(&sess.lc, VM_STATE_TEARING_DOWN, reason);
		reboot_reason = reason;
		if (cannot_reboot)
			why = VM_STOP_ERROR;   /* exit code 1 (docs/cli.md) */
		vm_session_detach(&sess);
		vm_destroy(vm);
		if (!reboot)
			break;
		log_info("vm", "guest reboot");
	}
	vm_session_finish(&sess);
	log_info("vm", "compounding: %llu console bytes in %llu writes, %llu of %llu timer re-arms without a wake-up, "
		 "%llu exits saved by lookahead in %llu runs, %llu disk requests in %llu submissions "
		 "(%llu io_uring submits, %llu io_uring waits, %llu disk system calls)",
		 (unsigned long long)compound_total(COMPOUND_CONSOLE_BYTES),
		 (unsigned long long)compound_total(COMPOUND_CONSOLE_WRITES),
		 (unsigned long long)compound_total(COMPOUND_TIMER_WAKES_SAVED),
		 (unsigned long long)compound_total(COMPOUND_TIMER_REARMS),
		 (unsigned long long)compound_total(COMPOUND_LOOKAHEAD_EXITS_SAVED),
		 (unsigned long long)compound_total(COMPOUND_LOOKAHEAD_RUNS),
		 (unsigned long long)compound_total(COMPOUND_DISK_REQUESTS),
		 (unsigned long long)compound_total(COMPOUND_DISK_BATCHES),
		 (unsigned long long)host_call_total(HOST_CALL_IO_SUBMIT),
		 (unsigned long long)host_call_total(HOST_CALL_IO_WAIT),
		 (unsigned long long)host_call_total(HOST_CALL_DISK));
	if (cfg->n_nets)
		log_info("vm", "compounding: %llu network frames sent in %llu batches, %llu read from a tap in %llu batches "
			 "(%llu io_uring submits and %llu tap writes out, %llu io_uring submits and %llu tap reads in, "
			 "%llu wake-ups)",
			 (unsigned long long)compound_total(COMPOUND_NET_TX_FRAMES),
			 (unsigned long long)compound_total(COMPOUND_NET_TX_BATCHES),
			 (unsigned long long)compound_total(COMPOUND_NET_RX_FRAMES),
			 (unsigned long long)compound_total(COMPOUND_NET_RX_BATCHES),
			 (unsigned long long)host_call_total(HOST_CALL_NET_TX_SUBMIT),
			 (unsigned long long)host_call_total(HOST_CALL_NET_WRITE),
			 (unsigned long long)host_call_total(HOST_CALL_NET_RX_SUBMIT),
			 (unsigned long long)host_call_total(HOST_CALL_NET_READ),
			 (unsigned long long)host_call_total(HOST_CALL_WAKE));
out:
	if (uart != serial)
		chardev_free(uart);
	chardev_free(serial);
	sandboxed_console = NULL;
	log_set_flush_hook(NULL, NULL);
	console_close(con);
	host_power_stop(host_power);
	vm_free_backends(&be);
	return why;
}
