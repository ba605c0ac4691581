// OpProfiler: see op_profiler.h for the contract.
#include "op_profiler.h"

#include "../port/port.h"

namespace sqz {
namespace {

const char* g_tags[OpProfiler::kMaxEvents];
uint64_t g_start[OpProfiler::kMaxEvents];
uint64_t g_ticks[OpProfiler::kMaxEvents];

}  // namespace

uint32_t OpProfiler::BeginEvent(const char* tag) {
  if (count_ >= kMaxEvents) {
    ++dropped_;
    return kMaxEvents;
  }
  g_tags[count_] = tag;
  g_ticks[count_] = 0;
  g_start[count_] = port_ticks();
  return static_cast<uint32_t>(count_++);
}

void OpProfiler::EndEvent(uint32_t event_handle) {
  uint64_t now = port_ticks();
  if (event_handle < static_cast<uint32_t>(count_)) g_ticks[event_handle] = now - g_start[event_handle];
}

void OpProfiler::Record(int index, uint64_t* ticks, const char** tag) const {
  *ticks = g_ticks[index];
  *tag = g_tags[index] ? g_tags[index] : "";
}

}  // namespace sqz
