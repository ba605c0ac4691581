// The firmware application, portable: model check, TFLM engine, serial protocol session.
// Contract: a board's entry point calls app_setup() once after port_init(), then app_poll() forever;
// a fault handler calls app_report_fault(), which writes a FAULT event (text starting "HardFault" or
// the name given) with the UART hooks only, so it works from any context. app_setup sends the BOOT event.
#ifndef SQZ_APP_APP_H_
#define SQZ_APP_APP_H_
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

void app_setup(void);
void app_poll(void);
void app_report_fault(const char* what, uint32_t pc, uint32_t status);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_APP_APP_H_
