// The firmware application, portable: model check, TFLM engine, serial protocol session.
// Contract: a board's entry point calls app_setup() once after port_init(), then app_poll() forever;
// app_setup sends the BOOT event. Two reports end the firmware's run with a FAULT event:
//   app_report_fault(kind, pc, status)  a fault handler: "<kind> pc=0x<pc> status=0x<status>", kind as the handler
//                                       names it (HardFault, MemManage, BusFault, UsageFault), pc the stacked PC,
//                                       status the fault status register (CFSR); written with
//                                       port_uart_write_polled, which needs no interrupt, so it works in a handler;
//   app_report_assert(file, line)       a failed assert: "assert <file>:<line>", written with port_uart_write.
// Both return; the caller halts.
#ifndef SQZ_APP_APP_H_
#define SQZ_APP_APP_H_
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

void app_setup(void);
void app_poll(void);
void app_report_fault(const char* kind, uint32_t pc, uint32_t status);
void app_report_assert(const char* file, int line);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_APP_APP_H_
