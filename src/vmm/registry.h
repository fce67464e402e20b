/* The registry of running VMs (docs/power.md "The registry"): one JSON
 * file per `vessel run` in a directory, naming its process, its control
 * socket, its power policies and how to start it again.  The power agent
 * reads it to find every VM; an entry whose process is gone is stale. */
#ifndef VESSEL_VMM_REGISTRY_H
#define VESSEL_VMM_REGISTRY_H

#include "vmm/config.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct registry_entry {
	char *file;                 /* the entry's own path */
	char *name;                 /* "vm-PID" */
	pid_t pid;
	unsigned long long start;   /* the process's start time (/proc/PID/stat field 22): tells a reused PID */
	char *socket;               /* the control API's socket */
	enum vm_power_policy on_host_sleep, on_host_shutdown;
	char *save_file;            /* absolute; NULL when none */
	char *cwd;                  /* where the run started */
	json_t *argv;               /* its command line (array of strings) */
	bool stale;                 /* the process is gone */
};

/* The registry directory: $VESSEL_REGISTRY_DIR, else /run/vessel/vms for
 * root, else $XDG_RUNTIME_DIR/vessel/vms.  -ENOENT (err_set) when none
 * applies.  buf gets the path. */
int registry_dir(char *buf, size_t len);
/* Creates dir (and its parents, mode 0700) if missing. */
int registry_mkdir(const char *dir);
/* The start time of process pid, 0 if unknown. */
unsigned long long registry_process_start(pid_t pid);

/* Writes this process's entry (dir/vm-PID.json, atomically) with socket,
 * cfg's policies and save file, and the command line and directory from
 * /proc/self.  *file_out (malloc'ed) gets its path.  0 or -errno. */
int registry_add(const char *dir, const char *socket, const struct vm_config *cfg, char **file_out);

/* Reads every entry of dir, sorted by name, marking the stale ones.
 * Files that are not entries (or broken ones) are skipped with a warning.
 * 0 or -errno (err_set) when dir cannot be read. */
int registry_list(const char *dir, struct registry_entry **out, unsigned *n);
void registry_entries_free(struct registry_entry *e, unsigned n);
void registry_entry_free(struct registry_entry *e);
/* Deep copy; 0 or -ENOMEM. */
int registry_entry_copy(struct registry_entry *dst, const struct registry_entry *src);
/* Entry <-> JSON (the file's content). */
json_t *registry_entry_to_json(const struct registry_entry *e);
int registry_entry_from_json(json_t *j, struct registry_entry *e);

#endif
