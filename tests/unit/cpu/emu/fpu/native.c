#include "native.h"

#include <string.h>
#include <sys/mman.h>

static uint8_t *page;

uint8_t *native_page(void)
{
	if (!page) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		page = p == MAP_FAILED ? NULL : p;
	}
	return page;
}

void native_call(const uint8_t *code, size_t n, void *arg)
{
	uint8_t *p = native_page();
	memcpy(p, code, n);
	__builtin___clear_cache((char *)p, (char *)p + n);
	((void (*)(void *))(void *)p)(arg);
}
