// HELLO reply writer; see hello.h for the contract.
#include "hello.h"

#include "protocol_defs.h"

static void put_tensor(ProtoWriter* out, const ProtoTensorInfo* t) {
  proto_put_u8(out, t->dtype);
  proto_put_u8(out, t->ndims);
  for (int i = 0; i < 4; ++i) proto_put_u16(out, t->dims[i]);
  proto_put_f32(out, t->scale);
  proto_put_u32(out, (uint32_t)t->zero_point);
  proto_put_u32(out, t->bytes);
}

void proto_write_hello(ProtoWriter* out, const ProtoHello* hello) {
  static const uint8_t kNoSha[32] = {0};
  proto_put_u16(out, PROTO_VERSION);
  proto_put_u16(out, PROTO_MAX_REQUEST_PAYLOAD);
  proto_put_u16(out, PROTO_MAX_REPLY_PAYLOAD);
  proto_put_u16(out, PROTO_INPUT_CHUNK_MAX);
  proto_put_u32(out, hello->clock_hz);
  proto_put_u32(out, hello->tick_hz);
  proto_put_u32(out, hello->arena_bytes);
  proto_put_u32(out, hello->arena_used_bytes);
  proto_put_u8(out, hello->model_state);
  proto_put_u32(out, hello->model_size);
  proto_put_bytes(out, hello->model_sha256 ? hello->model_sha256 : kNoSha, 32);
  put_tensor(out, &hello->input);
  put_tensor(out, &hello->output);
  const char* texts[] = {hello->board,       hello->timer_source, hello->kernels,    hello->firmware_git_sha,
                         hello->build_flags, hello->compiler,     hello->model_name, hello->model_message};
  for (unsigned i = 0; i < sizeof texts / sizeof texts[0]; ++i) proto_put_str8(out, texts[i], 255);
}
