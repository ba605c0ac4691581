// Cortex-M fault handlers (faults.c): shared by startup.c's vector table and the Arduino Cortex-M boards.
#ifndef SQZ_PORTS_CORTEX_M_FAULTS_H_
#define SQZ_PORTS_CORTEX_M_FAULTS_H_
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

#define CM_STACKED_PC 6  // the exception frame the core stacks: r0 r1 r2 r3 r12 lr pc xpsr

void cm_faults_enable(void);  // MemManage, BusFault and UsageFault get their own handlers instead of escalating
void HardFault_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_PORTS_CORTEX_M_FAULTS_H_
