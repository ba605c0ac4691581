// newlib's assert handler, replaced: a failed assert (flatbuffers, TFLM) sends a FAULT event "assert
// <file>:<line>" (app_report_assert) through the UART hooks and halts, instead of printing with fprintf (which
// would also link the printf family, ~4 KB). Contract: never returns; the host sees the event, as for a fault.
// Boards whose framework brings its own __assert_func (Arduino-ESP32 forces ESP-IDF's with -u
// newlib_include_assert_impl) leave this file out in build_src_filter and keep theirs.
#include <string.h>

#include "app.h"

void __assert_func(const char* file, int line, const char* function, const char* expression) {
  (void)function;
  (void)expression;
  const char* base = file ? strrchr(file, '/') : NULL;
  app_report_assert(base ? base + 1 : (file ? file : "?"), line);
  for (;;) {
  }
}
