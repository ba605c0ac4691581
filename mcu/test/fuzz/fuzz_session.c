// libFuzzer target for the protocol core (mcu/src/protocol), built for the host with ASan and UBSan by
// bench/fuzz/run.py. Checks the session's contract (session.h) on every input, beyond "no sanitizer report":
// each non-empty frame gets exactly one reply, every reply is a well-formed frame (COBS, CRC, length),
// and replies carry the reply flag. The first input byte picks how the rest is read:
//   even: raw bytes, pushed in chunks whose sizes come from the input (splits frames anywhere);
//   odd:  a list of requests [command][flags][payload length][payload...], each wrapped by this harness in
//         a valid frame (right CRC and length unless `flags` asks to break one; flags 0x04 adds 256 to the length), so the fuzzer reaches the
//         command handlers without having to guess CRC-32s.
// The fake model is small (300 input bytes, so that a full upload fits one input) and has 40 profile
// records with long tags, so PROFILE has to page.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "frame.h"
#include "session.h"

#define INPUT_BYTES 300
#define PROFILE_RECORDS 40

static uint8_t g_input[INPUT_BYTES];
static uint8_t g_output[10];
static int g_invoked;
static ProtoSession g_session;

// Replies as the host would receive them: the raw byte stream, checked after each input.
static uint8_t g_reply_stream[1 << 20];
static size_t g_reply_used;

static void sink(void* ctx, const uint8_t* data, size_t length) {
  (void)ctx;
  if (length > sizeof g_reply_stream - g_reply_used) {
    // g_reply_used is cleared before every push, so one push's replies cannot fill 1 MiB: reaching here is a bug
    fprintf(stderr, "fuzz_session: replies of one push overflow the %zu-byte reply buffer\n", sizeof g_reply_stream);
    abort();
  }
  memcpy(g_reply_stream + g_reply_used, data, length);
  g_reply_used += length;
}

static void describe(void* ctx, ProtoWriter* out) {
  (void)ctx;
  proto_put_u16(out, PROTO_VERSION);
  proto_put_str8(out, "fuzz", 255);
}

static ProtoResult input(void* ctx, uint8_t** data, uint32_t* bytes) {
  (void)ctx;
  ProtoResult r = {PROTO_ST_OK, 0, NULL};
  *data = g_input;
  *bytes = sizeof g_input;
  return r;
}

static ProtoResult invoke(void* ctx, int profile, uint64_t* ticks, const uint8_t** output, uint32_t* output_bytes) {
  (void)ctx;
  if (profile != 0 && profile != 1) abort();  // the session passed a profile mode it should have refused
  ProtoResult r = {PROTO_ST_OK, 0, NULL};
  unsigned sum = 0;
  for (size_t i = 0; i < sizeof g_input; ++i) sum += g_input[i];
  for (int k = 0; k < 10; ++k) g_output[k] = (uint8_t)(sum + k);
  *ticks = sum;
  *output = g_output;
  *output_bytes = sizeof g_output;
  g_invoked = profile;  // without the profiler there is nothing to page through
  return r;
}

static int profile_count(void* ctx, int* dropped) {
  (void)ctx;
  *dropped = g_invoked ? 3 : 0;
  return g_invoked ? PROFILE_RECORDS : -1;
}

static void profile_record(void* ctx, int index, uint64_t* ticks, const char** tag) {
  (void)ctx;
  if (index < 0 || index >= PROFILE_RECORDS) abort();  // the session asked for a record that does not exist
  *ticks = (uint64_t)index;
  *tag = (index % 3 == 0) ? "A_TAG_LONGER_THAN_THE_PROTOCOL_ALLOWS_FOR_ONE_RECORD" : "CONV_2D";
}

static void reset(void* ctx) {
  (void)ctx;
  g_invoked = 0;
}

static const ProtoBackend kBackend = {NULL, describe, input, invoke, profile_count, profile_record, reset};

static uint8_t g_encoded[4096];
static size_t g_encoded_used;

static void collect(void* ctx, const uint8_t* data, size_t length) {
  (void)ctx;
  if (length > sizeof g_encoded - g_encoded_used) abort();  // this harness's buffer is too small: its own bug
  memcpy(g_encoded + g_encoded_used, data, length);
  g_encoded_used += length;
}

// Pushes a request frame built from the fuzzer's bytes; flags 0x40: break the CRC,
// 0x80: declare one byte more than the payload (both rare under mutation, as on a real line).
static void push_request(uint8_t command, uint8_t flags, const uint8_t* payload, size_t length) {
  uint8_t body[PROTO_HEADER_BYTES + 512 + PROTO_CRC_BYTES];
  uint16_t declared = (uint16_t)(length + ((flags & 0x80) ? 1 : 0));
  body[0] = command;
  body[1] = 0;
  body[2] = flags;  // seq: any value
  body[3] = 0;
  body[4] = (uint8_t)declared;
  body[5] = (uint8_t)(declared >> 8);
  memcpy(body + PROTO_HEADER_BYTES, payload, length);
  size_t n = PROTO_HEADER_BYTES + length;
  uint32_t crc = proto_crc32_update(0, body, n) ^ ((flags & 0x40) ? 1u : 0u);
  for (int i = 0; i < 4; ++i) body[n++] = (uint8_t)(crc >> (8 * i));
  // COBS-encode with the protocol's own streaming encoder, into g_encoded.
  ProtoCobsWriter writer;
  proto_cobs_begin(&writer, collect, NULL);
  proto_cobs_put(&writer, body, n);
  proto_cobs_finish(&writer);
}

// Non-empty bodies (or overflowed ones) between delimiters: the replies the contract promises.
static size_t expected_replies(const uint8_t* data, size_t length, size_t* pending) {
  size_t count = 0;
  for (size_t i = 0; i < length; ++i) {
    if (data[i] != PROTO_DELIMITER) {
      ++*pending;
    } else {
      if (*pending) ++count;
      *pending = 0;
    }
  }
  return count;
}

static void check_replies(size_t expected) {
  size_t replies = 0, start = 0;
  for (size_t i = 0; i < g_reply_used; ++i) {
    if (g_reply_stream[i] != PROTO_DELIMITER) continue;
    uint8_t body[PROTO_HEADER_BYTES + PROTO_MAX_REPLY_PAYLOAD + PROTO_CRC_BYTES + 16];
    size_t n = i - start;
    if (n == 0 || n > sizeof body) {
      fprintf(stderr, "reply frame of %zu encoded bytes\n", n);
      abort();
    }
    memcpy(body, g_reply_stream + start, n);
    ProtoFrame frame;
    if (proto_parse_frame(body, n, &frame) != PROTO_ST_OK) {
      fprintf(stderr, "the session sent a frame its own parser rejects\n");
      abort();
    }
    if (!(frame.command & PROTO_REPLY_FLAG)) {
      fprintf(stderr, "reply 0x%02x without the reply flag\n", frame.command);
      abort();
    }
    ++replies;
    start = i + 1;
  }
  if (start != g_reply_used) {
    fprintf(stderr, "reply stream ends inside a frame\n");
    abort();
  }
  if (replies != expected) {
    fprintf(stderr, "%zu replies for %zu frames\n", replies, expected);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  memset(g_input, 0, sizeof g_input);
  g_invoked = 0;
  g_reply_used = 0;
  proto_session_init(&g_session, &kBackend, sink, NULL);
  size_t pending = 0, expected = 0;
  const uint8_t mode = data[0];
  ++data, --size;
  if ((mode & 1) == 0) {
    // Raw bytes in chunks: each chunk's length is one input byte (mod 64, plus 1), then that many bytes.
    while (size > 0) {
      size_t chunk = data[0] % 64 + 1;
      ++data, --size;
      if (chunk > size) chunk = size;
      expected += expected_replies(data, chunk, &pending);
      g_reply_used = 0;
      proto_session_push(&g_session, data, chunk);
      check_replies(expected);
      expected = 0;
      data += chunk, size -= chunk;
    }
    return 0;
  }
  while (size >= 3) {
    uint8_t command = data[0], flags = data[1];
    size_t length = data[2];
    if (flags & 4) length += 256;  // reach the payload limit (272) and past it
    data += 3, size -= 3;
    if (length > size) length = size;
    g_encoded_used = 0;
    push_request(command, flags, data, length);
    data += length, size -= length;
    g_reply_used = 0;
    expected = expected_replies(g_encoded, g_encoded_used, &pending);
    proto_session_push(&g_session, g_encoded, g_encoded_used);
    check_replies(expected);
  }
  return 0;
}
