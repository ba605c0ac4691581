// A host build of the firmware's OpProfiler (mcu/src/app/op_profiler.cc), for tests/test_profiler_truncation.py.
// Contract: built with -DSQZ_PROFILER_MAX_EVENTS=<capacity>; argv[1] is the number of ops to record as TFLM's graph
// does (BeginEvent, op, EndEvent; each op takes 10 fake ticks); prints "count <n> dropped <n>", then one line per
// record, "<ticks> <tag>".
#include <stdio.h>
#include <stdlib.h>

#include "op_profiler.h"

static uint64_t g_now;
extern "C" uint64_t port_ticks(void) { return g_now; }

int main(int argc, char** argv) {
  static const char* const kTags[] = {"CONV_2D", "MAX_POOL_2D", "CONCATENATION"};
  int ops = argc > 1 ? atoi(argv[1]) : 0;
  sqz::OpProfiler profiler;
  profiler.Clear();
  for (int i = 0; i < ops; ++i) {
    uint32_t handle = profiler.BeginEvent(kTags[i % 3]);
    g_now += 10;
    profiler.EndEvent(handle);
  }
  printf("count %d dropped %d\n", profiler.Count(), profiler.Dropped());
  for (int i = 0; i < profiler.Count(); ++i) {
    uint64_t ticks = 0;
    const char* tag = "";
    profiler.Record(i, &ticks, &tag);
    printf("%llu %s\n", static_cast<unsigned long long>(ticks), tag);
  }
  return 0;
}
