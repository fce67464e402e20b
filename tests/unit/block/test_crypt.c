/* VM Encryption API: the built-in AES-XTS cipher against IEEE 1619
 * vectors and OpenSSL's own XTS on each of its implementations (OpenSSL
 * ECB, AES-NI, VAES: every one this CPU runs), round trips, thread
 * safety, and the plug-in loader (search, ABI version refusal). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "block/crypt_aes_xts.h"
#include "block/crypt_plugin.h"
#include "vmm/plugin_loader.h"
#include "block/xts_aesni.h"
#include "util/error.h"

/* Tests of the cipher's output run once per implementation: they loop
 * over these, and select_path() makes the contexts created next use one,
 * or says the CPU does not have it. */
static const enum crypt_aes_xts_path all_paths[] = {
	CRYPT_AES_XTS_OPENSSL, CRYPT_AES_XTS_AESNI, CRYPT_AES_XTS_VAES,
};
#define N_PATHS (sizeof(all_paths) / sizeof(all_paths[0]))

static bool select_path(enum crypt_aes_xts_path p)
{
	if (crypt_aes_xts_select(p) == 0)
		return true;
	cr_log_warn("aes-xts %s: this CPU does not have it, not tested", crypt_aes_xts_path_name(p));
	return false;
}

static void hex_decode(const char *hex, uint8_t *out, size_t n)
{
	cr_assert_eq(strlen(hex), 2 * n, "hex length %zu, want %zu", strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* IEEE Std 1619-2007 Annex B test vectors: plaintext of both is the
 * 512-byte data unit 00 01 .. ff 00 01 .. ff. */
static const char v10_key[] =
	"2718281828459045235360287471352662497757247093699959574966967627"
	"3141592653589793238462643383279502884197169399375105820974944592";
static const char v10_ct[] = /* Vector 10: XTS-AES-256, data unit sequence number 0xff */
	"1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b"
	"5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"
	"5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
	"c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca"
	"2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0"
	"b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
	"93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec"
	"583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a"
	"84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
	"505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae"
	"9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29"
	"a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
	"6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f"
	"645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385"
	"1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
	"773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";
static const char v4_key[] =
	"2718281828459045235360287471352631415926535897932384626433832795";
static const char v4_ct[] = /* Vector 4: XTS-AES-128, data unit sequence number 0 */
	"27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c"
	"c78cf7f5e543445f8333d8fa7f56000005279fa5d8b5e4ad40e736ddb4d35412"
	"328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce"
	"93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad0265"
	"5ea92dc4c4e41a8952c651d33174be51a10c421110e6d81588ede82103a252d8"
	"a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f434"
	"1332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c"
	"5ccf2a55d705ddcd86d449511ceb7ec30bf12b1fa35b913f9f747a8afd1b130e"
	"94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc"
	"1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3"
	"e7ff72b1e99785ca0a7e7720c5b36dc6d72cac9574c8cbbc2f801e23e56fd344"
	"b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd"
	"74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752"
	"afe656bb3c17256a9f6e9bf19fdd5a38fc82bbe872c5539edb609ef4f79c203e"
	"bb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18d"
	"eb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568";

static void pattern_512(uint8_t *buf)
{
	for (int i = 0; i < 512; i++)
		buf[i] = (uint8_t)i;
}

static void check_vector(const char *key_hex, uint32_t key_len, uint64_t sector, const char *ct_hex)
{
	uint8_t key[64], pt[512], buf[512], ct[512];
	struct crypt_cipher *c;

	hex_decode(key_hex, key, key_len);
	hex_decode(ct_hex, ct, sizeof(ct));
	pattern_512(pt);
	for (size_t p = 0; p < N_PATHS; p++) {
		if (!select_path(all_paths[p]))
			continue;
		const char *name = crypt_aes_xts_path_name(all_paths[p]);
		cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, key_len, 512, NULL, 0, &c), 0, "%s", err_msg());
		memcpy(buf, pt, sizeof(buf));
		cr_assert_eq(crypt_cipher_encrypt(c, sector, buf, 1), 0);
		cr_assert_arr_eq(buf, ct, sizeof(ct), "%s: ciphertext differs from IEEE 1619", name);
		cr_assert_eq(crypt_cipher_decrypt(c, sector, buf, 1), 0);
		cr_assert_arr_eq(buf, pt, sizeof(pt), "%s: decryption is not the plaintext", name);
		crypt_cipher_free(c);
	}
}

Test(aes_xts, ieee1619_vector10_xts_aes_256)
{
	check_vector(v10_key, 64, 0xff, v10_ct);
}

Test(aes_xts, ieee1619_vector4_xts_aes_128)
{
	check_vector(v4_key, 32, 0, v4_ct);
}

/* plain64: a request of n sectors equals n one-sector requests with
 * consecutive numbers, and the number reaches all 64 bits of the tweak. */
Test(aes_xts, multi_sector_equals_single_sectors)
{
	uint8_t key[64];
	enum { N = 9 };
	static uint8_t a[N * 512], b[N * 512];
	struct crypt_cipher *c;
	const uint64_t first = 0x1234567890abcdefull - 4;

	hex_decode(v10_key, key, 64);
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)(i * 7 + 3);
	cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, 64, 512, NULL, 0, &c), 0);
	cr_assert_eq(crypt_cipher_encrypt(c, first, a, N), 0);
	for (int s = 0; s < N; s++)
		cr_assert_eq(crypt_cipher_encrypt(c, first + s, b + s * 512, 1), 0);
	cr_assert_arr_eq(a, b, sizeof(a));
	/* Different sectors of equal plaintext give different ciphertext. */
	memset(a, 0x5a, 1024);
	cr_assert_eq(crypt_cipher_encrypt(c, 0, a, 2), 0);
	cr_assert_arr_neq(a, a + 512, 512);
	/* The high tweak bits matter: sector 2^63 differs from sector 0. */
	memset(b, 0x5a, 512);
	cr_assert_eq(crypt_cipher_encrypt(c, 1ull << 63, b, 1), 0);
	cr_assert_arr_neq(a, b, 512);
	crypt_cipher_free(c);
}

Test(aes_xts, round_trip_4096_byte_sectors)
{
	uint8_t key[64];
	static uint8_t buf[3 * 4096], orig[3 * 4096];
	struct crypt_cipher *c;

	hex_decode(v10_key, key, 64);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = orig[i] = (uint8_t)(i ^ (i >> 8));
	cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, 64, 4096, NULL, 0, &c), 0);
	cr_assert_eq(crypt_cipher_encrypt(c, 80, buf, 3), 0);
	cr_assert_arr_neq(buf, orig, sizeof(buf));
	cr_assert_eq(crypt_cipher_decrypt(c, 80, buf, 3), 0);
	cr_assert_arr_eq(buf, orig, sizeof(buf));
	crypt_cipher_free(c);
}

Test(aes_xts, rejects_bad_keys_and_sector_sizes)
{
	uint8_t key[64] = { 0 };
	struct crypt_cipher *c = NULL;

	hex_decode(v10_key, key, 64);
	cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, 48, 512, NULL, 0, &c), -EINVAL);
	cr_assert(strstr(err_msg(), "48-byte key"), "%s", err_msg());
	cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, 64, 1000, NULL, 0, &c), -EINVAL);
	cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, 64, 8192, NULL, 0, &c), -EINVAL);
	/* Equal halves: XTS would lose its tweak secrecy. */
	memset(key, 0x11, 64);
	cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, 64, 512, NULL, 0, &c), -EINVAL);
	cr_assert_null(c);
}

struct thread_arg {
	struct crypt_cipher *c;
	int id;
	int failures;
};

static void *thread_round_trips(void *p)
{
	struct thread_arg *a = p;
	uint8_t buf[4 * 512], orig[4 * 512], ref[4 * 512];

	for (int iter = 0; iter < 200; iter++) {
		uint64_t sector = (uint64_t)a->id * 1000 + iter;
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = orig[i] = ref[i] = (uint8_t)(i + a->id * 31 + iter);
		if (crypt_cipher_encrypt(a->c, sector, buf, 4) ||
		    crypt_cipher_decrypt(a->c, sector, buf, 4) || memcmp(buf, orig, sizeof(buf)))
			a->failures++;
		/* Same result as one sector at a time: no tweak leaked between threads. */
		if (crypt_cipher_encrypt(a->c, sector, buf, 4))
			a->failures++;
		for (int s = 0; s < 4; s++)
			if (crypt_cipher_encrypt(a->c, sector + s, ref + s * 512, 1))
				a->failures++;
		if (memcmp(buf, ref, sizeof(buf)))
			a->failures++;
	}
	return NULL;
}

Test(aes_xts, one_context_many_threads)
{
	uint8_t key[64];
	struct crypt_cipher *c;
	pthread_t t[4];
	struct thread_arg args[4];

	hex_decode(v10_key, key, 64);
	for (size_t p = 0; p < N_PATHS; p++) {
		if (!select_path(all_paths[p]))
			continue;
		cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, 64, 512, NULL, 0, &c), 0);
		for (int i = 0; i < 4; i++) {
			args[i] = (struct thread_arg){ .c = c, .id = i };
			cr_assert_eq(pthread_create(&t[i], NULL, thread_round_trips, &args[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			cr_assert_eq(args[i].failures, 0, "%s, thread %d: %d failures",
				     crypt_aes_xts_path_name(all_paths[p]), i, args[i].failures);
		}
		crypt_cipher_free(c);
	}
}

/* ---- plug-in loader ---- */

static const char *const test_dirs[] = { CRYPT_TEST_PLUGIN_DIR };

/* The block layer finds plug-in files through the VMM's loader, as
 * main() installs it. */
__attribute__((constructor)) static void install_loader(void)
{
	plugin_loader_install_crypt();
}

Test(crypt_plugin, loads_external_plugin_from_dir)
{
	uint8_t key[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	uint8_t buf[1024];
	struct crypt_cipher *c;

	cr_assert_eq(crypt_cipher_new("test-xor", key, 16, 512, test_dirs, 1, &c), 0, "%s", err_msg());
	cr_assert_not_null(c->plugin->path);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(crypt_cipher_encrypt(c, 0x105, buf, 2), 0);
	/* The plug-in saw sector numbers 0x105 and 0x106. */
	cr_assert_eq(buf[0], key[0] ^ 0x05);
	cr_assert_eq(buf[512], key[0] ^ 0x06);
	cr_assert_eq(crypt_cipher_decrypt(c, 0x105, buf, 2), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0);
	crypt_cipher_free(c);
}

Test(crypt_plugin, env_path_and_process_dirs)
{
	uint8_t key[16] = { 0 };
	struct crypt_cipher *c;

	cr_assert_eq(crypt_cipher_new("test-xor", key, 16, 512, NULL, 0, &c), -ENOENT);
	cr_assert(strstr(err_msg(), "crypt/test-xor.so"), "%s", err_msg());
	/* A plug-in directory holds crypt plug-ins in crypt/, not at its top. */
	static const char *const flat[] = { CRYPT_TEST_CRYPT_DIR };
	cr_assert_eq(crypt_cipher_new("test-xor", key, 16, 512, flat, 1, &c), -ENOENT);
	/* The one search path: crypt/NAME.so under each directory of
	 * VESSEL_PLUGIN_PATH, as for device plug-ins. */
	setenv("VESSEL_PLUGIN_PATH", "/nonexistent:" CRYPT_TEST_PLUGIN_DIR, 1);
	cr_assert_eq(crypt_cipher_new("test-xor", key, 16, 512, NULL, 0, &c), 0, "%s", err_msg());
	crypt_cipher_free(c);
	unsetenv("VESSEL_PLUGIN_PATH");
	/* The deprecated variable still finds NAME.so directly. */
	setenv("VESSEL_CRYPT_PLUGIN_PATH", "/nonexistent:" CRYPT_TEST_CRYPT_DIR, 1);
	cr_assert_eq(crypt_cipher_new("test-xor", key, 16, 512, NULL, 0, &c), 0, "%s", err_msg());
	crypt_cipher_free(c);
	unsetenv("VESSEL_CRYPT_PLUGIN_PATH");
	cr_assert_eq(crypt_plugin_set_dirs(test_dirs, 1), 0);
	cr_assert_eq(crypt_cipher_new("test-xor", key, 16, 512, NULL, 0, &c), 0, "%s", err_msg());
	crypt_cipher_free(c);
	cr_assert_eq(crypt_plugin_set_dirs(NULL, 0), 0);
	cr_assert_eq(crypt_cipher_new("test-xor", key, 16, 512, NULL, 0, &c), -ENOENT);
}

Test(crypt_plugin, refuses_other_abi_version)
{
	struct crypt_plugin *p = NULL;
	char msg[64];

	cr_assert_eq(crypt_plugin_find("test-badabi", test_dirs, 1, &p), -EPROTO);
	cr_assert_null(p);
	snprintf(msg, sizeof(msg), "built for VM Encryption API version %u", VESSEL_CRYPT_ABI_VERSION + 1);
	cr_assert(strstr(err_msg(), msg), "%s", err_msg());
	cr_assert(strstr(err_msg(), "/crypt/test-badabi.so"), "%s", err_msg());
	cr_assert(strstr(err_msg(), "but this vessel has version 1"), "%s", err_msg());
}

Test(crypt_plugin, key_size_checked_against_plugin)
{
	uint8_t key[32] = { 0 };
	struct crypt_cipher *c;

	cr_assert_eq(crypt_cipher_new("test-xor", key, 32, 512, test_dirs, 1, &c), -EINVAL);
	cr_assert(strstr(err_msg(), "32-byte key"), "%s", err_msg());
}

Test(crypt_plugin, rejects_bad_names_and_descriptors)
{
	struct crypt_plugin *p;
	struct vessel_crypt_plugin d = crypt_builtin_aes_xts_plain64;

	cr_assert_eq(crypt_plugin_find("../etc/evil", test_dirs, 1, &p), -EINVAL);
	cr_assert_eq(crypt_plugin_find("", test_dirs, 1, &p), -EINVAL);
	cr_assert_eq(crypt_plugin_find("AES", test_dirs, 1, &p), -EINVAL);
	cr_assert_eq(crypt_plugin_check(&d, "copy"), 0);
	d.struct_size = 16;
	cr_assert_eq(crypt_plugin_check(&d, "copy"), -EINVAL);
	d = crypt_builtin_aes_xts_plain64;
	d.decrypt = NULL;
	cr_assert_eq(crypt_plugin_check(&d, "copy"), -EINVAL);
	d = crypt_builtin_aes_xts_plain64;
	d.abi_version = 0;
	cr_assert_eq(crypt_plugin_check(&d, "copy"), -EPROTO);
	/* A file that is not a shared object is an error, not "not found";
	 * one that is not even a regular file is refused before dlopen. */
	cr_assert_eq(crypt_plugin_load_file("/dev/null", &p), -EPERM);
	cr_assert(strstr(err_msg(), "not a regular file"), "%s", err_msg());
	cr_assert_eq(crypt_plugin_load_file(CRYPT_TEST_PLUGIN_DIR "/crypt-plugin-probe", &p), -ENOEXEC);
}

/* The built-in cipher against OpenSSL's own XTS (EVP_aes_256_xts,
 * EVP_aes_128_xts), one EVP call per data unit with the plain64 IV. */
static void openssl_xts(const uint8_t *key, uint32_t key_len, uint64_t sector, uint8_t *buf,
			uint32_t n, uint32_t ss, int enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	const EVP_CIPHER *x = key_len == 64 ? EVP_aes_256_xts() : EVP_aes_128_xts();
	for (uint32_t s = 0; s < n; s++) {
		uint8_t iv[16] = { 0 };
		uint64_t num = sector + (uint64_t)s * (ss / 512); /* 512-byte sector numbers */
		int len;
		for (int b = 0; b < 8; b++)
			iv[b] = (uint8_t)(num >> (8 * b));
		cr_assert_eq(EVP_CipherInit_ex(c, x, NULL, key, iv, enc), 1);
		cr_assert_eq(EVP_CipherUpdate(c, buf + (size_t)s * ss, &len, buf + (size_t)s * ss, (int)ss), 1);
	}
	EVP_CIPHER_CTX_free(c);
}

/* splitmix64: reproducible pseudo-random keys, data and sector numbers. */
static uint64_t next_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill_rand(uint64_t *state, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(next_rand(state) >> 56);
}

/* Encrypts `plain` (n units of ss bytes at `sector`) with the current
 * path and with OpenSSL, compares, then decrypts both ways back.  `a`
 * may be unaligned. */
static void compare_with_openssl(const char *what, const uint8_t *key, uint32_t key_len, uint32_t ss,
				 uint64_t sector, uint32_t n, const uint8_t *plain, uint8_t *a, uint8_t *b)
{
	const size_t bytes = (size_t)n * ss;
	struct crypt_cipher *c;

	cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, key_len, ss, NULL, 0, &c), 0, "%s", err_msg());
	memcpy(a, plain, bytes);
	memcpy(b, plain, bytes);
	cr_assert_eq(crypt_cipher_encrypt(c, sector, a, n), 0);
	openssl_xts(key, key_len, sector, b, n, ss, 1);
	cr_assert_arr_eq(a, b, bytes, "%s, key %u, ss %u, sector %#llx, n %u: encrypt differs from OpenSSL",
			 what, key_len, ss, (unsigned long long)sector, n);
	cr_assert_eq(crypt_cipher_decrypt(c, sector, a, n), 0);
	openssl_xts(key, key_len, sector, b, n, ss, 0);
	cr_assert_arr_eq(a, plain, bytes, "%s, key %u, ss %u, sector %#llx, n %u: decrypt differs",
			 what, key_len, ss, (unsigned long long)sector, n);
	cr_assert_arr_eq(b, plain, bytes);
	crypt_cipher_free(c);
}

/* Pseudo-random keys, data and sector numbers (full 64 bits, and near
 * 2^32 and 2^64 so that a request's numbers cross 32-bit boundaries),
 * both key sizes, several sector sizes, request lengths around the
 * fast paths' batch of eight data units, buffers at odd addresses: each
 * implementation, both directions, against OpenSSL's XTS. */
Test(aes_xts, every_path_agrees_with_openssl_xts)
{
	static uint8_t plain[40 * 4096], a[40 * 4096 + 64], b[40 * 4096];
	const uint32_t sizes[] = { 512, 1024, 4096 };
	const uint32_t lengths[] = { 1, 2, 7, 8, 9, 16, 17, 33, 40 };
	uint64_t rng = 0x5eed;

	for (size_t p = 0; p < N_PATHS; p++) {
		if (!select_path(all_paths[p]))
			continue;
		const char *name = crypt_aes_xts_path_name(all_paths[p]);
		for (int round = 0; round < 36; round++) {
			uint8_t key[64];
			uint32_t key_len = round % 2 ? 32 : 64, ss = sizes[round % 3];
			uint32_t n = lengths[round % 9];
			uint64_t sector, r = next_rand(&rng);
			switch (round % 4) {
			case 0: sector = r; break;                           /* anywhere */
			case 1: sector = 0xffffffffull - (r % 64); break;    /* crosses 2^32 */
			case 2: sector = r % 1000; break;                    /* small */
			default: sector = ~0ull - 41 * 8 - (r % 4096); break; /* near 2^64 */
			}
			sector &= ~(uint64_t)(ss / 512 - 1);
			fill_rand(&rng, key, sizeof(key));
			fill_rand(&rng, plain, (size_t)n * ss);
			compare_with_openssl(name, key, key_len, ss, sector, n, plain, a + (round % 5) * 3, b);
		}
	}
}

/* Every request length from 1 to 40 units, for every sector size: the
 * implementations work on eight data units' tweaks at once (AES-NI,
 * VAES) or four units and 16 KiB batches (OpenSSL), so lengths around
 * multiples of those take every split.  Also with a starting sector whose
 * tweak uses the upper 32 bits. */
Test(aes_xts, every_length_and_lane_split_agrees_with_openssl)
{
	static uint8_t a[40 * 4096], b[40 * 4096], plain[40 * 4096];
	const uint32_t sizes[] = { 512, 1024, 2048, 4096 };
	uint8_t key[64];

	for (int i = 0; i < 64; i++)
		key[i] = (uint8_t)(i * 37 + 11);
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 131 + (i >> 11));
	for (size_t p = 0; p < N_PATHS; p++) {
		if (!select_path(all_paths[p]))
			continue;
		for (int k = 0; k < 4; k++) {
			uint32_t ss = sizes[k];
			for (uint32_t n = 1; n <= 40; n++) {
				uint64_t sector = (n % 2 ? 0x7ffffff8ull * 3 : 40) & ~(uint64_t)(ss / 512 - 1);
				compare_with_openssl(crypt_aes_xts_path_name(all_paths[p]), key, 64, ss, sector, n,
						     plain, a, b);
			}
		}
	}
}

/* Encrypting into another buffer (what the filter does for writes) gives
 * what encrypting in place gives and leaves the source alone: on every
 * path of the built-in cipher, odd addresses included, and through the
 * copy-then-encrypt fallback for a plug-in. */
Test(aes_xts, encrypt_copy_equals_in_place_and_keeps_the_source)
{
	static uint8_t src[17 * 1024 + 8], orig[17 * 1024], dst[17 * 1024 + 8], ref[17 * 1024];
	uint64_t rng = 0xc0ffee;
	uint8_t key[64];
	struct crypt_cipher *c;

	fill_rand(&rng, key, sizeof(key));
	fill_rand(&rng, orig, sizeof(orig));
	for (size_t p = 0; p < N_PATHS; p++) {
		if (!select_path(all_paths[p]))
			continue;
		const char *name = crypt_aes_xts_path_name(all_paths[p]);
		for (uint32_t ss = 512; ss <= 1024; ss *= 2) {
			uint32_t n = (uint32_t)(sizeof(orig) / ss);
			uint64_t sector = 0x123456789aull * 8;
			cr_assert_eq(crypt_cipher_new("aes-xts-plain64", key, 64, ss, NULL, 0, &c), 0, "%s", err_msg());
			memcpy(ref, orig, sizeof(orig));
			cr_assert_eq(crypt_cipher_encrypt(c, sector, ref, n), 0);
			memcpy(src + 3, orig, sizeof(orig));
			cr_assert_eq(crypt_cipher_encrypt_copy(c, sector, dst + 5, src + 3, n), 0);
			cr_assert_arr_eq(dst + 5, ref, sizeof(ref), "%s, ss %u: differs from in place", name, ss);
			cr_assert_arr_eq(src + 3, orig, sizeof(orig), "%s, ss %u: source changed", name, ss);
			crypt_cipher_free(c);
		}
	}
	static const char *const dirs[] = { CRYPT_TEST_PLUGIN_DIR };
	cr_assert_eq(crypt_cipher_new("test-xor", key, 16, 512, dirs, 1, &c), 0, "%s", err_msg());
	cr_assert_null(c->plugin->encrypt_copy);
	memcpy(ref, orig, 1024);
	cr_assert_eq(crypt_cipher_encrypt(c, 7, ref, 2), 0);
	cr_assert_eq(crypt_cipher_encrypt_copy(c, 7, dst, orig, 2), 0);
	cr_assert_arr_eq(dst, ref, 1024);
	crypt_cipher_free(c);
}

/* Without a selection, contexts use the fastest implementation the CPU
 * runs; one the CPU lacks cannot be selected. */
Test(aes_xts, default_path_is_the_fastest_the_cpu_runs)
{
	unsigned have = xts_cpu_paths();
	enum crypt_aes_xts_path want = have & XTS_CPU_VAES ? CRYPT_AES_XTS_VAES
				       : have & XTS_CPU_AESNI ? CRYPT_AES_XTS_AESNI : CRYPT_AES_XTS_OPENSSL;

	cr_assert_eq(crypt_aes_xts_path(), want);
	cr_assert_eq(crypt_aes_xts_select(CRYPT_AES_XTS_OPENSSL), 0);
	cr_assert_eq(crypt_aes_xts_path(), CRYPT_AES_XTS_OPENSSL);
	cr_assert_eq(crypt_aes_xts_select(CRYPT_AES_XTS_VAES), have & XTS_CPU_VAES ? 0 : -ENOTSUP);
	cr_assert_eq(crypt_aes_xts_select(CRYPT_AES_XTS_AESNI), have & XTS_CPU_AESNI ? 0 : -ENOTSUP);
	cr_assert_eq(crypt_aes_xts_select(CRYPT_AES_XTS_AUTO), 0);
	cr_assert_eq(crypt_aes_xts_path(), want);
	/* VAES implies the AES-NI kernel's instructions (its tweaks use them). */
	if (have & XTS_CPU_VAES)
		cr_assert(have & XTS_CPU_AESNI);
}

/* The ABI's layout on x86-64 System V: plug-ins built against version 1
 * rely on these offsets, so a change here must bump the ABI version. */
Test(crypt_plugin, abi_v1_layout)
{
	cr_assert_eq(VESSEL_CRYPT_ABI_VERSION, 1);
	cr_assert_eq(offsetof(struct vessel_crypt_plugin, abi_version), 0);
	cr_assert_eq(offsetof(struct vessel_crypt_plugin, struct_size), 4);
	cr_assert_eq(offsetof(struct vessel_crypt_plugin, name), 8);
	cr_assert_eq(offsetof(struct vessel_crypt_plugin, description), 16);
	cr_assert_eq(offsetof(struct vessel_crypt_plugin, key_sizes), 24);
	cr_assert_eq(offsetof(struct vessel_crypt_plugin, create), 32);
	cr_assert_eq(offsetof(struct vessel_crypt_plugin, encrypt), 40);
	cr_assert_eq(offsetof(struct vessel_crypt_plugin, decrypt), 48);
	cr_assert_eq(offsetof(struct vessel_crypt_plugin, destroy), 56);
	cr_assert_eq(sizeof(struct vessel_crypt_plugin), 64);
	cr_assert_str_eq(VESSEL_CRYPT_PLUGIN_SYMBOL, "vessel_crypt_plugin");
}

/* A plug-in built for a later minor revision (larger struct_size, same
 * version) is accepted: members are only ever appended. */
Test(crypt_plugin, larger_struct_size_accepted)
{
	struct vessel_crypt_plugin d = crypt_builtin_aes_xts_plain64;

	d.struct_size = sizeof(d) + 32;
	cr_assert_eq(crypt_plugin_check(&d, "newer"), 0, "%s", err_msg());
}
