// The DUT side of the EEMBC / MLPerf Tiny runner's text protocol (mlcommons/tiny benchmark/runner, whose reference
// DUT code is benchmark/api): plain C99, no model, no board; host-tested by tests/test_mlperf_text_mode.py.
// Contract: feed every received byte to mlperf_push. '%' ends a command; each command gets its reply lines and then
// "m-ready" before mlperf_push returns. Replies end in "\r\n". Errors are one "e-[...]" line (the reference's
// convention) saying what was wrong and what to send, followed by "m-ready" as always; no input can make the
// session read or write outside its buffers. Commands (arguments separated by spaces; CR, LF and tabs count as spaces):
//   name                 m-name-dut-[<name>]
//   profile              m-profile-[ULPMark for tinyML Firmware V0.0.1], m-model-[<model id>], m-timer-[<timer>]
//   help                 the command list
//   timestamp            m-lap-us-<now>
//   db load N            start a load of N bytes (1..capacity): m-[Expecting N bytes]
//   db <hex>             store the bytes (two hex digits each) after the ones received; m-load-done once N are in.
//                        A chunk that would pass N is refused whole (nothing stored), as is one without a load.
//   db print [N [off]]   the received bytes as m-buffer-xx-xx-... lines, 8 per line (all, or N from offset off)
//   infer [N [W]]        W warm-up inferences (default 10), then N timed ones (default 1) on the loaded input:
//                        m-warmup-start-W, m-warmup-done, m-infer-start-N, m-lap-us-<t0>, m-lap-us-<t1>,
//                        m-invoke-ticks-[total=<ticks of the N inferences>,count=N,hz=<tick rate>], m-infer-done,
//                        m-results-[...]. Refused unless exactly the model's input bytes were loaded.
//   results              m-results-[s0,s1,...]: the last inference's dequantised outputs, 3 decimals
// An empty command ("%" alone, the runner's flush) gets m-ready only. Lines longer than MLPERF_LINE_MAX characters,
// bytes that are not printable ASCII, unknown commands, bad or out-of-range numbers and extra arguments are errors.
#ifndef SQZ_MLPERF_TEXT_MODE_H_
#define SQZ_MLPERF_TEXT_MODE_H_
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

#define MLPERF_LINE_MAX 160          // characters before '%'; the runner's longest command is "db " + 62 hex digits
#define MLPERF_COUNT_MAX 1000000u    // most inferences (or warm-ups) one infer command may ask for
#define MLPERF_FW_VERSION "ULPMark for tinyML Firmware V0.0.1"

typedef struct {
  void* ctx;
  const char* name;      // m-name-dut-[name]
  const char* model_id;  // m-model-[model_id], e.g. "ic01": the runner picks its test and dataset folder by it
  const char* timer;     // m-timer-[timer]: what m-lap-us counts (on QEMU: instruction-count time, not wall time)
  uint32_t input_bytes;  // bytes the model takes; infer needs exactly this many loaded
  uint32_t tick_hz;      // rate of the ticks infer reports
  const char* (*not_ready)(void* ctx);  // NULL when the model can run, else why not
  uint32_t (*now_us)(void* ctx);        // the clock m-lap-us prints, in its microseconds
  // Quantise `bytes` raw bytes (pixels) into the model's input and run it once: 0, or nonzero with *why set.
  int (*infer)(void* ctx, const uint8_t* data, uint32_t bytes, uint64_t* ticks, const char** why);
  int (*result_count)(void* ctx);          // outputs of the last inference, negative when there was none
  float (*result)(void* ctx, int index);  // dequantised output `index` of the last inference
} MlperfBackend;

typedef void (*MlperfWriteFn)(void* ctx, const char* text, size_t length);

typedef struct {
  const MlperfBackend* backend;
  MlperfWriteFn write;
  void* write_ctx;
  uint8_t* db;  // the load buffer, db_capacity bytes, owned by the caller
  uint32_t db_capacity;
  uint32_t db_expected;  // N of the last db load (0: none)
  uint32_t db_received;
  char line[MLPERF_LINE_MAX + 1];
  size_t line_used;
  int line_overflow;
  int bad_byte;  // first byte that is not printable ASCII in this line, or -1
  size_t bad_at;
  char out[96];  // reply text, sent when full and at each line end
  size_t out_used;
} MlperfSession;

void mlperf_init(MlperfSession* s, const MlperfBackend* backend, uint8_t* db, uint32_t db_capacity, MlperfWriteFn write,
                 void* write_ctx);
// The start-up lines: m-timestamp-mode-performance, m-lap-us-<now>, m-timer-[...], e-[model refused: ...] when the
// model cannot run, m-init-done, m-ready.
void mlperf_boot(MlperfSession* s);
void mlperf_push(MlperfSession* s, const uint8_t* data, size_t length);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_MLPERF_TEXT_MODE_H_
