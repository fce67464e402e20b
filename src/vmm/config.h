/* What a VM is made of: filled from a manifest (src/vmm/manifest.c) and
 * from `vessel run` flags (flags win).  Every field maps to one manifest
 * field documented in docs/manifest.md. */
#ifndef VESSEL_VMM_CONFIG_H
#define VESSEL_VMM_CONFIG_H

#include "block/crypt_disk.h"
#include "machine/vnuma.h"
#include "vmm/memhp.h"

#include <stdbool.h>
#include <stdint.h>

#define VM_MAX_CPUS 64
#define VM_MAX_DISKS 16
#define VM_MAX_PLUGIN_DIRS 8
#define VM_MAX_DEVICES 32
#define VM_MAX_CONSOLES 8
#define VM_MAX_NETS 4
#define VM_MAX_HOSTFWD 16

/* What the power agent does to a VM when the host goes to sleep or shuts
 * down (docs/power.md "Policies"). */
enum vm_power_policy {
	VM_POWER_NONE,       /* leave it running */
	VM_POWER_SUSPEND,    /* press the sleep button, wait for ACPI S3 */
	VM_POWER_SAVE,       /* snapshot to power_save_file, then stop */
	VM_POWER_PAUSE,      /* stop the vCPUs */
	VM_POWER_SHUTDOWN,   /* press the power button, wait, then power off */
	VM_POWER_POLICY_COUNT,
};

/* "none", "suspend"...; "?" if out of range. */
const char *vm_power_policy_name(enum vm_power_policy p);
/* Name -> policy; -EINVAL (err_set naming the names) if unknown. */
int vm_power_policy_parse(const char *name, enum vm_power_policy *out);

/* What vessel does when the guest reports a panic (Hyper-V crash MSRs;
 * docs/hyperv.md "Crash MSRs"), after logging it and sending the API
 * event guest-panicked. */
enum vm_panic_action {
	VM_PANIC_KEEP,       /* nothing: the guest goes on (Linux: its panic= setting) */
	VM_PANIC_PAUSE,      /* pause the VM, to be inspected, resumed or powered off */
	VM_PANIC_POWEROFF,   /* end the run (exit code 12) */
	VM_PANIC_ACTION_COUNT,
};

/* "keep", "pause", "poweroff"; "?" if out of range. */
const char *vm_panic_action_name(enum vm_panic_action a);
/* Name -> action; -EINVAL (err_set naming the names) if unknown. */
int vm_panic_action_parse(const char *name, enum vm_panic_action *out);

/* One entry of the manifest's "devices" list: a built-in or plug-in device
 * type, a unique id (used by `vessel ctl device remove`), and its
 * parameters kept as JSON object text for the device type to interpret. */
struct vm_device_config {
	char *type;
	char *id;
	char *params;      /* JSON object text, "{}" when none */
};

/* One entry of the manifest's "consoles" list (besides the serial port). */
struct vm_console_config {
	char *type;        /* "serial" (extra 16550 port) or "virtio" */
	char *backend;     /* as vm_config.serial: stdio, none, file:PATH, unix:PATH */
};

/* A port of the host forwarded to one of the guest's (user networking). */
struct vm_hostfwd {
	bool udp;
	uint32_t host_addr;      /* IPv4, host byte order; 0: every address */
	uint16_t host_port, guest_port;
};

/* One network interface (--net, the manifest's "nets"; docs/virtio.md). */
struct vm_net_config {
	char *type;              /* "user" (libslirp) or "tap" */
	char *ifname;            /* tap: the host interface */
	bool has_mac;
	uint8_t mac[6];          /* else 52:54:00:12:34:56 + the interface's index */
	unsigned n_hostfwd;
	struct vm_hostfwd hostfwd[VM_MAX_HOSTFWD];
	bool hotplug;            /* opened at start, but no NIC until a device-add takes it (docs/hotplug.md) */
};

struct vm_config {
	char *engine;          /* "emu" (default) or "kvm" */
	unsigned cpus;         /* 1..VM_MAX_CPUS: plugged in at power-on */
	unsigned max_cpus;     /* possible CPUs, cpus..VM_MAX_CPUS: `cpu add` plugs in the others; 0: cpus */
	char *cpu;             /* CPU model, machine/cpu_model.h; NULL: max */
	uint64_t mem_bytes;
	/* Guest-physical space kept for memory hot-add (docs/hotplug.md
	 * "Memory"), split between the NUMA nodes; 0: none. */
	uint64_t mem_hotplug;
	enum gmem_backend memory_backend;   /* --memory-backend (docs/numa.md "Huge pages") */
	uint64_t memory_page;  /* --memory-page-size: hugetlb page bytes, 2 MiB or 1 GiB; 0: 2 MiB */
	/* Memory hot-added before a snapshot, added again at its restore. */
	unsigned n_mem_added;
	struct memhp_piece mem_added[GMEM_MAX_REGIONS];
	uint64_t code_cache_bytes; /* emu: decoded code kept for the VM; 0: default (128 MiB) */
	unsigned numa_nodes;   /* shorthand: N even nodes; 0: see numa */
	struct numa_config numa; /* --numa nodes, distances, policy (docs/numa.md) */
	char *kernel;          /* bzImage or Multiboot image */
	char *initrd;
	char *cmdline;
	bool decompress_kernel; /* unpack the bzImage payload on the host */
	bool no_reboot;         /* guest reboot ends the run instead */
	char *serial;           /* "stdio" (default), "none", "file:PATH", "unix:PATH" */
	bool virtio_console;    /* --console virtio: serial's backend serves hvc0, COM1 gets none */
	char *api_socket;
	char *restore;          /* snapshot to load instead of booting */
	bool restore_no_verify; /* `--no-verify` only: map the snapshot's RAM without checking its CRC */
	bool deterministic;     /* virtual time from instruction counts */
	bool jit;               /* emu engine: translate hot blocks to host code */
	bool sandbox;           /* seccomp filter, no_new_privs, no capabilities (src/vmm/sandbox.h) */
	unsigned n_disks;
	struct vm_disk_config disks[VM_MAX_DISKS];
	bool rng;               /* a virtio-rng device */
	uint64_t rng_rate;      /* its limit in bytes a second; 0: none */
	unsigned n_nets;
	struct vm_net_config nets[VM_MAX_NETS];
	unsigned n_plugin_dirs;
	char *plugin_dirs[VM_MAX_PLUGIN_DIRS];
	unsigned n_devices;
	struct vm_device_config devices[VM_MAX_DEVICES];
	unsigned n_consoles;
	struct vm_console_config consoles[VM_MAX_CONSOLES];
	char *manifest;         /* the manifest file read, if any: messages name it */
	char *hyperv;           /* Hyper-V interface: NULL or "on", "off", or feature changes (src/hv) */
	enum vm_panic_action on_panic;   /* --on-panic */
	char *compound;         /* compounding mechanisms: NULL (all on) or a --compound list (machine/compound.h) */
	/* Host power coordination (docs/power.md): the policies the power
	 * agent applies, the snapshot file of the save policy, and whether
	 * the run enters the registry of running VMs. */
	enum vm_power_policy on_host_sleep, on_host_shutdown;
	char *power_save_file;
	bool no_register;
	/* The host's power-supply directory mirrored into the guest's ACPI
	 * AC adapter and battery (--host-power-status); NULL: none. */
	char *host_power_status;
};

void vm_config_defaults(struct vm_config *cfg);
/* Checks ranges and combinations; returns 0 or -EINVAL with err_set(). */
int vm_config_validate(const struct vm_config *cfg);
/* The virtual NUMA topology of cfg completed (shorthand expanded, default
 * distances) and bound to host nodes; 0 or -errno with err_set(). */
int vm_config_numa(const struct vm_config *cfg, struct numa_config *out);
/* The possible CPUs: max_cpus, or cpus without CPU hot-add. */
unsigned vm_config_possible_cpus(const struct vm_config *cfg);
void vm_config_free(struct vm_config *cfg);

#endif
