// Per-op timing through TFLM's MicroProfilerInterface, in the port's ticks.
// Contract: the interpreter calls BeginEvent(tag)/EndEvent(handle) around every op of Invoke(); Clear()
// starts a new recording; Count() and Record(i) read it back. At most kMaxEvents events are kept; later
// ones are counted in Dropped(), which PROFILE reports, so a host says the profile is truncated instead of
// showing a short one. Tags are TFLM's op names (static strings). SQZ_PROFILER_MAX_EVENTS overrides the
// capacity (the host test of truncation builds it small).
#ifndef SQZ_APP_OP_PROFILER_H_
#define SQZ_APP_OP_PROFILER_H_
#include <stdint.h>

#include "tensorflow/lite/micro/micro_profiler_interface.h"

#ifndef SQZ_PROFILER_MAX_EVENTS
#define SQZ_PROFILER_MAX_EVENTS 128
#endif

namespace sqz {

class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  static constexpr int kMaxEvents = SQZ_PROFILER_MAX_EVENTS;
  uint32_t BeginEvent(const char* tag) override;
  void EndEvent(uint32_t event_handle) override;
  void Clear() { count_ = 0, dropped_ = 0; }
  int Count() const { return count_; }
  int Dropped() const { return dropped_; }
  void Record(int index, uint64_t* ticks, const char** tag) const;

 private:
  int count_ = 0;
  int dropped_ = 0;
};  // the event arrays are zero-initialised statics in op_profiler.cc (.bss, not copied from flash)

}  // namespace sqz

#endif  // SQZ_APP_OP_PROFILER_H_
