// Little-endian payload writer and reader with bounds checks.
// Contract: a ProtoWriter never writes past its capacity; once a put does not fit, `overflow` is set and
// later puts are dropped, so a caller checks once at the end. A ProtoReader never reads past its end; a get
// that does not fit sets `error`, returns 0 and the reader stays at the end.
#ifndef SQZ_PROTOCOL_WIRE_H_
#define SQZ_PROTOCOL_WIRE_H_
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint8_t* data;
  size_t capacity;
  size_t length;
  int overflow;
} ProtoWriter;

typedef struct {
  const uint8_t* data;
  size_t length;
  size_t offset;
  int error;
} ProtoReader;

void proto_writer_init(ProtoWriter* w, uint8_t* data, size_t capacity);
void proto_put_bytes(ProtoWriter* w, const void* data, size_t length);
void proto_put_u8(ProtoWriter* w, uint8_t value);
void proto_put_u16(ProtoWriter* w, uint16_t value);
void proto_put_u32(ProtoWriter* w, uint32_t value);
void proto_put_u64(ProtoWriter* w, uint64_t value);
void proto_put_f32(ProtoWriter* w, float value);
// u8 length + bytes, the string cut at 255 bytes (and at max_length when that is smaller).
void proto_put_str8(ProtoWriter* w, const char* text, size_t max_length);

void proto_reader_init(ProtoReader* r, const uint8_t* data, size_t length);
uint16_t proto_get_u16(ProtoReader* r);
uint32_t proto_get_u32(ProtoReader* r);
size_t proto_reader_left(const ProtoReader* r);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_PROTOCOL_WIRE_H_
