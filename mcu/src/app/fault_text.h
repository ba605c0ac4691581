// The text of the two reports that end a run (app.h), shared by the framed-protocol application (app.cc: the
// FAULT event) and the MLPerf text mode (mlperf/mlperf_app.cc: an "e-[...]" line), so both name a fault alike.
// Contract: each writes a NUL-terminated text into out (truncated to capacity - 1 characters) and returns out:
//   app_fault_text   "<kind name> pc=0x<8 hex digits> status=0x<8 hex digits>", the kind names being HardFault,
//                    MemManage, BusFault, UsageFault, HardFault/MemManage, HardFault/BusFault, HardFault/UsageFault
//                    and UnexpectedInterrupt (the host's crash regex, bench/link/channel.py CRASH_TEXT, matches them);
//   app_assert_text  "assert <file>:<line>" (a line below 1 is written as 0).
// 64 characters hold either for any kind and a file name of up to 40 characters.
// The text helpers they are written with, which the two applications' banners use too (no printf anywhere):
//   sqz_append          appends text to the NUL-terminated out, truncated to capacity - 1 characters;
//   sqz_append_decimal  appends a number in decimal, the same way.
#ifndef SQZ_APP_FAULT_TEXT_H_
#define SQZ_APP_FAULT_TEXT_H_
#include <stddef.h>
#include <stdint.h>

#include "app.h"
#ifdef __cplusplus
extern "C" {
#endif

void sqz_append(char* out, size_t capacity, const char* text);
void sqz_append_decimal(char* out, size_t capacity, uint64_t value);
const char* app_fault_kind_name(AppFaultKind kind);
char* app_fault_text(char* out, size_t capacity, AppFaultKind kind, uint32_t pc, uint32_t status);
char* app_assert_text(char* out, size_t capacity, const char* file, int line);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_APP_FAULT_TEXT_H_
