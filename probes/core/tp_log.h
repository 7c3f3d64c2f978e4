/* tp_log.h - structured log lines on stderr:
 *   2026-11-23T08:30:01.123Z level=info comp=agent msg="pushed batch" seq=4 results=100
 * The level threshold lives in a tp_log object owned by main and passed to the
 * components that log (no hidden global). A NULL logger logs at "info". */
#ifndef TP_LOG_H
#define TP_LOG_H

typedef enum { TP_LOG_DEBUG, TP_LOG_INFO, TP_LOG_WARN, TP_LOG_ERROR } tp_log_level;

typedef struct tp_log {
  tp_log_level min_level;
  const char *component; /* "agent", "collector" */
} tp_log;

/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int tp_log_level_parse(const char *s, tp_log_level *out);
/* fmt produces the key=value tail after msg; pass "" for none. */
void tp_log_write(const tp_log *log, tp_log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define tp_log_debug(log, msg, ...) tp_log_write((log), TP_LOG_DEBUG, (msg), __VA_ARGS__)
#define tp_log_info(log, msg, ...) tp_log_write((log), TP_LOG_INFO, (msg), __VA_ARGS__)
#define tp_log_warn(log, msg, ...) tp_log_write((log), TP_LOG_WARN, (msg), __VA_ARGS__)
#define tp_log_error(log, msg, ...) tp_log_write((log), TP_LOG_ERROR, (msg), __VA_ARGS__)

#endif
