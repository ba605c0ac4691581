// Last-TFLM-message store; see log_capture.h for the contract.
#include "log_capture.h"

#include <string.h>

static char g_last[121];

void sqz_log_message(const char* text) {
  size_t length = strlen(text);
  while (length && (text[length - 1] == '\n' || text[length - 1] == '\r')) --length;
  if (length == 0) return;  // TFLM logs a bare newline after each message
  if (length > sizeof g_last - 1) length = sizeof g_last - 1;
  memcpy(g_last, text, length);
  g_last[length] = 0;
}

const char* sqz_last_log(void) { return g_last[0] ? g_last : NULL; }
void sqz_clear_log(void) { g_last[0] = 0; }
