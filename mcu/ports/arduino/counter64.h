// A free-running 32-bit cycle counter (Cortex-M DWT CYCCNT, Xtensa CCOUNT) extended to 64 bits on each read, for
// the Arduino families' port_ticks (arduino_cortex_m/, esp32/). Contract: counter64_extend(&c, now) is monotonic as
// long as it sees the counter at least once per wrap (2^32 cycles: ~9 s at 480 MHz); port_ticks is read at least
// once per op, far more often. One Counter64 per counter, zero-initialised; thread mode only (not reentrant).
// The bare-metal ports do not need it: their SysTick is 24-bit and extended by its wrap interrupt (cortex_m/systick.c).
#ifndef SQZ_PORTS_ARDUINO_COUNTER64_H_
#define SQZ_PORTS_ARDUINO_COUNTER64_H_
#include <stdint.h>

typedef struct {
  uint32_t last;  // the previous reading
  uint64_t high;  // the wraps seen so far, times 2^32
} Counter64;

static inline uint64_t counter64_extend(Counter64* counter, uint32_t now) {
  if (now < counter->last) counter->high += 1ull << 32;
  counter->last = now;
  return counter->high | now;
}

#endif  // SQZ_PORTS_ARDUINO_COUNTER64_H_
