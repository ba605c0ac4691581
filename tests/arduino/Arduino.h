// A minimal Arduino API for the compile checks of the real-board environments (pio run -d mcu -e check_*):
// the declarations mcu/ports/arduino, arduino_cortex_m and esp32 use, written for this project (not taken from
// any Arduino core). With ARDUINO_ARCH_STM32 it adds what STM32duino's Arduino.h brings in from the ST device
// header (stm32_device.h); with ARDUINO_ARCH_ESP32, Arduino-ESP32's ESP object and getCpuFrequencyMhz. The link
// stand-ins are in stub_stm32.cpp and stub_esp32.cpp; nothing here runs. Contract: the signatures match the
// cores the real environments build with (STM32duino, Arduino-ESP32 2.0.17) for the calls the ports make.
#ifndef SQZ_TESTS_ARDUINO_ARDUINO_H_
#define SQZ_TESTS_ARDUINO_ARDUINO_H_
#include <stddef.h>
#include <stdint.h>

class HardwareSerial {
 public:
  void begin(unsigned long baud);
  int available();
  int read();
  size_t write(const uint8_t* data, size_t length);
  void flush();
};
extern HardwareSerial Serial;

void setup();
void loop();

#if defined(ARDUINO_ARCH_STM32)
#include "stm32_device.h"
#elif defined(ARDUINO_ARCH_ESP32)
class EspClass {
 public:
  uint32_t getCycleCount();
  const char* getChipModel();
};
extern EspClass ESP;
uint32_t getCpuFrequencyMhz();
#endif

#endif  // SQZ_TESTS_ARDUINO_ARDUINO_H_
