// The core command set: HELLO, LOAD_INPUT, INVOKE, PROFILE, RESET (layouts in mcu/protocol/protocol.json).
// Contract: every handler checks the payload length against its layout before reading, writes its reply
// payload to `out`, and returns a ProtoResult; model-side failures come from the backend with their status.
#include <string.h>

#include "crc32.h"
#include "session.h"

static const ProtoResult kOk = {PROTO_ST_OK, 0, NULL};

static ProtoResult bad_length(size_t length) {
  ProtoResult result = {PROTO_ST_BAD_LENGTH, (int32_t)length, "payload does not match the command's layout"};
  return result;
}

ProtoResult proto_cmd_hello(ProtoSession* s, const uint8_t* payload, size_t length, ProtoWriter* out) {
  (void)payload;
  if (length != PROTO_HELLO_REQUEST_BYTES) return bad_length(length);
  s->backend->describe(s->backend->ctx, out);
  return kOk;
}

ProtoResult proto_cmd_load_input(ProtoSession* s, const uint8_t* payload, size_t length, ProtoWriter* out) {
  if (length < 4) return bad_length(length);
  ProtoReader reader;
  proto_reader_init(&reader, payload, length);
  uint32_t offset = proto_get_u32(&reader);
  uint32_t chunk = (uint32_t)proto_reader_left(&reader);
  uint8_t* input = NULL;
  uint32_t total = 0;
  ProtoResult ready = s->backend->input(s->backend->ctx, &input, &total);
  if (ready.status != PROTO_ST_OK) return ready;
  if (offset != 0 && offset != s->input_received) {
    ProtoResult result = {PROTO_ST_BAD_OFFSET, (int32_t)s->input_received, "offset must be 0 or the bytes received so far"};
    return result;
  }
  if (chunk > PROTO_INPUT_CHUNK_MAX || chunk > total - offset) {
    ProtoResult result = {PROTO_ST_CHUNK_TOO_LARGE, (int32_t)total, "chunk too long or past the end of the input tensor"};
    return result;
  }
  if (offset == 0) {
    s->input_received = 0;
    s->input_crc = 0;
  }
  memcpy(input + offset, payload + 4, chunk);
  s->input_crc = proto_crc32_update(s->input_crc, payload + 4, chunk);
  s->input_received = offset + chunk;
  proto_put_u32(out, s->input_received);
  proto_put_u32(out, total);
  proto_put_u32(out, s->input_crc);
  return kOk;
}

ProtoResult proto_cmd_invoke(ProtoSession* s, const uint8_t* payload, size_t length, ProtoWriter* out) {
  if (length != PROTO_INVOKE_REQUEST_BYTES) return bad_length(length);
  uint8_t profile = payload[0];
  if (profile > 1) {
    ProtoResult result = {PROTO_ST_BAD_ARGUMENT, profile, "profile must be 0 (no profiler) or 1 (per-op profile)"};
    return result;
  }
  uint8_t* input = NULL;
  uint32_t total = 0;
  ProtoResult ready = s->backend->input(s->backend->ctx, &input, &total);
  if (ready.status != PROTO_ST_OK) return ready;
  if (s->input_received != total) {
    ProtoResult result = {PROTO_ST_INPUT_INCOMPLETE, (int32_t)s->input_received, "load the whole input before INVOKE"};
    return result;
  }
  uint64_t ticks = 0;
  const uint8_t* output = NULL;
  uint32_t output_bytes = 0;
  s->input_received = 0;  // Invoke may reuse the input tensor's memory: every INVOKE needs a fresh upload
  ProtoResult result = s->backend->invoke(s->backend->ctx, profile, &ticks, &output, &output_bytes);
  if (result.status != PROTO_ST_OK) return result;
  proto_put_u64(out, ticks);
  proto_put_u32(out, s->input_crc);
  proto_put_u16(out, (uint16_t)output_bytes);
  proto_put_bytes(out, output, output_bytes);
  return kOk;
}

ProtoResult proto_cmd_profile(ProtoSession* s, const uint8_t* payload, size_t length, ProtoWriter* out) {
  if (length != PROTO_PROFILE_REQUEST_BYTES) return bad_length(length);
  ProtoReader reader;
  proto_reader_init(&reader, payload, length);
  uint16_t first = proto_get_u16(&reader);
  int dropped = 0;
  int total = s->backend->profile_count(s->backend->ctx, &dropped);
  if (total < 0) {
    ProtoResult result = {PROTO_ST_NOT_READY, total, "no profiled INVOKE yet (none ran, or the last ran with profile 0)"};
    return result;
  }
  if (first > total) {
    ProtoResult result = {PROTO_ST_BAD_ARGUMENT, total, "first is past the last record"};
    return result;
  }
  proto_put_u16(out, (uint16_t)total);
  proto_put_u16(out, (uint16_t)(dropped > 0xFFFF ? 0xFFFF : dropped));
  proto_put_u16(out, first);
  size_t count_at = out->length;
  proto_put_u16(out, 0);
  uint16_t count = 0;
  for (int i = first; i < total; ++i) {
    uint64_t ticks = 0;
    const char* tag = "";
    s->backend->profile_record(s->backend->ctx, i, &ticks, &tag);
    size_t tag_length = tag ? strlen(tag) : 0;
    if (tag_length > PROTO_PROFILE_TAG_MAX) tag_length = PROTO_PROFILE_TAG_MAX;
    if (out->length + 8 + 1 + tag_length > out->capacity) break;  // the host asks for the next page
    proto_put_u64(out, ticks);
    proto_put_str8(out, tag, tag_length);
    ++count;
  }
  out->data[count_at] = (uint8_t)count;
  out->data[count_at + 1] = (uint8_t)(count >> 8);
  return kOk;
}

ProtoResult proto_cmd_reset(ProtoSession* s, const uint8_t* payload, size_t length, ProtoWriter* out) {
  (void)s;
  (void)payload;
  (void)out;
  if (length != PROTO_RESET_REQUEST_BYTES) return bad_length(length);
  return kOk;
}
