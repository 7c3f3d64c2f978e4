/* config.h - the collector's YAML configuration (collector.yaml):
 *
 *   listen: 127.0.0.1:8470      # numeric address:port, [v6]:port; port 0..65535, 0 = any free port
 *   database: ./tlsprobe.db     # SQLite file (1..4096 bytes) in an existing directory,
 *                               # created and migrated on start
 *   max_body_bytes: 4194304     # optional, 1024..67108864, default 4 MiB; larger bodies get 413
 *   log_level: info             # optional: debug, info, warn, error
 *   tls:                        # HTTPS (TLS 1.2+, AEAD suites); required unless
 *     cert_file: server.pem     #   insecure_plaintext: true. PEM chain, leaf first
 *     key_file: server.key      #   PEM private key, unencrypted; warned about if group/other-readable
 *     client_ca_file: ca.pem    #   optional: agents may authenticate with a certificate from this CA
 *     client_crl_file: ca.crl   #   optional, with client_ca_file: revoked agent certificates
 *   insecure_plaintext: false   # true = plain HTTP without tls: (tests, a local demo)
 *   auth:
 *     tokens_file: tokens.yaml  # bearer-token hashes (tlsprobe-collector agents add|list|revoke)
 *     allow_unauthenticated: false  # true = a request without credentials may push as anyone
 *   max_result_age: 7d          # results/drops started longer ago are refused (1h..3650d)
 *   max_clock_skew: 5m          # ... or further in the future than this (0s..1d)
 *   limits:
 *     max_connections: 256      # 1..4096
 *     max_connections_per_ip: 32  # 1..max_connections
 *     connection_timeout: 10s   # idle connection closed after (1s..10m, whole seconds)
 *     header_timeout: 10s       # request head complete within (1s..10m) of connect / last reply
 *     request_timeout: 60s      # whole request within (header_timeout..1h)
 *     max_buffered_bytes: 67108864  # request bodies held at once, all connections (max_body_bytes..4 GiB)
 *     agent_requests_per_second: 100 # per agent (or per address when unauthenticated), 1..100000
 *     agent_burst: 200          # requests above the rate an agent may send at once, 1..1000000
 *   slo:                        # objectives for `report` (burn-rate alerts, report --check)
 *     success: 99.9             # percent of probes that succeed, 50 <= x < 100 (default 99.9)
 *     p99: 200ms                # optional: 99 % of successful handshakes faster than this
 *     quorum: 1                 # page only when this many regions burn (1..1000)
 *     targets:                  # per-target overrides, first matching glob wins (<= 256)
 *       - target: "api-*"
 *         success: 99.95
 *   metrics:                    # optional; absent = no metrics listener
 *     listen: 127.0.0.1:9464    #   required in the section: GET /metrics (Prometheus text
 *                               #   format 0.0.4), plain HTTP, no credentials -- keep it on
 *                               #   loopback or behind the network's controls (target names);
 *                               #   not the ingest listener's address; port 0 = any free port
 *     max_series: 50000         #   label sets of the per-target/per-agent families, 100..10000000;
 *                               #   updates beyond are counted as refused (docs/collector.md)
 *   retention:                  # storage for long windows (maintenance.h), run inside serve
 *     raw: 7d                   # raw results kept (max_result_age..3650d; default 7d, or
 *                               # max_result_age when longer): a re-sent result must still
 *                               # find its first copy, or it would be counted twice
 *     rollups: 90d              # per-minute rollups, drop reports and the batch log kept
 *                               # (retention.raw..3650d; default 90d, or retention.raw)
 *     interval: 60s             # a maintenance pass (rollup, then retention) every (1s..1h)
 *
 * Unknown keys are errors. Every error message is "file:line:col: what is wrong".
 * At least one way in must be configured: tokens, client certificates, or an explicit
 * allow_unauthenticated. The loader checks that files exist; reading them (and the
 * permission warnings) is for the components that use them. */
#ifndef TP_COLLECTOR_CONFIG_H
#define TP_COLLECTOR_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "listen_addr.h"
#include "metrics.h"
#include "tp_error.h"
#include "tp_log.h"

#define TP_COLLECTOR_DEFAULT_MAX_BODY ((size_t)4 * 1024 * 1024)
/* Lower bound for max_body_bytes: below it not even a one-result batch with a
 * certificate chain fits, and every push would get 413. */
#define TP_COLLECTOR_MIN_MAX_BODY ((size_t)1024)
/* database: a path of at most this many bytes (PATH_MAX on Linux). */
#define TP_COLLECTOR_MAX_DB_PATH 4096
/* Upper bound for max_body_bytes. A batch is buffered and decoded in one piece and its
 * decode may take up to 8x its size (ingest.c), so a 64 MiB body can cost ~600 MiB at
 * peak; 10,000 results (the batch limit) of a few KiB each fit in far less. */
#define TP_COLLECTOR_MAX_MAX_BODY ((size_t)64 * 1024 * 1024)
/* Any file the config names: at most this long a path. */
#define TP_COLLECTOR_MAX_PATH 4096

/* HTTPS listener; all paths NULL when plaintext. */
typedef struct tp_collector_tls {
  char *cert_file;       /* owned */
  char *key_file;        /* owned */
  char *client_ca_file;  /* owned; NULL = no client certificates */
  char *client_crl_file; /* owned; NULL = no CRL */
} tp_collector_tls;

typedef struct tp_collector_auth {
  char *tokens_file; /* owned; NULL = no bearer tokens */
  bool allow_unauthenticated;
} tp_collector_auth;

typedef struct tp_collector_limits {
  unsigned max_connections;
  unsigned max_connections_per_ip;
  unsigned connection_timeout_s;
  uint64_t header_timeout_ms;
  uint64_t request_timeout_ms;
  uint64_t max_buffered_bytes;
  unsigned agent_rate;  /* requests per second */
  unsigned agent_burst; /* bucket size */
} tp_collector_limits;

#define TP_COLLECTOR_DEFAULT_MAX_CONNECTIONS 256
#define TP_COLLECTOR_DEFAULT_MAX_PER_IP 32
#define TP_COLLECTOR_DEFAULT_CONNECTION_TIMEOUT_S 10
#define TP_COLLECTOR_DEFAULT_HEADER_TIMEOUT_MS 10000
#define TP_COLLECTOR_DEFAULT_REQUEST_TIMEOUT_MS 60000
#define TP_COLLECTOR_DEFAULT_MAX_BUFFERED ((uint64_t)64 * 1024 * 1024)
#define TP_COLLECTOR_DEFAULT_AGENT_RATE 100
#define TP_COLLECTOR_DEFAULT_AGENT_BURST 200
#define TP_COLLECTOR_DEFAULT_MAX_AGE_MS ((uint64_t)7 * 24 * 3600 * 1000)
#define TP_COLLECTOR_DEFAULT_MAX_SKEW_MS ((uint64_t)5 * 60 * 1000)
#define TP_COLLECTOR_DEFAULT_RAW_RETENTION_MS ((uint64_t)7 * 24 * 3600 * 1000)
#define TP_COLLECTOR_DEFAULT_ROLLUP_RETENTION_MS ((uint64_t)90 * 24 * 3600 * 1000)
#define TP_COLLECTOR_DEFAULT_MAINTENANCE_INTERVAL_MS ((uint64_t)60 * 1000)

/* How long stored data lives and how often the maintenance pass runs. */
typedef struct tp_collector_retention {
  uint64_t raw_ms;      /* >= max_result_age_ms */
  uint64_t rollups_ms;  /* >= raw_ms */
  uint64_t interval_ms; /* 1 s .. 1 h */
} tp_collector_retention;

/* One service-level objective: the share of probes that must succeed and,
 * optionally, the p99 handshake bound (i.e. at most 1 % of successes slower). */
typedef struct tp_slo_objective {
  char *target;    /* owned glob; NULL for the fallback objective */
  double success;  /* 0.5 <= x < 1 */
  uint64_t p99_ms; /* 0 = no latency objective */
  unsigned quorum; /* regions that must burn before it pages */
} tp_slo_objective;

#define TP_SLO_DEFAULT_SUCCESS 0.999
#define TP_COLLECTOR_MAX_OBJECTIVES 256

typedef struct tp_collector_slo {
  tp_slo_objective fallback; /* targets no entry matches */
  tp_slo_objective *targets; /* first matching glob wins */
  size_t n_targets;
} tp_collector_slo;
/* The metrics listener; enabled only with a metrics: section. */
typedef struct tp_collector_metrics {
  bool enabled;
  tp_listen_addr listen;
  size_t max_series; /* TP_METRICS_DEFAULT_MAX_SERIES unless set */
} tp_collector_metrics;

/* Validated configuration; fields are read-only for users. */
typedef struct tp_collector_config {
  tp_listen_addr listen;
  char *database; /* owned */
  size_t max_body_bytes;
  tp_log_level log_level;
  bool insecure_plaintext; /* true only when set explicitly and tls is absent */
  tp_collector_tls tls;
  tp_collector_auth auth;
  uint64_t max_result_age_ms;
  uint64_t max_clock_skew_ms;
  tp_collector_limits limits;
  tp_collector_slo slo;
  tp_collector_metrics metrics;
  tp_collector_retention retention;
} tp_collector_config;

/* Loads and validates `path`. On success *out is a new config (free with
 * tp_collector_config_free). On failure returns TP_E_CONFIG or TP_E_IO and writes
 * "file:line:col: message" (or "file: message") into err. */
tp_err tp_collector_config_load(const char *path, tp_collector_config **out, char *err,
                                size_t errlen);
void tp_collector_config_free(tp_collector_config *config);

/* The objective of `target`: the first slo.targets glob it matches, else the slo:
 * fallback; with slo NULL (no config) the built-in 99.9 %, quorum 1. Borrowed. */
const tp_slo_objective *tp_collector_slo_objective(const tp_collector_slo *slo,
                                                   const char *target);

#endif
