// Port hooks for QEMU's mps2-an500 (Cortex-M7, 25 MHz): CMSDK APB UART0 at PROTO_UART_BAUD (QEMU's first serial port),
// SysTick on the core clock. Contract: see mcu/src/port/port.h.
#include <stddef.h>
#include <stdint.h>

#include "../../src/port/port.h"
#include "../../src/protocol/protocol_defs.h"
#include "../cortex_m/systick.h"

#define CORE_CLOCK_HZ 25000000u
#define REG(address) (*(volatile uint32_t*)(address))
#define UART0_DATA REG(0x40004000u)
#define UART0_STATE REG(0x40004004u)
#define UART0_CTRL REG(0x40004008u)
#define UART0_BAUDDIV REG(0x40004010u)
#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)

void port_init(void) {
  UART0_BAUDDIV = CORE_CLOCK_HZ / PROTO_UART_BAUD;
  UART0_CTRL = 0x3u;  // TX and RX enabled
  cm_systick_start();
}

size_t port_uart_read(uint8_t* data, size_t capacity) {
  size_t n = 0;
  while (n < capacity && (UART0_STATE & STATE_RX_FULL)) data[n++] = (uint8_t)UART0_DATA;
  return n;
}

void port_uart_write(const uint8_t* data, size_t length) {
  for (size_t i = 0; i < length; ++i) {
    while (UART0_STATE & STATE_TX_FULL) {
    }
    UART0_DATA = data[i];
  }
}

void port_uart_write_polled(const uint8_t* data, size_t length) { port_uart_write(data, length); }

uint64_t port_ticks(void) { return cm_systick_ticks(); }
uint32_t port_tick_hz(void) { return CORE_CLOCK_HZ; }
uint32_t port_clock_hz(void) { return CORE_CLOCK_HZ; }
const char* port_board_name(void) { return "qemu_mps2_an500 (Cortex-M7)"; }
const char* port_timer_source(void) { return "qemu-icount shift=0 SysTick"; }
void port_reset(void) { cm_system_reset(); }
