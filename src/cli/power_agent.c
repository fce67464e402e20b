/* `vessel power-agent`: the host's sleep and shutdown coordinated with
 * every registered VM (docs/power.md "The power agent"). */
#include "cli/cli.h"
#include "util/error.h"
#include "vmm/power_agent.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char agent_usage[] =
	"usage: vessel power-agent [options]            hold logind's inhibitors, act on sleep and shutdown\n"
	"       vessel power-agent [options] --now sleep|shutdown|resume\n"
	"       vessel power-agent [options] status\n"
	"\n"
	"Finds every running VM in the registry and applies its policy (suspend,\n"
	"save, pause, shutdown, none: `vessel run --on-host-sleep`) before the host\n"
	"sleeps or shuts down, and brings each back when the host resumes.\n"
	"\n"
	"options:\n"
	"      --now EVENT         run the sequence for EVENT once, without logind\n"
	"      --deadline SECS     time for all VMs together (default: logind's\n"
	"                          InhibitDelayMaxUSec less 0.25 s; 5 s with --now)\n"
	"      --resume-deadline SECS  time for each VM to run again (default 120)\n"
	"      --registry DIR      the registry of running VMs (default $VESSEL_REGISTRY_DIR,\n"
	"                          /run/vessel/vms for root, else $XDG_RUNTIME_DIR/vessel/vms)\n"
	"      --json              status: print JSON\n"
	"  -h, --help              this help\n"
	"\n"
	"Exit codes: 0 done, 1 a VM's policy failed or the bus failed, 2 bad usage.\n";

static volatile int quit;

static void on_quit(int sig)
{
	quit = sig;
}

static int parse_secs(const char *opt, const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v > 0) || v > 86400)
		return cli_usage_error("power-agent", "%s: '%s' is not a number of seconds", opt, s);
	*ms = (int)(v * 1000);
	return 0;
}

static int print_status(struct power_agent *a, bool json)
{
	json_t *list = power_agent_status(a);
	if (json) {
		char *s = json_dumps(list, JSON_COMPACT);
		printf("%s\n", s ? s : "[]");
		free(s);
	} else {
		printf("%-12s %-8s %-14s %-10s %-12s %s\n", "NAME", "PID", "STATE", "ON-SLEEP", "ON-SHUTDOWN", "SOCKET");
		size_t i;
		json_t *v;
		json_array_foreach(list, i, v) {
			const char *st = json_string_value(json_object_get(v, "state"));
			printf("%-12s %-8lld %-14s %-10s %-12s %s\n", json_string_value(json_object_get(v, "name")),
			       (long long)json_integer_value(json_object_get(v, "pid")),
			       json_is_true(json_object_get(v, "stale")) ? "stale" : st ? st : "no-answer",
			       json_string_value(json_object_get(v, "on_host_sleep")),
			       json_string_value(json_object_get(v, "on_host_shutdown")),
			       json_string_value(json_object_get(v, "socket")));
		}
	}
	json_decref(list);
	return EXIT_OK;
}

int cli_power_agent_main(int argc, char **argv)
{
	enum { OPT_NOW = 256, OPT_DEADLINE, OPT_RESUME_DEADLINE, OPT_REGISTRY, OPT_JSON };
	static const struct option opts[] = {
		{ "now", required_argument, NULL, OPT_NOW },
		{ "deadline", required_argument, NULL, OPT_DEADLINE },
		{ "resume-deadline", required_argument, NULL, OPT_RESUME_DEADLINE },
		{ "registry", required_argument, NULL, OPT_REGISTRY },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *now = NULL, *dir = NULL;
	int deadline_ms = 0, resume_ms = 120000, rc;
	bool json = false;
	opterr = 0;
	optind = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case OPT_NOW:
			if (strcmp(optarg, "sleep") && strcmp(optarg, "shutdown") && strcmp(optarg, "resume"))
				return cli_usage_error("power-agent", "--now: '%s' is not sleep, shutdown or resume", optarg);
			now = optarg;
			break;
		case OPT_DEADLINE:
			if ((rc = parse_secs("--deadline", optarg, &deadline_ms)))
				return rc;
			break;
		case OPT_RESUME_DEADLINE:
			if ((rc = parse_secs("--resume-deadline", optarg, &resume_ms)))
				return rc;
			break;
		case OPT_REGISTRY: dir = optarg; break;
		case OPT_JSON: json = true; break;
		case 'h':
			fputs(agent_usage, stdout);
			return EXIT_OK;
		case ':':
			return cli_usage_error("power-agent", "option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error("power-agent", "unknown option '%s' (try `vessel power-agent --help`)",
					       argv[optind - 1]);
		}
	}
	bool status = false;
	if (optind < argc) {
		if (strcmp(argv[optind], "status") || optind + 1 < argc)
			return cli_usage_error("power-agent", "unexpected argument '%s' (try `vessel power-agent --help`)",
					       argv[optind + (strcmp(argv[optind], "status") ? 0 : 1)]);
		status = true;
	}
	if (status && now)
		return cli_usage_error("power-agent", "status and --now do not go together");
	struct power_agent a;
	if (power_agent_init(&a, dir, stderr) < 0)
		return cli_usage_error("power-agent", "%s", err_msg());
	if (status) {
		rc = print_status(&a, json);
	} else if (now && !strcmp(now, "resume")) {
		rc = power_agent_resume(&a, resume_ms) ? EXIT_FAILURE_RUN : EXIT_OK;
	} else if (now) {
		int n = power_agent_prepare(&a, strcmp(now, "sleep") ? POWER_EVENT_SHUTDOWN : POWER_EVENT_SLEEP,
					    deadline_ms ? deadline_ms : 5000);
		rc = n ? EXIT_FAILURE_RUN : EXIT_OK;
	} else {
		struct sigaction sa = { .sa_handler = on_quit };
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		struct power_agent_options o = { .deadline_ms = deadline_ms, .resume_deadline_ms = resume_ms, .quit = &quit };
		if (power_agent_serve(&a, &o) < 0) {
			cli_error("power-agent", "%s", err_msg());
			rc = EXIT_FAILURE_RUN;
		} else {
			rc = EXIT_OK;
		}
	}
	power_agent_free(&a);
	return rc;
}
