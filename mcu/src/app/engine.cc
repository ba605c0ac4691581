// The TFLM engine; see engine.h for the contract.
#include "engine.h"

#include <new>

#include "../port/port.h"
#include "log_capture.h"
#include "model_data.h"
#include "model_op_resolver.h"
#include "model_settings.h"
#include "op_profiler.h"
#include "switchable_profiler_interpreter.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

// The decompression region: DECODE's outputs outside the arena (TFLM SetDecompressionMemory). Its size is the
// package's (convert.decompression_region measured it with the arena that goes with it); a package from before the
// region, or without one, has none. SQZ_DECOMPRESSION_BYTES overrides it: 0 turns it off; a region smaller than
// the package's still works, TFLM decoding what does not fit into the arena, which is then the full one.
#ifndef SQZ_MODEL_DECOMPRESSION_BYTES
#define SQZ_MODEL_DECOMPRESSION_BYTES 0
#define SQZ_MODEL_ARENA_WITH_DECOMPRESSION_BYTES kTensorArenaBytes
#endif
#ifndef SQZ_DECOMPRESSION_BYTES
#define SQZ_DECOMPRESSION_BYTES SQZ_MODEL_DECOMPRESSION_BYTES
#endif
#if SQZ_DECOMPRESSION_BYTES < 0
#error "SQZ_DECOMPRESSION_BYTES must be 0 (no region) or a size in bytes"
#endif

#ifndef SQZ_ARENA_BYTES
#if SQZ_DECOMPRESSION_BYTES > 0 && SQZ_DECOMPRESSION_BYTES >= SQZ_MODEL_DECOMPRESSION_BYTES
#define SQZ_ARENA_BYTES SQZ_MODEL_ARENA_WITH_DECOMPRESSION_BYTES
#else
#define SQZ_ARENA_BYTES kTensorArenaBytes
#endif
#endif

// Global (not static) so the size report finds it by name.
alignas(16) uint8_t sqz_tensor_arena[SQZ_ARENA_BYTES];

#if SQZ_DECOMPRESSION_BYTES > 0
// In its own section, so a board's linker script can put it in a memory the arena does not use (a real
// STM32F405's CCM); ports/cortex_m/cortex_m.ld puts .bss.sqz_decompression in the board's DECOMPRESSION memory; a
// framework's linker script (*(.bss*)) puts it with the bss.
alignas(16) uint8_t sqz_decompression_region[SQZ_DECOMPRESSION_BYTES] __attribute__((section(".bss.sqz_decompression")));
#endif

namespace sqz {
namespace {

#if SQZ_DECOMPRESSION_BYTES > 0
const tflite::MicroContext::AlternateMemoryRegion g_decompression_regions[] = {
    {sqz_decompression_region, sizeof sqz_decompression_region}};
#endif

ModelOpResolver g_resolver;
OpProfiler g_profiler;
alignas(SwitchableProfilerInterpreter) uint8_t g_interpreter_storage[sizeof(SwitchableProfilerInterpreter)];
SwitchableProfilerInterpreter* g_interpreter = nullptr;
EngineState g_state = {PROTO_MODEL_STATE_BAD_SCHEMA, "not initialised"};
bool g_invoked = false;
bool g_profiled = false;  // the last INVOKE ran with the profiler attached
uint64_t g_verify_ticks = 0;

EngineState fail(uint8_t state, const char* message) {
  const char* tflm = sqz_last_log();
  g_state = {state, tflm ? tflm : message};
  return g_state;
}

void fill_info(const TfLiteTensor* t, ProtoTensorInfo* info) {
  info->dtype = static_cast<uint8_t>(t->type);
  info->ndims = static_cast<uint8_t>(t->dims->size);
  for (int i = 0; i < 4; ++i) info->dims[i] = i < t->dims->size ? static_cast<uint16_t>(t->dims->data[i]) : 0;
  info->scale = t->params.scale;
  info->zero_point = t->params.zero_point;
  info->bytes = static_cast<uint32_t>(t->bytes);
}

ProtoResult not_ready() {
  uint8_t status = g_state.model_state == PROTO_MODEL_STATE_ALLOCATE_FAILED ? PROTO_ST_ALLOCATE_FAILED : PROTO_ST_MODEL_INVALID;
  return {status, g_state.model_state, g_state.message};
}

}  // namespace

EngineState engine_init(uint8_t integrity_state, const char* integrity_message) {
  if (integrity_state != PROTO_MODEL_STATE_OK) return fail(integrity_state, integrity_message);
  if (!tflite::ModelBufferHasIdentifier(g_model_data))
    return fail(PROTO_MODEL_STATE_BAD_SCHEMA, "not a TFLite flatbuffer (no TFL3 identifier)");
  // The SHA-256 proves the array is what the generator wrote, not that the generator wrote a sound model (a
  // converter bug, a package made by hand): TFLM follows offsets unchecked, so the flatbuffers verifier walks
  // every table and vector against the buffer's bounds first, once, at boot.
  uint64_t verify_start = port_ticks();
  flatbuffers::Verifier verifier(g_model_data, g_model_data_size);
  bool sound = tflite::VerifyModelBuffer(verifier);
  g_verify_ticks = port_ticks() - verify_start;
  if (!sound)
    return fail(PROTO_MODEL_STATE_MALFORMED,
                "model refused: the flatbuffer fails the TFLite schema verifier (an offset, size or table out of bounds)");
  const tflite::Model* model = tflite::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) return fail(PROTO_MODEL_STATE_BAD_SCHEMA, "not a TFLite flatbuffer of schema version 3");
  // the generated header as it is; mcu/scripts/tflm.py defines SQZ_INT8_ONLY_KERNELS where int8-only kernels exist
  if (RegisterModelOps(g_resolver) != kTfLiteOk) return fail(PROTO_MODEL_STATE_OPS_FAILED, "registering the model's ops failed");
  g_interpreter = new (g_interpreter_storage) SwitchableProfilerInterpreter(model, g_resolver, sqz_tensor_arena,
                                                                           sizeof sqz_tensor_arena, nullptr, &g_profiler);
  sqz_clear_log();
#if SQZ_DECOMPRESSION_BYTES > 0
  // before AllocateTensors: DECODE's Prepare places its outputs
  if (g_interpreter->SetDecompressionMemory(g_decompression_regions, 1) != kTfLiteOk) {
    g_interpreter = nullptr;
    return fail(PROTO_MODEL_STATE_ALLOCATE_FAILED, "SetDecompressionMemory failed");
  }
#endif
  if (g_interpreter->AllocateTensors() != kTfLiteOk) {
    g_interpreter = nullptr;
    return fail(PROTO_MODEL_STATE_ALLOCATE_FAILED, "AllocateTensors failed (arena too small?)");
  }
  const TfLiteTensor* in = g_interpreter->input(0);
  const TfLiteTensor* out = g_interpreter->output(0);
  if (in->type != kTfLiteInt8 || in->bytes != static_cast<size_t>(kInputBytes) || out->type != kTfLiteInt8 ||
      out->bytes != static_cast<size_t>(kOutputClasses)) {
    g_interpreter = nullptr;
    return fail(PROTO_MODEL_STATE_TENSOR_MISMATCH, "model tensors differ from model_settings.h");
  }
  g_state = {PROTO_MODEL_STATE_OK, "ok"};
  return g_state;
}

EngineState engine_state() { return g_state; }

ProtoResult engine_input(uint8_t** data, uint32_t* bytes) {
  if (!g_interpreter) return not_ready();
  TfLiteTensor* in = g_interpreter->input(0);
  *data = in->data.uint8;
  *bytes = static_cast<uint32_t>(in->bytes);
  return {PROTO_ST_OK, 0, nullptr};
}

ProtoResult engine_invoke(uint64_t* ticks, const uint8_t** output, uint32_t* output_bytes, bool profile) {
  if (!g_interpreter) return not_ready();
  g_profiler.Clear();
  g_interpreter->set_profiler(profile ? &g_profiler : nullptr);
  g_profiled = profile;
  sqz_clear_log();
  uint64_t start = port_ticks();
  TfLiteStatus status = g_interpreter->Invoke();
  *ticks = port_ticks() - start;
  g_invoked = true;
  if (status != kTfLiteOk) {
    const char* why = sqz_last_log();
    return {PROTO_ST_INVOKE_FAILED, static_cast<int32_t>(status), why ? why : "Invoke failed"};
  }
  const TfLiteTensor* out = g_interpreter->output(0);
  *output = out->data.uint8;
  *output_bytes = static_cast<uint32_t>(out->bytes);
  return {PROTO_ST_OK, 0, nullptr};
}

int engine_profile_count(int* dropped) {
  *dropped = g_profiler.Dropped();
  return g_invoked && g_profiled ? g_profiler.Count() : -1;
}
void engine_profile_record(int index, uint64_t* ticks, const char** tag) { g_profiler.Record(index, ticks, tag); }
uint64_t engine_verify_ticks() { return g_verify_ticks; }
uint32_t engine_arena_bytes() { return sizeof sqz_tensor_arena; }
uint32_t engine_arena_used_bytes() { return g_interpreter ? static_cast<uint32_t>(g_interpreter->arena_used_bytes()) : 0; }

void engine_tensor_info(ProtoTensorInfo* input, ProtoTensorInfo* output) {
  if (!g_interpreter) return;
  fill_info(g_interpreter->input(0), input);
  fill_info(g_interpreter->output(0), output);
}

}  // namespace sqz
