// Reply text of the MLPerf Tiny text mode; see text_out.h for the contract.
#include "text_out.h"

static void flush(MlperfSession* s) {
  if (s->out_used) s->write(s->write_ctx, s->out, s->out_used);
  s->out_used = 0;
}

void mlperf_char(MlperfSession* s, char c) {
  if (s->out_used == sizeof s->out) flush(s);
  s->out[s->out_used++] = c;
}

void mlperf_text(MlperfSession* s, const char* text) {
  while (*text) mlperf_char(s, *text++);
}

void mlperf_uint(MlperfSession* s, uint64_t value) {
  char digits[20];
  int n = 0;
  do digits[n++] = (char)('0' + value % 10u), value /= 10u;
  while (value);
  while (n) mlperf_char(s, digits[--n]);
}

void mlperf_hex2(MlperfSession* s, uint8_t value) {
  static const char kHex[] = "0123456789abcdef";
  mlperf_char(s, kHex[value >> 4]);
  mlperf_char(s, kHex[value & 15u]);
}

void mlperf_fixed3(MlperfSession* s, float value) {
  if (value != value) {
    mlperf_text(s, "nan");
    return;
  }
  if (value >= 2e6f || value <= -2e6f) {
    mlperf_text(s, value > 0 ? "inf" : "-inf");
    return;
  }
  double scaled = (double)value * 1000.0;  // exact: a float's 24-bit mantissa times 1000 fits a double's 53 bits
  int negative = scaled < 0;
  if (negative) scaled = -scaled;
  int32_t milli = (int32_t)scaled;
  double fraction = scaled - (double)milli;
  if (fraction > 0.5 || (fraction == 0.5 && (milli & 1))) ++milli;  // half to even, as printf rounds
  if (negative && milli) mlperf_char(s, '-');
  mlperf_uint(s, (uint64_t)(milli / 1000));
  mlperf_char(s, '.');
  mlperf_char(s, (char)('0' + milli / 100 % 10));
  mlperf_char(s, (char)('0' + milli / 10 % 10));
  mlperf_char(s, (char)('0' + milli % 10));
}

void mlperf_end_line(MlperfSession* s) {
  mlperf_text(s, "\r\n");
  flush(s);
}

void mlperf_clean(MlperfSession* s, const char* text, size_t max) {
  for (size_t i = 0; text && text[i] && i < max; ++i) {
    char c = text[i];
    mlperf_char(s, (c == ']' || c < 0x20 || c > 0x7E) ? '?' : c);
  }
}

void mlperf_bracketed(MlperfSession* s, const char* prefix, const char* text, size_t max) {
  mlperf_text(s, prefix);
  mlperf_clean(s, text, max);
  mlperf_char(s, ']');
  mlperf_end_line(s);
}
