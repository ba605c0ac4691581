// Cortex-M fault handlers, shared by the bare-metal ports (startup.c's vector table) and the Arduino Cortex-M
// boards (STM32duino's weak handlers are overridden by these). Contract: cm_faults_enable() gives MemManage,
// BusFault and UsageFault their own handlers (otherwise they escalate to HardFault); each handler finds the
// exception frame the core stacked (MSP or PSP, from EXC_RETURN bit 2), sends the FAULT event
// "<kind> pc=<stacked PC> status=<CFSR>" through app_report_fault and halts until a reset. The kind is the
// handler that ran (AppFaultKind, src/app/app.h); a HardFault escalated from a configurable fault (HFSR.FORCED)
// names the fault CFSR records (APP_FAULT_HARD_FAULT_FROM_USAGE_FAULT and so on: "HardFault/UsageFault").
// Asserts are reported elsewhere (assert_report.c).
#include "faults.h"

#include "../../src/app/app.h"

#define SCB_SHCSR (*(volatile uint32_t*)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t*)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t*)0xE000ED2Cu)
#define SHCSR_MEMFAULTENA (1u << 16)
#define SHCSR_BUSFAULTENA (1u << 17)
#define SHCSR_USGFAULTENA (1u << 18)
#define HFSR_FORCED (1u << 30)

void cm_faults_enable(void) {
  SCB_SHCSR |= SHCSR_MEMFAULTENA | SHCSR_BUSFAULTENA | SHCSR_USGFAULTENA;
  __asm volatile("dsb\n isb");
}

static AppFaultKind hard_fault_kind(uint32_t cfsr) {
  if (!(SCB_HFSR & HFSR_FORCED) || cfsr == 0) return APP_FAULT_HARD_FAULT;
  if (cfsr & 0xFFu) return APP_FAULT_HARD_FAULT_FROM_MEM_MANAGE;
  if (cfsr & 0xFF00u) return APP_FAULT_HARD_FAULT_FROM_BUS_FAULT;
  return APP_FAULT_HARD_FAULT_FROM_USAGE_FAULT;
}

// Called by the handlers below with the stacked frame and the vector that ran (0 HardFault, 1 MemManage, 2 BusFault,
// 3 UsageFault: AppFaultKind's first four, in that order).
void cm_fault_report(const uint32_t* frame, uint32_t vector) {
  uint32_t cfsr = SCB_CFSR;
  AppFaultKind kind = vector == 0 ? hard_fault_kind(cfsr) : (AppFaultKind)(APP_FAULT_HARD_FAULT + (vector & 3u));
  app_report_fault(kind, frame[CM_STACKED_PC], cfsr);
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
