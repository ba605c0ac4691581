// Line assembly and dispatch of the MLPerf Tiny text mode, and its one-line commands; see text_mode.h for the contract.
#include "text_mode.h"

#include <string.h>

#include "text_commands.h"
#include "text_out.h"

void mlperf_init(MlperfSession* s, const MlperfBackend* backend, uint8_t* db, uint32_t db_capacity, MlperfWriteFn write,
                 void* write_ctx) {
  memset(s, 0, sizeof *s);
  s->backend = backend;
  s->db = db;
  s->db_capacity = db_capacity;
  s->write = write;
  s->write_ctx = write_ctx;
  s->bad_byte = -1;
}

void mlperf_lap(MlperfSession* s) {
  mlperf_text(s, "m-lap-us-");
  mlperf_uint(s, s->backend->now_us(s->backend->ctx));
  mlperf_end_line(s);
}

static void timer_line(MlperfSession* s) { mlperf_bracketed(s, "m-timer-[", s->backend->timer, MLPERF_LINE_MAX); }

void mlperf_boot(MlperfSession* s) {
  mlperf_text(s, "m-timestamp-mode-performance");
  mlperf_end_line(s);
  mlperf_lap(s);
  timer_line(s);
  const char* why = s->backend->not_ready(s->backend->ctx);
  if (why) mlperf_bracketed(s, "e-[model refused: ", why, MLPERF_LINE_MAX);
  mlperf_text(s, "m-init-done");
  mlperf_end_line(s);
  mlperf_text(s, "m-ready");
  mlperf_end_line(s);
}

static const char* const kHelp[] = {
    MLPERF_FW_VERSION,
    "help         : Print this information",
    "name         : Print the name of the device",
    "timestamp    : Print m-lap-us-<time>",
    "profile      : Print the firmware version, the model id and the timer",
    "db SUBCMD    : Manipulate a generic byte buffer",
    "  load N     : Allocate N bytes and set load counter",
    "  db HH[HH]* : Load 8-bit hex byte(s) until N bytes",
    "  print [N=all] [offset=0]",
    "             : Print N bytes at offset as hex",
    "infer N [W=10]: Load input, execute N inferences after W warmup loops",
    "results      : Return the result fp32 vector",
};

static void dispatch(MlperfSession* s, MlperfWords* w) {
  const char* command = w->word[0];
  if (strcmp(command, "name") == 0) {
    if (!mlperf_too_many(s, w, 1, "name")) mlperf_bracketed(s, "m-name-dut-[", s->backend->name, MLPERF_LINE_MAX);
  } else if (strcmp(command, "profile") == 0) {
    if (mlperf_too_many(s, w, 1, "profile")) return;
    mlperf_bracketed(s, "m-profile-[", MLPERF_FW_VERSION, MLPERF_LINE_MAX);
    mlperf_bracketed(s, "m-model-[", s->backend->model_id, MLPERF_LINE_MAX);
    timer_line(s);
  } else if (strcmp(command, "help") == 0) {
    if (mlperf_too_many(s, w, 1, "help")) return;
    for (size_t i = 0; i < sizeof kHelp / sizeof kHelp[0]; ++i) mlperf_text(s, kHelp[i]), mlperf_end_line(s);
  } else if (strcmp(command, "timestamp") == 0) {
    if (!mlperf_too_many(s, w, 1, "timestamp")) mlperf_lap(s);
  } else if (strcmp(command, "db") == 0) {
    mlperf_cmd_db(s, w);
  } else if (strcmp(command, "infer") == 0) {
    mlperf_cmd_infer(s, w);
  } else if (strcmp(command, "results") == 0) {
    mlperf_cmd_results(s, w);
  } else {
    mlperf_error_open(s, "unknown command: ");
    mlperf_clean(s, command, 40);
    mlperf_text(s, " (help lists the commands)");
    mlperf_error_close(s);
  }
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static void handle_line(MlperfSession* s) {
  s->line[s->line_used] = 0;
  if (s->line_overflow) {
    mlperf_error_open(s, "command longer than ");
    mlperf_uint(s, MLPERF_LINE_MAX);
    mlperf_text(s, " characters before %: ignored");
    mlperf_error_close(s);
  } else if (s->bad_byte >= 0) {
    mlperf_error_open(s, "malformed command: byte 0x");
    mlperf_hex2(s, (uint8_t)s->bad_byte);
    mlperf_text(s, " at position ");
    mlperf_uint(s, s->bad_at);
    mlperf_text(s, "; commands are printable ASCII ending in %");
    mlperf_error_close(s);
  } else {
    MlperfWords w = {0, {0}};
    char* p = s->line;
    int too_many = 0;
    while (*p) {
      while (is_space(*p)) *p++ = 0;
      if (!*p) break;
      if (w.count == MLPERF_MAX_WORDS) {
        too_many = 1;
        break;
      }
      w.word[w.count++] = p;
      while (*p && !is_space(*p)) ++p;
    }
    if (too_many) {
      mlperf_error_open(s, "too many words in one command (at most ");
      mlperf_uint(s, MLPERF_MAX_WORDS);
      mlperf_text(s, "): ");
      mlperf_clean(s, w.word[0], 40);
      mlperf_error_close(s);
    } else if (w.count > 0) {
      dispatch(s, &w);
    }
  }
  mlperf_text(s, "m-ready");
  mlperf_end_line(s);
  s->line_used = 0;
  s->line_overflow = 0;
  s->bad_byte = -1;
}

void mlperf_push(MlperfSession* s, const uint8_t* data, size_t length) {
  for (size_t i = 0; i < length; ++i) {
    uint8_t c = data[i];
    if (c == '%') {
      handle_line(s);
      continue;
    }
    if (s->line_used == MLPERF_LINE_MAX) {
      s->line_overflow = 1;
      continue;
    }
    int printable = (c >= 0x20 && c <= 0x7E) || c == '\t' || c == '\r' || c == '\n';
    if (!printable && s->bad_byte < 0) s->bad_byte = c, s->bad_at = s->line_used;
    s->line[s->line_used++] = printable ? (char)c : '?';
  }
}

int mlperf_parse_count(const char* word, uint32_t max, uint32_t* out) {
  uint32_t value = 0;
  if (!word || !*word) return 0;
  for (const char* p = word; *p; ++p) {
    if (*p < '0' || *p > '9') return 0;
    uint32_t digit = (uint32_t)(*p - '0');
    if (digit > max || value > (max - digit) / 10u) return 0;
    value = value * 10u + digit;
  }
  *out = value;
  return 1;
}

void mlperf_error_open(MlperfSession* s, const char* what) {
  mlperf_text(s, "e-[");
  mlperf_text(s, what);
}

void mlperf_error_close(MlperfSession* s) {
  mlperf_char(s, ']');
  mlperf_end_line(s);
}

void mlperf_error(MlperfSession* s, const char* what) {
  mlperf_error_open(s, what);
  mlperf_error_close(s);
}

int mlperf_too_many(MlperfSession* s, const MlperfWords* w, int max_words, const char* usage) {
  if (w->count <= max_words) return 0;
  mlperf_error_open(s, w->word[0]);
  mlperf_text(s, ": too many arguments (usage: ");
  mlperf_text(s, usage);
  mlperf_text(s, ")");
  mlperf_error_close(s);
  return 1;
}
