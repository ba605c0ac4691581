// The db command of the MLPerf Tiny text mode (load, print, hex bytes); see text_mode.h for the contract.
// Unlike the reference DUT code, a load larger than the buffer and a chunk past the loaded size are refused
// (the reference writes past its buffer in both cases), and a chunk is checked whole before anything is stored.
#include <string.h>

#include "text_commands.h"
#include "text_out.h"

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void load(MlperfSession* s, const MlperfWords* w) {
  uint32_t n = 0;
  if (w->count < 3) {
    mlperf_error(s, "db load: needs the number of bytes (db load N)");
    return;
  }
  if (mlperf_too_many(s, w, 3, "db load N")) return;
  if (!mlperf_parse_count(w->word[2], s->db_capacity, &n) || n == 0) {
    mlperf_error_open(s, "db load: N must be a decimal count from 1 to ");
    mlperf_uint(s, s->db_capacity);
    mlperf_text(s, " (the model's input bytes), got ");
    mlperf_clean(s, w->word[2], 24);
    mlperf_error_close(s);
    return;
  }
  s->db_expected = n;
  s->db_received = 0;
  mlperf_text(s, "m-[Expecting ");
  mlperf_uint(s, n);
  mlperf_text(s, " bytes]");
  mlperf_end_line(s);
}

static void print(MlperfSession* s, const MlperfWords* w) {
  uint32_t count = s->db_received, offset = 0;
  if (mlperf_too_many(s, w, 4, "db print [N [offset]]")) return;
  if ((w->count > 2 && !mlperf_parse_count(w->word[2], 0xFFFFFFFFu, &count)) ||
      (w->count > 3 && !mlperf_parse_count(w->word[3], 0xFFFFFFFFu, &offset)) || offset > s->db_received) {
    mlperf_error_open(s, "db print: N and offset must be decimal counts, offset at most the ");
    mlperf_uint(s, s->db_received);
    mlperf_text(s, " bytes received");
    mlperf_error_close(s);
    return;
  }
  if (count > s->db_received - offset) count = s->db_received - offset;
  for (uint32_t i = 0; i < count; ++i) {
    if (i % 8u == 0) mlperf_text(s, "m-buffer-");
    mlperf_hex2(s, s->db[offset + i]);
    if (i % 8u == 7u || i + 1 == count) {
      mlperf_end_line(s);
    } else {
      mlperf_char(s, '-');
    }
  }
}

static void store(MlperfSession* s, const MlperfWords* w) {
  const char* hex = w->word[1];
  size_t digits = strlen(hex);
  if (mlperf_too_many(s, w, 2, "db <hex digits>")) return;
  for (size_t i = 0; i < digits; ++i) {
    if (hex_value(hex[i]) < 0) {
      mlperf_error_open(s, "db: invalid hex digit '");
      mlperf_clean(s, hex + i, 1);
      mlperf_text(s, "' at position ");
      mlperf_uint(s, i);
      mlperf_text(s, "; nothing stored");
      mlperf_error_close(s);
      return;
    }
  }
  if (digits % 2u) {
    mlperf_error_open(s, "db: odd number of hex digits (");
    mlperf_uint(s, digits);
    mlperf_text(s, "): two per byte; nothing stored");
    mlperf_error_close(s);
    return;
  }
  if (s->db_expected == 0) {
    mlperf_error(s, "db: no load in progress: send db load N first; nothing stored");
    return;
  }
  uint32_t bytes = (uint32_t)(digits / 2u), left = s->db_expected - s->db_received;
  if (bytes > left) {
    mlperf_error_open(s, "db: overflow: ");
    mlperf_uint(s, bytes);
    mlperf_text(s, " bytes sent but ");
    mlperf_uint(s, left);
    mlperf_text(s, " of the ");
    mlperf_uint(s, s->db_expected);
    mlperf_text(s, " loaded bytes remain; nothing stored (db load N starts again)");
    mlperf_error_close(s);
    return;
  }
  for (uint32_t i = 0; i < bytes; ++i) {
    s->db[s->db_received++] = (uint8_t)(hex_value(hex[2 * i]) << 4 | hex_value(hex[2 * i + 1]));
  }
  if (bytes && s->db_received == s->db_expected) {
    mlperf_text(s, "m-load-done");
    mlperf_end_line(s);
  }
}

void mlperf_cmd_db(MlperfSession* s, const MlperfWords* w) {
  if (w->count < 2) {
    mlperf_error(s, "db: needs a subcommand: load N, print [N [offset]], or hex bytes");
  } else if (strcmp(w->word[1], "load") == 0) {
    load(s, w);
  } else if (strcmp(w->word[1], "print") == 0) {
    print(s, w);
  } else {
    store(s, w);
  }
}
