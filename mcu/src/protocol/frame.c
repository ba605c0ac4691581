// Frame parsing and streaming; see frame.h for the contract.
#include "frame.h"

#include <string.h>

#include "crc32.h"

static uint16_t le16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t* p) { return p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }

int proto_parse_frame(uint8_t* body, size_t length, ProtoFrame* frame) {
  memset(frame, 0, sizeof *frame);
  long decoded = proto_cobs_decode(body, length);
  if (decoded < 0) return PROTO_ST_BAD_FRAME;
  size_t n = (size_t)decoded;
  if (n < PROTO_HEADER_BYTES + PROTO_CRC_BYTES) return PROTO_ST_BAD_FRAME;
  frame->command = body[0];
  frame->status = body[1];
  frame->seq = le16(body + 2);
  frame->length = le16(body + 4);
  frame->payload = body + PROTO_HEADER_BYTES;
  frame->has_header = 1;
  if (proto_crc32_update(0, body, n - PROTO_CRC_BYTES) != le32(body + n - PROTO_CRC_BYTES)) return PROTO_ST_BAD_CRC;
  if ((size_t)frame->length != n - PROTO_HEADER_BYTES - PROTO_CRC_BYTES) return PROTO_ST_BAD_LENGTH;
  return PROTO_ST_OK;
}

void proto_send_frame(ProtoSinkFn sink, void* ctx, uint8_t command, uint8_t status, uint16_t seq, const uint8_t* payload,
                      size_t length) {
  ProtoCobsWriter writer;
  uint8_t header[PROTO_HEADER_BYTES] = {command, status, (uint8_t)seq, (uint8_t)(seq >> 8), (uint8_t)length,
                                        (uint8_t)(length >> 8)};
  uint32_t crc = proto_crc32_update(0, header, sizeof header);
  crc = proto_crc32_update(crc, payload, length);
  uint8_t trailer[PROTO_CRC_BYTES] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24)};
  proto_cobs_begin(&writer, sink, ctx);
  proto_cobs_put(&writer, header, sizeof header);
  proto_cobs_put(&writer, payload, length);
  proto_cobs_put(&writer, trailer, sizeof trailer);
  proto_cobs_finish(&writer);
}

void proto_send_event(ProtoSinkFn sink, void* ctx, uint8_t event, const char* text) {
  size_t length = strlen(text);
  if (length > PROTO_TEXT_MAX) length = PROTO_TEXT_MAX;
  proto_send_frame(sink, ctx, (uint8_t)(event | PROTO_REPLY_FLAG), PROTO_ST_OK, 0, (const uint8_t*)text, length);
}
