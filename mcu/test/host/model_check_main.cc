// Host check of the boot-time model integrity test (src/app/model_check.cc, src/app/sha256.c), for
// tests/test_mcu_host_app.py. Contract: links against a model_data.cc given at build time; prints
// "<state> <message>" and "<sha256 hex of g_model_data>".
#include <stdio.h>

#include "model_check.h"
#include "model_data.h"
#include "sha256.h"

int main() {
  sqz::ModelCheck check = sqz::model_check();
  printf("%d %s\n", check.state, check.message);
  uint8_t digest[32];
  sqz_sha256(g_model_data, g_model_data_size, digest);
  for (int i = 0; i < 32; ++i) printf("%02x", digest[i]);
  printf("\n");
  return 0;
}
