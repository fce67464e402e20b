/* The sandbox of a running VM (docs/security.md "Sandbox").
 *
 * `vessel run` gives up its capabilities before it starts any thread, so
 * that every thread it creates has none, and, once the machine is built,
 * sets no_new_privs and enters a seccomp filter that allows only the
 * system calls its threads need afterwards.  Any other system call, from
 * any thread, ends the process: one line on stderr naming the call, and
 * exit code SANDBOX_EXIT_CODE. */
#ifndef VESSEL_VM_SANDBOX_H
#define VESSEL_VM_SANDBOX_H

/* The exit code of a process killed for a forbidden system call (even,
 * so that it never reads as a debug-exit code (v << 1) | 1). */
#define SANDBOX_EXIT_CODE 6

/* Empties the bounding, ambient, inheritable, permitted and effective
 * capability sets of the calling thread (threads created later inherit
 * them).  A bounding set that cannot be changed (no CAP_SETPCAP) is left
 * alone: no_new_privs keeps it from mattering.  0 or -errno (err_set). */
int sandbox_drop_capabilities(void);

/* Sets no_new_privs and loads the filter into every thread of the
 * process (SECCOMP_FILTER_FLAG_TSYNC); installs the SIGSYS handler that
 * reports a forbidden call.  Once per process.  0 or -errno (err_set). */
int sandbox_enter(void);

/* User networking (--net user) makes connections for the guest: the
 * filter then also allows socket() for IPv4 and IPv6 and connect().
 * Before sandbox_enter(). */
void sandbox_allow_outbound_sockets(void);

/* Called from the SIGSYS handler before the process exits (e.g. to put
 * the terminal back in cooked mode); must be async-signal-safe. */
void sandbox_set_exit_hook(void (*hook)(void));

#endif
