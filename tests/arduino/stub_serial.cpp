// Link stand-in for Serial, shared by every compile check (stub_stm32.cpp, stub_esp32.cpp): the HardwareSerial
// both frameworks' cores define and ports/arduino/entry.cpp uses, so the check links the firmware. Never runs.
#include <Arduino.h>

HardwareSerial Serial;
void HardwareSerial::begin(unsigned long) {}
int HardwareSerial::available() { return 0; }
int HardwareSerial::read() { return -1; }
size_t HardwareSerial::write(const uint8_t*, size_t length) { return length; }
void HardwareSerial::flush() {}
