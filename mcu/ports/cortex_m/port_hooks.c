// The hooks of src/port/port.h that every bare-metal Cortex-M port (qemu_stm32f405, qemu_mps2_an500) implements
// the same way, on the shared parts of ports/cortex_m: received bytes come from uart_rx's ring, ticks from the
// SysTick counter, reset through the SCB. Contract: see port.h; the port supplies the rest (port_init, its
// port_uart_write, which polls, clocks, names).
#include "../../src/port/port.h"
#include "systick.h"
#include "uart_rx.h"

size_t port_uart_read(uint8_t* data, size_t capacity) { return cm_uart_rx_get(data, capacity); }

// port_uart_write polls the transmitter on these ports already: no interrupt to avoid.
void port_uart_write_polled(const uint8_t* data, size_t length) { port_uart_write(data, length); }

uint64_t port_ticks(void) { return cm_systick_ticks(); }
void port_reset(void) { cm_system_reset(); }
