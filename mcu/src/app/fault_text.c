// FAULT report texts; see fault_text.h for the contract. No printf: a fault handler calls this, and the printf
// family would cost ~4 KB of flash.
#include "fault_text.h"

#include <string.h>

void sqz_append(char* out, size_t capacity, const char* text) { strncat(out, text, capacity - strlen(out) - 1); }

void sqz_append_decimal(char* out, size_t capacity, uint64_t value) {
  char digits[21] = {0};  // up to 20 digits, filled from the right
  int at = 20;
  do digits[--at] = (char)('0' + value % 10u), value /= 10u;
  while (value);
  sqz_append(out, capacity, digits + at);
}

static void append_hex(char* out, size_t capacity, uint32_t value) {
  static const char kHex[] = "0123456789abcdef";
  char digits[11] = "0x";
  for (int i = 0; i < 8; ++i) digits[2 + i] = kHex[(value >> (28 - 4 * i)) & 15u];
  digits[10] = '\0';
  sqz_append(out, capacity, digits);
}

const char* app_fault_kind_name(AppFaultKind kind) {
  static const char* const kNames[] = {
      "HardFault",           "MemManage",          "BusFault",           "UsageFault", "HardFault/MemManage",
      "HardFault/BusFault", "HardFault/UsageFault", "UnexpectedInterrupt",
  };
  // An out-of-range kind (a caller's bug) still yields a text the host's crash regex matches
  return (unsigned)kind < sizeof kNames / sizeof kNames[0] ? kNames[kind] : "HardFault/unknown-kind";
}

char* app_fault_text(char* out, size_t capacity, AppFaultKind kind, uint32_t pc, uint32_t status) {
  if (!capacity) return out;
  out[0] = '\0';
  sqz_append(out, capacity, app_fault_kind_name(kind));
  sqz_append(out, capacity, " pc=");
  append_hex(out, capacity, pc);
  sqz_append(out, capacity, " status=");
  append_hex(out, capacity, status);
  return out;
}

char* app_assert_text(char* out, size_t capacity, const char* file, int line) {
  if (!capacity) return out;
  out[0] = '\0';
  sqz_append(out, capacity, "assert ");
  sqz_append(out, capacity, file ? file : "?");
  sqz_append(out, capacity, ":");
  sqz_append_decimal(out, capacity, line > 0 ? (uint32_t)line : 0u);
  return out;
}
