// A MicroInterpreter whose per-op profiler can be detached and attached again between invocations, so one
// firmware measures Invoke() with and without the profiler's own cost (INVOKE's profile flag).
// Contract: set_profiler(p) before Invoke(); with nullptr, Invoke() runs as in an interpreter built without a
// profiler: TFLM's graph loop (micro_interpreter_graph.cc) reads the profiler from the TfLiteContext at every
// op and calls BeginEvent/EndEvent only when it is set.
#ifndef SQZ_APP_SWITCHABLE_PROFILER_INTERPRETER_H_
#define SQZ_APP_SWITCHABLE_PROFILER_INTERPRETER_H_

#include "tensorflow/lite/micro/micro_interpreter.h"

namespace sqz {

class SwitchableProfilerInterpreter : public tflite::MicroInterpreter {
 public:
  using tflite::MicroInterpreter::MicroInterpreter;

  void set_profiler(tflite::MicroProfilerInterface* profiler) {
    // MicroInterpreter sets context_.profiler once, in its constructor, and exposes the context to subclasses
    // only as const; the object itself is not const, so writing through it is defined.
    const_cast<TfLiteContext&>(context()).profiler = profiler;
  }
};

}  // namespace sqz

#endif  // SQZ_APP_SWITCHABLE_PROFILER_INTERPRETER_H_
