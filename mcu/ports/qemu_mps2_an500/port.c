// Port hooks for QEMU's mps2-an500 (Cortex-M7, 25 MHz): CMSDK APB UART0 at PROTO_UART_BAUD (QEMU's first serial port),
// received by its RX interrupt (IRQ 0, as QEMU's hw/arm/mps2.c wires it) into cortex_m/uart_rx's ring, so the main
// loop can sleep (WFI) while no byte comes; SysTick on the core clock. Contract: see mcu/src/port/port.h; the hooks
// every bare-metal port implements alike are in cortex_m/port_hooks.c.
#include <stddef.h>
#include <stdint.h>

#include "../../src/port/port.h"
#include "../../src/protocol/protocol_defs.h"
#include "../cortex_m/systick.h"
#include "../cortex_m/uart_regs.h"

void UART0RX_IRQHandler(void);

#define CORE_CLOCK_HZ 25000000u
#define REG(address) (*(volatile uint32_t*)(address))
#define UART0_DATA REG(0x40004000u)
#define UART0_STATE REG(0x40004004u)
#define UART0_CTRL REG(0x40004008u)
#define UART0_INTSTATUS REG(0x4000400Cu)
#define UART0_BAUDDIV REG(0x40004010u)
#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define CTRL_TX_EN (1u << 0)
#define CTRL_RX_EN (1u << 1)
#define CTRL_RX_INTEN (1u << 3)
#define INT_RX (1u << 1)
#define UART0_RX_IRQ 0u

void port_init(void) {
  UART0_BAUDDIV = CORE_CLOCK_HZ / PROTO_UART_BAUD;
  UART0_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INTEN;
  cm_uart_rx_start(UART0_RX_IRQ);
  cm_systick_start();
}

// INTSTATUS.RX is write-one-to-clear and reading DATA leaves it set: clear it first, then drain, so a byte that
// arrives after the drain raises the interrupt again. A byte the full ring cannot take stays in DATA.
void UART0RX_IRQHandler(void) {
  UART0_INTSTATUS = INT_RX;
  cm_uart_drain_rx(&UART0_STATE, STATE_RX_FULL, &UART0_DATA);
}

void port_uart_write(const uint8_t* data, size_t length) {
  cm_uart_write_polled(&UART0_STATE, STATE_TX_FULL, 0u, &UART0_DATA, data, length);  // wait while TX is full
}

uint32_t port_tick_hz(void) { return CORE_CLOCK_HZ; }
uint32_t port_clock_hz(void) { return CORE_CLOCK_HZ; }
const char* port_board_name(void) { return "qemu_mps2_an500 (Cortex-M7)"; }
const char* port_timer_source(void) { return "qemu-icount shift=0 SysTick"; }

// The device vectors after startup.c's 16 system vectors (the linker script places .isr_vector.irq next).
__attribute__((section(".isr_vector.irq"), used)) void (*const g_irq_vectors[UART0_RX_IRQ + 1u])(void) = {UART0RX_IRQHandler};
