/* Loads one encryption plug-in file through vessel's loader and checks
 * the example cipher "aes-cbc-plain64" against OpenSSL directly: sector
 * numbers reach the plug-in as the IV, and decrypt inverts encrypt.
 * Exit 0 on success; used by the out-of-tree build test. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>

#include <openssl/evp.h>

#include "block/crypt_plugin.h"
#include "util/error.h"
#include "vmm/plugin_loader.h"

int main(int argc, char **argv)
{
	struct crypt_plugin *p;
	struct crypt_cipher *c;
	uint8_t key[32], buf[3 * 512], ref[3 * 512], orig[3 * 512];
	const uint64_t first = 0x0102030405ull;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
		return 2;
	}
	plugin_loader_install_crypt();
	if (crypt_plugin_load_file(argv[1], &p) < 0) {
		fprintf(stderr, "load: %s\n", err_msg());
		return 1;
	}
	if (strcmp(p->ops->name, "aes-cbc-plain64") != 0) {
		fprintf(stderr, "unexpected plug-in name %s\n", p->ops->name);
		return 1;
	}
	crypt_plugin_release(p);

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(i * 13 + 1);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = orig[i] = (uint8_t)(i * 7);
	/* Found by name through the plug-in search path, as a user would:
	 * crypt/NAME.so under a directory of $VESSEL_PLUGIN_PATH. */
	const char *dir_end = strrchr(argv[1], '/');
	char dir[4096], parent[4096];
	snprintf(dir, sizeof(dir), "%.*s", dir_end ? (int)(dir_end - argv[1]) : 1, dir_end ? argv[1] : ".");
	snprintf(parent, sizeof(parent), "%s/plugins", dir);
	if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
		perror(parent);
		return 1;
	}
	char link[4200];
	snprintf(link, sizeof(link), "%s/crypt", parent);
	if (symlink(dir, link) < 0 && errno != EEXIST) {
		perror(link);
		return 1;
	}
	setenv("VESSEL_PLUGIN_PATH", parent, 1);
	if (crypt_cipher_new("aes-cbc-plain64", key, 32, 512, NULL, 0, &c) < 0 ||
	    crypt_cipher_encrypt(c, first, buf, 3) < 0) {
		fprintf(stderr, "encrypt: %s\n", err_msg());
		return 1;
	}
	for (int s = 0; s < 3; s++) {
		uint8_t iv[16] = { 0 };
		int len;
		for (int b = 0; b < 8; b++)
			iv[b] = (uint8_t)((first + s) >> (8 * b));
		EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new();
		EVP_EncryptInit_ex(e, EVP_aes_256_cbc(), NULL, key, iv);
		EVP_CIPHER_CTX_set_padding(e, 0);
		EVP_EncryptUpdate(e, ref + s * 512, &len, orig + s * 512, 512);
		EVP_CIPHER_CTX_free(e);
	}
	if (memcmp(buf, ref, sizeof(buf)) != 0) {
		fprintf(stderr, "ciphertext differs from AES-256-CBC with plain64 IVs\n");
		return 1;
	}
	if (crypt_cipher_decrypt(c, first, buf, 3) < 0 || memcmp(buf, orig, sizeof(buf)) != 0) {
		fprintf(stderr, "decrypt did not invert encrypt\n");
		return 1;
	}
	crypt_cipher_free(c);
	printf("ok: aes-cbc-plain64 plug-in built out of tree loads and encrypts\n");
	return 0;
}
