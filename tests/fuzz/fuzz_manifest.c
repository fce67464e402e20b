/* libFuzzer target: the manifest parser (docs/manifest.md).  The input is
 * manifest text, parsed as `vessel run --manifest` parses a file's
 * content, relative paths resolved against a directory.  Any crash, leak
 * or sanitizer report is a bug: bad input must only produce an error. */
#include "vmm/config.h"
#include "vmm/manifest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	struct vm_config cfg;
	vm_config_defaults(&cfg);
	if (vm_manifest_parse(text, "fuzz.json", "/base", &cfg) == 0)
		vm_config_validate(&cfg);
	vm_config_free(&cfg);
	free(text);
	return 0;
}
