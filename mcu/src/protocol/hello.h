// The HELLO reply: what a device is and runs. Contract: proto_write_hello writes the fields of
// protocol.json's HELLO reply layout, in order, from a ProtoHello the application fills in.
#ifndef SQZ_PROTOCOL_HELLO_H_
#define SQZ_PROTOCOL_HELLO_H_
#include <stdint.h>

#include "wire.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint8_t dtype;  // PROTO_DTYPE_*
  uint8_t ndims;
  uint16_t dims[4];
  float scale;
  int32_t zero_point;
  uint32_t bytes;
} ProtoTensorInfo;

typedef struct {
  uint32_t clock_hz;
  uint32_t tick_hz;
  uint32_t arena_bytes;
  uint32_t arena_used_bytes;
  uint8_t model_state;  // PROTO_MODEL_STATE_*
  uint32_t model_size;
  const uint8_t* model_sha256;  // 32 bytes
  ProtoTensorInfo input;
  ProtoTensorInfo output;
  const char* board;
  const char* timer_source;
  const char* kernels;
  const char* firmware_git_sha;
  const char* build_flags;
  const char* compiler;
  const char* model_name;
  const char* model_message;  // why the model was refused, or "ok"
} ProtoHello;

void proto_write_hello(ProtoWriter* out, const ProtoHello* hello);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_PROTOCOL_HELLO_H_
