/* `vessel ctl`: drive a running VM through its control socket
 * (docs/api.md).  One request per run; `events` streams until the VM goes
 * away or the user interrupts. */
#include "cli/cli.h"
#include "util/error.h"
#include "vmm/api_client.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char ctl_usage[] =
	"usage: vessel ctl [options] <command> ...\n"
	"\n"
	"drive a running VM through its control socket.\n"
	"\n"
	"commands:\n"
	"  status               lifecycle state and VM facts\n"
	"  pause | resume       stop or continue the vCPUs\n"
	"  powerdown [--guest-os]\n"
	"                       ask the guest to shut down: through its VMBus shutdown service\n"
	"                       when it has opened it, else the ACPI power button; --guest-os:\n"
	"                       only through the service (an error when the guest has not opened it)\n"
	"  sleep                press the ACPI sleep button (the guest may suspend)\n"
	"  wakeup               wake a suspended guest (ACPI S3)\n"
	"  poweroff             stop the VM at once\n"
	"  reset                reset the machine (reboot)\n"
	"  save FILE            write a snapshot (resume it with `vessel run --restore FILE`)\n"
	"  stats                trap counters per reason, per-device access counters,\n"
	"                       host system calls and what compounding saved\n"
	"  device list          devices added through the manifest or the API\n"
	"  device add JSON      add a device: '{\"type\": \"mailbox\", \"id\": \"mb0\", \"params\": {...}}'\n"
	"  device remove ID [--force] [--timeout SECONDS]\n"
	"                       remove a device; a PCI one is ejected by the guest first\n"
	"                       (--force: surprise removal; --timeout: how long to wait, 20 s)\n"
	"  cpu add [--node N]   plug in a possible CPU (run --max-cpus), of NUMA node N; the\n"
	"                       guest onlines it\n"
	"  cpu remove N         ask the guest to release CPU N (event cpu-removed when it has)\n"
	"  numa status          per virtual NUMA node: host nodes, resident pages, vCPU threads\n"
	"  numa move NODE HOST  move virtual node NODE's memory and vCPUs to host node(s)\n"
	"                       HOST (N, N-M or N,M,...) while the guest runs\n"
	"  memory add SIZE [--node N]\n"
	"                       add SIZE of RAM (a multiple of 128M) to NUMA node N\n"
	"                       (default 0); needs `run --memory-hotplug`\n"
	"  memory remove GPA [--timeout SECONDS]\n"
	"                       the guest releases the memory added at GPA, then it goes\n"
	"  events               print lifecycle and device events until interrupted\n"
	"\n"
	"options:\n"
	"  -s, --socket PATH    the VM's API socket (default: $VESSEL_API_SOCKET)\n"
	"      --json           print the raw JSON replies and events\n"
	"  -t, --timeout SECS   give up waiting for a reply after SECS (default 60)\n"
	"  -h, --help           this help\n"
	"\n"
	"Exit codes: 0 done, 1 the VM replied with an error or cannot be reached, 2 bad usage.\n";

static void print_event(json_t *ev)
{
	json_t *t = json_object_get(ev, "time");
	char when[32] = "";
	if (json_is_number(t)) {
		time_t secs = (time_t)json_number_value(t);
		struct tm tm;
		localtime_r(&secs, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	}
	const char *kind = json_string_value(json_object_get(ev, "event"));
	if (kind && !strcmp(kind, "state")) {
		const char *reason = json_string_value(json_object_get(ev, "reason"));
		printf("%s %s -> %s%s%s%s\n", when, json_string_value(json_object_get(ev, "from")),
		       json_string_value(json_object_get(ev, "to")), reason ? " (" : "", reason ? reason : "",
		       reason ? ")" : "");
	} else if (kind && !strcmp(kind, "guest-panicked")) {
		/* The guest's message is its kernel log's tail: its last line
		 * is the panic's own. */
		const char *msg = json_string_value(json_object_get(ev, "message"));
		const char *end = msg ? msg + strlen(msg) : NULL;
		while (end && end > msg && end[-1] == '\n')
			end--;
		const char *last = end;
		while (last && last > msg && last[-1] != '\n')
			last--;
		printf("%s guest-panicked cpu%lld (%s)%s%.*s\n", when,
		       (long long)json_integer_value(json_object_get(ev, "cpu")),
		       json_string_value(json_object_get(ev, "action")), last && last < end ? ": " : "",
		       last ? (int)(end - last) : 0, last ? last : "");
	} else if (kind) {
		const char *type = json_string_value(json_object_get(ev, "type"));
		printf("%s %s %s%s%s%s\n", when, kind, json_string_value(json_object_get(ev, "id")), type ? " (" : "",
		       type ? type : "", type ? ")" : "");
	}
	fflush(stdout);
}

static void print_scalar_fields(json_t *obj, const char *indent)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		if (json_is_object(v) || json_is_array(v))
			continue;
		char *s = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY);
		printf("%s%s: %s\n", indent, key, s ? s : "?");
		free(s);
	}
}

static void print_stats(json_t *r)
{
	const char *key;
	json_t *v;
	printf("traps:\n");
	json_object_foreach(json_object_get(r, "exits"), key, v)
		printf("  %-16s %lld\n", key, (long long)json_integer_value(v));
	size_t i;
	json_t *cpu;
	json_array_foreach(json_object_get(r, "vcpus"), i, cpu) {
		printf("vcpu %lld:", (long long)json_integer_value(json_object_get(cpu, "id")));
		json_object_foreach(json_object_get(cpu, "exits"), key, v)
			if (json_integer_value(v))
				printf(" %s=%lld", key, (long long)json_integer_value(v));
		printf("\n");
	}
	json_t *hv = json_object_get(r, "hyperv");
	if (json_is_object(hv)) {
		printf("hyperv:\n");
		print_scalar_fields(hv, "  ");
		const char *call;
		json_t *n;
		json_object_foreach(json_object_get(hv, "hypercalls_by_call"), call, n)
			if (json_integer_value(n))
				printf("  %s: %lld\n", call, (long long)json_integer_value(n));
	}
	json_t *vb = json_object_get(r, "vmbus");
	if (json_is_object(vb)) {
		printf("vmbus:\n");
		print_scalar_fields(vb, "  ");
	}
	printf("%-5s %-20s %-18s %-10s %12s %12s\n", "BUS", "DEVICE", "BASE", "LEN", "READS", "WRITES");
	json_t *d;
	json_array_foreach(json_object_get(r, "devices"), i, d)
		printf("%-5s %-20s %#-18llx %#-10llx %12lld %12lld\n", json_string_value(json_object_get(d, "bus")),
		       json_string_value(json_object_get(d, "name")), (unsigned long long)json_integer_value(json_object_get(d, "base")),
		       (unsigned long long)json_integer_value(json_object_get(d, "len")),
		       (long long)json_integer_value(json_object_get(d, "reads")),
		       (long long)json_integer_value(json_object_get(d, "writes")));
	json_t *calls = json_object_get(r, "host_calls"), *rate = json_object_get(r, "host_calls_per_second");
	if (json_is_object(calls)) {
		printf("host system calls (total, per second since the last stats):\n");
		json_object_foreach(calls, key, v)
			printf("  %-16s %12lld %12.1f\n", key, (long long)json_integer_value(v),
			       json_number_value(json_object_get(rate, key)));
	}
	json_t *comp = json_object_get(r, "compound");
	if (json_is_object(comp)) {
		printf("compounding:\n");
		print_scalar_fields(comp, "  ");
	}
	json_t *code = json_object_get(r, "code_cache");
	if (json_is_object(code)) {
		printf("code cache and address spaces:\n");
		print_scalar_fields(code, "  ");
	}
	json_t *con = json_object_get(r, "console");
	if (con)
		printf("console: %lld bytes of output dropped (nobody read them)\n",
		       (long long)json_integer_value(json_object_get(con, "dropped_bytes")));
}

static void print_devices(json_t *r)
{
	printf("%-16s %-16s %-20s %s\n", "ID", "TYPE", "PLUGIN", "RESOURCES / PARAMS");
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(r, "devices"), i, d) {
		const char *plugin = json_string_value(json_object_get(d, "plugin"));
		printf("%-16s %-16s %-20s", json_string_value(json_object_get(d, "id")),
		       json_string_value(json_object_get(d, "type")), plugin ? plugin : "(built-in)");
		size_t k;
		json_t *res;
		json_array_foreach(json_object_get(d, "resources"), k, res) {
			printf(" %s=%#llx", json_string_value(json_object_get(res, "kind")),
			       (unsigned long long)json_integer_value(json_object_get(res, "base")));
		}
		char *params = json_dumps(json_object_get(d, "params"), JSON_COMPACT | JSON_SORT_KEYS);
		printf(" %s\n", params ? params : "{}");
		free(params);
	}
}

static void print_host_nodes(json_t *a)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
		printf("%s%lld", i ? "," : "", (long long)json_integer_value(v));
}

static void print_numa_status(json_t *r)
{
	printf("policy: %s\n", json_string_value(json_object_get(r, "policy")));
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(r, "nodes"), i, n) {
		printf("node %lld: %lld MiB on host node(s) ", (long long)json_integer_value(json_object_get(n, "node")),
		       (long long)(json_integer_value(json_object_get(n, "memory")) >> 20));
		print_host_nodes(json_object_get(n, "host_nodes"));
		printf("%s\n  resident pages:", json_is_true(json_object_get(n, "host_picked")) ? " (picked by vessel)" : "");
		const char *key;
		json_t *v;
		json_object_foreach(json_object_get(n, "resident_pages"), key, v)
			printf(" host node %s: %lld,", key, (long long)json_integer_value(v));
		printf(" not yet touched: %lld\n", (long long)json_integer_value(json_object_get(n, "absent_pages")));
		size_t k;
		json_t *c;
		json_array_foreach(json_object_get(n, "vcpus"), k, c)
			printf("  vcpu %lld: thread %lld, last ran on CPU %lld\n", (long long)json_integer_value(json_object_get(c, "id")),
			       (long long)json_integer_value(json_object_get(c, "tid")),
			       (long long)json_integer_value(json_object_get(c, "last_cpu")));
	}
}

/* "1", "0-1", "0,2": host node numbers as a JSON array; NULL if malformed. */
static json_t *host_node_list(const char *s)
{
	json_t *a = json_array();
	while (*s) {
		char *end;
		if (*s < '0' || *s > '9')
			goto bad;
		unsigned long lo = strtoul(s, &end, 10), hi = lo;
		if (*end == '-') {
			if (end[1] < '0' || end[1] > '9')
				goto bad;
			hi = strtoul(end + 1, &end, 10);
		}
		if (hi < lo || hi > 63 || (*end && *end != ','))
			goto bad;
		for (unsigned long n = lo; n <= hi; n++)
			json_array_append_new(a, json_integer((json_int_t)n));
		s = *end ? end + 1 : end;
	}
	if (json_array_size(a))
		return a;
bad:
	json_decref(a);
	return NULL;
}

static void print_result(const char *cmd, json_t *result)
{
	if (!strcmp(cmd, "status")) {
		print_scalar_fields(result, "");
	} else if (!strcmp(cmd, "stats")) {
		print_stats(result);
	} else if (!strcmp(cmd, "device-list")) {
		print_devices(result);
	} else if (!strcmp(cmd, "device-add")) {
		printf("added %s\n", json_string_value(json_object_get(result, "id")));
	} else if (!strcmp(cmd, "device-remove")) {
		printf("removed %s\n", json_string_value(json_object_get(result, "id")));
	} else if (!strcmp(cmd, "save")) {
		printf("saved %s\n", json_string_value(json_object_get(result, "file")));
	} else if (!strcmp(cmd, "numa-status")) {
		print_numa_status(result);
	} else if (!strcmp(cmd, "cpu-add")) {
		printf("added cpu%lld", (long long)json_integer_value(json_object_get(result, "cpu")));
		if (json_object_get(result, "node"))
			printf(" to node %lld", (long long)json_integer_value(json_object_get(result, "node")));
		printf("\n");
	} else if (!strcmp(cmd, "cpu-remove")) {
		printf("asked the guest to release cpu%lld\n", (long long)json_integer_value(json_object_get(result, "cpu")));
	} else if (!strcmp(cmd, "numa-move")) {
		printf("node %lld moved to host node(s) ", (long long)json_integer_value(json_object_get(result, "node")));
		print_host_nodes(json_object_get(result, "host_nodes"));
		printf(": %lld pages, %lld moved, %lld left elsewhere\n",
		       (long long)json_integer_value(json_object_get(result, "pages")),
		       (long long)json_integer_value(json_object_get(result, "moved")),
		       (long long)json_integer_value(json_object_get(result, "failed")));
	} else if (!strcmp(cmd, "memory-add")) {
		printf("added %lld MiB at %#llx to node %lld\n",
		       (long long)(json_integer_value(json_object_get(result, "size")) >> 20),
		       (unsigned long long)json_integer_value(json_object_get(result, "gpa")),
		       (long long)json_integer_value(json_object_get(result, "node")));
	} else if (!strcmp(cmd, "memory-remove")) {
		printf("removed %lld MiB at %#llx from node %lld\n",
		       (long long)(json_integer_value(json_object_get(result, "size")) >> 20),
		       (unsigned long long)json_integer_value(json_object_get(result, "gpa")),
		       (long long)json_integer_value(json_object_get(result, "node")));
	} else if (!strcmp(cmd, "events")) {
		printf("state: %s (streaming events; interrupt to stop)\n",
		       json_string_value(json_object_get(result, "state")));
		fflush(stdout);
	} else {
		printf("ok\n");
	}
}

/* Turns the command line into a request; EXIT_USAGE with a message if it
 * is not one. */
static int build_request(int argc, char **argv, json_t **out, const char **cmd_out)
{
	const char *cmd = argv[0];
	if (!strcmp(cmd, "powerdown") && argc == 2 && !strcmp(argv[1], "--guest-os")) {
		*out = json_pack("{s:s, s:i, s:{s:s}}", "cmd", "powerdown", "id", 1, "args", "method", "guest-os");
		*cmd_out = "powerdown";
		return 0;
	}
	static const char *const plain[] = { "status", "pause", "resume", "powerdown", "poweroff", "reset", "stats",
					     "events", "sleep", "wakeup", NULL };
	for (unsigned i = 0; plain[i]; i++) {
		if (!strcmp(cmd, plain[i])) {
			if (argc != 1)
				return cli_usage_error("ctl", "%s takes no argument", cmd);
			*out = json_pack("{s:s, s:i}", "cmd", cmd, "id", 1);
			*cmd_out = plain[i];
			return 0;
		}
	}
	if (!strcmp(cmd, "save")) {
		if (argc != 2)
			return cli_usage_error("ctl", "save needs one FILE");
		char path[4096];
		/* The VM resolves nothing against our directory: send it absolute. */
		if (argv[1][0] == '/') {
			snprintf(path, sizeof(path), "%s", argv[1]);
		} else {
			char cwd[3072];
			if (!getcwd(cwd, sizeof(cwd)))
				return cli_usage_error("ctl", "save: cannot find the current directory");
			snprintf(path, sizeof(path), "%s/%s", cwd, argv[1]);
		}
		*out = json_pack("{s:s, s:i, s:{s:s}}", "cmd", "save", "id", 1, "args", "file", path);
		*cmd_out = "save";
		return 0;
	}
	if (!strcmp(cmd, "device")) {
		if (argc < 2)
			return cli_usage_error("ctl", "device needs list, add JSON or remove ID");
		if (!strcmp(argv[1], "list") && argc == 2) {
			*out = json_pack("{s:s, s:i}", "cmd", "device-list", "id", 1);
			*cmd_out = "device-list";
			return 0;
		}
		if (!strcmp(argv[1], "add") && argc == 3) {
			json_error_t e;
			json_t *dev = json_loads(argv[2], 0, &e);
			if (!dev)
				return cli_usage_error("ctl", "device add: not JSON: %s", e.text);
			*out = json_pack("{s:s, s:i, s:{s:o}}", "cmd", "device-add", "id", 1, "args", "device", dev);
			*cmd_out = "device-add";
			return 0;
		}
		if (!strcmp(argv[1], "remove") && argc >= 3) {
			/* ID, then --force (surprise removal) and --timeout SECONDS
			 * (how long the guest has to release it), in any order. */
			const char *id = NULL;
			bool force = false;
			double timeout = 0;
			for (int i = 2; i < argc; i++) {
				if (!strcmp(argv[i], "--force")) {
					force = true;
				} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
					char *end;
					timeout = strtod(argv[++i], &end);
					if (*end || !(timeout > 0 && timeout <= 3600))
						return cli_usage_error("ctl", "device remove: --timeout %s is not a number of "
									      "seconds (more than 0, at most 3600)", argv[i]);
				} else if (argv[i][0] != '-' && !id) {
					id = argv[i];
				} else {
					return cli_usage_error("ctl", "device remove: unexpected '%s' (expected ID [--force] "
								      "[--timeout SECONDS])", argv[i]);
				}
			}
			if (!id)
				return cli_usage_error("ctl", "device remove needs an ID");
			json_t *args = json_pack("{s:s}", "id", id);
			if (force)
				json_object_set_new(args, "force", json_true());
			if (timeout > 0)
				json_object_set_new(args, "timeout", json_real(timeout));
			*out = json_pack("{s:s, s:i, s:o}", "cmd", "device-remove", "id", 1, "args", args);
			*cmd_out = "device-remove";
			return 0;
		}
		return cli_usage_error("ctl", "device needs list, add JSON or remove ID");
	}
	if (!strcmp(cmd, "cpu")) {
		if ((argc == 2 || argc == 4) && !strcmp(argv[1], "add")) {
			json_t *args = json_object();
			if (argc == 4) {
				char *end;
				unsigned long node = strtoul(argv[3], &end, 10);
				if (strcmp(argv[2], "--node") || !*argv[3] || *end || node > 1023) {
					json_decref(args);
					return cli_usage_error("ctl", "cpu add: expected --node N, not '%s %s'", argv[2],
							       argv[3]);
				}
				json_object_set_new(args, "node", json_integer((json_int_t)node));
			}
			*out = json_pack("{s:s, s:i, s:o}", "cmd", "cpu-add", "id", 1, "args", args);
			*cmd_out = "cpu-add";
			return 0;
		}
		if (argc == 3 && !strcmp(argv[1], "remove")) {
			char *end;
			const char *n = !strncmp(argv[2], "cpu", 3) ? argv[2] + 3 : argv[2];
			unsigned long cpu = strtoul(n, &end, 10);
			if (!*n || *end || cpu > 63)
				return cli_usage_error("ctl", "cpu remove: '%s' is not a CPU number", argv[2]);
			*out = json_pack("{s:s, s:i, s:{s:i}}", "cmd", "cpu-remove", "id", 1, "args", "cpu", (int)cpu);
			*cmd_out = "cpu-remove";
			return 0;
		}
		return cli_usage_error("ctl", "cpu needs add [--node N], or remove N");
	}
	if (!strcmp(cmd, "numa")) {
		if (argc == 2 && !strcmp(argv[1], "status")) {
			*out = json_pack("{s:s, s:i}", "cmd", "numa-status", "id", 1);
			*cmd_out = "numa-status";
			return 0;
		}
		if (argc == 4 && !strcmp(argv[1], "move")) {
			char *end;
			unsigned long node = strtoul(argv[2], &end, 10);
			if (!*argv[2] || *end || node > 1023)
				return cli_usage_error("ctl", "numa move: '%s' is not a node number", argv[2]);
			json_t *hosts = host_node_list(argv[3]);
			if (!hosts)
				return cli_usage_error("ctl", "numa move: '%s' is not a host node list (N, N-M or N,M,...; "
						       "below 64)", argv[3]);
			*out = json_pack("{s:s, s:i, s:{s:i, s:o}}", "cmd", "numa-move", "id", 1, "args", "node", (int)node,
					 "host_nodes", hosts);
			*cmd_out = "numa-move";
			return 0;
		}
		return cli_usage_error("ctl", "numa needs status, or move NODE HOST-NODES");
	}
	if (!strcmp(cmd, "memory")) {
		unsigned long long size;
		if ((argc == 3 || argc == 5) && !strcmp(argv[1], "remove")) {
			char *end;
			unsigned long long gpa = strtoull(argv[2], &end, 0);
			if (!*argv[2] || *end || !gpa)
				return cli_usage_error("ctl", "memory remove: '%s' is not an address (e.g. 0x120000000)", argv[2]);
			json_t *args = json_pack("{s:I}", "gpa", (json_int_t)gpa);
			if (argc == 5) {
				double t = strtod(argv[4], &end);
				if (strcmp(argv[3], "--timeout") || *end || !(t > 0 && t <= 3600)) {
					json_decref(args);
					return cli_usage_error("ctl", "memory remove: expected --timeout SECONDS (at most 3600), "
								      "not '%s %s'", argv[3], argv[4]);
				}
				json_object_set_new(args, "timeout", json_real(t));
			}
			*out = json_pack("{s:s, s:i, s:o}", "cmd", "memory-remove", "id", 1, "args", args);
			*cmd_out = "memory-remove";
			return 0;
		}
		if ((argc != 3 && argc != 5) || strcmp(argv[1], "add"))
			return cli_usage_error("ctl", "memory needs add SIZE [--node N] or remove GPA [--timeout SECONDS]");
		if (cli_parse_size(argv[2], &size) < 0 || !size)
			return cli_usage_error("ctl", "memory add: '%s' is not a size (e.g. 256M, 1G)", argv[2]);
		json_t *args = json_pack("{s:I}", "size", (json_int_t)size);
		if (argc == 5) {
			char *end;
			unsigned long node = strtoul(argv[4], &end, 10);
			if (strcmp(argv[3], "--node") || !*argv[4] || *end || node > 1023) {
				json_decref(args);
				return cli_usage_error("ctl", "memory add: expected --node N, not '%s %s'", argv[3], argv[4]);
			}
			json_object_set_new(args, "node", json_integer((json_int_t)node));
		}
		*out = json_pack("{s:s, s:i, s:o}", "cmd", "memory-add", "id", 1, "args", args);
		*cmd_out = "memory-add";
		return 0;
	}
	return cli_usage_error("ctl", "unknown command '%s' (try `vessel ctl --help`)", cmd);
}

int cli_ctl_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *sock = getenv("VESSEL_API_SOCKET");
	bool raw = false;
	double timeout = 60;
	opterr = 0;
	optind = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, "+:s:t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'j': raw = true; break;
		case 't': {
			char *end;
			timeout = strtod(optarg, &end);
			if (end == optarg || *end || !(timeout > 0) || timeout > 86400)
				return cli_usage_error("ctl", "--timeout: '%s' is not a number of seconds", optarg);
			break;
		}
		case 'h':
			fputs(ctl_usage, stdout);
			return EXIT_OK;
		case ':':
			return cli_usage_error("ctl", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error("ctl", "unknown option '%s' (try `vessel ctl --help`)", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error("ctl", "missing command (try `vessel ctl --help`)");
	json_t *req = NULL;
	const char *cmd = NULL;
	int rc = build_request(argc - optind, argv + optind, &req, &cmd);
	if (rc)
		return rc;
	if (!sock || !sock[0]) {
		json_decref(req);
		return cli_usage_error("ctl", "no socket: give --socket PATH or set VESSEL_API_SOCKET");
	}
	static struct api_client c;
	rc = EXIT_FAILURE_RUN;
	json_t *msg = NULL;
	if (api_client_connect(&c, sock, (int)(timeout * 1000), NULL) < 0) {
		cli_error("ctl", "%s", err_msg());
		goto out;
	}
	if (api_client_send(&c, req) < 0) {
		cli_error("ctl", "%s: %s", sock, err_msg());
		goto out;
	}
	char *line;
	int r;
	if ((!strcmp(cmd, "save") || !strcmp(cmd, "numa-move") || !strcmp(cmd, "memory-remove")) && c.timeout_ms < 600000)
		c.timeout_ms = 600000; /* writing or moving guest RAM takes a while */
	bool streaming = false;
	for (;;) {
		r = api_client_read_line(&c, &line);
		if (r == 0) {
			if (streaming) {
				rc = EXIT_OK; /* the VM went away: the stream ends */
			} else {
				cli_error("ctl", "%s: the VM closed the connection without a reply", sock);
			}
			break;
		}
		if (r == -ETIMEDOUT) {
			cli_error("ctl", "%s: no reply within %g s", sock, c.timeout_ms / 1000.0);
			break;
		}
		if (r < 0) {
			cli_error("ctl", "%s: cannot read the reply: %s", sock, strerror(-r));
			break;
		}
		msg = json_loads(line, 0, NULL);
		if (!msg) {
			cli_error("ctl", "%s: the VM sent something that is not JSON", sock);
			break;
		}
		if (json_object_get(msg, "event")) {
			json_t *done = json_object_get(msg, "done"), *total = json_object_get(msg, "total");
			if (!streaming && !raw && json_is_integer(done) && json_integer_value(total) > 0)
				fprintf(stderr, "%s: %lld%% (%lld of %lld pages)\n", cmd,
					(long long)(json_integer_value(done) * 100 / json_integer_value(total)),
					(long long)json_integer_value(done), (long long)json_integer_value(total));
			if (streaming) {
				if (raw) {
					printf("%s\n", line);
					fflush(stdout);
				} else {
					print_event(msg);
				}
			}
			json_decref(msg);
			msg = NULL;
			continue;
		}
		if (raw)
			printf("%s\n", line);
		if (!json_is_true(json_object_get(msg, "ok"))) {
			json_t *m = json_object_get(json_object_get(msg, "error"), "message");
			if (!raw)
				cli_error("ctl", "%s", json_is_string(m) ? json_string_value(m) : "error");
			break;
		}
		if (!raw)
			print_result(cmd, json_object_get(msg, "result"));
		fflush(stdout);
		json_decref(msg);
		msg = NULL;
		if (strcmp(cmd, "events")) {
			rc = EXIT_OK;
			break;
		}
		streaming = true;
		c.timeout_ms = -1;
	}
out:
	json_decref(msg);
	json_decref(req);
	api_client_close(&c);
	return rc;
}
