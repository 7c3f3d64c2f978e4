/* tp_log.c - one formatted line per event; a single fprintf keeps lines whole. */
#include "tp_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *level_name(tp_log_level level) {
  switch (level) {
  case TP_LOG_DEBUG:
    return "debug";
  case TP_LOG_INFO:
    return "info";
  case TP_LOG_WARN:
    return "warn";
  case TP_LOG_ERROR:
    return "error";
  }
  return "?";
}

int tp_log_level_parse(const char *s, tp_log_level *out) {
  static const tp_log_level levels[] = {TP_LOG_DEBUG, TP_LOG_INFO, TP_LOG_WARN, TP_LOG_ERROR};
  for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
    if (strcmp(s, level_name(levels[i])) == 0) {
      *out = levels[i];
      return 0;
    }
  }
  return -1;
}

void tp_log_write(const tp_log *log, tp_log_level level, const char *msg, const char *fmt, ...) {
  tp_log_level min = log ? log->min_level : TP_LOG_INFO;
  if (level < min)
    return;
  struct timespec now;
  struct tm tm;
  char stamp[64] = "?";
  if (clock_gettime(CLOCK_REALTIME, &now) == 0 && gmtime_r(&now.tv_sec, &tm) != NULL)
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
  char tail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tail, sizeof(tail), fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s level=%s comp=%s msg=\"%s\"%s%s\n", stamp, level_name(level),
          log && log->component ? log->component : "tlsprobe", msg, tail[0] ? " " : "", tail);
}
