// SHA-256 (FIPS 180-4) of a byte array in one call. Contract: sqz_sha256(data, n, digest) writes the
// 32-byte digest; no state, no allocation; about 40 instructions per byte on a Cortex-M4.
#ifndef SQZ_APP_SHA256_H_
#define SQZ_APP_SHA256_H_
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

void sqz_sha256(const uint8_t* data, size_t length, uint8_t digest[32]);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_APP_SHA256_H_
