/* Which AES-XTS kernels (xts_aesni.h) this CPU and OS can run.
 *
 * CPUID says what the processor implements; XGETBV says which register
 * state the OS saves on context switches.  The 512-bit kernel needs both:
 * AVX-512 registers the kernel does not preserve would be corrupted. */
#include "block/xts_aesni.h"

#include <cpuid.h>

#include <immintrin.h>

/* XCR0: SSE (bit 1), AVX upper halves (2), opmask (5), upper halves of
 * ZMM0-15 (6), ZMM16-31 (7). */
#define XTS_XCR0_ZMM 0xe6u

static __attribute__((target("xsave"))) unsigned long long xts_xcr0(void)
{
	return _xgetbv(0);
}

unsigned xts_cpu_paths(void)
{
	unsigned a, b, c, d, paths = 0;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_AES) || !(c & bit_PCLMUL))
		return 0;
	paths |= XTS_CPU_AESNI;
	if (!(c & bit_OSXSAVE) || __get_cpuid_max(0, NULL) < 7)
		return paths;
	if ((xts_xcr0() & XTS_XCR0_ZMM) != XTS_XCR0_ZMM)
		return paths;
	__cpuid_count(7, 0, a, b, c, d);
	if ((b & bit_AVX512F) && (b & bit_AVX512BW) && (c & bit_VAES) && (c & bit_VPCLMULQDQ))
		paths |= XTS_CPU_VAES;
	return paths;
}
