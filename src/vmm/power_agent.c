#include "vmm/power_agent.h"

#include "util/error.h"
#include "vmm/api_client.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STATE_FILE "power-agent.state"
#define POLL_MS 20

static long long now_ms(void)
{
	return api_client_now_ms();
}

static int left_ms(long long deadline)
{
	long long l = deadline - now_ms();
	return l < 1 ? 1 : l > 0x7fffffff ? 0x7fffffff : (int)l;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static bool vm_gone(const struct registry_entry *e)
{
	unsigned long long start = registry_process_start(e->pid);
	if (start == 0 || (e->start && start != e->start))
		return true;
	/* A zombie still has its /proc entry: its state letter says. */
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)e->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *p = strrchr(buf, ')');
	return p && (p[2] == 'Z' || p[2] == 'X');
}

int power_agent_init(struct power_agent *a, const char *dir, FILE *log)
{
	memset(a, 0, sizeof(*a));
	a->log = log;
	if (dir) {
		snprintf(a->dir, sizeof(a->dir), "%s", dir);
		return 0;
	}
	return registry_dir(a->dir, sizeof(a->dir));
}

static void outcomes_free(struct power_outcome *o, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		registry_entry_free(&o[i].vm);
	free(o);
}

void power_agent_free(struct power_agent *a)
{
	outcomes_free(a->last, a->n_last);
	a->last = NULL;
	a->n_last = 0;
}

void power_agent_log(struct power_agent *a, const char *fmt, ...)
{
	if (!a->log)
		return;
	va_list ap;
	va_start(ap, fmt);
	flockfile(a->log);
	fputs("vessel power-agent: ", a->log);
	vfprintf(a->log, fmt, ap);
	fputc('\n', a->log);
	fflush(a->log);
	funlockfile(a->log);
	va_end(ap);
}

/* ---- one VM ---- */

struct job {
	struct power_agent *a;
	struct power_outcome *o;
	long long policy_deadline;   /* the policy must be done by then */
	long long deadline;          /* the fallback (pause) by then */
	bool resume;
};

/* The VM's lifecycle state through c; NULL on failure (err_set). */
static char *vm_state(struct api_client *c)
{
	json_t *r;
	if (api_client_call(c, "status", NULL, &r) < 0)
		return NULL;
	const char *s = json_string_value(json_object_get(r, "state"));
	char *out = s ? strdup(s) : NULL;
	json_decref(r);
	if (!out)
		err_set(-EPROTO, "status: no state in the reply");
	return out;
}

/* Whether the connection is closed (the VM went away): a read at EOF. */
static bool vm_gone_quietly(struct api_client *c)
{
	char b;
	return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Polls until the VM is in state want; 0, -ETIMEDOUT or an error. */
static int wait_state(struct api_client *c, const char *want, long long deadline)
{
	for (;;) {
		c->deadline_ms = deadline;
		char *st = vm_state(c);
		if (!st)
			return now_ms() >= deadline && !vm_gone_quietly(c) ? -ETIMEDOUT : -EIO;
		bool there = !strcmp(st, want);
		free(st);
		if (there)
			return 0;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(POLL_MS);
	}
}

/* Waits until the VM's process is gone; true if it went in time. */
static bool wait_gone(const struct registry_entry *e, long long deadline)
{
	while (!vm_gone(e)) {
		if (now_ms() >= deadline)
			return false;
		sleep_ms(POLL_MS);
	}
	return true;
}

/* How long a VM whose connection closed may take to be gone: a killed
 * process's sockets are closed as it exits, before /proc shows it a
 * zombie, so the agent can see the connection close while the process
 * still looks alive. */
#define GONE_GRACE_MS 1000
static long long grace_deadline(const struct job *j)
{
	long long until = now_ms() + GONE_GRACE_MS;
	return until < j->deadline ? until : j->deadline;
}

static void fail(struct power_outcome *o, const char *done, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct power_outcome *o, const char *done, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->message, sizeof(o->message), fmt, ap);
	va_end(ap);
	o->done = done;
}

/* A VM whose policy did not finish in time is paused, so that it does not
 * run on while the host sleeps under it. */
static void fall_back_to_pause(struct job *j, struct api_client *c, const char *why)
{
	struct power_outcome *o = j->o;
	c->deadline_ms = j->deadline;
	if (c->fd >= 0 && api_client_call(c, "pause", NULL, NULL) == 0)
		fail(o, "paused", "%s: paused instead", why);
	else
		fail(o, "failed", "%s; pausing it failed too: %s", why, err_msg());
}

static void apply_policy(struct job *j)
{
	struct power_outcome *o = j->o;
	const struct registry_entry *e = &o->vm;
	struct api_client c;
	if (o->policy == VM_POWER_NONE) {
		o->done = "left";
		return;
	}
	if (api_client_connect(&c, e->socket, left_ms(j->policy_deadline), NULL) < 0) {
		if (vm_gone(e) || wait_gone(e, grace_deadline(j)))
			fail(o, "gone", "the VM (pid %d) went away", (int)e->pid);
		else
			fail(o, "failed", "%s", err_msg());
		return;
	}
	c.deadline_ms = j->policy_deadline;
	char *st = vm_state(&c);
	if (!st)
		goto broken;
	bool running = !strcmp(st, "running");
	if (!running) {
		/* Paused or suspended by someone else, or on its way out:
		 * not ours to bring back. */
		fail(o, "left", "it was %s already", st);
		free(st);
		goto out;
	}
	free(st);
	switch (o->policy) {
	case VM_POWER_PAUSE:
		if (api_client_call(&c, "pause", NULL, NULL) < 0)
			goto broken;
		o->done = "paused";
		break;
	case VM_POWER_SUSPEND: {
		if (api_client_call(&c, "sleep", NULL, NULL) < 0)
			goto broken;
		int rc = wait_state(&c, "suspended", j->policy_deadline);
		if (rc == -ETIMEDOUT) {
			fall_back_to_pause(j, &c, "the guest did not suspend in time");
			goto out;
		}
		if (rc < 0)
			goto broken;
		o->done = "suspended";
		break;
	}
	case VM_POWER_SAVE: {
		json_t *args = json_pack("{s:s}", "file", e->save_file ? e->save_file : "");
		int rc = api_client_call(&c, "save", args, NULL);
		json_decref(args);
		if (rc == -ETIMEDOUT) {
			fall_back_to_pause(j, &c, "the snapshot was not written in time");
			goto out;
		}
		if (rc < 0)
			goto broken;
		/* The snapshot is complete on disk: the VM may stop. */
		if (api_client_call(&c, "poweroff", NULL, NULL) < 0 && !vm_gone(e))
			goto broken;
		wait_gone(e, j->deadline);
		o->done = "saved";
		break;
	}
	case VM_POWER_SHUTDOWN:
		if (api_client_call(&c, "powerdown", NULL, NULL) < 0)
			goto broken;
		if (!wait_gone(e, j->policy_deadline)) {
			c.deadline_ms = j->deadline;
			if (api_client_call(&c, "poweroff", NULL, NULL) < 0 && !vm_gone(e))
				goto broken;
			wait_gone(e, j->deadline);
			fail(o, "off", "the guest did not shut down in time: powered off");
		} else {
			o->done = "off";
		}
		break;
	default:
		o->done = "left";
		break;
	}
	goto out;
broken:
	if (vm_gone(e) || (vm_gone_quietly(&c) && wait_gone(e, grace_deadline(j)))) {
		fail(o, "gone", "the VM (pid %d) went away while the agent waited for it", (int)e->pid);
	} else {
		char why[200];
		snprintf(why, sizeof(why), "%s", err_msg());
		fall_back_to_pause(j, &c, why);
	}
out:
	api_client_close(&c);
}

/* ---- bringing back ---- */

/* argv of the VM's run with --restore FILE (file NULL: booted afresh); the
 * run's own --restore and --no-verify are dropped. */
static char **relaunch_argv(const struct registry_entry *e, const char *file)
{
	size_t n = json_array_size(e->argv);
	char **v = calloc(n + 3, sizeof(*v));
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(e->argv, i));
		if (!s)
			continue;
		if (!strcmp(s, "--restore")) {
			i++;
			continue;
		}
		if (!strncmp(s, "--restore=", 10) || !strcmp(s, "--no-verify"))
			continue;
		v[k++] = (char *)s;
	}
	if (file) {
		v[k++] = "--restore";
		v[k++] = (char *)file;
	}
	return v;
}

/* The agent's environment with VESSEL_REGISTRY_DIR set to dir: a VM it
 * starts again registers where the agent looks for it (its --registry
 * DIR, which need not be the environment's registry), not in the
 * registry its environment names, where nothing would find it again. */
static char **relaunch_env(const char *dir, char **var_out)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	char *var = malloc(strlen(dir) + sizeof("VESSEL_REGISTRY_DIR="));
	if (!env || !var) {
		free(env);
		free(var);
		return NULL;
	}
	sprintf(var, "VESSEL_REGISTRY_DIR=%s", dir);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "VESSEL_REGISTRY_DIR=", 20))
			env[k++] = environ[i];
	env[k] = var;
	*var_out = var;
	return env;
}

/* Starts the VM again, detached from the agent (its own session, stdin
 * from /dev/null, the agent's stdout and stderr, the agent's registry
 * dir); its pid, or -errno. */
static pid_t relaunch(const struct registry_entry *e, const char *file, const char *dir)
{
	if (json_array_size(e->argv) < 2)
		return err_set(-EINVAL, "its registry entry holds no command line");
	char **argv = relaunch_argv(e, file);
	char *var = NULL;
	/* Made before the fork: the agent has threads, so the child may only
	 * make async-signal-safe calls until it execs. */
	char **env = argv ? relaunch_env(dir, &var) : NULL;
	if (!env) {
		free(argv);
		return err_set(-ENOMEM, "out of memory");
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		free(argv);
		free(env);
		free(var);
		return err_set(-errno, "pipe: %s", strerror(errno));
	}
	pid_t mid = fork();
	if (mid == 0) {
		/* Twice forked: the VM is nobody's child here, so that the
		 * agent has no zombie to reap and its end ends no VM. */
		setsid();
		pid_t vm = fork();
		if (vm == 0) {
			if (e->cwd && chdir(e->cwd) < 0)
				_exit(127);
			int null = open("/dev/null", O_RDONLY);
			if (null >= 0) {
				dup2(null, 0);
				close(null);
			}
			signal(SIGPIPE, SIG_DFL);
			execvpe(argv[0], argv, env);
			_exit(127);
		}
		(void)!write(pfd[1], &vm, sizeof(vm));
		_exit(0);
	}
	free(argv);
	free(env);
	free(var);
	close(pfd[1]);
	pid_t vm = -1;
	if (mid < 0 || read(pfd[0], &vm, sizeof(vm)) != sizeof(vm))
		vm = -1;
	close(pfd[0]);
	if (mid > 0)
		waitpid(mid, NULL, 0);
	return vm > 0 ? vm : err_set(-ECHILD, "cannot start %s", json_string_value(json_array_get(e->argv, 0)));
}

/* Waits until the relaunched VM pid registered and runs. */
static int wait_relaunched(struct power_agent *a, pid_t pid, long long deadline, char *socket_out, size_t len)
{
	char file[4200];
	snprintf(file, sizeof(file), "%s/vm-%d.json", a->dir, (int)pid);
	struct registry_entry e = { .pid = pid };
	for (;;) {
		json_t *j = json_load_file(file, 0, NULL);
		struct registry_entry got;
		if (j && registry_entry_from_json(j, &got) == 0) {
			json_decref(j);
			struct api_client c;
			int rc = api_client_connect(&c, got.socket, left_ms(deadline), NULL);
			if (rc == 0) {
				rc = wait_state(&c, "running", deadline);
				api_client_close(&c);
			}
			snprintf(socket_out, len, "%s", got.socket);
			registry_entry_free(&got);
			return rc;
		}
		json_decref(j);
		if (vm_gone(&e))
			return err_set(-ECHILD, "it ended at once (run it by hand to see why)");
		if (now_ms() >= deadline)
			return err_set(-ETIMEDOUT, "it did not register in time");
		sleep_ms(POLL_MS * 5);
	}
}

static void bring_back(struct job *j, long long deadline)
{
	struct power_agent *a = j->a;
	struct power_outcome *o = j->o;
	const char *how = o->done;
	o->message[0] = 0;
	if (!strcmp(how, "suspended") || !strcmp(how, "paused")) {
		bool suspended = !strcmp(how, "suspended");
		struct api_client c;
		if (api_client_connect(&c, o->vm.socket, left_ms(deadline), NULL) < 0 ||
		    (c.deadline_ms = deadline, api_client_call(&c, suspended ? "wakeup" : "resume", NULL, NULL)) < 0 ||
		    wait_state(&c, "running", deadline) < 0)
			fail(o, vm_gone(&o->vm) ? "gone" : "failed", "%s", err_msg());
		else
			o->done = "running";
		api_client_close(&c);
		return;
	}
	if (!strcmp(how, "saved") || !strcmp(how, "off")) {
		bool saved = !strcmp(how, "saved");
		pid_t pid = relaunch(&o->vm, saved ? o->vm.save_file : NULL, a->dir);
		char sock[4096] = "";
		if (pid < 0 || wait_relaunched(a, pid, deadline, sock, sizeof(sock)) < 0) {
			fail(o, "failed", "cannot %s it: %s", saved ? "restore" : "boot", err_msg());
			return;
		}
		snprintf(o->message, sizeof(o->message), "%s as pid %d (%s)", saved ? "restored" : "booted again",
			 (int)pid, sock);
		o->done = "running";
		return;
	}
	o->done = "left";
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	long long t0 = now_ms();
	if (j->resume)
		bring_back(j, j->deadline);
	else
		apply_policy(j);
	j->o->seconds = (double)(now_ms() - t0) / 1000.0;
	return NULL;
}

/* Runs one job per outcome, all at once, and waits for them. */
static void run_jobs(struct power_agent *a, struct power_outcome *o, unsigned n, bool resume, long long policy_deadline,
		     long long deadline)
{
	struct job *jobs = calloc(n ? n : 1, sizeof(*jobs));
	pthread_t *t = calloc(n ? n : 1, sizeof(*t));
	bool *started = calloc(n ? n : 1, sizeof(*started));
	for (unsigned i = 0; jobs && t && started && i < n; i++) {
		jobs[i] = (struct job){ .a = a, .o = &o[i], .policy_deadline = policy_deadline, .deadline = deadline,
					.resume = resume };
		started[i] = pthread_create(&t[i], NULL, job_main, &jobs[i]) == 0;
		if (!started[i])
			job_main(&jobs[i]);
	}
	/* Every step of a job is bounded by its deadline (the socket's
	 * timeouts included), so these joins end by then. */
	for (unsigned i = 0; jobs && t && started && i < n; i++) {
		if (started[i])
			pthread_join(t[i], NULL);
	}
	free(jobs);
	free(t);
	free(started);
}

static void state_path(struct power_agent *a, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", a->dir, STATE_FILE);
}

/* What the last prepare stopped, for a resume by another process
 * (`vessel power-agent --now resume`, or an agent restarted meanwhile). */
static void state_save(struct power_agent *a)
{
	json_t *arr = json_array();
	for (unsigned i = 0; i < a->n_last; i++) {
		const struct power_outcome *o = &a->last[i];
		json_array_append_new(arr, json_pack("{s:o, s:s, s:s}", "vm", registry_entry_to_json(&o->vm), "policy",
						     vm_power_policy_name(o->policy), "done", o->done));
	}
	char path[4200], tmp[4300];
	state_path(a, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (registry_mkdir(a->dir) < 0 || json_dump_file(arr, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0)
		power_agent_log(a, "cannot write %s: a resume by another process will not know what to bring back", path);
	json_decref(arr);
}

static const char *const done_names[] = { "suspended", "saved", "paused", "off", "left", "gone", "failed", "running" };

static void state_load(struct power_agent *a)
{
	char path[4200];
	state_path(a, path, sizeof(path));
	json_t *arr = json_load_file(path, 0, NULL);
	size_t i;
	json_t *it;
	power_agent_free(a);
	a->last = calloc(json_array_size(arr) + 1, sizeof(*a->last));
	json_array_foreach(arr, i, it) {
		struct power_outcome *o = &a->last[a->n_last];
		const char *done = json_string_value(json_object_get(it, "done"));
		const char *pol = json_string_value(json_object_get(it, "policy"));
		if (!a->last || !done || !pol || vm_power_policy_parse(pol, &o->policy) < 0 ||
		    registry_entry_from_json(json_object_get(it, "vm"), &o->vm) < 0)
			continue;
		for (unsigned k = 0; k < sizeof(done_names) / sizeof(done_names[0]); k++)
			if (!strcmp(done, done_names[k]))
				o->done = done_names[k];
		if (o->done)
			a->n_last++;
		else
			registry_entry_free(&o->vm);
	}
	json_decref(arr);
}

int power_agent_prepare(struct power_agent *a, enum power_event ev, int deadline_ms)
{
	long long t0 = now_ms();
	/* The policy gets the deadline less a margin in which a VM that
	 * missed it is paused. */
	int margin = deadline_ms / 4 < 1000 ? deadline_ms / 4 : 1000;
	long long deadline = t0 + deadline_ms, policy_deadline = deadline - margin;
	const char *what = ev == POWER_EVENT_SLEEP ? "sleep" : "shutdown";
	struct registry_entry *e;
	unsigned n;
	power_agent_free(a);
	if (registry_list(a->dir, &e, &n) < 0) {
		power_agent_log(a, "%s", err_msg());
		return 1;
	}
	struct power_outcome *o = calloc(n ? n : 1, sizeof(*o));
	unsigned k = 0;
	for (unsigned i = 0; o && i < n; i++) {
		if (e[i].stale) {
			power_agent_log(a, "%s: stale registry entry (pid %d is gone): removed", e[i].name, (int)e[i].pid);
			unlink(e[i].file);
			continue;
		}
		o[k].vm = e[i];
		memset(&e[i], 0, sizeof(e[i]));
		o[k].policy = ev == POWER_EVENT_SLEEP ? o[k].vm.on_host_sleep : o[k].vm.on_host_shutdown;
		k++;
	}
	registry_entries_free(e, n);
	power_agent_log(a, "host %s: %u VM%s, deadline %.1f s", what, k, k == 1 ? "" : "s", deadline_ms / 1000.0);
	run_jobs(a, o, k, false, policy_deadline, deadline);
	int failures = 0;
	for (unsigned i = 0; i < k; i++) {
		bool bad = !strcmp(o[i].done, "failed") || !strcmp(o[i].done, "gone") ||
			   (o[i].message[0] && strcmp(o[i].done, "left"));
		failures += bad;
		power_agent_log(a, "%s (pid %d): %s -> %s in %.2f s%s%s", o[i].vm.name, (int)o[i].vm.pid,
		    vm_power_policy_name(o[i].policy), o[i].done, o[i].seconds, o[i].message[0] ? ": " : "",
		    o[i].message);
	}
	a->last = o;
	a->n_last = k;
	state_save(a);
	power_agent_log(a, "host %s: done in %.2f s (%d problem%s)", what, (double)(now_ms() - t0) / 1000.0, failures,
	    failures == 1 ? "" : "s");
	return failures;
}

int power_agent_resume(struct power_agent *a, int deadline_ms)
{
	long long t0 = now_ms(), deadline = t0 + deadline_ms;
	if (!a->n_last)
		state_load(a);
	char path[4200];
	state_path(a, path, sizeof(path));
	unlink(path);
	power_agent_log(a, "host resumed: %u VM%s to bring back", a->n_last, a->n_last == 1 ? "" : "s");
	run_jobs(a, a->last, a->n_last, true, deadline, deadline);
	int failures = 0;
	for (unsigned i = 0; i < a->n_last; i++) {
		struct power_outcome *o = &a->last[i];
		failures += !strcmp(o->done, "failed") || !strcmp(o->done, "gone");
		power_agent_log(a, "%s (pid %d): %s in %.2f s%s%s", o->vm.name, (int)o->vm.pid, o->done, o->seconds,
		    o->message[0] ? ": " : "", o->message);
	}
	power_agent_log(a, "host resumed: done in %.2f s (%d problem%s)", (double)(now_ms() - t0) / 1000.0, failures,
	    failures == 1 ? "" : "s");
	power_agent_free(a);
	return failures;
}

json_t *power_agent_status(struct power_agent *a)
{
	struct registry_entry *e;
	unsigned n;
	json_t *out = json_array();
	if (registry_list(a->dir, &e, &n) < 0)
		return out;
	for (unsigned i = 0; i < n; i++) {
		char *st = NULL;
		if (!e[i].stale) {
			struct api_client c;
			if (api_client_connect(&c, e[i].socket, 2000, NULL) == 0) {
				st = vm_state(&c);
				api_client_close(&c);
			}
		}
		json_array_append_new(out, json_pack("{s:s, s:i, s:s, s:s?, s:s, s:s, s:b}", "name", e[i].name, "pid",
						     (int)e[i].pid, "socket", e[i].socket, "state", st, "on_host_sleep",
						     vm_power_policy_name(e[i].on_host_sleep), "on_host_shutdown",
						     vm_power_policy_name(e[i].on_host_shutdown), "stale", e[i].stale));
		free(st);
	}
	registry_entries_free(e, n);
	return out;
}
