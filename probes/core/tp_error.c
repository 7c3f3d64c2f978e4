/* tp_error.c - names and messages for tp_err, generated from TP_ERROR_MAP. */
#include "tp_error.h"

#include <string.h>

const char *tp_err_name(tp_err err) {
  switch (err) {
#define TP_ERROR_NAME(name, msg) \
  case TP_E_##name:              \
    return "TP_E_" #name;
    TP_ERROR_MAP(TP_ERROR_NAME)
#undef TP_ERROR_NAME
  case TP_E__COUNT:
    break;
  }
  return "TP_E_?";
}

const char *tp_strerror(tp_err err) {
  switch (err) {
#define TP_ERROR_MSG(name, msg) \
  case TP_E_##name:             \
    return msg;
    TP_ERROR_MAP(TP_ERROR_MSG)
#undef TP_ERROR_MSG
  case TP_E__COUNT:
    break;
  }
  return "unknown error";
}

const char *tp_errno_text(int errnum, char *buf, size_t len) {
  /* _GNU_SOURCE (set for the whole build): the GNU strerror_r, which returns
   * either buf or a static string and never fails. */
  return strerror_r(errnum, buf, len);
}
