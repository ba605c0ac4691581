// A host build of the MLPerf Tiny text mode (mcu/mlperf/text_*.c) with a fake model, for tests/test_mlperf_text_mode.py.
// Contract: reads command bytes on stdin, writes reply text on stdout, exits at end of input; starts with the boot
// lines, like the firmware. The fake model: a 3072-byte input, 10 outputs; output k of an inference is
// ((sum of input bytes + k) mod 256) / 256, each inference takes 5000 ticks at 1 MHz and the clock moves 1000 us
// per inference. Options: --no-model (the model is refused), --invoke-fails (every inference fails).
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "stdin_feed.h"
#include "text_mode.h"

static uint8_t g_db[3072];
static uint8_t g_output[10];
static int g_no_model, g_invoke_fails, g_invoked;
static uint32_t g_now_us = 100;

static void sink(void* ctx, const char* text, size_t length) { fwrite(text, 1, length, (FILE*)ctx); }
static const char* not_ready(void* ctx) { return (void)ctx, g_no_model ? "model corrupted: SHA-256 expected deadbeef" : NULL; }
static uint32_t now_us(void* ctx) { return (void)ctx, g_now_us; }

static int infer(void* ctx, const uint8_t* data, uint32_t bytes, uint64_t* ticks, const char** why) {
  (void)ctx;
  if (g_invoke_fails) return *why = "fake Invoke failure", 1;
  unsigned sum = 0;
  for (uint32_t i = 0; i < bytes; ++i) sum += data[i];
  for (int k = 0; k < 10; ++k) g_output[k] = (uint8_t)(sum + (unsigned)k);
  *ticks = 5000;
  g_now_us += 1000;
  g_invoked = 1;
  return 0;
}

static int result_count(void* ctx) { return (void)ctx, g_invoked ? 10 : -1; }
static float result(void* ctx, int index) { return (void)ctx, (float)g_output[index] / 256.0f; }
static void push(void* session, const uint8_t* data, size_t length) { mlperf_push(session, data, length); }

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    g_no_model |= strcmp(argv[i], "--no-model") == 0;
    g_invoke_fails |= strcmp(argv[i], "--invoke-fails") == 0;
  }
  static MlperfSession session;
  MlperfBackend backend = {NULL, "host fake", "ic01", "fake clock at 1000000 Hz", sizeof g_db, 1000000u,
                           not_ready, now_us, infer, result_count, result};
  mlperf_init(&session, &backend, g_db, sizeof g_db, sink, stdout);
  mlperf_boot(&session);
  host_feed_stdin(push, &session);
  return 0;
}
