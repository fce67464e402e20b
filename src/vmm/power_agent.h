/* The host side of power coordination (docs/power.md "The power agent"):
 * before the host sleeps or shuts down, apply every registered VM's policy
 * (suspend, save, pause, shutdown, none) in parallel, each within a
 * deadline; afterwards bring each back the way it went.  The logind side
 * (inhibitors, signals) is power_agent_logind.c; this file knows only the
 * registry and the control API. */
#ifndef VESSEL_VMM_POWER_AGENT_H
#define VESSEL_VMM_POWER_AGENT_H

#include "vmm/registry.h"

#include <jansson.h>
#include <stdio.h>

enum power_event {
	POWER_EVENT_SLEEP,      /* the host is about to sleep */
	POWER_EVENT_SHUTDOWN,   /* the host is about to shut down or reboot */
};

/* What the agent did to one VM. */
struct power_outcome {
	struct registry_entry vm;
	enum vm_power_policy policy;
	const char *done;       /* "suspended", "saved", "paused", "off", "left", "gone", "failed" */
	char message[256];      /* why, for the log; "" when the policy went as planned */
	double seconds;         /* how long it took */
};

struct power_agent {
	char dir[4096];         /* the registry */
	FILE *log;              /* one line per VM and per sequence */
	struct power_outcome *last;   /* what the last prepare did, for the resume */
	unsigned n_last;
};

/* dir: the registry (NULL: registry_dir()).  0 or -errno (err_set). */
int power_agent_init(struct power_agent *a, const char *dir, FILE *log);
void power_agent_free(struct power_agent *a);

/* Applies each VM's policy for ev, all VMs at once; every VM is done with
 * (or given up on, and paused where it can be) within deadline_ms.
 * Stale registry entries are removed.  The outcomes are kept, and written
 * to the registry's power-agent.state, for power_agent_resume(); returns
 * the number of VMs whose policy failed. */
int power_agent_prepare(struct power_agent *a, enum power_event ev, int deadline_ms);
/* Brings back what the last prepare (this process's, or the state file's)
 * stopped: wakes, resumes, restores from the snapshot, boots again.
 * Waits up to deadline_ms for each to run.  Returns the failures. */
int power_agent_resume(struct power_agent *a, int deadline_ms);
/* Every registered VM: {"name", "pid", "socket", "state", "on_host_sleep",
 * "on_host_shutdown", "stale"}; state is null where the VM does not
 * answer. */
json_t *power_agent_status(struct power_agent *a);

/* One line on a->log: "vessel power-agent: ...". */
void power_agent_log(struct power_agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The long-running agent (power_agent_logind.c): holds logind's delay
 * inhibitors for sleep and shutdown on the system bus
 * ($DBUS_SYSTEM_BUS_ADDRESS where set), applies the policies on
 * PrepareForSleep(true) / PrepareForShutdown(true) within the deadline
 * (the smaller of deadline_ms, when not 0, and logind's
 * InhibitDelayMaxUSec, less a margin), releases the inhibitor, and on
 * PrepareForSleep(false) brings the VMs back and takes it again.  Returns
 * 0 when *quit becomes non-zero, -errno (err_set) when the bus fails. */
struct power_agent_options {
	int deadline_ms;          /* 0: logind's InhibitDelayMaxUSec */
	int resume_deadline_ms;   /* for each VM to run again */
	volatile int *quit;
};
int power_agent_serve(struct power_agent *a, const struct power_agent_options *opt);

#endif
