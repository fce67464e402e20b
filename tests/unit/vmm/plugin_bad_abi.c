/* A plug-in built for a future ABI version: vessel must refuse it. */
#include <vessel/plugin.h>

__attribute__((visibility("default"))) const struct vessel_plugin vessel_plugin_descriptor = {
	VESSEL_PLUGIN_MAGIC, 99, sizeof(struct vessel_plugin), "future", "9.0", "built for ABI 99", NULL, 0,
};
