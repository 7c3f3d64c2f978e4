/* tp_duration.h - parses human durations used in configs and CLIs:
 * "250ms", "5s", "2m", "1h", "7d" (one integer + one unit). */
#ifndef TP_DURATION_H
#define TP_DURATION_H
#include <stdint.h>

#include "tp_error.h"

/* On success stores milliseconds in *out_ms. TP_E_INVAL for anything else
 * (missing unit, negative, overflow, trailing garbage). */
tp_err tp_duration_parse_ms(const char *text, uint64_t *out_ms);

#endif
