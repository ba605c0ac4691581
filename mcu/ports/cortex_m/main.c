// Entry point of the bare-metal Cortex-M ports (qemu_stm32f405, qemu_mps2_an500; startup.c's Reset_Handler calls
// it): hooks up the board, then the portable application loop, sleeping (WFI) whenever no received byte is
// waiting. Contract: the port's port_init starts cortex_m/uart_rx (its UART receive interrupt fills the ring).
#include "../../src/app/app.h"
#include "../../src/port/port.h"
#include "uart_rx.h"

int main(void) {
  port_init();
  app_setup();
  for (;;) {
    app_poll();
    cm_uart_rx_wait();  // sleep until the UART receive interrupt (or SysTick's wrap): an idle board costs the host no CPU
  }
}
