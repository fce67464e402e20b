/* The sandbox of a running VM: capabilities dropped, no_new_privs, and a
 * seccomp filter (libseccomp) that allows only the system calls vessel's
 * threads make once the machine is built (docs/security.md "Sandbox",
 * which lists them and why).
 *
 * What runs inside the filter: the vCPU threads (engine runs, device
 * emulation, console output), the timer thread, the console on the main
 * thread, the control API thread with everything its commands do (pause,
 * save and restore writing snapshot files, `device add` opening files and
 * dlopen()ing plug-ins, power-off), a guest reboot (the machine is torn
 * down and built again: memory mapped and unmapped, threads created, the
 * kernel read again, /dev/kvm opened again), block I/O threads and
 * logging.  What does not: anything that makes a process (fork, exec),
 * network sockets, ptrace, mounts, module loading, BPF, keyrings, changes
 * of identity, and every other call not listed below.
 *
 * The filter's default action is SECCOMP_RET_TRAP: the kernel sends SIGSYS
 * to the thread that made the call, and the handler below prints one line
 * naming it and ends the process with SANDBOX_EXIT_CODE.  A call that
 * should have been allowed thus shows up as a clear message, and
 * `--sandbox off` is the way to tell whether the sandbox is the cause. */
#include "vmm/sandbox.h"

#include "util/error.h"

#include <errno.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define SANDBOX_MAX_NR 512   /* x86-64 system call numbers are below this */

static const char *syscall_names[SANDBOX_MAX_NR];
static void (*exit_hook)(void);
static bool entered;
static bool outbound_sockets;

void sandbox_allow_outbound_sockets(void)
{
	outbound_sockets = true;
}

void sandbox_set_exit_hook(void (*hook)(void))
{
	exit_hook = hook;
}

int sandbox_drop_capabilities(void)
{
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which
	 * goes with the rest below.  EINVAL: past the kernel's last cap. */
	for (int cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
			break;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EPERM)
			return err_set(-errno, "sandbox: cannot drop capability %d from the bounding set: %s", cap,
				       strerror(errno));
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return err_set(-errno, "sandbox: cannot clear the ambient capabilities: %s", strerror(errno));
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		return err_set(-errno, "sandbox: cannot drop capabilities: %s", strerror(errno));
	return 0;
}

/* Async-signal-safe: write(2) and _exit(2) only, both allowed. */
static void put(const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(STDERR_FILENO, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void on_sigsys(int sig, siginfo_t *info, void *uctx)
{
	(void)sig;
	(void)uctx;
	int nr = info->si_syscall;
	char num[16], *p = num + sizeof(num);
	*--p = 0;
	unsigned v = nr < 0 ? 0u - (unsigned)nr : (unsigned)nr;
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) && p > num + 1);
	if (nr < 0)
		*--p = '-';
	if (exit_hook)
		exit_hook();
	put("\r\nvessel: sandbox: forbidden system call ");
	put(nr >= 0 && nr < SANDBOX_MAX_NR && syscall_names[nr] ? syscall_names[nr] : "?");
	put(" (number ");
	put(p);
	put("); the process ends (run with --sandbox off to debug, see docs/security.md)\n");
	_exit(SANDBOX_EXIT_CODE);
}

struct rule {
	int nr;
	unsigned n_args;
	struct scmp_arg_cmp arg;
};

#define ALLOW(name) { SCMP_SYS(name), 0, { 0 } }
#define ALLOW_IF(name, cmp) { SCMP_SYS(name), 1, cmp }

/* Each group says who needs it.  docs/security.md carries the same list. */
static const struct rule rules[] = {
	/* Memory: malloc, guest RAM and ROM (rebuilt at each reboot), the emu
	 * engine's block arenas and code cache (--jit on: a shared anonymous
	 * mapping, its RX view made by mremap), thread stacks, dlopen() mapping a plug-in
	 * (PROT_EXEC, mprotect for RELRO), a snapshot's RAM mapped from its
	 * file (MAP_FIXED), MADV_HUGEPAGE/DONTNEED. */
	ALLOW(mmap), ALLOW(munmap), ALLOW(mprotect), ALLOW(mremap), ALLOW(madvise), ALLOW(brk),
	/* Threads: pthread_create for vCPUs (at each reboot), the timer
	 * thread, block I/O workers, console input threads.  Only clone with
	 * CLONE_THREAD: a thread, never a process. */
	ALLOW_IF(clone, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)),
	ALLOW(futex), ALLOW(set_robust_list), ALLOW(rseq), ALLOW(exit), ALLOW(exit_group),
	ALLOW(sched_yield), ALLOW(sched_getaffinity), ALLOW(gettid), ALLOW(getpid),
	/* Virtual NUMA (docs/numa.md): a machine rebuilt at a reboot binds
	 * its guest RAM to its nodes' host nodes (mbind) and pins its vCPU
	 * threads to their CPUs (pthread_setaffinity_np); `numa move`
	 * migrates a node's pages (mbind MPOL_MF_MOVE) and asks where they
	 * are (move_pages without target nodes). */
	ALLOW(mbind), ALLOW(sched_setaffinity), ALLOW_IF(move_pages, SCMP_A0(SCMP_CMP_EQ, 0)),   /* this process only */
	ALLOW(getuid), ALLOW(geteuid), ALLOW(getgid), ALLOW(getegid),
	/* Signals: the KVM engine kicks a vCPU out of KVM_RUN with a signal
	 * to its thread (pthread_kill: tgkill, within this process only) and
	 * installs its handler when a machine is built; pthread_create and
	 * sigsetjmp mask signals.  Nobody may take SIGSYS away from the
	 * handler that reports forbidden calls. */
	ALLOW_IF(tgkill, SCMP_A0(SCMP_CMP_EQ, 0)),   /* the pid: patched in sandbox_enter() */
	ALLOW_IF(rt_sigaction, SCMP_A0(SCMP_CMP_NE, SIGSYS)),
	ALLOW(rt_sigprocmask), ALLOW(rt_sigreturn), ALLOW(sigaltstack), ALLOW(restart_syscall),
	/* Time: timers, HLT sleeps and the guest clocks (clock_gettime is a
	 * vDSO call, but falls back to the system call). */
	ALLOW(clock_gettime), ALLOW(clock_getres), ALLOW(gettimeofday), ALLOW(clock_nanosleep), ALLOW(nanosleep),
	/* Files: console output, logging, snapshot save (a temporary file
	 * renamed into place) and restore, the kernel and initrd read again
	 * at each reboot, /dev/kvm opened again, plug-ins opened by
	 * dlopen() on `device add` (and their directories listed), disk
	 * images (block I/O: positioned reads and writes, flushes,
	 * allocation), sockets unlinked when the run ends. */
	ALLOW(openat), ALLOW(open), ALLOW(close), ALLOW(read), ALLOW(write), ALLOW(readv), ALLOW(writev),
	ALLOW(pread64), ALLOW(pwrite64), ALLOW(preadv), ALLOW(pwritev), ALLOW(preadv2), ALLOW(pwritev2),
	ALLOW(lseek), ALLOW(fstat), ALLOW(newfstatat), ALLOW(statx), ALLOW(access), ALLOW(faccessat),
	ALLOW(faccessat2), ALLOW(getdents64), ALLOW(fsync), ALLOW(fdatasync), ALLOW(fallocate), ALLOW(ftruncate),
	ALLOW(fcntl), ALLOW(flock), ALLOW(rename), ALLOW(renameat), ALLOW(renameat2), ALLOW(unlink), ALLOW(unlinkat),
	ALLOW(memfd_create),     /* a LUKS2 header is checked in a memfd */
	/* Disk requests batched through io_uring (docs/compounding.md): the
	 * ring is set up when a disk's device is built (at each reboot, on
	 * hot-plug), requests and completions go through io_uring_enter. */
	ALLOW(io_uring_setup), ALLOW(io_uring_enter),
	/* libcryptsetup, opening a LUKS2 disk hot-added: the image's file
	 * system, and key material locked in RAM. */
	ALLOW(fstatfs), ALLOW(mlock), ALLOW(munlock),
	ALLOW(readlink), ALLOW(readlinkat), ALLOW(getcwd),   /* realpath(): a VHD's parent path */
	/* Waiting and waking: the console's and the API's poll loops, their
	 * eventfds and pipes; epoll and timerfds for event loops with idle
	 * timeouts. */
	ALLOW(poll), ALLOW(ppoll), ALLOW(eventfd2), ALLOW(pipe2), ALLOW(epoll_create1), ALLOW(epoll_ctl),
	ALLOW(epoll_wait), ALLOW(epoll_pwait), ALLOW(timerfd_create), ALLOW(timerfd_settime), ALLOW(timerfd_gettime),
	/* The control API and the console socket: new clients on sockets
	 * created before the sandbox, requests and replies; user networking's
	 * forwarded ports too.  No socket() and no connect(): a running VM
	 * makes no connections, but with --net user (below). */
	ALLOW(accept4), ALLOW(accept), ALLOW(recvfrom), ALLOW(recvmsg), ALLOW(sendto), ALLOW(sendmsg),
	ALLOW(shutdown), ALLOW(getsockopt), ALLOW(setsockopt), ALLOW(getsockname), ALLOW(getpeername),
	/* Randomness: OpenSSL (disk encryption). */
	ALLOW(getrandom),
	/* Resource limits: read only (glibc reads RLIMIT_STACK); the host's
	 * description, read by libraries: sysconf(_SC_PHYS_PAGES) (sysinfo),
	 * kernel version checks (uname). */
	ALLOW_IF(prlimit64, SCMP_A2(SCMP_CMP_EQ, 0)), ALLOW(sysinfo), ALLOW(uname),
};

/* ioctl: KVM's (type 0xAE: system, VM and vCPU file descriptors) and the
 * terminal's (the console's raw mode is undone when the run ends; isatty),
 * and a block device's size for disk images on block devices. */
static const unsigned long ioctl_allowed[] = {
	TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX,
	0x80081272UL,            /* BLKGETSIZE64 */
	0x1268UL,                /* BLKSSZGET */
};

int sandbox_enter(void)
{
	if (entered)
		return 0;
	for (int nr = 0; nr < SANDBOX_MAX_NR; nr++)
		syscall_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return err_set(-ENOMEM, "sandbox: cannot create the seccomp filter");
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	/* A binary tree of system call numbers rather than a list: every
	 * KVM_RUN and futex goes through the filter.  Older libseccomp
	 * lacks it; the list works as well, only slower. */
	if (rc == 0)
		(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	for (size_t i = 0; rc == 0 && i < sizeof(rules) / sizeof(rules[0]); i++) {
		struct scmp_arg_cmp arg = rules[i].arg;
		if (rules[i].nr == SCMP_SYS(tgkill))
			arg.datum_a = (scmp_datum_t)getpid();
		rc = rules[i].n_args ? seccomp_rule_add(ctx, SCMP_ACT_ALLOW, rules[i].nr, 1, arg)
				     : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, rules[i].nr, 0);
	}
	/* User networking (src/vmm/net_slirp.c): libslirp opens a host socket
	 * for each connection and UDP flow the guest starts, TCP or UDP
	 * (ICMP echo on a datagram socket), IPv4 or IPv6, and connects it;
	 * no other address family, and only when a --net user asks. */
	if (rc == 0 && outbound_sockets) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET));
		if (rc == 0)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6));
		if (rc == 0)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0);
	}
	/* glibc's pthread_create tries clone3 first and falls back to clone
	 * on ENOSYS; clone3's flags sit in memory a filter cannot read. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, 0xae00));
	for (size_t i = 0; rc == 0 && i < sizeof(ioctl_allowed) / sizeof(ioctl_allowed[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, ioctl_allowed[i]));
	if (rc < 0) {
		seccomp_release(ctx);
		return err_set(rc, "sandbox: cannot build the seccomp filter: %s", strerror(-rc));
	}

	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		seccomp_release(ctx);
		return err_set(-errno, "sandbox: cannot install the SIGSYS handler: %s", strerror(errno));
	}
	/* no_new_privs is also set by libseccomp (SCMP_FLTATR_CTL_NNP) and
	 * spread to every thread by TSYNC; set here so a failure is named. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		seccomp_release(ctx);
		return err_set(-errno, "sandbox: cannot set no_new_privs: %s", strerror(errno));
	}
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		return err_set(rc, "sandbox: cannot load the seccomp filter into every thread: %s", strerror(-rc));
	entered = true;
	return 0;
}
