// Cortex-M7 NUCLEO hooks (STM32duino): DWT CYCCNT (32-bit, extended to 64 bits on each read) at
// SystemCoreClock, the board name, NVIC_SystemReset, and the polled UART write the fault handlers use
// (ports/cortex_m/faults.c, built in by the NUCLEO environments: FAULT events with the stacked PC).
// STM32duino's Serial sends from its UART interrupt, which cannot run inside a fault handler, so the polled
// write puts bytes straight into the data register of Serial's USART: SERIAL_UART_INSTANCE of the board's
// variant (3 on the NUCLEO-144 boards, the ST-LINK virtual COM port).
#include <Arduino.h>

#include "../../src/port/port.h"
#include "../arduino/counter64.h"
#include "../cortex_m/faults.h"

#if SERIAL_UART_INSTANCE == 3
#define SQZ_SERIAL_USART USART3
#else
#error "port_cortex_m.cpp: name the USART behind Serial (SERIAL_UART_INSTANCE) for this board"
#endif
#define USART_ISR_TC_BIT (1u << 6)   // transmission complete (F7 and H7 USART ISR)
#define USART_ISR_TXE_BIT (1u << 7)  // transmit data register empty (H7: TXFNF, FIFO not full)

// Debug and trace registers by address (ARMv7-M Architecture Reference Manual, C1.6.5 and C1.8), the same on
// every Cortex-M7 whichever CMSIS version the core ships (CMSIS 6 dropped the CoreDebug block).
#define DEMCR (*reinterpret_cast<volatile uint32_t*>(0xE000EDFCu))
#define DWT_CTRL (*reinterpret_cast<volatile uint32_t*>(0xE0001000u))
#define DWT_CYCCNT (*reinterpret_cast<volatile uint32_t*>(0xE0001004u))
#define DWT_LAR (*reinterpret_cast<volatile uint32_t*>(0xE0001FB0u))
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_LAR_UNLOCK 0xC5ACCE55u

static Counter64 g_cycles;

extern "C" void port_family_init(void) {
  cm_faults_enable();
  DEMCR |= DEMCR_TRCENA;
  DWT_LAR = DWT_LAR_UNLOCK;  // Cortex-M7 parts lock the DWT until this key is written
  DWT_CYCCNT = 0;
  DWT_CTRL |= DWT_CTRL_CYCCNTENA;
}

extern "C" uint64_t port_ticks(void) { return counter64_extend(&g_cycles, DWT_CYCCNT); }

extern "C" uint32_t port_tick_hz(void) { return SystemCoreClock; }
extern "C" uint32_t port_clock_hz(void) { return SystemCoreClock; }
extern "C" const char* port_board_name(void) { return BOARD_NAME; }
extern "C" const char* port_timer_source(void) { return "DWT CYCCNT"; }
extern "C" void port_reset(void) { NVIC_SystemReset(); }

extern "C" void port_uart_write_polled(const uint8_t* data, size_t length) {
  for (size_t i = 0; i < length; ++i) {
    while (!(SQZ_SERIAL_USART->ISR & USART_ISR_TXE_BIT)) {
    }
    SQZ_SERIAL_USART->TDR = data[i];
  }
  while (!(SQZ_SERIAL_USART->ISR & USART_ISR_TC_BIT)) {
  }
}
