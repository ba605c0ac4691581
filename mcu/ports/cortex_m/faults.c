// Cortex-M fault handlers, shared by the bare-metal ports (startup.c's vector table) and the Arduino Cortex-M
// boards (STM32duino's weak handlers are overridden by these). Contract: cm_faults_enable() gives MemManage,
// BusFault and UsageFault their own handlers (otherwise they escalate to HardFault); each handler finds the
// exception frame the core stacked (MSP or PSP, from EXC_RETURN bit 2), sends the FAULT event
// "<kind> pc=<stacked PC> status=<CFSR>" through app_report_fault and halts until a reset. kind is HardFault,
// MemManage, BusFault or UsageFault; a HardFault escalated from a configurable fault (HFSR.FORCED) names the
// fault CFSR records, as "HardFault/UsageFault" and so on. Asserts are reported elsewhere (assert_report.c).
#include <stdint.h>

#include "../../src/app/app.h"

#define SCB_SHCSR (*(volatile uint32_t*)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t*)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t*)0xE000ED2Cu)
#define SHCSR_MEMFAULTENA (1u << 16)
#define SHCSR_BUSFAULTENA (1u << 17)
#define SHCSR_USGFAULTENA (1u << 18)
#define HFSR_FORCED (1u << 30)
#define STACKED_PC 6  // the frame: r0 r1 r2 r3 r12 lr pc xpsr

void cm_faults_enable(void) {
  SCB_SHCSR |= SHCSR_MEMFAULTENA | SHCSR_BUSFAULTENA | SHCSR_USGFAULTENA;
  __asm volatile("dsb\n isb");
}

static const char* hard_fault_kind(uint32_t cfsr) {
  if (!(SCB_HFSR & HFSR_FORCED) || cfsr == 0) return "HardFault";
  if (cfsr & 0xFFu) return "HardFault/MemManage";
  if (cfsr & 0xFF00u) return "HardFault/BusFault";
  return "HardFault/UsageFault";
}

// Called by the handlers below with the stacked frame and the vector that ran (0 HardFault, 1 MemManage, 2 BusFault,
// 3 UsageFault).
void cm_fault_report(const uint32_t* frame, uint32_t vector) {
  static const char* const kKinds[] = {"HardFault", "MemManage", "BusFault", "UsageFault"};
  uint32_t cfsr = SCB_CFSR;
  const char* kind = vector == 0 ? hard_fault_kind(cfsr) : kKinds[vector & 3u];
  app_report_fault(kind, frame[STACKED_PC], cfsr);
  for (;;) {
  }
}

// Naked: no prologue may touch the stack before the frame pointer is taken.
#define FAULT_HANDLER(name, vector)                                                   \
  __attribute__((naked, used)) void name(void) {                                      \
    __asm volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n"            \
                   "movs r1, #" #vector "\n b cm_fault_report\n");                    \
  }
FAULT_HANDLER(HardFault_Handler, 0)
FAULT_HANDLER(MemManage_Handler, 1)
FAULT_HANDLER(BusFault_Handler, 2)
FAULT_HANDLER(UsageFault_Handler, 3)
