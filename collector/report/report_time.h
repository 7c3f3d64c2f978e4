/* report_time.h - the report's window from the command line: --since and --until
 * each a duration ("30m", "7d": back from --until, or from now for --until) or an
 * RFC 3339 time ("2026-12-01T10:00:00Z", "2026-12-01T11:00:00.5+01:00"). */
#ifndef TP_REPORT_TIME_H
#define TP_REPORT_TIME_H
#include <stddef.h>
#include <stdint.h>

#include "tp_duration.h"
#include "tp_error.h"

/* RFC 3339 date-time (section 5.6; 'T' or ' ' between date and time, 'Z' or an
 * offset required) -> Unix ns. TP_E_INVAL for anything else. */
tp_err tp_report_parse_rfc3339(const char *text, int64_t *out_ns);

/* [since, until) from the texts (until NULL = now). TP_E_INVAL with a message
 * naming the option when a text is neither form or the window is empty. */
tp_err tp_report_window(const char *since, const char *until, int64_t now_ns, int64_t *since_ns,
                        int64_t *until_ns, char *err, size_t errlen);

#endif
