// Reply text for the MLPerf Tiny text mode (text_mode.h): a small buffer per session, sent through its write
// function when full and at the end of each line, so a long line (a results vector of many classes) still goes out.
// Contract: numbers are written without printf (no printf family in the firmware); mlperf_fixed3 writes what
// glibc's printf("%0.3f") writes for a float within +/-2,000,000 (exact halves to even; "-0.000" as "0.000"),
// "nan", "inf" or "-inf" else.
#ifndef SQZ_MLPERF_TEXT_OUT_H_
#define SQZ_MLPERF_TEXT_OUT_H_
#include <stdint.h>

#include "text_mode.h"
#ifdef __cplusplus
extern "C" {
#endif

void mlperf_text(MlperfSession* s, const char* text);
void mlperf_char(MlperfSession* s, char c);
void mlperf_uint(MlperfSession* s, uint64_t value);
void mlperf_hex2(MlperfSession* s, uint8_t value);
void mlperf_fixed3(MlperfSession* s, float value);
void mlperf_end_line(MlperfSession* s);  // "\r\n", then everything buffered is written
// Text cut at `max` characters, ']' and bytes that are not printable ASCII shown as '?' (so "[...]" stays one field).
void mlperf_clean(MlperfSession* s, const char* text, size_t max);
// One whole line: prefix, mlperf_clean(text, max), then "]\r\n".
void mlperf_bracketed(MlperfSession* s, const char* prefix, const char* text, size_t max);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_MLPERF_TEXT_OUT_H_
