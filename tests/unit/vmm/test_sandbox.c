/* The sandbox of a running VM (src/vm/sandbox.c): each test enters it in a
 * child process, as `vessel run` does once set-up is over, and looks at
 * how the child ends. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/sandbox.h"

struct outcome {
	int status;
	char err[1024];
};

/* Runs body() in a child whose stderr is captured; body's return value is
 * the child's exit code. */
static struct outcome in_child(int (*body)(void))
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		_exit(body());
	}
	close(p[1]);
	struct outcome o = { 0 };
	size_t len = 0;
	ssize_t n;
	while ((n = read(p[0], o.err + len, sizeof(o.err) - 1 - len)) > 0)
		len += (size_t)n;
	close(p[0]);
	cr_assert_eq(waitpid(pid, &o.status, 0), pid);
	return o;
}

/* A line of /proc/self/status, e.g. "Seccomp:" -> "2". */
static int status_field(const char *name, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	int rc = -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, strlen(name))) {
			const char *v = line + strlen(name);
			v += strspn(v, " \t");
			snprintf(out, n, "%.*s", (int)strcspn(v, "\n"), v);
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

static void *forbidden_from_a_thread(void *arg)
{
	(void)arg;
	/* As a vCPU thread that a guest took over might: a network socket. */
	syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	return NULL;
}

static int enter_then_forbidden_call_in_thread(void)
{
	if (sandbox_enter() < 0)
		return 90;
	pthread_t t;
	if (pthread_create(&t, NULL, forbidden_from_a_thread, NULL) != 0)
		return 91;
	pthread_join(t, NULL);
	return 0;   /* the call was let through */
}

Test(sandbox, forbidden_call_from_a_thread_ends_the_process_with_one_line)
{
	struct outcome o = in_child(enter_then_forbidden_call_in_thread);
	cr_assert(WIFEXITED(o.status), "the child died of signal %d", WTERMSIG(o.status));
	cr_assert_eq(WEXITSTATUS(o.status), SANDBOX_EXIT_CODE, "exit %d: %s", WEXITSTATUS(o.status), o.err);
	cr_assert(strstr(o.err, "vessel: sandbox: forbidden system call socket (number 41)"), "%s", o.err);
	cr_assert(strstr(o.err, "--sandbox off"), "%s", o.err);
	cr_assert_eq(strchr(strstr(o.err, "vessel:"), '\n')[1], 0, "one line: %s", o.err);
}

static int enter_then_fork(void)
{
	if (sandbox_enter() < 0)
		return 90;
	pid_t pid = fork();   /* clone without CLONE_THREAD: a process */
	if (pid == 0)
		_exit(0);
	return 0;
}

Test(sandbox, no_new_process)
{
	struct outcome o = in_child(enter_then_fork);
	cr_assert(WIFEXITED(o.status));
	cr_assert_eq(WEXITSTATUS(o.status), SANDBOX_EXIT_CODE, "exit %d: %s", WEXITSTATUS(o.status), o.err);
	cr_assert(strstr(o.err, "forbidden system call clone "), "%s", o.err);
}

static int enter_then_change_sigsys(void)
{
	if (sandbox_enter() < 0)
		return 90;
	signal(SIGSYS, SIG_DFL);
	return 0;
}

Test(sandbox, the_sigsys_handler_stays)
{
	struct outcome o = in_child(enter_then_change_sigsys);
	cr_assert(WIFEXITED(o.status));
	cr_assert_eq(WEXITSTATUS(o.status), SANDBOX_EXIT_CODE, "exit %d: %s", WEXITSTATUS(o.status), o.err);
	cr_assert(strstr(o.err, "rt_sigaction"), "%s", o.err);
}

static void *worker(void *arg)
{
	/* What a vCPU, timer or I/O thread does: memory, time, sleeping. */
	void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return (void *)1;
	memset(m, 1, 1 << 20);
	madvise(m, 1 << 20, MADV_DONTNEED);
	munmap(m, 1 << 20);
	struct timespec ts = { 0, 1000 };
	nanosleep(&ts, NULL);
	return arg;
}

/* What vessel's threads do after set-up, inside the filter. */
static int enter_then_work(void)
{
	if (sandbox_enter() < 0)
		return 90;
	pthread_t t;
	void *ret = NULL;
	if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, &ret) != 0 || ret)
		return 91;
	/* A snapshot file: written to a temporary name, synced, renamed. */
	char tmp[64], final[64];
	snprintf(tmp, sizeof(tmp), "/tmp/vessel-sandbox-test-%d.tmp", getpid());
	snprintf(final, sizeof(final), "/tmp/vessel-sandbox-test-%d", getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || pwrite(fd, "x", 1, 4096) != 1 || fsync(fd) < 0 || ftruncate(fd, 8192) < 0 || close(fd) < 0)
		return 92;
	if (rename(tmp, final) < 0 || unlink(final) < 0)
		return 93;
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), pp[2];
	uint64_t one = 1;
	if (efd < 0 || write(efd, &one, 8) != 8 || pipe2(pp, O_CLOEXEC) < 0)
		return 94;
	struct pollfd pfd = { .fd = efd, .events = POLLIN };
	if (poll(&pfd, 1, 0) != 1)
		return 95;
	char v[16];
	if (status_field("Seccomp:", v, sizeof(v)) < 0 || strcmp(v, "2"))
		return 96;
	if (status_field("NoNewPrivs:", v, sizeof(v)) < 0 || strcmp(v, "1"))
		return 97;
	return 0;
}

Test(sandbox, what_vessel_does_after_set_up_is_allowed)
{
	struct outcome o = in_child(enter_then_work);
	cr_assert(WIFEXITED(o.status), "the child died of signal %d", WTERMSIG(o.status));
	cr_assert_eq(WEXITSTATUS(o.status), 0, "exit %d: %s", WEXITSTATUS(o.status), o.err);
}

static int drop_caps(void)
{
	if (sandbox_drop_capabilities() < 0)
		return 90;
	char v[32];
	if (status_field("CapEff:", v, sizeof(v)) < 0 || strcmp(v, "0000000000000000"))
		return 91;
	if (status_field("CapPrm:", v, sizeof(v)) < 0 || strcmp(v, "0000000000000000"))
		return 92;
	return 0;
}

Test(sandbox, capabilities_are_dropped)
{
	struct outcome o = in_child(drop_caps);
	cr_assert(WIFEXITED(o.status));
	cr_assert_eq(WEXITSTATUS(o.status), 0, "exit %d: %s", WEXITSTATUS(o.status), o.err);
}
