// One protocol session: bytes in, frames checked and dispatched, replies out. Knows no model and no board.
// Contract: feed every received byte to proto_session_push; each complete frame gets exactly one reply
// (an error reply for malformed, truncated, oversized or unknown frames) before the call returns, and no
// input can make it read or write outside its buffers. The backend supplies the model side: its
// description, the input tensor buffer that LOAD_INPUT fills, Invoke, per-op profile records, reset.
#ifndef SQZ_PROTOCOL_SESSION_H_
#define SQZ_PROTOCOL_SESSION_H_
#include <stddef.h>
#include <stdint.h>

#include "cobs.h"
#include "protocol_defs.h"
#include "wire.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint8_t status;       // ProtoStatus
  int32_t detail;       // e.g. a TfLiteStatus or a model state
  const char* message;  // optional text, may be NULL
} ProtoResult;

typedef struct {
  void* ctx;
  void (*describe)(void* ctx, ProtoWriter* out);  // the HELLO reply payload
  ProtoResult (*input)(void* ctx, uint8_t** data, uint32_t* bytes);
  // profile 0: Invoke() with no profiler attached (its own cost left out), 1: every op recorded.
  ProtoResult (*invoke)(void* ctx, int profile, uint64_t* ticks, const uint8_t** output, uint32_t* output_bytes);
  // Number of records of the last invoke (negative: none, or it ran without the profiler) and, in `dropped`, the
  // ops after them the profiler had no room for; then record `index`.
  int (*profile_count)(void* ctx, int* dropped);
  void (*profile_record)(void* ctx, int index, uint64_t* ticks, const char** tag);
  void (*reset)(void* ctx);  // called after the RESET reply was sent; may not return
} ProtoBackend;

#define PROTO_RX_CAPACITY (PROTO_HEADER_BYTES + PROTO_MAX_REQUEST_PAYLOAD + PROTO_CRC_BYTES + 4)

typedef struct {
  const ProtoBackend* backend;
  ProtoSinkFn sink;
  void* sink_ctx;
  uint8_t rx[PROTO_RX_CAPACITY];
  size_t rx_used;
  int rx_overflow;
  uint32_t input_received;
  uint32_t input_crc;
  uint8_t reply[PROTO_MAX_REPLY_PAYLOAD];
} ProtoSession;

void proto_session_init(ProtoSession* s, const ProtoBackend* backend, ProtoSinkFn sink, void* sink_ctx);
void proto_session_push(ProtoSession* s, const uint8_t* data, size_t length);

// Command handlers (commands.c); each fills `out` and returns the reply status.
ProtoResult proto_cmd_hello(ProtoSession* s, const uint8_t* payload, size_t length, ProtoWriter* out);
ProtoResult proto_cmd_load_input(ProtoSession* s, const uint8_t* payload, size_t length, ProtoWriter* out);
ProtoResult proto_cmd_invoke(ProtoSession* s, const uint8_t* payload, size_t length, ProtoWriter* out);
ProtoResult proto_cmd_profile(ProtoSession* s, const uint8_t* payload, size_t length, ProtoWriter* out);
ProtoResult proto_cmd_reset(ProtoSession* s, const uint8_t* payload, size_t length, ProtoWriter* out);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_PROTOCOL_SESSION_H_
