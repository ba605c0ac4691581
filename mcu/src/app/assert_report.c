// newlib's assert handler, replaced: a failed assert (flatbuffers, TFLM) sends a FAULT event "assert
// <file>:<line>" through the UART hooks and halts, instead of printing with fprintf (which would also
// link the printf family, ~4 KB). Contract: never returns; the host sees the event, as for a HardFault.
#include <string.h>

#include "app.h"

void __assert_func(const char* file, int line, const char* function, const char* expression) {
  (void)function;
  (void)expression;
  const char* base = file ? strrchr(file, '/') : NULL;
  app_report_fault(base ? base + 1 : "assert", 0, (unsigned)line);
  for (;;) {
  }
}
