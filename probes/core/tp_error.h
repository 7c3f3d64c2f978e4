/* tp_error.h - the one error enum of tlsprobe's own code (not probe outcomes:
 * those are outcome.h). Generated from one X-macro list so that the enum, its
 * name and its message can never drift apart (libuv's UV_ERRNO_MAP idea). */
#ifndef TP_ERROR_H
#define TP_ERROR_H
#include <stddef.h>

#define TP_ERROR_MAP(X)                                                    \
  X(OK, "success")                                                         \
  X(NOMEM, "out of memory")                                                \
  X(INVAL, "invalid argument")                                             \
  X(CONFIG, "invalid configuration")                                       \
  X(IO, "input/output error")                                              \
  X(TOOBIG, "data exceeds the configured limit")                           \
  X(DECODE, "malformed protobuf")                                          \
  X(VALIDATE, "message failed validation")                                 \
  X(TLS, "TLS library error")                                              \
  X(LOOP, "event loop error")                                              \
  X(HTTP, "HTTP error")                                                    \
  X(STORE, "storage error")                                                \
  X(FULL, "queue is full")                                                 \
  X(NOTFOUND, "not found")

typedef enum {
#define TP_ERROR_ENUM(name, msg) TP_E_##name,
  TP_ERROR_MAP(TP_ERROR_ENUM)
#undef TP_ERROR_ENUM
  TP_E__COUNT
} tp_err;

/* "TP_E_NOMEM" style name; "TP_E_?" for out-of-range values. */
const char *tp_err_name(tp_err err);
/* Human-readable message; never NULL. */
const char *tp_strerror(tp_err err);
/* The text of an errno value, safe on any thread (strerror() is not: probes
 * run on worker threads). Returns buf or a static string. */
const char *tp_errno_text(int errnum, char *buf, size_t len);

#endif
