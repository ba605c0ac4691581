// Entry point and UART hooks shared by the Arduino-framework boards (ESP32, NUCLEO): the protocol runs on
// `Serial`, the board's USB serial port, at PROTO_UART_BAUD (uart.baud in mcu/protocol/protocol.json, the host's
// default too). Contract: see mcu/src/port/port.h; the tick counter, clock, board name and reset come from the
// board family's folder (esp32/, arduino_cortex_m/).
#include <Arduino.h>

#include "../../src/app/app.h"
#include "../../src/port/port.h"
#include "../../src/protocol/protocol_defs.h"

extern "C" void port_init(void) {
  Serial.begin(PROTO_UART_BAUD);
  port_family_init();
}

extern "C" size_t port_uart_read(uint8_t* data, size_t capacity) {
  size_t n = 0;
  while (n < capacity && Serial.available() > 0) data[n++] = static_cast<uint8_t>(Serial.read());
  return n;
}

extern "C" void port_uart_write(const uint8_t* data, size_t length) {
  Serial.write(data, length);
  Serial.flush();
}

void setup() {
  port_init();
  app_setup();
}

void loop() { app_poll(); }
