// Bounds-checked little-endian writer and reader; see wire.h for the contract.
#include "wire.h"

#include <string.h>

void proto_writer_init(ProtoWriter* w, uint8_t* data, size_t capacity) {
  w->data = data;
  w->capacity = capacity;
  w->length = 0;
  w->overflow = 0;
}

void proto_put_bytes(ProtoWriter* w, const void* data, size_t length) {
  if (w->overflow || length > w->capacity - w->length) {
    w->overflow = 1;
    return;
  }
  if (length) memcpy(w->data + w->length, data, length);
  w->length += length;
}

static void put_le(ProtoWriter* w, uint64_t value, size_t bytes) {
  uint8_t raw[8];
  for (size_t i = 0; i < bytes; ++i) raw[i] = (uint8_t)(value >> (8 * i));
  proto_put_bytes(w, raw, bytes);
}

void proto_put_u8(ProtoWriter* w, uint8_t value) { put_le(w, value, 1); }
void proto_put_u16(ProtoWriter* w, uint16_t value) { put_le(w, value, 2); }
void proto_put_u32(ProtoWriter* w, uint32_t value) { put_le(w, value, 4); }
void proto_put_u64(ProtoWriter* w, uint64_t value) { put_le(w, value, 8); }

void proto_put_f32(ProtoWriter* w, float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  put_le(w, bits, 4);
}

void proto_put_str8(ProtoWriter* w, const char* text, size_t max_length) {
  size_t length = text ? strlen(text) : 0;
  if (length > max_length) length = max_length;
  if (length > 255) length = 255;
  proto_put_u8(w, (uint8_t)length);
  proto_put_bytes(w, text, length);
}

void proto_reader_init(ProtoReader* r, const uint8_t* data, size_t length) {
  r->data = data;
  r->length = length;
  r->offset = 0;
  r->error = 0;
}

static uint64_t get_le(ProtoReader* r, size_t bytes) {
  if (r->error || bytes > r->length - r->offset) {
    r->error = 1;
    r->offset = r->length;
    return 0;
  }
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value |= (uint64_t)r->data[r->offset + i] << (8 * i);
  r->offset += bytes;
  return value;
}

uint16_t proto_get_u16(ProtoReader* r) { return (uint16_t)get_le(r, 2); }
uint32_t proto_get_u32(ProtoReader* r) { return (uint32_t)get_le(r, 4); }
size_t proto_reader_left(const ProtoReader* r) { return r->length - r->offset; }
