#include "vmm/registry.h"

#include "util/error.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int registry_dir(char *buf, size_t len)
{
	const char *env = getenv("VESSEL_REGISTRY_DIR");
	if (env && env[0]) {
		snprintf(buf, len, "%s", env);
		return 0;
	}
	if (geteuid() == 0) {
		snprintf(buf, len, "/run/vessel/vms");
		return 0;
	}
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (!xdg || xdg[0] != '/')
		return err_set(-ENOENT, "no registry directory: XDG_RUNTIME_DIR is not set (set it, or "
					"VESSEL_REGISTRY_DIR)");
	snprintf(buf, len, "%s/vessel/vms", xdg);
	return 0;
}

int registry_mkdir(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1;; p++) {
		bool end = !*p;
		if (*p == '/' || end) {
			*p = 0;
			if (mkdir(path, 0700) < 0 && errno != EEXIST)
				return err_set(-errno, "registry %s: cannot create %s: %s", dir, path, strerror(errno));
			if (end)
				break;
			*p = '/';
		}
	}
	return 0;
}

unsigned long long registry_process_start(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* The name (field 2) may hold spaces and parentheses: count from
	 * the last ')'.  Field 22 is the 20th after it. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	unsigned long long v = 0;
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		v = strtoull(p + 1, NULL, 10);
	return v;
}

/* The NUL-separated /proc/self/cmdline as a JSON array. */
static json_t *own_argv(void)
{
	json_t *a = json_array();
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return a;
	static char buf[65536];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = 0;
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
		json_array_append_new(a, json_string(buf + i));
	return a;
}

static char *absolute(const char *path)
{
	if (!path)
		return NULL;
	if (path[0] == '/')
		return strdup(path);
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		return strdup(path);
	char *out;
	return asprintf(&out, "%s/%s", cwd, path) < 0 ? NULL : out;
}

json_t *registry_entry_to_json(const struct registry_entry *e)
{
	return json_pack("{s:s, s:i, s:I, s:s, s:s, s:s, s:s?, s:s?, s:O?}", "name", e->name, "pid", (int)e->pid,
			 "start", (json_int_t)e->start, "socket", e->socket, "on_host_sleep",
			 vm_power_policy_name(e->on_host_sleep), "on_host_shutdown",
			 vm_power_policy_name(e->on_host_shutdown), "save_file", e->save_file, "cwd", e->cwd, "argv",
			 e->argv);
}

static char *dup_str(json_t *j)
{
	return json_is_string(j) ? strdup(json_string_value(j)) : NULL;
}

int registry_entry_from_json(json_t *j, struct registry_entry *e)
{
	memset(e, 0, sizeof(*e));
	json_t *pid = json_object_get(j, "pid"), *sock = json_object_get(j, "socket");
	if (!json_is_integer(pid) || json_integer_value(pid) <= 0 || !json_is_string(sock))
		return -EINVAL;
	e->pid = (pid_t)json_integer_value(pid);
	e->start = (unsigned long long)json_integer_value(json_object_get(j, "start"));
	e->socket = dup_str(sock);
	e->name = dup_str(json_object_get(j, "name"));
	if (!e->name && asprintf(&e->name, "vm-%d", (int)e->pid) < 0)
		e->name = NULL;
	e->save_file = dup_str(json_object_get(j, "save_file"));
	e->cwd = dup_str(json_object_get(j, "cwd"));
	json_t *argv = json_object_get(j, "argv");
	e->argv = json_is_array(argv) ? json_incref(argv) : NULL;
	const char *s = json_string_value(json_object_get(j, "on_host_sleep"));
	const char *d = json_string_value(json_object_get(j, "on_host_shutdown"));
	e->on_host_sleep = VM_POWER_PAUSE;
	e->on_host_shutdown = VM_POWER_SHUTDOWN;
	if ((s && vm_power_policy_parse(s, &e->on_host_sleep) < 0) ||
	    (d && vm_power_policy_parse(d, &e->on_host_shutdown) < 0) || !e->socket || !e->name) {
		registry_entry_free(e);
		return -EINVAL;
	}
	return 0;
}

int registry_add(const char *dir, const char *socket, const struct vm_config *cfg, char **file_out)
{
	*file_out = NULL;
	int rc = registry_mkdir(dir);
	if (rc < 0)
		return rc;
	char cwd[4096];
	struct registry_entry e = {
		.pid = getpid(), .start = registry_process_start(getpid()), .on_host_sleep = cfg->on_host_sleep,
		.on_host_shutdown = cfg->on_host_shutdown, .cwd = getcwd(cwd, sizeof(cwd)) ? cwd : NULL,
	};
	char name[32];
	snprintf(name, sizeof(name), "vm-%d", (int)e.pid);
	e.name = name;
	e.socket = absolute(socket);
	e.save_file = absolute(cfg->power_save_file);
	e.argv = own_argv();
	json_t *j = registry_entry_to_json(&e);
	char *file = NULL, *tmp = NULL;
	if (!j || !e.socket || asprintf(&file, "%s/%s.json", dir, name) < 0 || asprintf(&tmp, "%s.tmp", file) < 0) {
		rc = err_set(-ENOMEM, "registry: out of memory");
		goto out;
	}
	/* Written aside and renamed: a reader never sees half an entry. */
	if (json_dump_file(j, tmp, JSON_COMPACT) < 0 || rename(tmp, file) < 0) {
		rc = err_set(-EIO, "registry %s: cannot write %s", dir, file);
		unlink(tmp);
		goto out;
	}
	chmod(file, 0600);
	*file_out = file;
	file = NULL;
out:
	json_decref(j);
	json_decref(e.argv);
	free(e.socket);
	free(e.save_file);
	free(file);
	free(tmp);
	return rc;
}

void registry_entry_free(struct registry_entry *e)
{
	free(e->file);
	free(e->name);
	free(e->socket);
	free(e->save_file);
	free(e->cwd);
	json_decref(e->argv);
	memset(e, 0, sizeof(*e));
}

void registry_entries_free(struct registry_entry *e, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		registry_entry_free(&e[i]);
	free(e);
}

int registry_entry_copy(struct registry_entry *dst, const struct registry_entry *src)
{
	json_t *j = registry_entry_to_json(src);
	int rc = j ? registry_entry_from_json(j, dst) : -ENOMEM;
	json_decref(j);
	if (rc == 0) {
		dst->stale = src->stale;
		dst->file = src->file ? strdup(src->file) : NULL;
	}
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct registry_entry *)a)->name, ((const struct registry_entry *)b)->name);
}

int registry_list(const char *dir, struct registry_entry **out, unsigned *n)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;   /* nothing registered yet */
		return err_set(-errno, "registry %s: %s", dir, strerror(errno));
	}
	struct registry_entry *list = NULL;
	unsigned cap = 0, count = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		char *file;
		if (asprintf(&file, "%s/%s", dir, de->d_name) < 0)
			break;
		json_t *j = json_load_file(file, 0, NULL);
		struct registry_entry e;
		if (!j || registry_entry_from_json(j, &e) < 0) {
			log_warn("registry", "%s: not a registry entry, skipped", file);
			json_decref(j);
			free(file);
			continue;
		}
		json_decref(j);
		e.file = file;
		/* Gone, or the PID now names another process. */
		unsigned long long start = registry_process_start(e.pid);
		e.stale = (kill(e.pid, 0) < 0 && errno == ESRCH) || start == 0 || (e.start && start != e.start);
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			struct registry_entry *grown = realloc(list, cap * sizeof(*list));
			if (!grown) {
				registry_entry_free(&e);
				break;
			}
			list = grown;
		}
		list[count++] = e;
	}
	closedir(d);
	if (count)
		qsort(list, count, sizeof(*list), by_name);
	*out = list;
	*n = count;
	return 0;
}
