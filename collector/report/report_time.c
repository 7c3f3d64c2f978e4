/* report_time.c - see report_time.h. */
#include "report_time.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000LL

/* Exactly n digits at *p into *out; advances p. */
static bool digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i]))
      return false;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return true;
}

static bool expect(const char **p, const char *any_of) {
  if (**p == '\0' || strchr(any_of, **p) == NULL)
    return false;
  (*p)++;
  return true;
}

static bool valid_date(int y, int mo, int d) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1)
    return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= days[mo - 1] + (mo == 2 && leap);
}

tp_err tp_report_parse_rfc3339(const char *text, int64_t *out_ns) {
  const char *p = text;
  int y, mo, d, h, mi, s;
  if (!digits(&p, 4, &y) || !expect(&p, "-") || !digits(&p, 2, &mo) || !expect(&p, "-") ||
      !digits(&p, 2, &d) || !expect(&p, "Tt ") || !digits(&p, 2, &h) || !expect(&p, ":") ||
      !digits(&p, 2, &mi) || !expect(&p, ":") || !digits(&p, 2, &s))
    return TP_E_INVAL;
  if (!valid_date(y, mo, d) || h > 23 || mi > 59 || s > 60 || y < 1970)
    return TP_E_INVAL;
  int64_t frac_ns = 0;
  if (*p == '.') {
    p++;
    int n = 0;
    for (; isdigit((unsigned char)*p); p++, n++)
      if (n < 9)
        frac_ns = frac_ns * 10 + (*p - '0');
    if (n == 0)
      return TP_E_INVAL;
    for (; n < 9; n++)
      frac_ns *= 10;
  }
  int offset_s = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p == '-' ? -1 : 1, oh, om;
    p++;
    if (!digits(&p, 2, &oh) || !expect(&p, ":") || !digits(&p, 2, &om) || oh > 23 || om > 59)
      return TP_E_INVAL;
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return TP_E_INVAL;
  }
  if (*p != '\0')
    return TP_E_INVAL;
  struct tm tm = {.tm_year = y - 1900,
                  .tm_mon = mo - 1,
                  .tm_mday = d,
                  .tm_hour = h,
                  .tm_min = mi,
                  .tm_sec = s == 60 ? 59 : s}; /* a leap second reads as :59 */
  time_t t = timegm(&tm);
  if (t == (time_t)-1)
    return TP_E_INVAL;
  *out_ns = ((int64_t)t - offset_s) * NS_PER_S + frac_ns;
  return TP_E_OK;
}

/* A duration back from `from`, or an absolute time. */
static tp_err point(const char *text, int64_t from_ns, int64_t *out_ns) {
  uint64_t ms;
  if (tp_duration_parse_ms(text, &ms) == TP_E_OK) {
    /* Further back than the epoch simply means "from the beginning". */
    *out_ns = ms > (uint64_t)(from_ns / 1000000) ? 0 : from_ns - (int64_t)ms * 1000000;
    return TP_E_OK;
  }
  return tp_report_parse_rfc3339(text, out_ns);
}

tp_err tp_report_window(const char *since, const char *until, int64_t now_ns, int64_t *since_ns,
                        int64_t *until_ns, char *err, size_t errlen) {
  *until_ns = now_ns;
  if (until != NULL && point(until, now_ns, until_ns) != TP_E_OK) {
    snprintf(err, errlen,
             "--until \"%s\" is neither a duration like 30m, 1h, 7d nor an RFC 3339 time like"
             " 2026-12-01T10:00:00Z",
             until);
    return TP_E_INVAL;
  }
  if (point(since, *until_ns, since_ns) != TP_E_OK) {
    snprintf(err, errlen,
             "--since \"%s\" is neither a duration like 30m, 1h, 7d nor an RFC 3339 time like"
             " 2026-12-01T10:00:00Z",
             since);
    return TP_E_INVAL;
  }
  if (*since_ns >= *until_ns) {
    snprintf(err, errlen, "the window is empty: --since \"%s\" is not before --until \"%s\"", since,
             until ? until : "now");
    return TP_E_INVAL;
  }
  return TP_E_OK;
}
