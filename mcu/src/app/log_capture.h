// The last message TFLM logged (MicroPrintf -> DebugLog), kept so an error reply can carry it instead of
// printing it on the protocol UART. Contract: sqz_log_message() stores a copy (cut to 120 bytes); the
// mcu/tflm/debug_log.cc glue calls it; sqz_last_log() returns it or NULL when nothing was logged since
// sqz_clear_log(). Builds whose TFLM brings its own DebugLog simply never fill it.
#ifndef SQZ_APP_LOG_CAPTURE_H_
#define SQZ_APP_LOG_CAPTURE_H_
#ifdef __cplusplus
extern "C" {
#endif

void sqz_log_message(const char* text);
const char* sqz_last_log(void);
void sqz_clear_log(void);

#ifdef __cplusplus
}
#endif
#endif  // SQZ_APP_LOG_CAPTURE_H_
