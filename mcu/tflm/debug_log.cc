// TFLM's logging back end for this firmware, compiled into the TFLM library in place of TFLM's
// debug_log.cc (mcu/scripts/tflm.py). Contract: nothing is written to the UART (it carries protocol
// frames); DebugLog formats into a small buffer (%d %i %u %x %s %c %%, others shown as '?') and hands the
// text to sqz_log_message, so error replies carry TFLM's last message. DebugVsnprintf uses the same
// formatter, so no printf family is linked.
#include <stdarg.h>
#include <stddef.h>

#include "tensorflow/lite/micro/debug_log.h"

extern "C" void sqz_log_message(const char* text);

namespace {

struct Out {
  char* buffer;
  size_t size;
  size_t used;
  void put(char c) {
    if (used + 1 < size) buffer[used] = c;
    ++used;
  }
};

void put_unsigned(Out& out, unsigned long value, unsigned base) {
  char digits[24];
  int n = 0;
  do digits[n++] = "0123456789abcdef"[value % base], value /= base;
  while (value);
  while (n) out.put(digits[--n]);
}

int format(char* buffer, size_t size, const char* format, va_list args) {
  Out out = {buffer, size, 0};
  for (const char* f = format; *f; ++f) {
    if (*f != '%') {
      out.put(*f);
      continue;
    }
    ++f;
    while (*f == 'l' || *f == 'z' || (*f >= '0' && *f <= '9') || *f == '.') ++f;  // flags and widths ignored
    switch (*f) {
      case 'd':
      case 'i': {
        long v = va_arg(args, int);
        if (v < 0) out.put('-'), v = -v;
        put_unsigned(out, static_cast<unsigned long>(v), 10);
        break;
      }
      case 'u': put_unsigned(out, va_arg(args, unsigned), 10); break;
      case 'x': put_unsigned(out, va_arg(args, unsigned), 16); break;
      case 's': for (const char* s = va_arg(args, const char*); s && *s; ++s) out.put(*s); break;
      case 'c': out.put(static_cast<char>(va_arg(args, int))); break;
      case '%': out.put('%'); break;
      case 'f': va_arg(args, double); out.put('?'); break;
      case 0: --f; break;
      default: out.put('?'); break;
    }
  }
  if (size) buffer[out.used < size ? out.used : size - 1] = 0;
  return static_cast<int>(out.used);
}

}  // namespace

extern "C" void DebugLog(const char* fmt, va_list args) {
  char text[121];
  format(text, sizeof text, fmt, args);
  sqz_log_message(text);
}

extern "C" int DebugVsnprintf(char* buffer, size_t buf_size, const char* fmt, va_list vlist) {
  return format(buffer, buf_size, fmt, vlist);
}
