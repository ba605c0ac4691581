// Port hooks for an STM32F405/F407 driven by its registers (no HAL), as QEMU's netduinoplus2 models it:
// USART1 (PA9 TX, PA10 RX, AF7) at PROTO_UART_BAUD is the protocol UART, received by its RXNE interrupt (IRQ 37)
// into cortex_m/uart_rx's ring, so the main loop can sleep (WFI) while no byte comes; SysTick on the core clock is
// the timer.
// Contract: see mcu/src/port/port.h (the hooks every bare-metal port implements alike: cortex_m/port_hooks.c).
// SQZ_CORE_CLOCK_HZ is the clock SysTick counts (QEMU: 168 MHz whatever RCC says; a real board left on its
// 16 MHz HSI: build with -DSQZ_CORE_CLOCK_HZ=16000000).
#include <stddef.h>
#include <stdint.h>

#include "../../src/port/port.h"
#include "../../src/protocol/protocol_defs.h"
#include "../cortex_m/systick.h"
#include "../cortex_m/uart_regs.h"

#ifndef SQZ_CORE_CLOCK_HZ
#define SQZ_CORE_CLOCK_HZ 168000000u
#endif

void Default_Handler(void);
void USART1_IRQHandler(void);

#define REG(address) (*(volatile uint32_t*)(address))
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB2ENR REG(0x40023844u)
#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_AFRH REG(0x40020024u)
#define USART1_SR REG(0x40011000u)
#define USART1_DR REG(0x40011004u)
#define USART1_BRR REG(0x40011008u)
#define USART1_CR1 REG(0x4001100Cu)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_UE (1u << 13)
#define CR1_TE (1u << 3)
#define CR1_RE (1u << 2)
#define CR1_RXNEIE (1u << 5)
#define USART1_IRQ 37u  // the STM32F405's vector table position; QEMU's stm32f405_soc.c wires it the same

void port_init(void) {
  RCC_AHB1ENR |= 1u << 0;  // GPIOA
  RCC_APB2ENR |= 1u << 4;  // USART1
  GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);  // PA9, PA10: alternate function
  GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);     // AF7 = USART1
  USART1_BRR = (SQZ_CORE_CLOCK_HZ / 2u + PROTO_UART_BAUD / 2u) / PROTO_UART_BAUD;  // APB2 = core / 2
  USART1_CR1 = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
  cm_uart_rx_start(USART1_IRQ);
  cm_systick_start();
}

// Reading DR clears RXNE (and, in QEMU, lets the next byte in); a byte the full ring cannot take stays in DR.
void USART1_IRQHandler(void) { cm_uart_drain_rx(&USART1_SR, SR_RXNE, &USART1_DR); }

void port_uart_write(const uint8_t* data, size_t length) {
  cm_uart_write_polled(&USART1_SR, SR_TXE, SR_TXE, &USART1_DR, data, length);  // wait until TX is empty
}

uint32_t port_tick_hz(void) { return SQZ_CORE_CLOCK_HZ; }
uint32_t port_clock_hz(void) { return SQZ_CORE_CLOCK_HZ; }
const char* port_board_name(void) { return "qemu_stm32f405 (netduinoplus2, STM32F405RG Cortex-M4F)"; }
const char* port_timer_source(void) { return "qemu-icount shift=0 SysTick"; }

// The device vectors after startup.c's 16 system vectors (the linker script places .isr_vector.irq next):
// IRQ 0..36 unused, 37 USART1.
__attribute__((section(".isr_vector.irq"), used)) void (*const g_irq_vectors[USART1_IRQ + 1u])(void) = {
    [0 ... USART1_IRQ - 1u] = Default_Handler,
    [USART1_IRQ] = USART1_IRQHandler,
};
