// The hooks a board supplies (mcu/ports/<board>/); the portable core calls nothing else board-specific.
// Contract: port_init brings up the UART and the tick counter; port_uart_read never blocks (returns the
// bytes already received, 0 if none); port_uart_write blocks until the bytes are queued; port_uart_write_polled
// sends the bytes without waiting on any interrupt (for fault handlers, which run with the UART's interrupt
// masked; the same as port_uart_write on a port that polls anyway) and returns once they left; port_ticks is a
// monotonic 64-bit count at port_tick_hz; port_reset does not return. The board's entry point calls
// app_setup() once and app_poll() forever (mcu/src/app/app.h); between two calls it may sleep until input
// arrives (the bare-metal QEMU ports: WFI until the UART receive interrupt, ports/cortex_m/uart_rx.h).
#ifndef SQZ_PORT_PORT_H_
#define SQZ_PORT_PORT_H_
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

void port_init(void);
size_t port_uart_read(uint8_t* data, size_t capacity);
void port_uart_write(const uint8_t* data, size_t length);
void port_uart_write_polled(const uint8_t* data, size_t length);
uint64_t port_ticks(void);
uint32_t port_tick_hz(void);
uint32_t port_clock_hz(void);
const char* port_board_name(void);
const char* port_timer_source(void);  // e.g. "SysTick (QEMU icount)", "DWT CYCCNT", "ccount"
void port_reset(void);

// Arduino-framework boards only: ports/arduino/entry.cpp's port_init opens Serial, then calls the family's
// port_family_init (esp32/, arduino_cortex_m/) to start its tick counter and, on Cortex-M, the fault handlers.
// The portable core never calls it.
void port_family_init(void);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_PORT_PORT_H_
