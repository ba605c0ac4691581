// The firmware application, portable: model check, TFLM engine, serial protocol session.
// Contract: a board's entry point calls app_setup() once after port_init(), then app_poll() forever;
// app_setup sends the BOOT event. Two reports end the firmware's run with a FAULT event (text: fault_text.h):
//   app_report_fault(kind, pc, status)  a fault handler: "<kind name> pc=0x<pc> status=0x<status>", kind the
//                                       handler that ran (AppFaultKind), pc the stacked PC, status the fault
//                                       status register (CFSR); written with port_uart_write_polled, which needs
//                                       no interrupt, so it works in a handler;
//   app_report_assert(file, line)       a failed assert: "assert <file>:<line>", written with port_uart_write.
// Both return; the caller halts.
#ifndef SQZ_APP_APP_H_
#define SQZ_APP_APP_H_
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

// What ran: a Cortex-M fault handler (ports/cortex_m/faults.c), a HardFault escalated from the configurable fault
// that CFSR records (HFSR.FORCED), or a vector no handler of ours owns (ports/cortex_m/startup.c).
typedef enum {
  APP_FAULT_HARD_FAULT,
  APP_FAULT_MEM_MANAGE,
  APP_FAULT_BUS_FAULT,
  APP_FAULT_USAGE_FAULT,
  APP_FAULT_HARD_FAULT_FROM_MEM_MANAGE,
  APP_FAULT_HARD_FAULT_FROM_BUS_FAULT,
  APP_FAULT_HARD_FAULT_FROM_USAGE_FAULT,
  APP_FAULT_UNEXPECTED_INTERRUPT,
} AppFaultKind;

void app_setup(void);
void app_poll(void);
void app_report_fault(AppFaultKind kind, uint32_t pc, uint32_t status);
void app_report_assert(const char* file, int line);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_APP_APP_H_
