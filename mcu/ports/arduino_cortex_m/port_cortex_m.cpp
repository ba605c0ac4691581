// Cortex-M7 NUCLEO hooks (STM32duino): DWT CYCCNT (32-bit, extended to 64 bits on each read) at
// SystemCoreClock, the board name, NVIC_SystemReset, and a HardFault handler that sends the FAULT event.
#include <Arduino.h>

#include "../../src/app/app.h"
#include "../../src/port/port.h"

static uint32_t g_last;
static uint64_t g_high;

extern "C" void port_family_init(void) {
  CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
#if defined(DWT_LAR_KEY)
  DWT->LAR = DWT_LAR_KEY;  // Cortex-M7 parts lock the DWT until this key is written
#else
  *reinterpret_cast<volatile uint32_t*>(0xE0001FB0u) = 0xC5ACCE55u;
#endif
  DWT->CYCCNT = 0;
  DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
}

extern "C" uint64_t port_ticks(void) {
  uint32_t now = DWT->CYCCNT;
  if (now < g_last) g_high += 1ull << 32;
  g_last = now;
  return g_high | now;
}

extern "C" uint32_t port_tick_hz(void) { return SystemCoreClock; }
extern "C" uint32_t port_clock_hz(void) { return SystemCoreClock; }
extern "C" const char* port_board_name(void) { return BOARD_NAME; }
extern "C" const char* port_timer_source(void) { return "DWT CYCCNT"; }
extern "C" void port_reset(void) { NVIC_SystemReset(); }

extern "C" void HardFault_Handler(void) {
  app_report_fault("HardFault", 0, SCB->CFSR);
  for (;;) {
  }
}
