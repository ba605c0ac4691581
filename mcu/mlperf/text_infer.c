// The infer and results commands of the MLPerf Tiny text mode; see text_mode.h for the contract.
// Every inference quantises the loaded bytes into the model's input again (TFLM may reuse the input tensor's memory
// during Invoke), so the timed span between the two m-lap-us lines holds N x (quantise + Invoke); m-invoke-ticks
// gives Invoke alone.
#include "text_commands.h"
#include "text_out.h"

static void results(MlperfSession* s) {
  int count = s->backend->result_count(s->backend->ctx);
  if (count < 0) {
    mlperf_error(s, "results: no inference has run yet (send infer N W)");
    return;
  }
  mlperf_text(s, "m-results-[");
  for (int i = 0; i < count; ++i) {
    if (i) mlperf_char(s, ',');
    mlperf_fixed3(s, s->backend->result(s->backend->ctx, i));
  }
  mlperf_char(s, ']');
  mlperf_end_line(s);
}

void mlperf_cmd_results(MlperfSession* s, const MlperfWords* w) {
  if (!mlperf_too_many(s, w, 1, "results")) results(s);
}

static int input_ready(MlperfSession* s) {
  const MlperfBackend* b = s->backend;
  const char* why = b->not_ready(b->ctx);
  if (why) {
    mlperf_bracketed(s, "e-[infer: the model cannot run: ", why, MLPERF_LINE_MAX);
    return 0;
  }
  if (s->db_expected == 0) {
    mlperf_error_open(s, "infer: no input loaded: send db load ");
    mlperf_uint(s, b->input_bytes);
    mlperf_text(s, " and the bytes first");
    mlperf_error_close(s);
    return 0;
  }
  if (s->db_received < s->db_expected) {
    mlperf_error_open(s, "infer: input incomplete: ");
    mlperf_uint(s, s->db_received);
    mlperf_text(s, " of ");
    mlperf_uint(s, s->db_expected);
    mlperf_text(s, " bytes loaded");
    mlperf_error_close(s);
    return 0;
  }
  if (s->db_expected != b->input_bytes) {
    mlperf_error_open(s, "infer: ");
    mlperf_uint(s, s->db_expected);
    mlperf_text(s, " bytes loaded but the model takes ");
    mlperf_uint(s, b->input_bytes);
    mlperf_error_close(s);
    return 0;
  }
  return 1;
}

// Runs `count` inferences, adding their Invoke ticks to *ticks; 0 after reporting a failure.
static int run(MlperfSession* s, uint32_t count, uint64_t* ticks) {
  const MlperfBackend* b = s->backend;
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t t = 0;
    const char* why = "inference failed";
    if (b->infer(b->ctx, s->db, s->db_received, &t, &why) != 0) {
      mlperf_bracketed(s, "e-[infer: ", why, MLPERF_LINE_MAX);
      return 0;
    }
    *ticks += t;
  }
  return 1;
}

void mlperf_cmd_infer(MlperfSession* s, const MlperfWords* w) {
  uint32_t n = 1, warmups = 10;
  if (mlperf_too_many(s, w, 3, "infer N [W]")) return;
  if ((w->count > 1 && (!mlperf_parse_count(w->word[1], MLPERF_COUNT_MAX, &n) || n == 0)) ||
      (w->count > 2 && !mlperf_parse_count(w->word[2], MLPERF_COUNT_MAX, &warmups))) {
    mlperf_error_open(s, "infer: N must be 1 to ");
    mlperf_uint(s, MLPERF_COUNT_MAX);
    mlperf_text(s, " and W 0 to ");
    mlperf_uint(s, MLPERF_COUNT_MAX);
    mlperf_text(s, " (usage: infer N [W])");
    mlperf_error_close(s);
    return;
  }
  if (!input_ready(s)) return;
  uint64_t ticks = 0;
  mlperf_text(s, "m-warmup-start-");
  mlperf_uint(s, warmups);
  mlperf_end_line(s);
  if (!run(s, warmups, &ticks)) return;
  mlperf_text(s, "m-warmup-done");
  mlperf_end_line(s);
  mlperf_text(s, "m-infer-start-");
  mlperf_uint(s, n);
  mlperf_end_line(s);
  ticks = 0;
  mlperf_lap(s);
  int ok = run(s, n, &ticks);
  mlperf_lap(s);
  if (!ok) return;
  mlperf_text(s, "m-invoke-ticks-[total=");
  mlperf_uint(s, ticks);
  mlperf_text(s, ",count=");
  mlperf_uint(s, n);
  mlperf_text(s, ",hz=");
  mlperf_uint(s, s->backend->tick_hz);
  mlperf_char(s, ']');
  mlperf_end_line(s);
  mlperf_text(s, "m-infer-done");
  mlperf_end_line(s);
  results(s);
}
