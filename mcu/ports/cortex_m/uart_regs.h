// The register loops of a memory-mapped UART, shared by the bare-metal Cortex-M ports (qemu_stm32f405's USART,
// qemu_mps2_an500's CMSDK UART): the ports differ only in which status bit says what, so each passes its
// registers and bits. Contract: cm_uart_drain_rx, called from the port's receive interrupt handler, moves bytes
// from `data` into cortex_m/uart_rx's ring while `status & rx_ready` is set, and leaves a byte the full ring cannot
// take in the UART (cm_uart_rx_hold masks the interrupt until there is room); cm_uart_write_polled sends each byte
// once `status & tx_mask` equals `tx_ready` (transmitter free), blocking until then. Inline, so a port compiles to
// the loops it had written out.
#ifndef SQZ_PORTS_CORTEX_M_UART_REGS_H_
#define SQZ_PORTS_CORTEX_M_UART_REGS_H_
#include <stddef.h>
#include <stdint.h>

#include "uart_rx.h"

static inline __attribute__((always_inline)) void cm_uart_drain_rx(volatile uint32_t* status, uint32_t rx_ready,
                                                                   volatile uint32_t* data) {
  while (*status & rx_ready) {
    if (!cm_uart_rx_room()) {
      cm_uart_rx_hold();
      return;
    }
    cm_uart_rx_put((uint8_t)*data);
  }
}

static inline __attribute__((always_inline)) void cm_uart_write_polled(volatile uint32_t* status, uint32_t tx_mask,
                                                                       uint32_t tx_ready, volatile uint32_t* data,
                                                                       const uint8_t* bytes, size_t length) {
  for (size_t i = 0; i < length; ++i) {
    while ((*status & tx_mask) != tx_ready) {
    }
    *data = bytes[i];
  }
}

#endif  // SQZ_PORTS_CORTEX_M_UART_REGS_H_
