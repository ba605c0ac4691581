// Build facts reported by HELLO; mcu/scripts/tflm.py defines them from git and the environment.
#ifndef SQZ_APP_BUILD_INFO_H_
#define SQZ_APP_BUILD_INFO_H_

#ifdef SQZ_HAVE_BUILD_INFO
#include "sqz_build_info.h"
#endif

#ifndef SQZ_FIRMWARE_GIT_SHA
#define SQZ_FIRMWARE_GIT_SHA "unknown"
#endif
#ifndef SQZ_BUILD_FLAGS
#define SQZ_BUILD_FLAGS "unknown"
#endif
#ifndef SQZ_KERNELS
#define SQZ_KERNELS "unknown"
#endif
#ifndef SQZ_ENV_NAME
#define SQZ_ENV_NAME "unknown"
#endif
#define SQZ_STRINGIFY_(x) #x
#define SQZ_STRINGIFY(x) SQZ_STRINGIFY_(x)
#if defined(__clang__)
#define SQZ_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define SQZ_COMPILER "gcc " __VERSION__
#else
#define SQZ_COMPILER "unknown"
#endif

#endif  // SQZ_APP_BUILD_INFO_H_
