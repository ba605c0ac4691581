// ESP-IDF's esp_timer_get_time (microseconds since boot), which esp-tflite-micro's ESP-NN kernels call to time
// themselves, declared for the compile checks (tests/arduino/Arduino.h says why); written for this project.
#ifndef SQZ_TESTS_ARDUINO_ESP_TIMER_H_
#define SQZ_TESTS_ARDUINO_ESP_TIMER_H_
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
int64_t esp_timer_get_time(void);
#ifdef __cplusplus
}
#endif
#endif  // SQZ_TESTS_ARDUINO_ESP_TIMER_H_
