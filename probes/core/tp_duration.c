/* tp_duration.c - "<integer><unit>" parsing without atoi/strtol pitfalls. */
#include "tp_duration.h"

#include <string.h>

tp_err tp_duration_parse_ms(const char *text, uint64_t *out_ms) {
  static const struct {
    const char *unit;
    uint64_t ms;
  } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
  if (text == NULL)
    return TP_E_INVAL;
  uint64_t value = 0;
  const char *p = text;
  if (*p < '0' || *p > '9')
    return TP_E_INVAL;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (value > (UINT64_MAX - 9) / 10)
      return TP_E_INVAL;
    value = value * 10 + (uint64_t)(*p - '0');
  }
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (strcmp(p, units[i].unit) == 0) {
      if (value > UINT64_MAX / units[i].ms)
        return TP_E_INVAL;
      *out_ms = value * units[i].ms;
      return TP_E_OK;
    }
  }
  return TP_E_INVAL;
}
