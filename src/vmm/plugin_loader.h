/* The one plug-in loader (docs/plugins.md "Where plug-ins are found",
 * docs/security.md "Plug-ins"): the search path, the trust checks on
 * files and directories, dlopen/dlsym, the ABI and size checks, and the
 * probe that reads a plug-in's descriptor in a child process.  Device
 * plug-ins (vm/plugin.c) and encryption plug-ins (block/crypt_plugin.c,
 * through crypt_plugin_set_loader) both go through it. */
#ifndef VESSEL_VM_PLUGIN_LOADER_H
#define VESSEL_VM_PLUGIN_LOADER_H

#include <stddef.h>
#include <stdint.h>

/* Colon-separated directories searched instead of the default ones. */
#define PLUGIN_PATH_ENV "VESSEL_PLUGIN_PATH"
/* Deprecated: directories holding encryption plug-ins as NAME.so (no
 * crypt/ subdirectory), searched before the path with a warning. */
#define PLUGIN_CRYPT_PATH_ENV_OLD "VESSEL_CRYPT_PLUGIN_PATH"

#define PLUGIN_PATH_MAX 32

struct plugin_path {
	unsigned n;
	char *dirs[PLUGIN_PATH_MAX];
};

/* The search order, first to last:
 *   1. the directories given explicitly (`vessel plugin --dir`, the
 *      manifest's plugin_dirs), in the order given;
 *   2. each directory of $VESSEL_PLUGIN_PATH if it is set (even empty),
 *      which then replaces 3;
 *   3. $XDG_DATA_HOME/vessel/plugins (default ~/.local/share/vessel/plugins),
 *      /usr/local/lib/vessel/plugins, /usr/lib/vessel/plugins.
 * Device plug-ins are the *.so files of each directory; encryption
 * plug-ins are crypt/NAME.so under each.  Returns 0 or -ENOMEM. */
int plugin_path_init(struct plugin_path *p, char *const *explicit_dirs, unsigned n_explicit);
void plugin_path_free(struct plugin_path *p);

/* Refuses (-EPERM, with a message) a plug-in file that is not a regular
 * file, or whose file or directory is writable by others than its owner
 * (world-writable) or owned by a user other than root and the one running
 * vessel: whoever can write there chooses the code vessel runs.  Checks
 * the file a symbolic link leads to, and that file's directory. */
int plugin_file_trusted(const char *path, const char *kind);

/* Checks trust, dlopen()s the file (RTLD_NOW | RTLD_LOCAL) and finds
 * `symbol`: -EPERM (trust), -ENOEXEC (not loadable, or no symbol), each
 * with a message "KIND PATH: ...". */
int plugin_lib_open(const char *path, const char *kind, const char *symbol, void **handle, const void **sym);
void plugin_lib_close(void *handle);

/* The checks every plug-in ABI shares: its version equals ours, and the
 * structure it declares is at least as large as the one of our version
 * (later minor versions only append).  Returns 0 or `err` with
 * "KIND PATH: built for ABI_NAME version N, but this vessel has version M
 * (rebuild it against this vessel's <HEADER>)". */
int plugin_check_abi(const char *kind, const char *path, const char *abi_name, const char *header, int err,
		     uint32_t abi, uint32_t want_abi, size_t size, size_t min_size);

/* Runs fn(path, fd) in a child process, fn writing its answer to fd, and
 * returns what it wrote (malloc'd, NUL-terminated) in *out.  A child that
 * dies of a signal, exits with a status other than 0, or takes longer
 * than 10 s (then killed) gives -ECHILD with a message naming the file:
 * the code that ran (a constructor, a broken descriptor) cannot take the
 * caller down with it. */
int plugin_probe_run(const char *path, const char *kind, int (*fn)(const char *path, int fd), char **out);

/* Finds FILE under the directories `extra` (searched first), then the
 * search path: 1 with the full path in `out`, 0 when no directory has
 * it. */
int plugin_path_find(const char *file, const char *const *extra, unsigned n_extra, char *out, size_t cap);

/* Makes encryption plug-ins load through this loader
 * (crypt_plugin_set_loader).  Called once by main() and by tests. */
void plugin_loader_install_crypt(void);

#endif
