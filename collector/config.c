/* config.c - collector.yaml: libcyaml does the syntax and the key set (unknown or
 * missing keys), this file checks values and converts them into the validated
 * tp_collector_config. Semantic errors are positioned with tp_yaml_error_at. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tp_mem.h"
#include "tp_yaml.h"

/* Shape of the file exactly as libcyaml loads it (owned by libcyaml). */
typedef struct raw_config {
  char *listen;
  char *database;
  unsigned long long *max_body_bytes; /* NULL when absent */
  char *log_level;                    /* NULL when absent */
} raw_config;

static const cyaml_schema_field_t raw_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER, raw_config, listen, 1, 300),
    CYAML_FIELD_STRING_PTR("database", CYAML_FLAG_POINTER, raw_config, database, 1, 65536),
    CYAML_FIELD_UINT_PTR("max_body_bytes", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, raw_config,
                         max_body_bytes),
    CYAML_FIELD_STRING_PTR("log_level", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, raw_config,
                           log_level, 1, 16),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t raw_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_config, raw_fields),
};

/* The database file: SQLite creates it on start but not its directory, and
 * cannot open a directory; saying so here lets --check catch what serve would
 * fail on. Relative paths are relative to the working directory, as for SQLite. */
static tp_err check_database(const char *path, const char *db, char *err, size_t errlen) {
  struct stat st;
  size_t n = strlen(db);
  if (n > TP_COLLECTOR_MAX_DB_PATH || db[n - 1] == '/') {
    tp_yaml_error_at(err, errlen, path, "database",
                     "database: \"%.64s%s\" is not a file name (allowed: a file path of 1..%d "
                     "bytes, not ending in '/')",
                     db, n > 64 ? "..." : "", TP_COLLECTOR_MAX_DB_PATH);
    return TP_E_CONFIG;
  }
  if (stat(db, &st) == 0 && S_ISDIR(st.st_mode)) {
    tp_yaml_error_at(err, errlen, path, "database",
                     "database: \"%s\" is a directory (allowed: a file, e.g. %s/tlsprobe.db)", db,
                     db);
    return TP_E_CONFIG;
  }
  char *dir = tp_xstrdup(db);
  char *slash = strrchr(dir, '/');
  tp_err rc = TP_E_OK;
  if (slash != NULL) {
    slash[slash == dir ? 1 : 0] = '\0'; /* "/x.db" -> "/" */
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
      tp_yaml_error_at(err, errlen, path, "database",
                       "database: directory \"%s\" does not exist (allowed: a file in an existing "
                       "directory; it is created on start)",
                       dir);
      rc = TP_E_CONFIG;
    }
  }
  free(dir);
  return rc;
}

/* Converts raw into cfg; on failure writes a positioned message into err. */
static tp_err convert(const char *path, const raw_config *raw, tp_collector_config *cfg, char *err,
                      size_t errlen) {
  char why[256];
  if (tp_listen_addr_parse(raw->listen, &cfg->listen, why, sizeof(why)) != TP_E_OK) {
    tp_yaml_error_at(err, errlen, path, "listen", "listen: %s", why);
    return TP_E_CONFIG;
  }
  if (check_database(path, raw->database, err, errlen) != TP_E_OK)
    return TP_E_CONFIG;
  cfg->max_body_bytes = TP_COLLECTOR_DEFAULT_MAX_BODY;
  if (raw->max_body_bytes != NULL) {
    if (*raw->max_body_bytes < TP_COLLECTOR_MIN_MAX_BODY ||
        *raw->max_body_bytes > TP_COLLECTOR_MAX_MAX_BODY) {
      tp_yaml_error_at(err, errlen, path, "max_body_bytes",
                       "max_body_bytes: %llu is out of range (allowed: %zu..%zu bytes)",
                       *raw->max_body_bytes, TP_COLLECTOR_MIN_MAX_BODY, TP_COLLECTOR_MAX_MAX_BODY);
      return TP_E_CONFIG;
    }
    cfg->max_body_bytes = (size_t)*raw->max_body_bytes;
  }
  cfg->log_level = TP_LOG_INFO;
  if (raw->log_level != NULL && tp_log_level_parse(raw->log_level, &cfg->log_level) != 0) {
    tp_yaml_error_at(err, errlen, path, "log_level",
                     "log_level: unknown level \"%s\" (allowed: debug, info, warn, error)",
                     raw->log_level);
    return TP_E_CONFIG;
  }
  cfg->database = tp_xstrdup(raw->database);
  return TP_E_OK;
}

tp_err tp_collector_config_load(const char *path, tp_collector_config **out, char *err,
                                size_t errlen) {
  raw_config *raw = NULL;
  tp_collector_config *cfg = NULL;
  *out = NULL;
  tp_err rc = tp_yaml_load(path, &raw_schema, (void **)&raw, err, errlen);
  if (rc != TP_E_OK)
    goto out;
  cfg = tp_xcalloc(1, sizeof(*cfg));
  rc = convert(path, raw, cfg, err, errlen);
  if (rc != TP_E_OK)
    goto out;
  *out = cfg;
  cfg = NULL;
out:
  tp_collector_config_free(cfg);
  tp_yaml_free(&raw_schema, raw);
  return rc;
}

void tp_collector_config_free(tp_collector_config *config) {
  if (config == NULL)
    return;
  free(config->database);
  free(config);
}
