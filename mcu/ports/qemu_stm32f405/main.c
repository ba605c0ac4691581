// Entry point of the STM32F405 port: hooks up the board, then the portable application loop.
#include "../../src/app/app.h"
#include "../../src/port/port.h"

int main(void) {
  port_init();
  app_setup();
  for (;;) app_poll();
}
