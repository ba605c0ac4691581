// The MLPerf Tiny text mode's command handlers (text_db.c, text_infer.c), called by text_mode.c's dispatch with the
// command line split into words. Contract: each handler writes its reply lines (an "e-[...]" line for any error),
// not the closing m-ready, which the dispatch sends.
#ifndef SQZ_MLPERF_TEXT_COMMANDS_H_
#define SQZ_MLPERF_TEXT_COMMANDS_H_
#include <stdint.h>

#include "text_mode.h"
#ifdef __cplusplus
extern "C" {
#endif

#define MLPERF_MAX_WORDS 5  // more words than this in one line: an error ("too many arguments")

typedef struct {
  int count;
  const char* word[MLPERF_MAX_WORDS];
} MlperfWords;

void mlperf_cmd_db(MlperfSession* s, const MlperfWords* w);
void mlperf_cmd_infer(MlperfSession* s, const MlperfWords* w);
void mlperf_cmd_results(MlperfSession* s, const MlperfWords* w);

void mlperf_lap(MlperfSession* s);  // m-lap-us-<now>

// A decimal count in 0..max (digits only, no sign): 1 and *out set, else 0.
int mlperf_parse_count(const char* word, uint32_t max, uint32_t* out);
// "e-[<what>" ... "]": an error line opened, to be completed with mlperf_text/mlperf_uint and closed.
void mlperf_error_open(MlperfSession* s, const char* what);
void mlperf_error_close(MlperfSession* s);
void mlperf_error(MlperfSession* s, const char* what);  // a whole error line
// "<command>: too many arguments (usage: <usage>)" when w has more than `max_words` words; returns 1 if so.
int mlperf_too_many(MlperfSession* s, const MlperfWords* w, int max_words, const char* usage);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_MLPERF_TEXT_COMMANDS_H_
