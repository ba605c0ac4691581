// COBS byte stuffing: frames carry no 0x00, which delimits them on the wire.
// Contract: proto_cobs_decode decodes in place (output never longer than input) and returns the decoded
// length, or -1 for a malformed encoding (a zero byte inside, a code running past the end).
// ProtoCobsWriter encodes a stream with a 254-byte staging block, so a reply of any length needs no
// whole-frame buffer: put bytes, then finish (which writes the last block and the delimiter).
#ifndef SQZ_PROTOCOL_COBS_H_
#define SQZ_PROTOCOL_COBS_H_
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef void (*ProtoSinkFn)(void* ctx, const uint8_t* data, size_t length);

typedef struct {
  ProtoSinkFn sink;
  void* ctx;
  uint8_t block[255];  // block[0] is the code byte
  uint8_t used;        // data bytes in block[1..]
} ProtoCobsWriter;

long proto_cobs_decode(uint8_t* data, size_t length);
void proto_cobs_begin(ProtoCobsWriter* writer, ProtoSinkFn sink, void* ctx);
void proto_cobs_put(ProtoCobsWriter* writer, const uint8_t* data, size_t length);
void proto_cobs_finish(ProtoCobsWriter* writer);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_PROTOCOL_COBS_H_
