// The part of an ST device header (stm32h7xx.h, stm32f7xx.h, with CMSIS's core_cm7.h) the NUCLEO port uses, for
// the compile checks: NVIC_SystemReset, SystemCoreClock, the USART register block and USART3's address
// (0x40004800 on both series), and the NUCLEO-144 variant's SERIAL_UART_INSTANCE (USART3, the ST-LINK virtual COM
// port). Written for this project; register offsets from the reference manuals (RM0433, RM0410), the reset
// request from the ARMv7-M Architecture Reference Manual (AIRCR).
#ifndef SQZ_TESTS_ARDUINO_STM32_DEVICE_H_
#define SQZ_TESTS_ARDUINO_STM32_DEVICE_H_
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

extern uint32_t SystemCoreClock;

static inline void NVIC_SystemReset(void) {
  __asm volatile("dsb");
  *(volatile uint32_t*)0xE000ED0CUL = 0x05FA0004UL;  // AIRCR: VECTKEY | SYSRESETREQ
  __asm volatile("dsb");
  for (;;) {
  }
}

typedef struct {
  volatile uint32_t CR1, CR2, CR3, BRR, GTPR, RTOR, RQR, ISR, ICR, RDR, TDR;
} USART_TypeDef;
#define USART3 ((USART_TypeDef*)0x40004800UL)
#define SERIAL_UART_INSTANCE 3

#ifdef __cplusplus
}
#endif
#endif  // SQZ_TESTS_ARDUINO_STM32_DEVICE_H_
