// Receive buffer, frame checks and dispatch to the command handlers; see session.h for the contract.
#include "session.h"

#include <string.h>

#include "frame.h"

typedef ProtoResult (*Handler)(ProtoSession*, const uint8_t*, size_t, ProtoWriter*);

static Handler find_handler(uint8_t command) {
  switch (command) {
    case PROTO_CMD_HELLO: return proto_cmd_hello;
    case PROTO_CMD_LOAD_INPUT: return proto_cmd_load_input;
    case PROTO_CMD_INVOKE: return proto_cmd_invoke;
    case PROTO_CMD_PROFILE: return proto_cmd_profile;
    case PROTO_CMD_RESET: return proto_cmd_reset;
    default: return NULL;  // PROTO_SET_MLPERF_TINY_* commands would be routed here
  }
}

static void send_error(ProtoSession* s, uint8_t command, uint16_t seq, ProtoResult result) {
  ProtoWriter out;
  proto_writer_init(&out, s->reply, sizeof s->reply);
  proto_put_u32(&out, (uint32_t)result.detail);
  if (result.message) {
    size_t length = strlen(result.message);
    proto_put_bytes(&out, result.message, length > PROTO_TEXT_MAX ? PROTO_TEXT_MAX : length);
  }
  proto_send_frame(s->sink, s->sink_ctx, command, result.status, seq, s->reply, out.length);
}

static void handle_body(ProtoSession* s, uint8_t* body, size_t length) {
  ProtoFrame frame;
  int status = proto_parse_frame(body, length, &frame);
  uint8_t reply_command = frame.has_header ? (uint8_t)(frame.command | PROTO_REPLY_FLAG) : PROTO_UNPARSED_REPLY;
  uint16_t seq = frame.has_header ? frame.seq : 0;
  if (status != PROTO_ST_OK) {
    ProtoResult error = {(uint8_t)status, (int32_t)length, "malformed frame"};
    send_error(s, reply_command, seq, error);
    return;
  }
  Handler handler = (frame.command & PROTO_REPLY_FLAG) ? NULL : find_handler(frame.command);
  if (!handler) {
    ProtoResult error = {PROTO_ST_UNKNOWN_COMMAND, frame.command, "unknown command"};
    send_error(s, reply_command, seq, error);
    return;
  }
  ProtoWriter out;
  proto_writer_init(&out, s->reply, sizeof s->reply);
  ProtoResult result = handler(s, frame.payload, frame.length, &out);
  if (result.status == PROTO_ST_OK && out.overflow) {
    ProtoResult error = {PROTO_ST_INTERNAL, (int32_t)out.capacity, "reply too long"};
    result = error;
  }
  if (result.status != PROTO_ST_OK) {
    send_error(s, reply_command, seq, result);
    return;
  }
  proto_send_frame(s->sink, s->sink_ctx, reply_command, PROTO_ST_OK, seq, s->reply, out.length);
  if (frame.command == PROTO_CMD_RESET && s->backend->reset) s->backend->reset(s->backend->ctx);
}

void proto_session_init(ProtoSession* s, const ProtoBackend* backend, ProtoSinkFn sink, void* sink_ctx) {
  memset(s, 0, sizeof *s);
  s->backend = backend;
  s->sink = sink;
  s->sink_ctx = sink_ctx;
}

void proto_session_push(ProtoSession* s, const uint8_t* data, size_t length) {
  for (size_t i = 0; i < length; ++i) {
    uint8_t byte = data[i];
    if (byte != PROTO_DELIMITER) {
      if (s->rx_used < sizeof s->rx) {
        s->rx[s->rx_used++] = byte;
      } else {
        s->rx_overflow = 1;
      }
      continue;
    }
    if (s->rx_overflow) {
      ProtoResult error = {PROTO_ST_FRAME_TOO_LONG, (int32_t)sizeof s->rx, "frame too long"};
      send_error(s, PROTO_UNPARSED_REPLY, 0, error);
    } else if (s->rx_used > 0) {
      handle_body(s, s->rx, s->rx_used);
    }
    s->rx_used = 0;
    s->rx_overflow = 0;
  }
}
