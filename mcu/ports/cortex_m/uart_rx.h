// Interrupt-driven UART receive for the bare-metal Cortex-M ports: a byte ring filled by the board's UART
// receive interrupt, and the idle wait that lets an emulator (or a chip) sleep while no byte is pending.
// Contract: the port calls cm_uart_rx_start(irq) once after setting up its UART with the receive interrupt
// on; its handler calls cm_uart_rx_room()/cm_uart_rx_put() for each received byte and cm_uart_rx_hold()
// when a byte is left because the ring is full (the IRQ is then masked in the NVIC until cm_uart_rx_get
// makes room, so nothing is lost and no interrupt storms); cm_uart_rx_get never blocks;
// cm_uart_rx_wait() returns at once when the ring holds a byte, else sleeps (WFI) until an interrupt.
#ifndef SQZ_PORTS_CORTEX_M_UART_RX_H_
#define SQZ_PORTS_CORTEX_M_UART_RX_H_
#include <stddef.h>
#include <stdint.h>

void cm_uart_rx_start(uint32_t irq);
int cm_uart_rx_room(void);
void cm_uart_rx_put(uint8_t byte);
void cm_uart_rx_hold(void);
size_t cm_uart_rx_get(uint8_t* data, size_t capacity);
void cm_uart_rx_wait(void);

#endif  // SQZ_PORTS_CORTEX_M_UART_RX_H_
