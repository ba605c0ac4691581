// A host build of the protocol core with a fake model, for tests/test_mcu_protocol_host.py.
// Contract: reads request bytes on stdin, writes reply frames on stdout, exits at end of input. The fake
// model: a 3072-byte int8 input; INVOKE outputs 10 bytes, byte k = (sum of input bytes + k) mod 256, and
// reports 1000 + k ticks per op for 5 ops; Invoke() takes 5010 ticks with the profiler, 5000 without (INVOKE
// profile 0, after which PROFILE is NOT_READY). Options: --no-model (input refused with MODEL_INVALID),
// --invoke-fails (Invoke fails with detail 1), --ops N (the model runs N >= 5 ops; the fake profiler holds 5
// and reports the rest as dropped). Starts with a BOOT event, like the firmware.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "hello.h"
#include "session.h"
#include "stdin_feed.h"

static uint8_t g_input[3072];
static uint8_t g_output[10];
static int g_no_model, g_invoke_fails, g_invoked, g_profiled, g_ops = 5;
static const char* kTags[] = {"CONV_2D", "MAX_POOL_2D", "CONCATENATION", "MEAN", "SOFTMAX"};

static void sink(void* ctx, const uint8_t* data, size_t length) { fwrite(data, 1, length, (FILE*)ctx); }

static void describe(void* ctx, ProtoWriter* out) {
  (void)ctx;
  static const uint8_t sha[32] = {0xde, 0xad, 0xbe, 0xef};
  ProtoHello h = {0};
  h.clock_hz = 168000000u;
  h.tick_hz = 168000000u;
  h.arena_bytes = 100000;
  h.arena_used_bytes = 90000;
  h.model_state = g_no_model ? PROTO_MODEL_STATE_SHA256_MISMATCH : PROTO_MODEL_STATE_OK;
  h.model_size = 1234;
  h.model_sha256 = sha;
  ProtoTensorInfo in = {PROTO_DTYPE_INT8, 4, {1, 32, 32, 3}, 1.0f, -128, sizeof g_input};
  ProtoTensorInfo outp = {PROTO_DTYPE_INT8, 2, {1, 10, 0, 0}, 0.00390625f, -128, sizeof g_output};
  h.input = in;
  h.output = outp;
  h.board = "host_fake";
  h.timer_source = "fake";
  h.kernels = "none";
  h.firmware_git_sha = "0000000";
  h.build_flags = "-O2";
  h.compiler = "host cc";
  h.model_name = "fake";
  h.model_message = g_no_model ? "model SHA-256 mismatch" : "ok";
  proto_write_hello(out, &h);
}

static ProtoResult input(void* ctx, uint8_t** data, uint32_t* bytes) {
  (void)ctx;
  ProtoResult r = {PROTO_ST_OK, 0, NULL};
  if (g_no_model) {
    r.status = PROTO_ST_MODEL_INVALID;
    r.detail = PROTO_MODEL_STATE_SHA256_MISMATCH;
    r.message = "model SHA-256 mismatch";
    return r;
  }
  *data = g_input;
  *bytes = sizeof g_input;
  return r;
}

static ProtoResult invoke(void* ctx, int profile, uint64_t* ticks, const uint8_t** output, uint32_t* output_bytes) {
  (void)ctx;
  ProtoResult r = {PROTO_ST_OK, 0, NULL};
  if (g_invoke_fails) {
    r.status = PROTO_ST_INVOKE_FAILED;
    r.detail = 1;
    r.message = "fake Invoke failure";
    return r;
  }
  unsigned sum = 0;
  for (size_t i = 0; i < sizeof g_input; ++i) sum += g_input[i];
  for (int k = 0; k < 10; ++k) g_output[k] = (uint8_t)(sum + k);
  memset(g_input, 0xA5, sizeof g_input);  // as TFLM may: the input memory is reused
  *ticks = profile ? 5000 + 10 : 5000;
  g_profiled = profile;
  *output = g_output;
  *output_bytes = sizeof g_output;
  g_invoked = 1;
  return r;
}

static int profile_count(void* ctx, int* dropped) {
  (void)ctx;
  *dropped = g_ops > 5 ? g_ops - 5 : 0;
  return g_invoked && g_profiled ? 5 : -1;
}

static void profile_record(void* ctx, int index, uint64_t* ticks, const char** tag) {
  (void)ctx;
  *ticks = 1000u + (unsigned)index;
  *tag = kTags[index];
}

static void push(void* session, const uint8_t* data, size_t length) { proto_session_push(session, data, length); }

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    g_no_model |= strcmp(argv[i], "--no-model") == 0;
    g_invoke_fails |= strcmp(argv[i], "--invoke-fails") == 0;
    if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) g_ops = atoi(argv[++i]);
  }
  static ProtoSession session;
  ProtoBackend backend = {NULL, describe, input, invoke, profile_count, profile_record, NULL};
  proto_session_init(&session, &backend, sink, stdout);
  proto_send_event(sink, stdout, PROTO_EVT_BOOT, "SQZ BOOT env=host_fake proto=2");
  host_feed_stdin(push, &session);
  return 0;
}
