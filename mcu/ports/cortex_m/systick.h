// SysTick tick counter and system reset for the bare-metal Cortex-M ports; see systick.c.
#ifndef SQZ_PORTS_CORTEX_M_SYSTICK_H_
#define SQZ_PORTS_CORTEX_M_SYSTICK_H_
#include <stdint.h>

void cm_systick_start(void);
uint64_t cm_systick_ticks(void);
void cm_system_reset(void);

#endif  // SQZ_PORTS_CORTEX_M_SYSTICK_H_
