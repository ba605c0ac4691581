// The application loop: boot checks, BOOT banner, then bytes from the UART into the protocol session.
// See app.h for the contract. The protocol backend is the engine plus this board's description.
#include "app.h"

#include <string.h>

#include "../port/port.h"
#include "../protocol/frame.h"
#include "../protocol/session.h"
#include "build_info.h"
#include "engine.h"
#include "fault_text.h"
#include "model_check.h"
#include "model_data.h"
#include "model_settings.h"

namespace {

ProtoSession g_session;

void uart_sink(void*, const uint8_t* data, size_t length) { port_uart_write(data, length); }
void polled_uart_sink(void*, const uint8_t* data, size_t length) { port_uart_write_polled(data, length); }

void describe(void*, ProtoWriter* out) {
  ProtoHello hello = {};
  sqz::EngineState state = sqz::engine_state();
  hello.clock_hz = port_clock_hz();
  hello.tick_hz = port_tick_hz();
  hello.arena_bytes = sqz::engine_arena_bytes();
  hello.arena_used_bytes = sqz::engine_arena_used_bytes();
  hello.model_state = state.model_state;
  hello.model_size = g_model_data_size;
  hello.model_sha256 = g_model_sha256;
  sqz::engine_tensor_info(&hello.input, &hello.output);
  hello.board = port_board_name();
  hello.timer_source = port_timer_source();
  hello.kernels = SQZ_KERNELS;
  hello.firmware_git_sha = SQZ_FIRMWARE_GIT_SHA;
  hello.build_flags = SQZ_BUILD_FLAGS;
  hello.compiler = SQZ_COMPILER;
  hello.model_name = kModelName;
  hello.model_message = state.message;
  proto_write_hello(out, &hello);
}

ProtoResult input(void*, uint8_t** data, uint32_t* bytes) { return sqz::engine_input(data, bytes); }
ProtoResult invoke(void*, int profile, uint64_t* ticks, const uint8_t** output, uint32_t* bytes) {
  return sqz::engine_invoke(ticks, output, bytes, profile != 0);
}
int profile_count(void*, int* dropped) { return sqz::engine_profile_count(dropped); }
void profile_record(void*, int index, uint64_t* ticks, const char** tag) { sqz::engine_profile_record(index, ticks, tag); }
void reset(void*) { port_reset(); }

const ProtoBackend kBackend = {nullptr, describe, input, invoke, profile_count, profile_record, reset};

uint64_t g_sha256_ticks = 0;

void send_boot_banner(const sqz::EngineState& state) {
  char text[PROTO_TEXT_MAX + 1] = "SQZ BOOT env=";
  sqz_append(text, sizeof text, SQZ_ENV_NAME);
  sqz_append(text, sizeof text, " proto=" SQZ_STRINGIFY(PROTO_VERSION) " kernels=" SQZ_KERNELS " model=");
  char sha[13] = {};
  memcpy(sha, MODEL_SHA256_HEX, 12);
  sqz_append(text, sizeof text, sha);
  // What the boot checks cost, in the board's timer ticks (HELLO's tick_hz and timer source say what a tick is)
  sqz_append(text, sizeof text, " sha256_ticks=");
  sqz_append_decimal(text, sizeof text, g_sha256_ticks);
  sqz_append(text, sizeof text, " verify_ticks=");
  sqz_append_decimal(text, sizeof text, sqz::engine_verify_ticks());
  sqz_append(text, sizeof text, state.model_state == PROTO_MODEL_STATE_OK ? " state=ok" : " state=REFUSED: ");
  if (state.model_state != PROTO_MODEL_STATE_OK) sqz_append(text, sizeof text, state.message);
  proto_send_event(uart_sink, nullptr, PROTO_EVT_BOOT, text);
}

}  // namespace

extern "C" void app_setup(void) {
  uint64_t start = port_ticks();
  sqz::ModelCheck check = sqz::model_check();
  g_sha256_ticks = port_ticks() - start;
  sqz::EngineState state = sqz::engine_init(check.state, check.message);
  proto_session_init(&g_session, &kBackend, uart_sink, nullptr);
  send_boot_banner(state);
}

extern "C" void app_poll(void) {
  uint8_t buffer[64];
  size_t n = port_uart_read(buffer, sizeof buffer);
  if (n) proto_session_push(&g_session, buffer, n);
}

extern "C" void app_report_fault(AppFaultKind kind, uint32_t pc, uint32_t status) {
  char text[96];
  proto_send_event(polled_uart_sink, nullptr, PROTO_EVT_FAULT, app_fault_text(text, sizeof text, kind, pc, status));
}

extern "C" void app_report_assert(const char* file, int line) {
  char text[96];
  proto_send_event(uart_sink, nullptr, PROTO_EVT_FAULT, app_assert_text(text, sizeof text, file, line));
}
