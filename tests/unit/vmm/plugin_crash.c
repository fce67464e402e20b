/* A plug-in that misbehaves on demand, for the loader's containment:
 * its constructor crashes when VESSEL_TEST_CRASH_CTOR is set (so that
 * only a probe child, never the process listing or running VMs, dies of
 * it), and create() crashes when its parameter `crash` is true. */
#include <stdint.h>
#include <stdlib.h>
#include <vessel/plugin.h>

/* A store to an unmapped page: a real SIGSEGV.  Not through a null
 * pointer, which UBSan (the ASan build's -fsanitize=undefined) reports and
 * turns into exit(1) before the access is made. */
static void crash(void)
{
	volatile uintptr_t where = 16;
	*(volatile char *)where = 1;
}

__attribute__((constructor)) static void maybe_crash(void)
{
	if (getenv("VESSEL_TEST_CRASH_CTOR"))
		crash();
}

static int value;

static int crashy_create(const struct vessel_host *h, const union vessel_param_value *p, void **dev)
{
	if (p[0].i)
		crash();
	*dev = &value;
	return 0;
}

static void crashy_destroy(void *dev) {}

static const struct vessel_param_spec params[] = {
	{ "crash", VESSEL_PARAM_BOOL, "crash in create()", "false", 0, 0 },
};
static const struct vessel_device_type crashy = {
	.size = sizeof(struct vessel_device_type), .name = "crashy", .description = "crashes on demand",
	.params = params, .n_params = 1, .create = crashy_create, .destroy = crashy_destroy,
};
static const struct vessel_device_type *const types[] = { &crashy };

__attribute__((visibility("default"))) const struct vessel_plugin vessel_plugin_descriptor = {
	VESSEL_PLUGIN_MAGIC, VESSEL_PLUGIN_ABI_VERSION, sizeof(struct vessel_plugin), "crash-test", "1.0",
	"misbehaves on demand", types, 1,
};
