// Host program for tests/test_fault_text_host.py: prints the FAULT texts of src/app/fault_text.c, one a line:
// every AppFaultKind (and one past the last) with a fixed pc and status, two asserts, then one fault text cut to
// 20 bytes of buffer.
#include <stdio.h>

#include "fault_text.h"

int main(void) {
  char text[96];
  for (int kind = APP_FAULT_HARD_FAULT; kind <= APP_FAULT_UNEXPECTED_INTERRUPT + 1; ++kind)
    puts(app_fault_text(text, sizeof text, (AppFaultKind)kind, 0x0800123Au, 0x00010000u));
  puts(app_assert_text(text, sizeof text, "micro_interpreter.cc", 123));
  puts(app_assert_text(text, sizeof text, NULL, -5));
  puts(app_fault_text(text, 20, APP_FAULT_HARD_FAULT_FROM_USAGE_FAULT, 1u, 2u));
  return 0;
}
