// The MLPerf Tiny text-mode application (environment qemu_stm32f405_mlperf): the EEMBC / MLPerf Tiny runner's DUT
// protocol (text_mode.h) over the same port hooks, model check and TFLM engine as the framed-protocol application
// (src/app/app.cc, which this build leaves out, with src/protocol/).
// Contract: app.h's. The runner's bytes are raw pixels; each one is quantised with the model's input scale and zero
// point as model_settings.h states (a 256-entry table made at boot: round half to even, as the host's numpy does),
// outputs are dequantised with the output scale and zero point. m-lap-us is port_ticks in microseconds of the port's
// tick rate: on QEMU (-icount shift=0) instruction-count time, which m-timer-[...] says. Faults and failed asserts
// become "e-[...]" lines.
#include <string.h>

#include "../src/app/app.h"
#include "../src/app/build_info.h"
#include "../src/app/engine.h"
#include "../src/app/fault_text.h"
#include "../src/app/model_check.h"
#include "../src/port/port.h"
#include "model_settings.h"
#include "text_mode.h"

#ifndef SQZ_MLPERF_MODEL_ID
#define SQZ_MLPERF_MODEL_ID "ic01"  // MLPerf Tiny image classification (CIFAR-10); the runner picks its test by it
#endif

namespace {

MlperfSession g_session;
uint8_t g_db[kInputBytes];
int8_t g_quantized[256];  // pixel value -> int8 input
int8_t g_scores[kOutputClasses];
bool g_have_scores = false;
char g_timer[96];

void write_uart(void*, const char* text, size_t length) { port_uart_write(reinterpret_cast<const uint8_t*>(text), length); }

void make_quantize_table() {
  for (int p = 0; p < 256; ++p) {
    double f = p / static_cast<double>(kInputScale);
    long n = static_cast<long>(f);  // f >= 0: truncation is floor
    double fraction = f - static_cast<double>(n);
    if (fraction > 0.5 || (fraction == 0.5 && (n & 1))) ++n;
    long q = n + kInputZeroPoint;
    g_quantized[p] = static_cast<int8_t>(q < -128 ? -128 : q > 127 ? 127 : q);
  }
}

const char* not_ready(void*) {
  sqz::EngineState state = sqz::engine_state();
  return state.model_state == PROTO_MODEL_STATE_OK ? nullptr : state.message;
}

uint32_t now_us(void*) { return static_cast<uint32_t>(port_ticks() * 1000000u / port_tick_hz()); }

int infer(void*, const uint8_t* data, uint32_t bytes, uint64_t* ticks, const char** why) {
  uint8_t* input = nullptr;
  uint32_t input_bytes = 0;
  g_have_scores = false;
  ProtoResult result = sqz::engine_input(&input, &input_bytes);
  if (result.status != PROTO_ST_OK) return *why = result.message, 1;
  if (input_bytes != bytes) return *why = "loaded bytes differ from the input tensor's", 1;
  for (uint32_t i = 0; i < bytes; ++i) input[i] = static_cast<uint8_t>(g_quantized[data[i]]);
  const uint8_t* output = nullptr;
  uint32_t output_bytes = 0;
  // The runner times N x (quantise + Invoke()); the MLPerf mode has no per-op report, so no profiler in the span.
  result = sqz::engine_invoke(ticks, &output, &output_bytes, /*profile=*/false);
  if (result.status != PROTO_ST_OK) return *why = result.message ? result.message : "Invoke failed", 1;
  memcpy(g_scores, output, sizeof g_scores);  // engine_init checked output bytes == kOutputClasses
  g_have_scores = true;
  return 0;
}

int result_count(void*) { return g_have_scores ? kOutputClasses : -1; }
float result(void*, int index) { return (static_cast<float>(g_scores[index]) - static_cast<float>(kOutputZeroPoint)) * kOutputScale; }

MlperfBackend g_backend = {
    nullptr, "squeezenet-mcu " SQZ_ENV_NAME, SQZ_MLPERF_MODEL_ID, g_timer, kInputBytes, 0, not_ready, now_us, infer,
    result_count, result,
};  // tick_hz: set in app_setup, from the port

void write_line_polled(const char* a, const char* b) {
  port_uart_write_polled(reinterpret_cast<const uint8_t*>(a), strlen(a));
  port_uart_write_polled(reinterpret_cast<const uint8_t*>(b), strlen(b));
  port_uart_write_polled(reinterpret_cast<const uint8_t*>("]\r\n"), 3);
}

}  // namespace

extern "C" void app_setup(void) {
  sqz::ModelCheck check = sqz::model_check();
  sqz::engine_init(check.state, check.message);
  make_quantize_table();
  sqz_append(g_timer, sizeof g_timer, port_timer_source());
  sqz_append(g_timer, sizeof g_timer, " at ");
  sqz_append_decimal(g_timer, sizeof g_timer, port_tick_hz());
  sqz_append(g_timer, sizeof g_timer, " Hz; m-lap-us = ticks x 1e6 / Hz");
  g_backend.tick_hz = port_tick_hz();
  mlperf_init(&g_session, &g_backend, g_db, sizeof g_db, write_uart, nullptr);
  mlperf_boot(&g_session);
}

extern "C" void app_poll(void) {
  uint8_t buffer[64];
  size_t n = port_uart_read(buffer, sizeof buffer);
  if (n) mlperf_push(&g_session, buffer, n);
}

extern "C" void app_report_fault(AppFaultKind kind, uint32_t pc, uint32_t status) {
  char text[96];
  write_line_polled("\r\ne-[fault: ", app_fault_text(text, sizeof text, kind, pc, status));
}

extern "C" void app_report_assert(const char* file, int line) {
  char text[96];
  write_line_polled("\r\ne-[", app_assert_text(text, sizeof text, file, line));
}
