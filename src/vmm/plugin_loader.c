/* The one plug-in loader: search path, trust checks, dlopen, ABI checks
 * and the descriptor probe (vm/plugin_loader.h). */
#include "vmm/plugin_loader.h"

#include "block/crypt_plugin.h"
#include "util/error.h"
#include "util/log.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROBE_TIMEOUT_MS 10000
#define PROBE_MAX_BYTES (4u << 20)

/* ---- search path ---- */

static int path_add(struct plugin_path *p, const char *dir, size_t len)
{
	if (!dir || !len || p->n == PLUGIN_PATH_MAX)
		return 0;
	for (unsigned i = 0; i < p->n; i++)
		if (strlen(p->dirs[i]) == len && !strncmp(p->dirs[i], dir, len))
			return 0;
	if (!(p->dirs[p->n] = strndup(dir, len)))
		return err_set(-ENOMEM, "plug-in path: out of memory");
	p->n++;
	return 0;
}

static int path_add_list(struct plugin_path *p, const char *list)
{
	while (list && *list) {
		const char *end = strchr(list, ':');
		size_t len = end ? (size_t)(end - list) : strlen(list);
		int rc = path_add(p, list, len);
		if (rc < 0)
			return rc;
		list = end ? end + 1 : NULL;
	}
	return 0;
}

int plugin_path_init(struct plugin_path *p, char *const *explicit_dirs, unsigned n_explicit)
{
	memset(p, 0, sizeof(*p));
	int rc = 0;
	for (unsigned i = 0; i < n_explicit && rc == 0; i++)
		rc = path_add(p, explicit_dirs[i], explicit_dirs[i] ? strlen(explicit_dirs[i]) : 0);
	const char *env = getenv(PLUGIN_PATH_ENV);
	if (rc == 0 && env)
		return path_add_list(p, env);
	/* XDG Base Directory Specification: $XDG_DATA_HOME if absolute, else
	 * $HOME/.local/share. */
	char buf[PATH_MAX];
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	int n = -1;
	if (xdg && xdg[0] == '/')
		n = snprintf(buf, sizeof(buf), "%s/vessel/plugins", xdg);
	else if (home && home[0])
		n = snprintf(buf, sizeof(buf), "%s/.local/share/vessel/plugins", home);
	if (rc == 0 && n > 0 && (size_t)n < sizeof(buf))
		rc = path_add(p, buf, (size_t)n);
	if (rc == 0)
		rc = path_add_list(p, "/usr/local/lib/vessel/plugins:/usr/lib/vessel/plugins");
	if (rc < 0)
		plugin_path_free(p);
	return rc;
}

void plugin_path_free(struct plugin_path *p)
{
	for (unsigned i = 0; i < p->n; i++)
		free(p->dirs[i]);
	memset(p, 0, sizeof(*p));
}

int plugin_path_find(const char *file, const char *const *extra, unsigned n_extra, char *out, size_t cap)
{
	struct plugin_path p;
	int rc = plugin_path_init(&p, (char *const *)extra, n_extra);
	if (rc < 0)
		return rc;
	int found = 0;
	for (unsigned i = 0; i < p.n && !found; i++) {
		int n = snprintf(out, cap, "%s/%s", p.dirs[i], file);
		found = n > 0 && (size_t)n < cap && access(out, F_OK) == 0;
	}
	plugin_path_free(&p);
	return found;
}

/* ---- trust ---- */

static int trust_one(const char *kind, const char *shown, const char *what, const struct stat *st)
{
	if (st->st_mode & S_IWOTH)
		return err_set(-EPERM, "%s %s: refused: %s is world-writable, so any local user could replace the "
			       "code vessel would run (chmod o-w it)", kind, shown, what);
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return err_set(-EPERM, "%s %s: refused: %s is owned by user %u, neither root nor you (uid %u)", kind,
			       shown, what, (unsigned)st->st_uid, (unsigned)geteuid());
	return 0;
}

int plugin_file_trusted(const char *path, const char *kind)
{
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(path, real) || stat(real, &st) < 0)
		return err_set(-errno, "%s %s: %s", kind, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(-EPERM, "%s %s: refused: not a regular file", kind, path);
	int rc = trust_one(kind, path, real, &st);
	if (rc < 0)
		return rc;
	char *slash = strrchr(real, '/');
	if (slash == real)
		slash[1] = 0;
	else if (slash)
		*slash = 0;
	if (stat(real, &st) < 0)
		return err_set(-errno, "%s %s: directory %s: %s", kind, path, real, strerror(errno));
	char what[PATH_MAX + 16];
	snprintf(what, sizeof(what), "directory %s", real);
	return trust_one(kind, path, what, &st);
}

/* ---- loading ---- */

int plugin_lib_open(const char *path, const char *kind, const char *symbol, void **handle, const void **sym)
{
	int rc = plugin_file_trusted(path, kind);
	if (rc < 0)
		return rc;
	/* RTLD_LOCAL: plug-ins cannot see each other's symbols, and
	 * RTLD_NOW: an unresolved symbol fails here, not in the middle of a
	 * guest access. */
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return err_set(-ENOEXEC, "%s %s: cannot load: %s", kind, path, dlerror());
	const void *s = dlsym(h, symbol);
	if (!s) {
		dlclose(h);
		return err_set(-ENOEXEC, "%s %s: no %s symbol (not a vessel plug-in of this kind)", kind, path, symbol);
	}
	*handle = h;
	*sym = s;
	return 0;
}

void plugin_lib_close(void *handle)
{
	if (handle)
		dlclose(handle);
}

int plugin_check_abi(const char *kind, const char *path, const char *abi_name, const char *header, int err,
		     uint32_t abi, uint32_t want_abi, size_t size, size_t min_size)
{
	if (abi != want_abi)
		return err_set(err, "%s %s: built for %s version %u, but this vessel has version %u (rebuild it against "
			       "this vessel's <%s>)", kind, path, abi_name, abi, want_abi, header);
	if (size < min_size)
		return err_set(err, "%s %s: descriptor of %zu bytes is smaller than the %zu of %s version %u", kind, path,
			       size, min_size, abi_name, want_abi);
	return 0;
}

/* ---- probe ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int plugin_probe_run(const char *path, const char *kind, int (*fn)(const char *path, int fd), char **out)
{
	*out = NULL;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_set(-errno, "%s %s: probe: %s", kind, path, strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return err_set(-e, "%s %s: probe: %s", kind, path, strerror(e));
	}
	if (pid == 0) {
		close(pfd[0]);
		/* A crash of the plug-in's code ends the child by its signal,
		 * which the parent names, whatever handler the process had. */
		static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
		for (unsigned i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
			signal(fatal[i], SIG_DFL);
		int rc = fn(path, pfd[1]);
		_exit(rc == 0 ? 0 : 1);
	}
	close(pfd[1]);
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	int rc = buf ? 0 : err_set(-ENOMEM, "%s %s: probe: out of memory", kind, path);
	int64_t deadline = now_ms() + PROBE_TIMEOUT_MS;
	bool timed_out = false;
	while (rc == 0) {
		int64_t left = deadline - now_ms();
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int n = left > 0 ? poll(&p, 1, (int)left) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		if (len == cap) {
			char *nb = cap < PROBE_MAX_BYTES ? realloc(buf, cap * 2 + 1) : NULL;
			if (!nb) {
				kill(pid, SIGKILL);
				rc = err_set(-E2BIG, "%s %s: probe: answer larger than %u bytes", kind, path, PROBE_MAX_BYTES);
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(pfd[0], buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(pfd[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && timed_out)
		rc = err_set(-ECHILD, "%s %s: still loading after %d s (a constructor that does not return?); not used",
			     kind, path, PROBE_TIMEOUT_MS / 1000);
	else if (rc == 0 && WIFSIGNALED(status))
		rc = err_set(-ECHILD, "%s %s: crashed while being loaded (signal %d, %s); not used", kind, path,
			     WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		rc = err_set(-ECHILD, "%s %s: exited with status %d while being loaded; not used", kind, path,
			     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[len] = 0;
	*out = buf;
	return 0;
}

/* ---- encryption plug-ins ---- */

static int crypt_find(const char *name, const char *const *dirs, unsigned n_dirs, char *path, size_t cap)
{
	/* The deprecated variable: NAME.so directly in each directory. */
	const char *old = getenv(PLUGIN_CRYPT_PATH_ENV_OLD);
	if (old && *old) {
		static bool warned;
		if (!warned) {
			warned = true;
			log_warn("plugin", "%s is deprecated: put encryption plug-ins in crypt/ of a directory of %s "
				 "(docs/plugins.md)", PLUGIN_CRYPT_PATH_ENV_OLD, PLUGIN_PATH_ENV);
		}
		for (const char *l = old; l && *l;) {
			const char *end = strchr(l, ':');
			int len = end ? (int)(end - l) : (int)strlen(l);
			int n = snprintf(path, cap, "%.*s/%s.so", len, l, name);
			if (len && n > 0 && (size_t)n < cap && access(path, F_OK) == 0)
				return 1;
			l = end ? end + 1 : NULL;
		}
	}
	char file[PATH_MAX];
	snprintf(file, sizeof(file), "crypt/%s.so", name);
	return plugin_path_find(file, dirs, n_dirs, path, cap);
}

static int crypt_open(const char *path, const void **ops, void **handle)
{
	return plugin_lib_open(path, "crypt plug-in", VESSEL_CRYPT_PLUGIN_SYMBOL, handle, ops);
}

static const struct crypt_plugin_loader crypt_loader = {
	.find = crypt_find, .open = crypt_open, .close = plugin_lib_close,
};

void plugin_loader_install_crypt(void)
{
	crypt_plugin_set_loader(&crypt_loader);
}
