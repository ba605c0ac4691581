// Model integrity at boot: the SHA-256 of g_model_data against g_model_sha256, generated with it.
// Contract: model_check() hashes the whole array once and returns PROTO_MODEL_STATE_OK or
// PROTO_MODEL_STATE_SHA256_MISMATCH with a message naming the expected and computed digests' first bytes.
#ifndef SQZ_APP_MODEL_CHECK_H_
#define SQZ_APP_MODEL_CHECK_H_
#include <stdint.h>

namespace sqz {

struct ModelCheck {
  uint8_t state;
  const char* message;
};

ModelCheck model_check();

}  // namespace sqz

#endif  // SQZ_APP_MODEL_CHECK_H_
