/* The built-in "aes-xts-plain64" cipher's implementations, and choosing
 * one (crypt_aes_xts.c). */
#ifndef VESSEL_BLOCK_CRYPT_AES_XTS_H
#define VESSEL_BLOCK_CRYPT_AES_XTS_H

enum crypt_aes_xts_path {
	CRYPT_AES_XTS_AUTO = -1,  /* the fastest this CPU runs (the default) */
	CRYPT_AES_XTS_OPENSSL,    /* OpenSSL's AES-ECB plus tweak passes: any CPU */
	CRYPT_AES_XTS_AESNI,      /* single pass, AES-NI, 8 blocks in flight */
	CRYPT_AES_XTS_VAES,       /* single pass, VAES on 512-bit registers */
};

/* Sets the implementation that contexts created from now on use (those
 * already created keep theirs).  For tests and benchmarks, which compare
 * the paths on one machine.  Returns 0, or -ENOTSUP when the CPU cannot
 * run it. */
int crypt_aes_xts_select(enum crypt_aes_xts_path path);
/* The path a context created now would use. */
enum crypt_aes_xts_path crypt_aes_xts_path(void);
const char *crypt_aes_xts_path_name(enum crypt_aes_xts_path path);

#endif
