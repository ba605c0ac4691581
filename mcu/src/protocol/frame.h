// Protocol frames: header (command, status, seq, length), payload, CRC-32; COBS on the wire.
// Contract: proto_parse_frame decodes a received body in place and checks, in this order, COBS, the
// minimum size, the CRC, then that the header length equals the payload bytes; it returns PROTO_ST_OK or
// the status to answer with. Header fields are filled whenever the frame was long enough to have them.
// proto_send_frame streams one frame (CRC computed on the fly) to a sink; it allocates nothing.
#ifndef SQZ_PROTOCOL_FRAME_H_
#define SQZ_PROTOCOL_FRAME_H_
#include <stddef.h>
#include <stdint.h>

#include "cobs.h"
#include "protocol_defs.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint8_t command;
  uint8_t status;
  uint16_t seq;
  uint16_t length;
  const uint8_t* payload;
  int has_header;  // 1 when command and seq were read from the frame
} ProtoFrame;

int proto_parse_frame(uint8_t* body, size_t length, ProtoFrame* frame);
void proto_send_frame(ProtoSinkFn sink, void* ctx, uint8_t command, uint8_t status, uint16_t seq, const uint8_t* payload,
                      size_t length);
// An unsolicited event frame (reply flag set, seq 0) whose payload is text.
void proto_send_event(ProtoSinkFn sink, void* ctx, uint8_t event, const char* text);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_PROTOCOL_FRAME_H_
