/* vessel VM Encryption API (placeholder, versioned when it lands). */
#ifndef VESSEL_CRYPT_H
#define VESSEL_CRYPT_H
#define VESSEL_CRYPT_ABI_VERSION 0
#endif
