/* The VM manifest (docs/manifest.md, schema/manifest.schema.json): JSON
 * text -> struct vm_config.  vm_manifest_load() in vm/vm.h reads a file;
 * these entry points serve tests and the control API. */
#ifndef VESSEL_VMM_MANIFEST_H
#define VESSEL_VMM_MANIFEST_H

#include "vmm/config.h"

#include <jansson.h>

/* Every field the parser accepts, as dotted paths ("cpus",
 * "disks[].path"), NULL-terminated: kept equal to the schema's by a test. */
extern const char *const vm_manifest_fields[];

/* Parses manifest text.  name prefixes error messages ("manifest NAME:
 * field: ..."); relative paths are resolved against base_dir (NULL: kept
 * as they are).  cfg must hold defaults (vm_config_defaults); fields
 * present replace them.  0 or -EINVAL with err_set(). */
int vm_manifest_parse(const char *text, const char *name, const char *base_dir, struct vm_config *cfg);

/* Parses one "devices" entry ({type, id, params}) into out, for the
 * manifest and for `device add` of the control API.  where names the
 * entry in messages ("devices[2]").  0 or -EINVAL with err_set(); out is
 * untouched on error.  Free with vm_device_config_free(). */
int vm_manifest_parse_device(json_t *obj, const char *where, struct vm_device_config *out);
void vm_device_config_free(struct vm_device_config *dev);

#endif
