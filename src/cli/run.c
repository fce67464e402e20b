/* `vessel run`: flags -> struct vm_config -> vm_run() -> the stop reason
 * as a message and an exit code (docs/cli.md). */
#include "machine/cpu_model.h"
#include "cli/cli.h"
#include "hv/hyperv.h"
#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"
#include "vmm/config.h"
#include "vmm/host_power.h"
#include "vmm/net.h"
#include "vmm/vm.h"
#include "vmm/sandbox.h"
#include "vmm/snapshot.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char run_usage[] =
	"usage: vessel run [options]\n"
	"\n"
	"Boots a virtual machine. The serial console is attached to the terminal;\n"
	"press Ctrl-A x to quit, Ctrl-A h for the other escapes.\n"
	"\n"
	"options:\n"
	"  -k, --kernel FILE       Linux bzImage or Multiboot kernel to boot\n"
	"  -i, --initrd FILE       initial ramdisk for a Linux kernel\n"
	"  -a, --append CMDLINE    kernel command line\n"
	"  -c, --cpus N            number of virtual CPUs (default 1)\n"
	"      --max-cpus N        possible CPUs: `vessel ctl cpu add` plugs in those\n"
	"                          beyond --cpus while the guest runs (docs/hotplug.md)\n"
	"  -m, --memory SIZE       guest RAM, e.g. 512M, 2G (default 512M)\n"
	"  -e, --engine NAME       emu (software x86-64, default) or kvm\n"
	"      --cpu MODEL[,+F,-F] CPU model: host, max (default), x86-64, x86-64-v2,\n"
	"                          x86-64-v3, then features added or removed;\n"
	"                          --cpu help lists them\n"
	"      --disk PATH[,OPT...] attach a disk image as a virtio-blk device (repeatable);\n"
	"                          OPT: ro, format=raw|vhd, key-file=FILE (LUKS2 passphrase),\n"
	"                          serial=S, id=ID, cache=writeback|none|unsafe, queues=N,\n"
	"                          packed=on|off\n"
	"      --code-cache SIZE   emu: decoded guest code kept for the whole VM, shared\n"
	"                          by its vCPUs (default 128M; 1M to 16G); with --jit on,\n"
	"                          host code too: a quarter of SIZE more\n"
	"      --rng               attach a virtio-rng device (entropy from the host)\n"
	"      --rng-rate BYTES    at most BYTES a second of entropy to the guest (implies --rng)\n"
	"      --net user[,hostfwd=tcp::HOSTPORT-:GUESTPORT...][,mac=ADDR]\n"
	"                          a virtio-net interface on user networking (DHCP, DNS,\n"
	"                          outbound TCP/UDP, forwarded host ports; repeatable)\n"
	"      --net tap,ifname=NAME[,mac=ADDR]\n"
	"                          a virtio-net interface on the host's tap device NAME\n"
	"      --memory-backend B  thp (default), normal or hugetlb (2 MiB pages)\n"
	"      --memory-page-size S  hugetlb page size: 2M (default) or 1G\n"
	"      --memory-hotplug SIZE  keep SIZE of address space for `ctl memory add`\n"
	"                          (a multiple of 128M, shared between the NUMA nodes)\n"
	"      --numa-nodes N      give the guest N virtual NUMA nodes of equal size\n"
	"      --numa node,mem=SIZE,cpus=A-B[,host-node=N]\n"
	"                          one virtual NUMA node (repeat; docs/numa.md)\n"
	"      --numa-distance A,B,D  SLIT distance between nodes A and B (default 20)\n"
	"      --numa-policy P     bind, preferred (default) or interleave\n"
	"      --numa-follow       re-pin vCPU threads when this process's CPU set changes\n"
	"      --serial WHERE      stdio (default), none, file:PATH, unix:PATH\n"
	"      --console serial|virtio  the console on COM1 (default) or on a\n"
	"                          virtio-console, the guest's hvc0 (console=hvc0)\n"
	"      --no-reboot         end the run when the guest reboots\n"
	"      --on-panic A        when the guest reports a panic: keep (default: the\n"
	"                          guest goes on), pause, or poweroff (exit code 12)\n"
	"      --no-decompress     let the kernel decompress itself in the guest\n"
	"      --deterministic     virtual time from instruction counts\n"
	"      --hyperv SPEC       Hyper-V interface: on (default), off, help (list the\n"
	"                          features), or -NAME,... to turn features off\n"
	"      --compound SPEC     instruction and host-call compounding: on (default), off,\n"
	"                          or NAME=on|off,... for console, timer, lookahead, block,\n"
	"                          net\n"
	"                          (docs/compounding.md)\n"
	"      --api-socket PATH   serve the control API on this Unix socket\n"
	"      --no-register       stay out of the registry of running VMs (the power\n"
	"                          agent does not see the VM; docs/power.md)\n"
	"      --on-host-sleep P   what the power agent does when the host sleeps:\n"
	"                          suspend, save, pause (default), shutdown, none\n"
	"      --on-host-shutdown P  the same when the host shuts down (default shutdown)\n"
	"      --power-save-file FILE  the snapshot of the save policy\n"
	"      --host-power-status[=DIR]  show the host's AC and battery state (DIR, default\n"
	"                          /sys/class/power_supply) to the guest as an ACPI AC\n"
	"                          adapter and battery\n"
	"      --manifest FILE     read the VM description from a JSON manifest\n"
	"      --restore FILE      resume a VM from a snapshot (it sets the engine, CPUs,\n"
	"                          memory and NUMA nodes; --kernel lets the guest reboot)\n"
	"      --no-verify         with --restore: skip the check of the RAM's CRC\n"
"      --jit on|off        emu engine: translate hot code to host code (default on;\n"
"                          docs/architecture.md \"Code generation\")\n"
"      --sandbox on|off    seccomp filter, no_new_privs, no capabilities (default on;\n"
"                          off only to debug, docs/security.md)\n"
"      --trace KINDS       trace insn, block (emu engine), io, irq; comma-separated\n"
"      --trace-file FILE   write the trace to FILE instead of stderr\n"
	"  -h, --help              this help\n"
	"\n"
	"Exit codes: 0 guest powered off, 1 runtime error, 2 bad usage or input,\n"
	"3 guest triple fault, 4 quit from the console or by a signal,\n"
	"6 a forbidden system call in the sandbox, 10 the guest hibernated (ACPI S4),\n"
	"(v<<1)|1 guest wrote v (0..0x7f) to the debug-exit port 0xf4, 8 it wrote\n"
	"0x80..0xff (only the low byte of a write counts).\n";

enum {
	OPT_DISK = 256, OPT_NUMA, OPT_NUMA_NODE, OPT_NUMA_DISTANCE, OPT_NUMA_POLICY, OPT_SERIAL, OPT_NO_REBOOT, OPT_ON_PANIC, OPT_NO_DECOMPRESS,
	OPT_DETERMINISTIC, OPT_HYPERV, OPT_API_SOCKET, OPT_MANIFEST, OPT_RESTORE, OPT_SANDBOX, OPT_JIT, OPT_TRACE, OPT_TRACE_FILE, OPT_NO_VERIFY, OPT_CPU,
	OPT_RNG, OPT_RNG_RATE, OPT_NET, OPT_CONSOLE, OPT_COMPOUND, OPT_CODE_CACHE, OPT_NO_REGISTER, OPT_ON_HOST_SLEEP,
	OPT_ON_HOST_SHUTDOWN, OPT_POWER_SAVE_FILE, OPT_HOST_POWER_STATUS, OPT_MAX_CPUS, OPT_MEMORY_HOTPLUG, OPT_NUMA_FOLLOW, OPT_MEMORY_BACKEND, OPT_MEMORY_PAGE_SIZE,
};

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'i' },
	{ "append", required_argument, NULL, 'a' },
	{ "cpus", required_argument, NULL, 'c' },
	{ "max-cpus", required_argument, NULL, OPT_MAX_CPUS },
	{ "memory", required_argument, NULL, 'm' },
	{ "memory-hotplug", required_argument, NULL, OPT_MEMORY_HOTPLUG },
	{ "memory-backend", required_argument, NULL, OPT_MEMORY_BACKEND },
	{ "memory-page-size", required_argument, NULL, OPT_MEMORY_PAGE_SIZE },
	{ "engine", required_argument, NULL, 'e' },
	{ "cpu", required_argument, NULL, OPT_CPU },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "rng-rate", required_argument, NULL, OPT_RNG_RATE },
	{ "net", required_argument, NULL, OPT_NET },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "numa-nodes", required_argument, NULL, OPT_NUMA },
	{ "numa", required_argument, NULL, OPT_NUMA_NODE },
	{ "numa-distance", required_argument, NULL, OPT_NUMA_DISTANCE },
	{ "numa-policy", required_argument, NULL, OPT_NUMA_POLICY },
	{ "numa-follow", no_argument, NULL, OPT_NUMA_FOLLOW },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
	{ "on-panic", required_argument, NULL, OPT_ON_PANIC },
	{ "no-decompress", no_argument, NULL, OPT_NO_DECOMPRESS },
	{ "deterministic", no_argument, NULL, OPT_DETERMINISTIC },
	{ "hyperv", required_argument, NULL, OPT_HYPERV },
	{ "compound", required_argument, NULL, OPT_COMPOUND },
	{ "code-cache", required_argument, NULL, OPT_CODE_CACHE },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "no-register", no_argument, NULL, OPT_NO_REGISTER },
	{ "on-host-sleep", required_argument, NULL, OPT_ON_HOST_SLEEP },
	{ "on-host-shutdown", required_argument, NULL, OPT_ON_HOST_SHUTDOWN },
	{ "power-save-file", required_argument, NULL, OPT_POWER_SAVE_FILE },
	{ "host-power-status", optional_argument, NULL, OPT_HOST_POWER_STATUS },
	{ "manifest", required_argument, NULL, OPT_MANIFEST },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
	{ "sandbox", required_argument, NULL, OPT_SANDBOX },
	{ "jit", required_argument, NULL, OPT_JIT },
	{ "trace", required_argument, NULL, OPT_TRACE },
	{ "trace-file", required_argument, NULL, OPT_TRACE_FILE },
	{ "help", no_argument, NULL, 'h' },
	{ "verbose", no_argument, NULL, 'v' },
	{ 0, 0, 0, 0 },
};

static void replace(char **field, const char *value)
{
	free(*field);
	*field = strdup(value);
}

/* The machine's shape as the flags and the manifest gave it, before a
 * snapshot decides it: a value that disagrees with the snapshot's is an
 * error, not something to drop silently. */
struct shape {
	const char *cpus_from, *memory_from, *engine_from, *numa_from;   /* NULL: not given */
	unsigned cpus, numa_nodes;
	uint64_t mem_bytes;
	char engine[8];
};

/* Nodes given one by one (--numa, or a snapshot's topology), else the
 * --numa-nodes shorthand. */
static unsigned shape_numa_nodes(const struct vm_config *cfg)
{
	return cfg->numa.n_nodes ? cfg->numa.n_nodes : cfg->numa_nodes;
}

static void shape_take(struct shape *sh, const struct vm_config *cfg)
{
	struct vm_config def;
	vm_config_defaults(&def);
	/* A manifest value that differs from the default was given there;
	 * one equal to it cannot be told from an absent one. */
	if (!sh->cpus_from && cfg->cpus != def.cpus)
		sh->cpus_from = "manifest field cpus";
	if (!sh->memory_from && cfg->mem_bytes != def.mem_bytes)
		sh->memory_from = "manifest field memory";
	if (!sh->engine_from && strcmp(cfg->engine, def.engine))
		sh->engine_from = "manifest field engine";
	if (!sh->numa_from && cfg->numa_nodes != def.numa_nodes)
		sh->numa_from = "manifest field numa_nodes";
	vm_config_free(&def);
	sh->cpus = cfg->cpus;
	sh->mem_bytes = cfg->mem_bytes;
	sh->numa_nodes = shape_numa_nodes(cfg);
	snprintf(sh->engine, sizeof(sh->engine), "%s", cfg->engine);
}

static int shape_check(const struct shape *sh, const struct vm_config *cfg)
{
	const char *snap = cfg->restore;
	if (sh->cpus_from && sh->cpus != cfg->cpus)
		return cli_usage_error("run", "%s gives %u vCPUs, but snapshot %s holds a VM with %u "
				       "(a snapshot sets the VM's shape: leave it out)", sh->cpus_from, sh->cpus, snap, cfg->cpus);
	if (sh->memory_from && sh->mem_bytes != cfg->mem_bytes)
		return cli_usage_error("run", "%s gives %llu MiB of RAM, but snapshot %s holds a VM with %llu MiB "
				       "(a snapshot sets the VM's shape: leave it out)", sh->memory_from,
				       (unsigned long long)(sh->mem_bytes >> 20), snap,
				       (unsigned long long)(cfg->mem_bytes >> 20));
	if (sh->engine_from && strcmp(sh->engine, cfg->engine))
		return cli_usage_error("run", "%s gives the %s engine, but snapshot %s was made on %s "
				       "(a snapshot sets the VM's shape: leave it out)", sh->engine_from, sh->engine, snap,
				       cfg->engine);
	if (sh->numa_from && sh->numa_nodes != shape_numa_nodes(cfg))
		return cli_usage_error("run", "%s gives %u NUMA nodes, but snapshot %s holds a VM with %u "
				       "(a snapshot sets the VM's shape: leave it out)", sh->numa_from, sh->numa_nodes, snap,
				       shape_numa_nodes(cfg));
	return 0;
}

static int parse_uint(const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (end == s || *end || v > 0xffffffffUL || s[0] == '-')
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* --disk PATH[,ro][,format=raw|vhd][,key-file=F][,serial=S][,id=ID]
 * [,cache=writeback|none|unsafe][,queues=N][,packed=on|off] into d
 * (cleared first); a usage error names the bad option. */
static int parse_disk(const char *arg, struct vm_disk_config *d)
{
	memset(d, 0, sizeof(*d));
	char *copy = strdup(arg);
	if (!copy)
		return err_set(-ENOMEM, "out of memory");
	char *save = NULL, *tok = strtok_r(copy, ",", &save);
	int rc = 0;
	if (!tok || !*tok) {
		rc = err_set(-EINVAL, "--disk: no image path in '%s'", arg);
		goto out;
	}
	d->path = strdup(tok);
	while (rc == 0 && (tok = strtok_r(NULL, ",", &save))) {
		unsigned n;
		char *eq = strchr(tok, '=');
		const char *val = eq ? eq + 1 : NULL;
		if (eq)
			*eq = 0;
		if (!strcmp(tok, "ro") && !val)
			d->readonly = true;
		else if (!strcmp(tok, "format") && val && (!strcmp(val, "raw") || !strcmp(val, "vhd")))
			replace(&d->format, val);
		else if (!strcmp(tok, "key-file") && val && *val)
			replace(&d->key_file, val);
		else if (!strcmp(tok, "serial") && val && strlen(val) <= 20)
			replace(&d->serial, val);
		else if (!strcmp(tok, "id") && val && *val)
			replace(&d->id, val);
		else if (!strcmp(tok, "cache") && vm_disk_cache_parse(val) >= 0)
			d->cache = vm_disk_cache_parse(val);
		else if (!strcmp(tok, "packed") && val && (!strcmp(val, "on") || !strcmp(val, "off")))
			d->split_only = !strcmp(val, "off");
		else if (!strcmp(tok, "queues") && val && parse_uint(val, &n) == 0 && n >= 1 && n <= VM_DISK_MAX_QUEUES)
			d->queues = n;
		else
			rc = err_set(-EINVAL, "--disk: bad option '%s%s%s' (expected ro, format=raw|vhd, key-file=FILE, "
				     "serial=S of at most 20 characters, id=ID, cache=writeback|none|unsafe, "
				     "queues=1..%d, packed=on|off)", tok, eq ? "=" : "", val ? val : "", VM_DISK_MAX_QUEUES);
	}
out:
	free(copy);
	return rc;
}

static atomic_int quit_requested;

static void on_signal(int sig)
{
	atomic_store(&quit_requested, sig);
}

/* SIGINT, SIGTERM and SIGHUP end the run as the console escape does;
 * SIGPIPE is ignored (a closed serial socket is an I/O error). */
static void install_signal_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

_Static_assert(EXIT_SANDBOX == SANDBOX_EXIT_CODE, "docs/cli.md documents one code");

int cli_run_exit_code(enum vm_stop_reason why, bool no_reboot, int debug_exit_value)
{
	switch (why) {
	case VM_STOP_POWEROFF:
		fprintf(stderr, "vessel: guest powered off\n");
		return EXIT_OK;
	case VM_STOP_RESET:
		if (no_reboot)
			fprintf(stderr, "vessel: guest rebooted (--no-reboot)\n");
		return EXIT_OK;
	case VM_STOP_TRIPLE_FAULT:
		return EXIT_TRIPLE_FAULT;
	case VM_STOP_PANIC:
		fprintf(stderr, "vessel: guest panicked (--on-panic poweroff)\n");
		return EXIT_GUEST_PANIC;
	case VM_STOP_HIBERNATE:
		fprintf(stderr, "vessel: guest hibernated (run it again with the same disks to resume it)\n");
		return EXIT_HIBERNATED;
	case VM_STOP_DEBUG_EXIT: {
		/* The value on stderr: codes 1 and 3 (values 0 and 1, as QEMU)
		 * and EXIT_DEBUG_EXIT_HIGH do not tell it alone. */
		int code = cli_debug_exit_code((unsigned)debug_exit_value);
		fprintf(stderr, "vessel: guest wrote 0x%02x to the debug-exit port (exit code %d)\n",
			(unsigned)debug_exit_value & 0xff, code);
		return code;
	}
	case VM_STOP_QUIT:
		fprintf(stderr, "vessel: quit\n");
		return EXIT_SIGNAL;
	case VM_STOP_BAD_INPUT:
		cli_error("run", "%s", err_msg());
		return EXIT_USAGE;
	case VM_STOP_START_FAILED:
		cli_error("run", "%s", err_msg());
		return EXIT_FAILURE_RUN;
	default:
		return EXIT_FAILURE_RUN;
	}
}

int cli_run_main(int argc, char **argv)
{
	struct vm_config cfg;
	vm_config_defaults(&cfg);
	const char *manifest = NULL, *trace_file = NULL;
	unsigned trace = 0;
	struct shape shape = { 0 };
	int rc = EXIT_USAGE;

	/* First pass: find --manifest, so that flags given later override it. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--manifest") == 0 && i + 1 < argc)
			manifest = argv[i + 1];
		else if (strncmp(argv[i], "--manifest=", 11) == 0)
			manifest = argv[i] + 11;
	}
	if (manifest && vm_manifest_load(manifest, &cfg) < 0) {
		cli_error("run", "%s", err_msg());
		goto out;
	}

	opterr = 0;
	optind = 1;
	int c;
	bool numa_nodes_given = false;
	while ((c = getopt_long(argc, argv, ":k:i:a:c:m:e:hv", run_options, NULL)) != -1) {
		unsigned long long size;
		switch (c) {
		case 'k': replace(&cfg.kernel, optarg); break;
		case 'i': replace(&cfg.initrd, optarg); break;
		case 'a': replace(&cfg.cmdline, optarg); break;
		case 'e':
			replace(&cfg.engine, optarg);
			shape.engine_from = "--engine";
			break;
		case OPT_CPU:
			if (!strcmp(optarg, "help")) {
				cpu_model_print_help(stdout);
				rc = EXIT_OK;
				goto out;
			}
			replace(&cfg.cpu, optarg);
			break;
		case 'c':
			if (parse_uint(optarg, &cfg.cpus) < 0) {
				rc = cli_usage_error("run", "--cpus: '%s' is not a number", optarg);
				goto out;
			}
			shape.cpus_from = "--cpus";
			break;
		case OPT_MAX_CPUS:
			if (parse_uint(optarg, &cfg.max_cpus) < 0 || !cfg.max_cpus) {
				rc = cli_usage_error("run", "--max-cpus: '%s' is not a number of CPUs", optarg);
				goto out;
			}
			break;
		case 'm':
			if (cli_parse_size(optarg, &size) < 0) {
				rc = cli_usage_error("run", "--memory: '%s' is not a size (e.g. 512M, 2G)", optarg);
				goto out;
			}
			cfg.mem_bytes = size;
			shape.memory_from = "--memory";
			break;
		case OPT_MEMORY_PAGE_SIZE:
			if (cli_parse_size(optarg, &size) < 0) {
				rc = cli_usage_error("run", "--memory-page-size: '%s' is not a size (expected 2M or 1G)", optarg);
				goto out;
			}
			cfg.memory_page = size;
			break;
		case OPT_MEMORY_HOTPLUG:
			if (cli_parse_size(optarg, &size) < 0) {
				rc = cli_usage_error("run", "--memory-hotplug: '%s' is not a size (e.g. 1G)", optarg);
				goto out;
			}
			cfg.mem_hotplug = size;
			break;
		case OPT_DISK: {
			if (cfg.n_disks >= VM_MAX_DISKS) {
				rc = cli_usage_error("run", "--disk: at most %d disks", VM_MAX_DISKS);
				goto out;
			}
			struct vm_disk_config *d = &cfg.disks[cfg.n_disks++];   /* vm_config_free() owns it */
			if (parse_disk(optarg, d) < 0) {
				rc = cli_usage_error("run", "%s", err_msg());
				goto out;
			}
			for (unsigned i = 0; d->id && i + 1 < cfg.n_disks; i++) {
				if (cfg.disks[i].id && !strcmp(cfg.disks[i].id, d->id)) {
					rc = cli_usage_error("run", "--disk: id '%s' is used twice", d->id);
					goto out;
				}
			}
			break;
		}
		case OPT_RNG: cfg.rng = true; break;
		case OPT_RNG_RATE:
			if (cli_parse_size(optarg, &size) < 0 || size == 0) {
				rc = cli_usage_error("run", "--rng-rate: '%s' is not a positive number of bytes", optarg);
				goto out;
			}
			cfg.rng = true;
			cfg.rng_rate = size;
			break;
		case OPT_NET:
			if (cfg.n_nets >= VM_MAX_NETS) {
				rc = cli_usage_error("run", "--net: at most %d interfaces", VM_MAX_NETS);
				goto out;
			}
			if (net_parse(optarg, &cfg.nets[cfg.n_nets++]) < 0) {   /* vm_config_free() owns it */
				rc = cli_usage_error("run", "%s", err_msg());
				goto out;
			}
			break;
		case OPT_NUMA:
			if (parse_uint(optarg, &cfg.numa_nodes) < 0) {
				rc = cli_usage_error("run", "--numa-nodes: '%s' is not a number", optarg);
				goto out;
			}
			shape.numa_from = "--numa-nodes";
			break;
		case OPT_NUMA_NODE:
		case OPT_NUMA_DISTANCE:
		case OPT_NUMA_POLICY:
			/* Command-line nodes replace the manifest's as a whole. */
			if (c == OPT_NUMA_NODE && !numa_nodes_given) {
				cfg.numa.n_nodes = 0;
				numa_nodes_given = true;
				shape.numa_from = "--numa";
			}
			if ((c == OPT_NUMA_NODE ? vnuma_parse_node(&cfg.numa, optarg)
			     : c == OPT_NUMA_DISTANCE ? vnuma_parse_distance(&cfg.numa, optarg)
						      : vnuma_parse_policy(optarg, &cfg.numa.policy)) < 0) {
				rc = cli_usage_error("run", "--%s: %s",
						     c == OPT_NUMA_NODE ? "numa" : c == OPT_NUMA_DISTANCE ? "numa-distance"
													 : "numa-policy",
						     err_msg());
				goto out;
			}
			break;
		case OPT_NUMA_FOLLOW: cfg.numa.follow = true; break;
		case OPT_MEMORY_BACKEND:
			if (gmem_backend_parse(optarg, &cfg.memory_backend) < 0) {
				rc = cli_usage_error("run", "--memory-backend: %s", err_msg());
				goto out;
			}
			break;
		case OPT_SERIAL: replace(&cfg.serial, optarg); break;
		case OPT_CONSOLE:
			if (strcmp(optarg, "serial") && strcmp(optarg, "virtio")) {
				rc = cli_usage_error("run", "--console: '%s' is neither serial nor virtio", optarg);
				goto out;
			}
			cfg.virtio_console = !strcmp(optarg, "virtio");
			break;
		case OPT_NO_REBOOT: cfg.no_reboot = true; break;
		case OPT_ON_PANIC:
			if (vm_panic_action_parse(optarg, &cfg.on_panic) < 0) {
				rc = cli_usage_error("run", "--on-panic: %s", err_msg());
				goto out;
			}
			break;
		case OPT_NO_DECOMPRESS: cfg.decompress_kernel = false; break;
		case OPT_DETERMINISTIC: cfg.deterministic = true; break;
		case OPT_HYPERV:
			if (!strcmp(optarg, "help")) {
				hv_list_features(stdout);
				rc = EXIT_OK;
				goto out;
			}
			replace(&cfg.hyperv, optarg);
			break;
		case OPT_COMPOUND: replace(&cfg.compound, optarg); break;
		case OPT_CODE_CACHE:
			if (cli_parse_size(optarg, &size) < 0 || size == 0) {
				rc = cli_usage_error("run", "--code-cache: '%s' is not a size (e.g. 64M)", optarg);
				goto out;
			}
			cfg.code_cache_bytes = size;
			break;
		case OPT_API_SOCKET: replace(&cfg.api_socket, optarg); break;
		case OPT_NO_REGISTER: cfg.no_register = true; break;
		case OPT_ON_HOST_SLEEP:
		case OPT_ON_HOST_SHUTDOWN:
			if (vm_power_policy_parse(optarg, c == OPT_ON_HOST_SLEEP ? &cfg.on_host_sleep
										  : &cfg.on_host_shutdown) < 0) {
				rc = cli_usage_error("run", "--%s: %s",
						     c == OPT_ON_HOST_SLEEP ? "on-host-sleep" : "on-host-shutdown", err_msg());
				goto out;
			}
			break;
		case OPT_POWER_SAVE_FILE: replace(&cfg.power_save_file, optarg); break;
		case OPT_HOST_POWER_STATUS:
			if (optarg && !optarg[0]) {
				rc = cli_usage_error("run", "--host-power-status: the directory is empty");
				goto out;
			}
			replace(&cfg.host_power_status, optarg ? optarg : HOST_POWER_DEFAULT_DIR);
			break;
		case OPT_MANIFEST: break; /* read above */
		case OPT_RESTORE: replace(&cfg.restore, optarg); break;
		case OPT_NO_VERIFY: cfg.restore_no_verify = true; break;
		case OPT_SANDBOX:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				rc = cli_usage_error("run", "--sandbox: '%s' is neither on nor off", optarg);
				goto out;
			}
			cfg.sandbox = strcmp(optarg, "off") != 0;
			break;
		case OPT_JIT:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				rc = cli_usage_error("run", "--jit: '%s' is neither on nor off", optarg);
				goto out;
			}
			cfg.jit = strcmp(optarg, "on") == 0;
			break;
		case OPT_TRACE:
			if (trace_parse(optarg, &trace) < 0) {
				rc = cli_usage_error("run", "%s", err_msg());
				goto out;
			}
			break;
		case OPT_TRACE_FILE: trace_file = optarg; break;
		case 'v': log_raise_verbosity(1); break;
		case 'h':
			fputs(run_usage, stdout);
			rc = EXIT_OK;
			goto out;
		case ':':
			rc = cli_usage_error("run", "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			rc = cli_usage_error("run", "unknown option '%s' (try `vessel run --help`)", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		rc = cli_usage_error("run", "unexpected argument '%s' (try `vessel run --help`)", argv[optind]);
		goto out;
	}
	/* A snapshot decides the machine's shape (engine, CPUs, memory, NUMA
	 * nodes, devices); flags may only repeat it. */
	if (cfg.restore) {
		shape_take(&shape, &cfg);
		if (snapshot_load_config(cfg.restore, &cfg) < 0) {
			rc = cli_usage_error("run", "%s", err_msg());
			goto out;
		}
		if ((rc = shape_check(&shape, &cfg)) != 0)
			goto out;
		rc = EXIT_USAGE;
	} else if (cfg.restore_no_verify) {
		rc = cli_usage_error("run", "--no-verify applies only to --restore");
		goto out;
	}
	if (vm_config_validate(&cfg) < 0) {
		rc = cli_usage_error("run", "%s", err_msg());
		goto out;
	}
	if (trace_file && !trace) {
		rc = cli_usage_error("run", "--trace-file needs --trace");
		goto out;
	}
	if (trace && trace_start(trace, trace_file) < 0) {
		rc = cli_usage_error("run", "%s", err_msg());
		goto out;
	}
	install_signal_handlers();
	int debug_exit_value = 0;
	struct vm_run_opts opts = { .quit = &quit_requested };
	enum vm_stop_reason why = vm_run(&cfg, &opts, &debug_exit_value);
	rc = cli_run_exit_code(why, cfg.no_reboot, debug_exit_value);
	trace_stop();
out:
	vm_config_free(&cfg);
	return rc;
}
