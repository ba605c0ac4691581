// Model integrity check; see model_check.h for the contract.
#include "model_check.h"

#include <string.h>

#include "../protocol/protocol_defs.h"
#include "model_data.h"
#include "sha256.h"

namespace sqz {
namespace {

char g_message[96];

void hex8(char* out, const uint8_t* bytes) {
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) out[2 * i] = kHex[bytes[i] >> 4], out[2 * i + 1] = kHex[bytes[i] & 15];
  out[16] = 0;
}

}  // namespace

ModelCheck model_check() {
  uint8_t digest[32];
  sqz_sha256(g_model_data, g_model_data_size, digest);
  if (memcmp(digest, g_model_sha256, sizeof digest) == 0) return {PROTO_MODEL_STATE_OK, "ok"};
  char expected[17], computed[17];
  hex8(expected, g_model_sha256);
  hex8(computed, digest);
  strcpy(g_message, "model corrupted: SHA-256 expected ");
  strcat(g_message, expected);
  strcat(g_message, ".. computed ");
  strcat(g_message, computed);
  strcat(g_message, "..");
  return {PROTO_MODEL_STATE_SHA256_MISMATCH, g_message};
}

}  // namespace sqz
