/* config.c - collector.yaml: libcyaml does the syntax and the key set (unknown or
 * missing keys), this file checks values and converts them into the validated
 * tp_collector_config. Semantic errors are positioned with tp_yaml_error_at.
 * Checks run in the order of the file's keys, so the first problem in the file is
 * the one reported; the cross-key rules (how agents get in, TLS or plaintext) last. */
#include "config.h"

#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tp_duration.h"
#include "tp_mem.h"
#include "tp_yaml.h"

/* Shape of the file exactly as libcyaml loads it (owned by libcyaml). */
typedef struct raw_tls {
  char *cert_file, *key_file, *client_ca_file, *client_crl_file;
} raw_tls;

typedef struct raw_auth {
  char *tokens_file;
  bool *allow_unauthenticated;
} raw_auth;

typedef struct raw_limits {
  unsigned long long *max_connections, *max_connections_per_ip, *max_buffered_bytes;
  unsigned long long *agent_requests_per_second, *agent_burst;
  char *connection_timeout, *header_timeout, *request_timeout;
} raw_limits;

typedef struct raw_objective {
  char *target; /* glob; absent in the default objective */
  char *success, *p99;
  unsigned long long *quorum;
} raw_objective;

typedef struct raw_slo {
  char *success, *p99;
  unsigned long long *quorum;
  raw_objective *targets;
  unsigned targets_count;
} raw_slo;
typedef struct raw_metrics {
  char *listen;
  unsigned long long *max_series;
} raw_metrics;

typedef struct raw_retention {
  char *raw, *rollups, *interval;
} raw_retention;

typedef struct raw_config {
  char *listen;
  char *database;
  unsigned long long *max_body_bytes; /* NULL when absent */
  char *log_level;                    /* NULL when absent */
  bool *insecure_plaintext;
  raw_tls *tls;
  raw_auth *auth;
  char *max_result_age, *max_clock_skew;
  raw_limits *limits;
  raw_slo *slo;
  raw_metrics *metrics;
  raw_retention *retention;
} raw_config;

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define PATH_FIELD(key, type, member)                                                              \
  CYAML_FIELD_STRING_PTR(key, OPT, type, member, 1, TP_COLLECTOR_MAX_PATH)

static const cyaml_schema_field_t tls_fields[] = {
    CYAML_FIELD_STRING_PTR("cert_file", CYAML_FLAG_POINTER, raw_tls, cert_file, 1,
                           TP_COLLECTOR_MAX_PATH),
    CYAML_FIELD_STRING_PTR("key_file", CYAML_FLAG_POINTER, raw_tls, key_file, 1,
                           TP_COLLECTOR_MAX_PATH),
    PATH_FIELD("client_ca_file", raw_tls, client_ca_file),
    PATH_FIELD("client_crl_file", raw_tls, client_crl_file),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t auth_fields[] = {
    PATH_FIELD("tokens_file", raw_auth, tokens_file),
    TP_YAML_FIELD_BOOL_PTR("allow_unauthenticated", OPT, raw_auth, allow_unauthenticated),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t limits_fields[] = {
    CYAML_FIELD_UINT_PTR("max_connections", OPT, raw_limits, max_connections),
    CYAML_FIELD_UINT_PTR("max_connections_per_ip", OPT, raw_limits, max_connections_per_ip),
    CYAML_FIELD_STRING_PTR("connection_timeout", OPT, raw_limits, connection_timeout, 1, 32),
    CYAML_FIELD_STRING_PTR("header_timeout", OPT, raw_limits, header_timeout, 1, 32),
    CYAML_FIELD_STRING_PTR("request_timeout", OPT, raw_limits, request_timeout, 1, 32),
    CYAML_FIELD_UINT_PTR("max_buffered_bytes", OPT, raw_limits, max_buffered_bytes),
    CYAML_FIELD_UINT_PTR("agent_requests_per_second", OPT, raw_limits, agent_requests_per_second),
    CYAML_FIELD_UINT_PTR("agent_burst", OPT, raw_limits, agent_burst),
    CYAML_FIELD_END,
};

#define OBJECTIVE_FIELDS(type)                                                                 \
  CYAML_FIELD_STRING_PTR("success", OPT, type, success, 1, 32),                               \
      CYAML_FIELD_STRING_PTR("p99", OPT, type, p99, 1, 32),                                   \
      CYAML_FIELD_UINT_PTR("quorum", OPT, type, quorum)

static const cyaml_schema_field_t objective_fields[] = {
    CYAML_FIELD_STRING_PTR("target", CYAML_FLAG_POINTER, raw_objective, target, 1, 256),
    OBJECTIVE_FIELDS(raw_objective),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t objective_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_objective, objective_fields),
};

static const cyaml_schema_field_t slo_fields[] = {
    OBJECTIVE_FIELDS(raw_slo),
    CYAML_FIELD_SEQUENCE("targets", OPT, raw_slo, targets, &objective_entry, 0,
                         TP_COLLECTOR_MAX_OBJECTIVES),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t metrics_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER, raw_metrics, listen, 1, 300),
    CYAML_FIELD_UINT_PTR("max_series", OPT, raw_metrics, max_series),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t retention_fields[] = {
    CYAML_FIELD_STRING_PTR("raw", OPT, raw_retention, raw, 1, 32),
    CYAML_FIELD_STRING_PTR("rollups", OPT, raw_retention, rollups, 1, 32),
    CYAML_FIELD_STRING_PTR("interval", OPT, raw_retention, interval, 1, 32),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t raw_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER, raw_config, listen, 1, 300),
    CYAML_FIELD_STRING_PTR("database", CYAML_FLAG_POINTER, raw_config, database, 1, 65536),
    CYAML_FIELD_UINT_PTR("max_body_bytes", OPT, raw_config, max_body_bytes),
    CYAML_FIELD_STRING_PTR("log_level", OPT, raw_config, log_level, 1, 16),
    TP_YAML_FIELD_BOOL_PTR("insecure_plaintext", OPT, raw_config, insecure_plaintext),
    CYAML_FIELD_MAPPING_PTR("tls", OPT, raw_config, tls, tls_fields),
    CYAML_FIELD_MAPPING_PTR("auth", OPT, raw_config, auth, auth_fields),
    CYAML_FIELD_STRING_PTR("max_result_age", OPT, raw_config, max_result_age, 1, 32),
    CYAML_FIELD_STRING_PTR("max_clock_skew", OPT, raw_config, max_clock_skew, 1, 32),
    CYAML_FIELD_MAPPING_PTR("limits", OPT, raw_config, limits, limits_fields),
    CYAML_FIELD_MAPPING_PTR("slo", OPT, raw_config, slo, slo_fields),
    CYAML_FIELD_MAPPING_PTR("metrics", OPT, raw_config, metrics, metrics_fields),
    CYAML_FIELD_MAPPING_PTR("retention", OPT, raw_config, retention, retention_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t raw_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_config, raw_fields),
};

/* "/a/b.db" -> does "/a" exist as a directory? A file the collector creates (the
 * database, the tokens file) needs its directory; saying so here lets --check catch
 * what serve would fail on. Relative paths are relative to the working directory. */
static tp_err check_parent_dir(const char *path, const char *node, const char *label,
                               const char *file, char *err, size_t errlen) {
  struct stat st;
  char *dir = tp_xstrdup(file);
  char *slash = strrchr(dir, '/');
  tp_err rc = TP_E_OK;
  if (slash != NULL) {
    slash[slash == dir ? 1 : 0] = '\0'; /* "/x.db" -> "/" */
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
      tp_yaml_error_at(err, errlen, path, node,
                       "%s: directory \"%s\" does not exist (allowed: a file in an existing "
                       "directory; it is created on start)",
                       label, dir);
      rc = TP_E_CONFIG;
    }
  }
  free(dir);
  return rc;
}

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
  return check_parent_dir(path, "database", "database", db, err, errlen);
}

/* A file the collector reads at start (certificate, key, CA): it must be a readable
 * regular file now, or serve would fail later with a less precise message. */
static tp_err check_readable(const char *path, const char *node, const char *file, char *err,
                             size_t errlen) {
  struct stat st;
  if (stat(file, &st) != 0 || !S_ISREG(st.st_mode) || access(file, R_OK) != 0) {
    tp_yaml_error_at(err, errlen, path, node, "%s: \"%s\" is not a readable file", node, file);
    return TP_E_CONFIG;
  }
  return TP_E_OK;
}

static tp_err uint_field(const char *path, const char *node, const unsigned long long *raw,
                         unsigned long long lo, unsigned long long hi, unsigned long long fallback,
                         unsigned long long *out, char *err, size_t errlen) {
  *out = fallback;
  if (raw == NULL)
    return TP_E_OK;
  if (*raw < lo || *raw > hi) {
    tp_yaml_error_at(err, errlen, path, node, "%s: %llu is out of range (allowed: %llu..%llu)",
                     node, *raw, lo, hi);
    return TP_E_CONFIG;
  }
  *out = *raw;
  return TP_E_OK;
}

static tp_err duration_field(const char *path, const char *node, const char *text, uint64_t lo_ms,
                             uint64_t hi_ms, const char *range, uint64_t fallback, uint64_t *out,
                             char *err, size_t errlen) {
  *out = fallback;
  if (text == NULL)
    return TP_E_OK;
  uint64_t ms;
  if (tp_duration_parse_ms(text, &ms) != TP_E_OK) {
    tp_yaml_error_at(err, errlen, path, node,
                     "%s: \"%.32s\" is not a duration (an integer and a unit: 500ms, 5s, 2m, 1h, "
                     "7d; allowed: %s)",
                     node, text, range);
    return TP_E_CONFIG;
  }
  if (ms < lo_ms || ms > hi_ms) {
    tp_yaml_error_at(err, errlen, path, node, "%s: %s is too %s (allowed: %s)", node, text,
                     ms < lo_ms ? "short" : "long", range);
    return TP_E_CONFIG;
  }
  *out = ms;
  return TP_E_OK;
}

static tp_err convert_tls(const char *path, const raw_tls *raw, tp_collector_tls *tls, char *err,
                          size_t errlen) {
  tp_err rc = check_readable(path, "tls.cert_file", raw->cert_file, err, errlen);
  if (rc == TP_E_OK)
    rc = check_readable(path, "tls.key_file", raw->key_file, err, errlen);
  if (rc == TP_E_OK && raw->client_ca_file != NULL)
    rc = check_readable(path, "tls.client_ca_file", raw->client_ca_file, err, errlen);
  if (rc == TP_E_OK && raw->client_crl_file != NULL) {
    if (raw->client_ca_file == NULL) {
      tp_yaml_error_at(err, errlen, path, "tls.client_crl_file",
                       "tls.client_crl_file: a CRL needs tls.client_ca_file (the CA it revokes "
                       "certificates of)");
      return TP_E_CONFIG;
    }
    rc = check_readable(path, "tls.client_crl_file", raw->client_crl_file, err, errlen);
  }
  if (rc != TP_E_OK)
    return rc;
  tls->cert_file = tp_xstrdup(raw->cert_file);
  tls->key_file = tp_xstrdup(raw->key_file);
  tls->client_ca_file = tp_xstrdup_or_null(raw->client_ca_file);
  tls->client_crl_file = tp_xstrdup_or_null(raw->client_crl_file);
  return TP_E_OK;
}

static tp_err convert_limits(const char *path, const raw_limits *raw, tp_collector_config *cfg,
                             char *err, size_t errlen) {
  static const raw_limits none = {0};
  tp_collector_limits *l = &cfg->limits;
  unsigned long long v;
  uint64_t ms = 0;
  if (raw == NULL)
    raw = &none;
  tp_err rc = uint_field(path, "limits.max_connections", raw->max_connections, 1, 4096,
                         TP_COLLECTOR_DEFAULT_MAX_CONNECTIONS, &v, err, errlen);
  l->max_connections = (unsigned)v;
  if (rc == TP_E_OK)
    rc = uint_field(path, "limits.max_connections_per_ip", raw->max_connections_per_ip, 1,
                    l->max_connections,
                    TP_COLLECTOR_DEFAULT_MAX_PER_IP < l->max_connections
                        ? TP_COLLECTOR_DEFAULT_MAX_PER_IP
                        : l->max_connections,
                    &v, err, errlen);
  l->max_connections_per_ip = (unsigned)v;
  /* MHD counts its idle timeout in whole seconds. */
  if (rc == TP_E_OK)
    rc = duration_field(path, "limits.connection_timeout", raw->connection_timeout, 1000, 600000,
                        "1s..10m", TP_COLLECTOR_DEFAULT_CONNECTION_TIMEOUT_S * 1000, &ms, err,
                        errlen);
  l->connection_timeout_s = (unsigned)((ms + 999) / 1000);
  if (rc == TP_E_OK)
    rc = duration_field(path, "limits.header_timeout", raw->header_timeout, 1000, 600000,
                        "1s..10m", TP_COLLECTOR_DEFAULT_HEADER_TIMEOUT_MS, &l->header_timeout_ms,
                        err, errlen);
  if (rc == TP_E_OK)
    rc = duration_field(path, "limits.request_timeout", raw->request_timeout, l->header_timeout_ms,
                        3600000, "limits.header_timeout..1h",
                        l->header_timeout_ms > TP_COLLECTOR_DEFAULT_REQUEST_TIMEOUT_MS
                            ? l->header_timeout_ms
                            : TP_COLLECTOR_DEFAULT_REQUEST_TIMEOUT_MS,
                        &l->request_timeout_ms, err, errlen);
  if (rc == TP_E_OK) {
    uint64_t dflt = TP_COLLECTOR_DEFAULT_MAX_BUFFERED > cfg->max_body_bytes
                        ? TP_COLLECTOR_DEFAULT_MAX_BUFFERED
                        : cfg->max_body_bytes;
    rc = uint_field(path, "limits.max_buffered_bytes", raw->max_buffered_bytes,
                    cfg->max_body_bytes, (unsigned long long)4 << 30, dflt, &v, err, errlen);
    l->max_buffered_bytes = v;
  }
  if (rc == TP_E_OK)
    rc = uint_field(path, "limits.agent_requests_per_second", raw->agent_requests_per_second, 1,
                    100000, TP_COLLECTOR_DEFAULT_AGENT_RATE, &v, err, errlen);
  l->agent_rate = (unsigned)v;
  if (rc == TP_E_OK)
    rc = uint_field(path, "limits.agent_burst", raw->agent_burst, 1, 1000000,
                    TP_COLLECTOR_DEFAULT_AGENT_BURST, &v, err, errlen);
  l->agent_burst = (unsigned)v;
  return rc;
}

/* metrics: the scrape listener, off when the section is absent. It must not be the
 * ingest listener's address: that one speaks HTTPS with agent credentials. */
static tp_err convert_metrics(const char *path, const raw_metrics *raw, tp_collector_config *cfg,
                              char *err, size_t errlen) {
  char why[256];
  tp_collector_metrics *m = &cfg->metrics;
  m->max_series = TP_METRICS_DEFAULT_MAX_SERIES;
  if (raw == NULL)
    return TP_E_OK;
  if (tp_listen_addr_parse(raw->listen, &m->listen, why, sizeof(why)) != TP_E_OK) {
    tp_yaml_error_at(err, errlen, path, "metrics.listen", "metrics.listen: %s", why);
    return TP_E_CONFIG;
  }
  if (m->listen.port != 0 && m->listen.port == cfg->listen.port &&
      m->listen.ss.ss_family == cfg->listen.ss.ss_family &&
      strcmp(m->listen.host, cfg->listen.host) == 0) {
    tp_yaml_error_at(err, errlen, path, "metrics.listen",
                     "metrics.listen: %s:%u is the ingest listener's address (allowed: another "
                     "port, e.g. 127.0.0.1:9464)",
                     m->listen.host, m->listen.port);
    return TP_E_CONFIG;
  }
  unsigned long long v;
  tp_err rc = uint_field(path, "metrics.max_series", raw->max_series, TP_METRICS_MIN_MAX_SERIES,
                         TP_METRICS_MAX_MAX_SERIES, TP_METRICS_DEFAULT_MAX_SERIES, &v, err, errlen);
  m->max_series = (size_t)v;
  m->enabled = rc == TP_E_OK;
  return rc;
}

#define MAX_RETENTION_MS ((uint64_t)3650 * 24 * 3600 * 1000)

/* retention: raw rows must outlive max_result_age -- ingest deduplicates a re-sent
 * result against the raw rows only, so one accepted after its first copy was deleted
 * would be stored and rolled up a second time -- and rollups, what remains of raw
 * rows once they are deleted, must outlive them. Defaults follow both rules. */
static tp_err convert_retention(const char *path, const raw_config *rc_raw,
                                tp_collector_config *cfg, char *err, size_t errlen) {
  static const raw_retention none = {0};
  const raw_retention *raw = rc_raw->retention ? rc_raw->retention : &none;
  tp_collector_retention *r = &cfg->retention;
  const char *age = rc_raw->max_result_age ? rc_raw->max_result_age : "7d";
  uint64_t dflt = TP_COLLECTOR_DEFAULT_RAW_RETENTION_MS > cfg->max_result_age_ms
                      ? TP_COLLECTOR_DEFAULT_RAW_RETENTION_MS
                      : cfg->max_result_age_ms;
  tp_err rc = duration_field(path, "retention.raw", raw->raw, 3600000, MAX_RETENTION_MS,
                             "1h..3650d, at least max_result_age", dflt, &r->raw_ms, err, errlen);
  if (rc == TP_E_OK && r->raw_ms < cfg->max_result_age_ms) {
    tp_yaml_error_at(err, errlen, path, "retention.raw",
                     "retention.raw: %s is shorter than max_result_age (%s): a result re-sent "
                     "after its raw row was deleted would be stored and counted again (allowed: "
                     "max_result_age..3650d)",
                     raw->raw, age);
    return TP_E_CONFIG;
  }
  dflt = TP_COLLECTOR_DEFAULT_ROLLUP_RETENTION_MS > r->raw_ms
             ? TP_COLLECTOR_DEFAULT_ROLLUP_RETENTION_MS
             : r->raw_ms;
  if (rc == TP_E_OK)
    rc = duration_field(path, "retention.rollups", raw->rollups, 3600000, MAX_RETENTION_MS,
                        "retention.raw..3650d", dflt, &r->rollups_ms, err, errlen);
  if (rc == TP_E_OK && r->rollups_ms < r->raw_ms) {
    tp_yaml_error_at(err, errlen, path, "retention.rollups",
                     "retention.rollups: %s is shorter than retention.raw (%s): rollups are what "
                     "is left of raw results once they are deleted (allowed: "
                     "retention.raw..3650d)",
                     raw->rollups, raw->raw ? raw->raw : "its default");
    return TP_E_CONFIG;
  }
  if (rc == TP_E_OK)
    rc = duration_field(path, "retention.interval", raw->interval, 1000, 3600000, "1s..1h",
                        TP_COLLECTOR_DEFAULT_MAINTENANCE_INTERVAL_MS, &r->interval_ms, err,
                        errlen);
  return rc;
}

/* The cross-key rules: how the listener is protected and how agents get in. A
 * collector that would accept anyone's results over plaintext must say so twice. */
static tp_err check_access(const char *path, const raw_config *raw, tp_collector_config *cfg,
                           char *err, size_t errlen) {
  bool plaintext = raw->insecure_plaintext != NULL && *raw->insecure_plaintext;
  if (raw->tls == NULL && !plaintext) {
    tp_yaml_error_at(err, errlen, path, "",
                     "no tls: section: the collector does not serve plain HTTP by default "
                     "(tokens and results would cross the network in clear); add tls: "
                     "{cert_file: ..., key_file: ...}, or set insecure_plaintext: true for a "
                     "test or a local demo");
    return TP_E_CONFIG;
  }
  if (raw->tls != NULL && plaintext) {
    tp_yaml_error_at(err, errlen, path, "insecure_plaintext",
                     "insecure_plaintext: true contradicts the tls: section (keep one of them)");
    return TP_E_CONFIG;
  }
  cfg->insecure_plaintext = plaintext;
  bool anyone = raw->auth != NULL && raw->auth->allow_unauthenticated != NULL &&
                *raw->auth->allow_unauthenticated;
  cfg->auth.allow_unauthenticated = anyone;
  if (cfg->auth.tokens_file == NULL && cfg->tls.client_ca_file == NULL && !anyone) {
    tp_yaml_error_at(err, errlen, path, raw->auth != NULL ? "auth" : "",
                     "no way for agents to authenticate: set auth.tokens_file (bearer tokens), "
                     "tls.client_ca_file (client certificates), or auth.allow_unauthenticated: "
                     "true to accept results from anyone who can reach the port");
    return TP_E_CONFIG;
  }
  return TP_E_OK;
}

/* "99.9" or "99.9%" -> 0.999; an objective of 100 % leaves no error budget to burn
 * and one below 50 % is a typo, not an objective. */
static tp_err success_field(const char *path, const char *node, const char *text, double fallback,
                           double *out, char *err, size_t errlen) {
  *out = fallback;
  if (text == NULL)
    return TP_E_OK;
  char *end = NULL;
  double v = strtod(text, &end);
  if (end != NULL && *end == '%')
    end++;
  if (end == text || end == NULL || *end != '\0' || !(v >= 50.0 && v < 100.0)) {
    tp_yaml_error_at(err, errlen, path, node,
                     "%s: \"%.32s\" is not a success objective in percent (50 <= x < 100,"
                     " e.g. 99.9)",
                     node, text);
    return TP_E_CONFIG;
  }
  *out = v / 100.0;
  return TP_E_OK;
}

static tp_err objective_values(const char *path, const char *prefix, const char *success,
                               const char *p99, const unsigned long long *quorum,
                               const tp_slo_objective *fallback, tp_slo_objective *out, char *err,
                               size_t errlen) {
  char node[96];
  snprintf(node, sizeof(node), "%ssuccess", prefix);
  tp_err rc = success_field(path, node, success, fallback->success, &out->success, err, errlen);
  if (rc == TP_E_OK) {
    snprintf(node, sizeof(node), "%sp99", prefix);
    rc = duration_field(path, node, p99, 1, 600000, "1ms..10m", fallback->p99_ms, &out->p99_ms,
                        err, errlen);
  }
  unsigned long long q = fallback->quorum;
  if (rc == TP_E_OK) {
    snprintf(node, sizeof(node), "%squorum", prefix);
    rc = uint_field(path, node, quorum, 1, 1000, fallback->quorum, &q, err, errlen);
  }
  out->quorum = (unsigned)q;
  return rc;
}

static tp_err convert_slo(const char *path, const raw_slo *raw, tp_collector_slo *slo, char *err,
                          size_t errlen) {
  const tp_slo_objective builtin = {.success = TP_SLO_DEFAULT_SUCCESS, .quorum = 1};
  slo->fallback = builtin;
  if (raw == NULL)
    return TP_E_OK;
  tp_err rc = objective_values(path, "slo.", raw->success, raw->p99, raw->quorum, &builtin,
                               &slo->fallback, err, errlen);
  if (rc != TP_E_OK || raw->targets_count == 0)
    return rc;
  slo->targets = tp_xcalloc(raw->targets_count, sizeof(slo->targets[0]));
  for (unsigned i = 0; rc == TP_E_OK && i < raw->targets_count; i++) {
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "slo.targets[%u].", i);
    rc = objective_values(path, prefix, raw->targets[i].success, raw->targets[i].p99,
                          raw->targets[i].quorum, &slo->fallback, &slo->targets[i], err, errlen);
    slo->targets[i].target = tp_xstrdup(raw->targets[i].target);
    slo->n_targets = i + 1;
  }
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
  cfg->database = tp_xstrdup(raw->database);
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
  if (raw->tls != NULL && convert_tls(path, raw->tls, &cfg->tls, err, errlen) != TP_E_OK)
    return TP_E_CONFIG;
  if (raw->auth != NULL && raw->auth->tokens_file != NULL) {
    if (check_parent_dir(path, "auth.tokens_file", "auth.tokens_file", raw->auth->tokens_file, err,
                         errlen) != TP_E_OK)
      return TP_E_CONFIG;
    cfg->auth.tokens_file = tp_xstrdup(raw->auth->tokens_file);
  }
  /* A result older than a day must still be accepted after a day's outage; below an
   * hour every agent restart after a short partition would lose its backlog. */
  tp_err rc = duration_field(path, "max_result_age", raw->max_result_age, 3600000,
                             (uint64_t)3650 * 24 * 3600 * 1000, "1h..3650d",
                             TP_COLLECTOR_DEFAULT_MAX_AGE_MS, &cfg->max_result_age_ms, err, errlen);
  if (rc == TP_E_OK)
    rc = duration_field(path, "max_clock_skew", raw->max_clock_skew, 0, 24 * 3600 * 1000,
                        "0s..1d", TP_COLLECTOR_DEFAULT_MAX_SKEW_MS, &cfg->max_clock_skew_ms, err,
                        errlen);
  if (rc == TP_E_OK)
    rc = convert_limits(path, raw->limits, cfg, err, errlen);
  if (rc == TP_E_OK)
    rc = convert_slo(path, raw->slo, &cfg->slo, err, errlen);
  if (rc == TP_E_OK)
    rc = convert_metrics(path, raw->metrics, cfg, err, errlen);
  if (rc == TP_E_OK)
    rc = convert_retention(path, raw, cfg, err, errlen);
  if (rc == TP_E_OK)
    rc = check_access(path, raw, cfg, err, errlen);
  return rc;
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

const tp_slo_objective *tp_collector_slo_objective(const tp_collector_slo *slo,
                                                   const char *target) {
  static const tp_slo_objective builtin = {.success = TP_SLO_DEFAULT_SUCCESS, .quorum = 1};
  if (slo == NULL)
    return &builtin;
  for (size_t i = 0; i < slo->n_targets; i++)
    if (fnmatch(slo->targets[i].target, target, 0) == 0)
      return &slo->targets[i];
  return &slo->fallback;
}

void tp_collector_config_free(tp_collector_config *config) {
  if (config == NULL)
    return;
  free(config->database);
  free(config->tls.cert_file);
  free(config->tls.key_file);
  free(config->tls.client_ca_file);
  free(config->tls.client_crl_file);
  free(config->auth.tokens_file);
  for (size_t i = 0; i < config->slo.n_targets; i++)
    free(config->slo.targets[i].target);
  free(config->slo.targets);
  free(config);
}
