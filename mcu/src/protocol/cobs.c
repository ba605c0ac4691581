// COBS decode (in place) and streaming encode; see cobs.h for the contract.
#include "cobs.h"

long proto_cobs_decode(uint8_t* data, size_t length) {
  size_t in = 0, out = 0;
  while (in < length) {
    uint8_t code = data[in];
    if (code == 0 || in + code > length) return -1;
    for (size_t k = 1; k < code; ++k) {
      uint8_t byte = data[in + k];
      if (byte == 0) return -1;
      data[out++] = byte;
    }
    in += code;
    if (code != 0xFF && in < length) data[out++] = 0;
  }
  return (long)out;
}

void proto_cobs_begin(ProtoCobsWriter* writer, ProtoSinkFn sink, void* ctx) {
  writer->sink = sink;
  writer->ctx = ctx;
  writer->used = 0;
}

static void flush_block(ProtoCobsWriter* writer) {
  writer->block[0] = (uint8_t)(writer->used + 1);
  writer->sink(writer->ctx, writer->block, (size_t)writer->used + 1);
  writer->used = 0;
}

void proto_cobs_put(ProtoCobsWriter* writer, const uint8_t* data, size_t length) {
  for (size_t i = 0; i < length; ++i) {
    if (data[i] == 0) {
      flush_block(writer);
    } else {
      writer->block[1 + writer->used++] = data[i];
      if (writer->used == 254) flush_block(writer);
    }
  }
}

void proto_cobs_finish(ProtoCobsWriter* writer) {
  static const uint8_t kDelimiter = 0;
  flush_block(writer);
  writer->sink(writer->ctx, &kDelimiter, 1);
}
