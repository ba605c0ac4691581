// The input loop of the host test devices (fake_device.c, mlperf_fake_dut.c), which stand in for the firmware on
// a pipe: feeds every byte read from stdin to `push` and flushes stdout after each read, so the test reads each
// reply as soon as the session wrote it. Contract: returns at end of input or on a read error; `push` gets the
// bytes in order, in pieces of at most 512, with `session` passed through. The including file defines
// _POSIX_C_SOURCE (read, ssize_t) before its first #include.
#ifndef SQZ_TEST_HOST_STDIN_FEED_H_
#define SQZ_TEST_HOST_STDIN_FEED_H_
#if !defined(_POSIX_C_SOURCE)
#error "stdin_feed.h: #define _POSIX_C_SOURCE 200809L before the first #include (it uses POSIX read)"
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

typedef void (*HostPush)(void* session, const uint8_t* data, size_t length);

static void host_feed_stdin(HostPush push, void* session) {
  fflush(stdout);  // what the device wrote before its first input (the boot event or lines)
  uint8_t buffer[512];
  ssize_t n;
  while ((n = read(STDIN_FILENO, buffer, sizeof buffer)) > 0) {
    push(session, buffer, (size_t)n);
    fflush(stdout);
  }
}

#endif  // SQZ_TEST_HOST_STDIN_FEED_H_
