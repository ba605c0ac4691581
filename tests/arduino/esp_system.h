// ESP-IDF's esp_restart, declared for the compile checks (tests/arduino/Arduino.h says why); written for this project.
#ifndef SQZ_TESTS_ARDUINO_ESP_SYSTEM_H_
#define SQZ_TESTS_ARDUINO_ESP_SYSTEM_H_
#ifdef __cplusplus
extern "C" {
#endif
void esp_restart(void) __attribute__((noreturn));
#ifdef __cplusplus
}
#endif
#endif  // SQZ_TESTS_ARDUINO_ESP_SYSTEM_H_
