/* JSON manifest -> struct vm_config (docs/manifest.md). */
#include "vm/vm.h"

#include "util/error.h"

#include <errno.h>

int vm_manifest_load(const char *path, struct vm_config *cfg)
{
	return err_set(-ENOSYS, "%s: manifests are not supported yet", path);
}
