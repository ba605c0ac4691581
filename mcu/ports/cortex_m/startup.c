// Start-up shared by the bare-metal Cortex-M ports (no vendor HAL): the 16 system vectors, Reset_Handler
// (copy .data, zero .bss, enable the FPU and the fault handlers, run C++ constructors, call main). The fault
// vectors are faults.c's handlers (FAULT event "<kind> pc=<stacked PC> status=<CFSR>", then wait for a reset);
// any other exception reports "UnexpectedInterrupt" the same way.
// Contract: the linker script (cortex_m.ld) defines _estack, _sidata, _sdata, _edata, _sbss, _ebss; peripheral
// interrupts are the port's: its own table of device vectors goes in section .isr_vector.irq, which the linker
// script places right after these 16 (Default_Handler is global for it).
#include <stdint.h>

#include "../../src/app/app.h"
#include "faults.h"

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
extern int main(void);
extern void __libc_init_array(void);
void SysTick_Handler(void);

#define SCB_CPACR (*(volatile uint32_t*)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t*)0xE000ED28u)

void Reset_Handler(void) {
  uint32_t* src = &_sidata;
  for (uint32_t* dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
  SCB_CPACR |= 0xFu << 20;  // CP10 and CP11 full access
  __asm volatile("dsb\n isb");
#endif
  cm_faults_enable();  // MemManage, BusFault, UsageFault: their own handlers
  __libc_init_array();
  main();
  for (;;) {
  }
}

// Called with the stacked exception frame (faults.h).
void sqz_unexpected_interrupt(const uint32_t* frame) {
  app_report_fault(APP_FAULT_UNEXPECTED_INTERRUPT, frame[CM_STACKED_PC], SCB_CFSR);
  for (;;) {
  }
}

__attribute__((naked)) void Default_Handler(void) {
  __asm volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n b sqz_unexpected_interrupt\n");
}

__attribute__((section(".isr_vector"), used)) void (*const g_vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler,   Default_Handler, HardFault_Handler, MemManage_Handler, BusFault_Handler,
    UsageFault_Handler,         0,               0,               0,                 0,                 Default_Handler,
    Default_Handler,            0,               Default_Handler, SysTick_Handler,
};
