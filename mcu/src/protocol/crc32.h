// CRC-32/ISO-HDLC (the zlib CRC): poly 0xEDB88320 reflected, init and final xor 0xFFFFFFFF.
// Contract: crc = proto_crc32_update(0, a, n); crc = proto_crc32_update(crc, b, m) equals the CRC of a||b,
// as zlib.crc32 computes it. Nibble table (64 bytes of flash), no state, safe from a fault handler.
#ifndef SQZ_PROTOCOL_CRC32_H_
#define SQZ_PROTOCOL_CRC32_H_
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

uint32_t proto_crc32_update(uint32_t crc, const uint8_t* data, size_t length);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_PROTOCOL_CRC32_H_
