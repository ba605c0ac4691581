// ESP32 / ESP32-S3 hooks (Arduino core): the CPU cycle counter (CCOUNT, 32-bit, extended to 64 bits on each read
// by arduino/counter64.h; reads are at least once per op, far more often than its ~18 s wrap at 240 MHz), the CPU
// clock, the chip name, esp_restart. A crash prints ESP-IDF's "Guru Meditation Error" on the same UART.
#include <Arduino.h>
#include <esp_system.h>

#include "../../src/port/port.h"
#include "../arduino/counter64.h"

static Counter64 g_ccount;

extern "C" void port_family_init(void) { g_ccount.last = ESP.getCycleCount(); }

extern "C" uint64_t port_ticks(void) { return counter64_extend(&g_ccount, ESP.getCycleCount()); }

extern "C" uint32_t port_tick_hz(void) { return getCpuFrequencyMhz() * 1000000u; }
extern "C" uint32_t port_clock_hz(void) { return getCpuFrequencyMhz() * 1000000u; }
extern "C" const char* port_board_name(void) { return ESP.getChipModel(); }
extern "C" const char* port_timer_source(void) { return "CPU cycle counter (CCOUNT)"; }
extern "C" void port_reset(void) { esp_restart(); }

// No fault handler of ours runs on ESP32 (ESP-IDF's panic handler reports crashes): Serial is good enough.
extern "C" void port_uart_write_polled(const uint8_t* data, size_t length) {
  Serial.write(data, length);
  Serial.flush();
}
