// Link stand-ins for the NUCLEO compile checks: what STM32duino's core, its system file and the startup file would
// define, so the check links the firmware into the chip's flash and RAM (Serial: stub_serial.cpp). Never runs
// (and does nothing useful if it did): the vector table holds the fault handlers the port brings
// (ports/cortex_m/faults.c) so the link keeps them, as the real startup file's table does.
#include <Arduino.h>

uint32_t SystemCoreClock = F_CPU;

extern "C" {
extern uint32_t _estack;
void HardFault_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);

void Reset_Handler(void) {
  setup();
  for (;;) loop();
}

__attribute__((section(".isr_vector"), used)) void (*const g_check_vectors[7])(void) = {
    reinterpret_cast<void (*)(void)>(&_estack), Reset_Handler, nullptr, HardFault_Handler, MemManage_Handler,
    BusFault_Handler, UsageFault_Handler,
};
}
