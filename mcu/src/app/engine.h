// The TFLM side: the model, the generated op resolver, a static 16-byte-aligned arena, the interpreter.
// Contract: engine_init() runs once (after the model integrity check) and returns the model state with a
// reason; after a failure every other call reports it (NOT_READY / MODEL_INVALID / ALLOCATE_FAILED) and
// nothing touches the interpreter. Every TfLiteStatus is checked and returned as a protocol status.
#ifndef SQZ_APP_ENGINE_H_
#define SQZ_APP_ENGINE_H_
#include <stdint.h>

#include "../protocol/hello.h"
#include "../protocol/session.h"

namespace sqz {

struct EngineState {
  uint8_t model_state;  // PROTO_MODEL_STATE_*
  const char* message;  // "ok" or why the model was refused
};

EngineState engine_init(uint8_t integrity_state, const char* integrity_message);
EngineState engine_state();
ProtoResult engine_input(uint8_t** data, uint32_t* bytes);
// profile true: the per-op profiler attached (PROFILE reads it; it costs a few thousand instructions an inference);
// false: detached (TFLM then calls no profiler at all), for a timing that holds Invoke() alone. No default: each caller
// says which it times.
ProtoResult engine_invoke(uint64_t* ticks, const uint8_t** output, uint32_t* output_bytes, bool profile);
int engine_profile_count(int* dropped);  // -1: no INVOKE yet, or the last ran without the profiler
void engine_profile_record(int index, uint64_t* ticks, const char** tag);
uint64_t engine_verify_ticks();  // ticks of the boot-time flatbuffer verification (0 if it did not run)
uint32_t engine_arena_bytes();
uint32_t engine_arena_used_bytes();
void engine_tensor_info(ProtoTensorInfo* input, ProtoTensorInfo* output);

}  // namespace sqz

#endif  // SQZ_APP_ENGINE_H_
