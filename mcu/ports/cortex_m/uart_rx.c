// The receive ring and idle wait of the bare-metal ports; see uart_rx.h for the contract.
// One producer (the receive interrupt) moves g_head, one consumer (thread mode) moves g_tail: no lock needed
// on a single core. The indices run freely and wrap at 2^32; the ring size is a power of two.
#include "uart_rx.h"

#define RING_BYTES 512u
#define NVIC_ISER ((volatile uint32_t*)0xE000E100u)
#define NVIC_ICER ((volatile uint32_t*)0xE000E180u)
#define NVIC_ISPR ((volatile uint32_t*)0xE000E200u)

static uint8_t g_ring[RING_BYTES];
static volatile uint32_t g_head, g_tail;
static volatile int g_held;
static uint32_t g_irq;

void cm_uart_rx_start(uint32_t irq) {
  g_irq = irq;
  NVIC_ISER[irq / 32u] = 1u << (irq % 32u);
}

int cm_uart_rx_room(void) { return g_head - g_tail < RING_BYTES; }

void cm_uart_rx_put(uint8_t byte) {
  g_ring[g_head % RING_BYTES] = byte;
  __asm volatile("" ::: "memory");  // the byte is stored before the consumer can see the new head
  g_head = g_head + 1u;
}

void cm_uart_rx_hold(void) {
  g_held = 1;
  NVIC_ICER[g_irq / 32u] = 1u << (g_irq % 32u);
}

size_t cm_uart_rx_get(uint8_t* data, size_t capacity) {
  size_t n = 0;
  uint32_t tail = g_tail;
  while (n < capacity && tail != g_head) data[n++] = g_ring[tail++ % RING_BYTES];
  __asm volatile("" ::: "memory");
  g_tail = tail;
  if (n && g_held) {
    // Room again: the handler takes the byte it left in the UART. Pending it by hand, since a UART whose
    // interrupt flag was cleared before the ring filled (CMSDK's W1C INTSTATUS) raises no new request.
    g_held = 0;
    NVIC_ISPR[g_irq / 32u] = 1u << (g_irq % 32u);
    NVIC_ISER[g_irq / 32u] = 1u << (g_irq % 32u);
  }
  return n;
}

void cm_uart_rx_wait(void) {
  // Interrupts off between the check and WFI: a byte arriving in between stays pending, and WFI wakes on a
  // pending interrupt even with PRIMASK set; the handler then runs at cpsie.
  __asm volatile("cpsid i" ::: "memory");
  if (g_head == g_tail) __asm volatile("dsb\n wfi" ::: "memory");
  __asm volatile("cpsie i" ::: "memory");
}
