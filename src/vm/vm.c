/* The VM object: builds the machine from a vm_config, runs one host thread
 * per vCPU, serves the console on the main thread, and turns the way the
 * run ended into an exit code (docs/cli.md).
 *
 * vCPU scheduling: one host thread per vCPU (docs/architecture.md).  A
 * vCPU that executes HLT sleeps on its condition variable until an
 * interrupt, NMI, INIT/SIPI or stop request is signalled. */
#include "vm/vm.h"

#include "boot/boot.h"
#include "cli/cli.h"
#include "cpu/accel.h"
#include "hv/hyperv.h"
#include "hw/chardev.h"
#include "hw/intc/lapic.h"
#include "hw/pc.h"
#include "util/error.h"
#include "snapshot/snapshot.h"
#include "util/log.h"
#include "vm/console.h"
#include "vm/control.h"
#include "vm/machine.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic int signal_stop;

static void on_signal(int sig)
{
	signal_stop = sig;
}

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

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	struct vcpu_exit exit;

	while (!vm_stopping(vm)) {
		/* Parks here while the control API holds the vCPUs (pause, save). */
		vcpu_gate_checkpoint(&vm->gate);
		if (vm_stopping(vm))
			break;
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
		int rc = vm->accel->vcpu_run(vcpu, &exit);
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
	vcpu_gate_leave(&vm->gate);
	return NULL;
}

static void vm_destroy(struct vm *vm)
{
	if (vm->platform)
		platform_destroy(vm);
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

/* The Hyper-V interface (src/hv), on unless --hyperv off.  Only the emu
 * engine presents it for now: the KVM engine's CPUID is the host's and
 * its MSRs do not reach vessel yet (docs/hyperv.md). */
static int vm_create_hyperv(struct vm *vm)
{
	bool on;
	uint32_t features;
	int rc = hv_parse(vm->cfg->hyperv, &on, &features);
	if (rc < 0 || !on || strcmp(vm->cfg->engine, "emu"))
		return rc;
	return hv_vm_create(vm, features, LAPIC_DEFAULT_TSC_HZ, LAPIC_TIMER_HZ);
}

static int vm_create(const struct vm_config *cfg, struct chardev *console, struct vm **out)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return err_set(-ENOMEM, "out of memory");
	vm->cfg = cfg;
	vm->accel = accel_find(cfg->engine);
	pthread_mutex_init(&vm->dev_lock, NULL);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	int rc = gmem_init(&vm->mem, cfg->mem_bytes);
	/* The firmware ROM exists before the engine maps guest memory; the
	 * boot loader fills it later (src/boot). */
	if (rc == 0)
		rc = gmem_add_rom(&vm->mem, GMEM_ROM_BASE, GMEM_ROM_SIZE, NULL);
	if (rc == 0)
		rc = vm->accel->vm_init(vm);
	if (rc == 0)
		rc = vm_create_hyperv(vm);
	for (unsigned i = 0; rc == 0 && i < cfg->cpus; i++) {
		struct vcpu *v = calloc(1, sizeof(*v));
		if (!v) {
			rc = err_set(-ENOMEM, "out of memory");
			break;
		}
		v->vm = vm;
		v->id = i;
		v->run_state = i == 0 ? VCPU_RUNNABLE : VCPU_WAIT_FOR_SIPI;
		pthread_mutex_init(&v->lock, NULL);
		pthread_cond_init(&v->wake, NULL);
		vm->vcpus[vm->n_vcpus++] = v;
		rc = vm->accel->vcpu_init(v);
	}
	if (rc == 0) {
		struct platform_options opts = { .console = console };
		rc = platform_create_opts(vm, &opts);
	}
	if (rc < 0) {
		vm_destroy(vm);
		return rc;
	}
	*out = vm;
	return 0;
}

static int stop_to_exit_code(struct vm *vm, enum vm_stop_reason reason, bool no_reboot)
{
	switch (reason) {
	case VM_STOP_POWEROFF:
		fprintf(stderr, "vessel: guest powered off\n");
		return EXIT_OK;
	case VM_STOP_RESET:
		if (no_reboot)
			fprintf(stderr, "vessel: guest rebooted (--no-reboot)\n");
		return EXIT_OK;
	case VM_STOP_TRIPLE_FAULT:
		return EXIT_TRIPLE_FAULT;
	case VM_STOP_DEBUG_EXIT: {
		/* The value on stderr: codes 1 and 3 (values 0 and 1, as QEMU)
		 * and EXIT_DEBUG_EXIT_HIGH do not tell it alone. */
		int code = cli_debug_exit_code((unsigned)vm->debug_exit_value);
		fprintf(stderr, "vessel: guest wrote 0x%02x to the debug-exit port (exit code %d)\n",
			(unsigned)vm->debug_exit_value & 0xff, code);
		return code;
	}
	case VM_STOP_QUIT:
		fprintf(stderr, "vessel: quit\n");
		return EXIT_SIGNAL;
	default:
		return EXIT_FAILURE_RUN;
	}
}

/* Runs the machine until it stops; returns the stop reason. */
static enum vm_stop_reason vm_run_once(struct vm *vm, struct console *con)
{
	for (unsigned i = 0; i < vm->n_vcpus; i++) {
		if (pthread_create(&vm->vcpus[i]->thread, NULL, vcpu_thread, vm->vcpus[i]) != 0) {
			log_error("vm", "cannot start the thread of cpu%u", i);
			vm_request_stop(vm, VM_STOP_ERROR);
			for (unsigned j = 0; j < i; j++)
				pthread_join(vm->vcpus[j]->thread, NULL);
			return VM_STOP_ERROR;
		}
	}
	while (!vm_stopping(vm)) {
		switch (console_poll(con, 100)) {
		case CONSOLE_QUIT:
			vm_request_stop(vm, VM_STOP_QUIT);
			break;
		case CONSOLE_RESET:
			vm_request_stop(vm, VM_STOP_RESET);
			break;
		case CONSOLE_POWERDOWN:
			platform_press_power_button(vm);   /* takes the device lock itself */
			break;
		default:
			break;
		}
		if (signal_stop)
			vm_request_stop(vm, VM_STOP_QUIT);
	}
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		pthread_join(vm->vcpus[i]->thread, NULL);
	return (enum vm_stop_reason)atomic_load(&vm->stop_reason);
}

/* Catches the commonest mistakes before any memory is allocated; the
 * loaders check the contents. */
static int check_input_files(const struct vm_config *cfg)
{
	if (cfg->n_disks)
		return err_set(-ENOTSUP, "disk %s: attaching disks to a VM is not supported yet (no virtio-blk device); "
			       "`vessel disk` manages images", cfg->disks[0].path);
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

/* Builds the machine and puts the guest in it: a snapshot's state, or a
 * kernel through the boot loader. Returns an exit code, 0 when ready. */
static int vm_prepare(struct vm_session *sess, struct chardev *serial, const char *restore, struct vm **out)
{
	const struct vm_config *cfg = sess->cfg;
	struct vm *vm = NULL;
	int rc = vm_create(cfg, serial, &vm);
	/* A snapshot is accepted before its devices are created, which loads
	 * their plug-ins. */
	if (rc == 0 && restore && (rc = snapshot_check(vm, restore)) < 0) {
		cli_error("run", "%s", err_msg());
		vm_destroy(vm);
		return EXIT_USAGE;
	}
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
	if (rc < 0) {
		cli_error("run", "%s", err_msg());
		if (vm) {
			vm_session_detach(sess);
			vm_destroy(vm);
		}
		return bad_device ? EXIT_USAGE : EXIT_FAILURE_RUN;
	}
	if (restore) {
		struct snapshot_restore_opts opts = { .map_memory = true };
		rc = lifecycle_transition(&sess->lc, VM_STATE_LOADING_STATE, "restore");
		if (rc == 0)
			rc = snapshot_restore(vm, restore, &opts);
	} else {
		rc = lifecycle_transition(&sess->lc, VM_STATE_POWERING_UP, NULL);
		if (rc == 0)
			rc = boot_load(vm, cfg);
	}
	if (rc < 0) {
		cli_error("run", "%s", err_msg());
		vm_session_detach(sess);
		vm_destroy(vm);
		return EXIT_USAGE;
	}
	*out = vm;
	return EXIT_OK;
}

int vm_run(const struct vm_config *cfg)
{
	if (check_input_files(cfg) < 0) {
		cli_error("run", "%s", err_msg());
		return EXIT_USAGE;
	}
	/* The snapshot's file and config are accepted before the session
	 * looks for plug-ins (docs/security.md "Plug-ins"). */
	if (cfg->restore && snapshot_check(NULL, cfg->restore) < 0) {
		cli_error("run", "%s", err_msg());
		return EXIT_USAGE;
	}
	struct console *con;
	if (console_open(&con, cfg->serial) < 0) {
		cli_error("run", "%s", err_msg());
		return EXIT_USAGE;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct chardev *serial = console_chardev_new(con);
	struct vm_session sess;
	int code = EXIT_FAILURE_RUN;
	if (!serial || vm_session_start(&sess, cfg) < 0) {
		cli_error("run", "%s", err_msg());
		if (serial)
			vm_session_finish(&sess);
		goto out;
	}
	for (const char *restore = cfg->restore;; restore = NULL) {
		struct vm *vm;
		code = vm_prepare(&sess, serial, restore, &vm);
		if (code != EXIT_OK)
			break;
		lifecycle_transition(&sess.lc, VM_STATE_RUNNING, NULL);
		enum vm_stop_reason why = vm_run_once(vm, con);
		code = stop_to_exit_code(vm, why, cfg->no_reboot);
		bool reboot = why == VM_STOP_RESET && !cfg->no_reboot;
		/* The lifecycle: a reset powers the machine up again; everything
		 * else powers it down for good. */
		if (!reboot && (why == VM_STOP_POWEROFF || why == VM_STOP_RESET))
			lifecycle_transition(&sess.lc, VM_STATE_POWERING_DOWN, why == VM_STOP_POWEROFF ? "power off" : "reboot");
		vm_session_detach(&sess);
		vm_destroy(vm);
		if (!reboot)
			break;
		log_info("vm", "guest reboot");
		/* A restored VM reboots into its kernel, if it was given one. */
		if (!cfg->kernel)
			break;
	}
	vm_session_finish(&sess);
out:
	chardev_free(serial);
	console_close(con);
	return code;
}
