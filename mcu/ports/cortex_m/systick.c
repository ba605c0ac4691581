// A 64-bit tick counter from the 24-bit SysTick on the core clock, extended by its wrap interrupt.
// Contract: cm_systick_start() starts it; cm_systick_ticks() is monotonic, one tick per core clock cycle
// (on QEMU with -icount shift=0: a fixed count per instruction, so repeat runs agree to within a tick).
// QEMU models no DWT cycle counter; real Cortex-M4/M7 ports may use DWT CYCCNT instead.
#include "systick.h"

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t*)0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)

static volatile uint32_t g_wraps;

void SysTick_Handler(void) { g_wraps++; }

void cm_systick_start(void) {
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 0x7u;  // processor clock, interrupt on wrap, enabled
}

uint64_t cm_systick_ticks(void) {
  uint32_t wraps, value, pending;
  do {
    wraps = g_wraps;
    value = SYST_CVR;
    pending = SCB_ICSR & ICSR_PENDSTSET;
  } while (wraps != g_wraps);
  if (pending && value > 0x800000u) ++wraps;  // wrapped, interrupt not yet taken
  return ((uint64_t)wraps << 24) + (0xFFFFFFu - value);
}

void cm_system_reset(void) {
  __asm volatile("dsb");
  *(volatile uint32_t*)0xE000ED0Cu = 0x05FA0004u;  // AIRCR: VECTKEY | SYSRESETREQ
  __asm volatile("dsb");
  for (;;) {
  }
}
