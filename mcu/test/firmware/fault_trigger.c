// Test-only (environment qemu_stm32f405_faults, tests/test_mcu_faults_qemu.py): makes the firmware fault on
// request, so a test sees the FAULT event a real fault sends. Linked with -Wl,--wrap=port_uart_read: every byte
// the port reads passes through here first, and the line "SQZFAULT<k>\n" (never a valid COBS frame: no delimiter
// until the newline's frame ends) triggers, from thread mode, fault k:
//   U  UsageFault   an undefined instruction (udf)
//   B  BusFault     a load from an address no bus answers (0xCFFFFFF0)
//   M  MemManage    a jump to the execute-never System region (0xE0000000)
//   H  HardFault    the undefined instruction with UsageFault's handler disabled (escalates, HFSR.FORCED)
//   A  assert       assert(0) here, through newlib's __assert_func (assert_report.c)
// The faulting instruction is in sqz_fault_trigger; the test reads its address range from the ELF.
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

size_t __real_port_uart_read(uint8_t* data, size_t capacity);

#define SCB_SHCSR (*(volatile uint32_t*)0xE000ED24u)

__attribute__((noinline, used)) void sqz_fault_trigger(char kind) {
  switch (kind) {
    case 'U':
      __asm volatile("udf #0");
      break;
    case 'B':
      (void)*(volatile uint32_t*)0xCFFFFFF0u;
      break;
    case 'M':
      ((void (*)(void))0xE0000001u)();
      break;
    case 'H':
      SCB_SHCSR &= ~(1u << 18);  // UsageFault handler off: the fault escalates to HardFault
      __asm volatile("dsb\n isb\n udf #1");
      break;
    case 'A':
      assert(kind == 0);
      break;
    default:
      break;
  }
}

size_t __wrap_port_uart_read(uint8_t* data, size_t capacity) {
  static const char kMagic[] = "SQZFAULT";
  static size_t matched;
  size_t n = __real_port_uart_read(data, capacity);
  for (size_t i = 0; i < n; ++i) {
    if (matched == sizeof kMagic - 1) {
      matched = 0;
      sqz_fault_trigger((char)data[i]);
    } else if (data[i] == (uint8_t)kMagic[matched]) {
      ++matched;
    } else {
      matched = data[i] == (uint8_t)kMagic[0];
    }
  }
  return n;
}
