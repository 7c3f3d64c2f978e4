/* config.h - the collector's YAML configuration (collector.yaml):
 *
 *   listen: 127.0.0.1:8470      # numeric address:port, [v6]:port; port 0..65535, 0 = any free port
 *   database: ./tlsprobe.db     # SQLite file (1..4096 bytes) in an existing directory,
 *                               # created and migrated on start
 *   max_body_bytes: 4194304     # optional, 1024..268435456, default 4 MiB; larger bodies get 413
 *   log_level: info             # optional: debug, info, warn, error
 *
 * Unknown keys are errors. Every error message is "file:line:col: what is wrong". */
#ifndef TP_COLLECTOR_CONFIG_H
#define TP_COLLECTOR_CONFIG_H
#include <stddef.h>

#include "listen_addr.h"
#include "tp_error.h"
#include "tp_log.h"

#define TP_COLLECTOR_DEFAULT_MAX_BODY ((size_t)4 * 1024 * 1024)
/* Lower bound for max_body_bytes: below it not even a one-result batch with a
 * certificate chain fits, and every push would get 413. */
#define TP_COLLECTOR_MIN_MAX_BODY ((size_t)1024)
/* database: a path of at most this many bytes (PATH_MAX on Linux). */
#define TP_COLLECTOR_MAX_DB_PATH 4096
/* Upper bound for max_body_bytes: a batch is decoded in memory in one piece. */
#define TP_COLLECTOR_MAX_MAX_BODY ((size_t)256 * 1024 * 1024)

/* Validated configuration; fields are read-only for users. */
typedef struct tp_collector_config {
  tp_listen_addr listen;
  char *database; /* owned */
  size_t max_body_bytes;
  tp_log_level log_level;
} tp_collector_config;

/* Loads and validates `path`. On success *out is a new config (free with
 * tp_collector_config_free). On failure returns TP_E_CONFIG or TP_E_IO and writes
 * "file:line:col: message" (or "file: message") into err. */
tp_err tp_collector_config_load(const char *path, tp_collector_config **out, char *err,
                                size_t errlen);
void tp_collector_config_free(tp_collector_config *config);

#endif
