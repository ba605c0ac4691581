// Start-up shared by the bare-metal Cortex-M ports (no vendor HAL): the 16 system vectors, Reset_Handler
// (copy .data, zero .bss, enable the FPU, run C++ constructors, call main) and fault handlers that send a
// FAULT event ("HardFault pc=... status=<CFSR>") through the UART hooks, then wait for a reset.
// Contract: the board's linker script defines _estack, _sidata, _sdata, _edata, _sbss, _ebss; peripheral
// interrupts stay disabled (the ports poll), so no device vectors are needed.
#include <stdint.h>

#include "../../src/app/app.h"

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
extern int main(void);
extern void __libc_init_array(void);
void SysTick_Handler(void);

#define SCB_CPACR (*(volatile uint32_t*)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t*)0xE000ED28u)
#define SCB_SHCSR (*(volatile uint32_t*)0xE000ED24u)

void Reset_Handler(void) {
  uint32_t* src = &_sidata;
  for (uint32_t* dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
  SCB_CPACR |= 0xFu << 20;  // CP10 and CP11 full access
  __asm volatile("dsb\n isb");
#endif
  SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);  // MemManage, BusFault, UsageFault handlers enabled
  __libc_init_array();
  main();
  for (;;) {
  }
}

// Called with the stacked exception frame: r0 r1 r2 r3 r12 lr pc xpsr.
void sqz_fault_report(const uint32_t* frame, const char* what) {
  app_report_fault(what, frame[6], SCB_CFSR);
  for (;;) {
  }
}

#define FAULT_HANDLER(name, text)                                           \
  __attribute__((naked)) void name(void) {                                  \
    __asm volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n" \
                   "ldr r1, =1f\n b sqz_fault_report\n"                     \
                   ".pushsection .rodata\n1: .asciz \"" text "\"\n.popsection"); \
  }
FAULT_HANDLER(HardFault_Handler, "HardFault")
FAULT_HANDLER(MemManage_Handler, "MemManageFault")
FAULT_HANDLER(BusFault_Handler, "BusFault")
FAULT_HANDLER(UsageFault_Handler, "UsageFault")
FAULT_HANDLER(Default_Handler, "UnexpectedInterrupt")

__attribute__((section(".isr_vector"), used)) void (*const g_vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler,   Default_Handler, HardFault_Handler, MemManage_Handler, BusFault_Handler,
    UsageFault_Handler,         0,               0,               0,                 0,                 Default_Handler,
    Default_Handler,            0,               Default_Handler, SysTick_Handler,
};
