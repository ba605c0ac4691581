// Link stand-ins for the ESP32 compile checks: what Arduino-ESP32's core and ESP-IDF would define, so the check
// links the firmware (ESP-IDF's own start-up, FreeRTOS and drivers are not in it); Serial is stub_serial.cpp's.
// Never runs.
#include <Arduino.h>
#include <esp_system.h>
#include <esp_timer.h>

EspClass ESP;
uint32_t EspClass::getCycleCount() { return 0; }
const char* EspClass::getChipModel() { return "compile check"; }
uint32_t getCpuFrequencyMhz() { return 240; }

extern "C" void esp_restart(void) {
  for (;;) {
  }
}
extern "C" int64_t esp_timer_get_time(void) { return 0; }

extern "C" void Reset_Handler(void) {
  setup();
  for (;;) loop();
}
