/* config.h - the agent's YAML configuration, loaded and fully validated.
 * Every semantic error names the file, line and column of the offending node
 * (tp_yaml). The struct is read-only after tp_agent_config_load. */
#ifndef TP_AGENT_CONFIG_H
#define TP_AGENT_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "listen_addr.h"
#include "profile.h"
#include "tp_error.h"

/* One profile the agent can run: configured in `profiles:` (possibly with
 * `base:`), or a built-in (probes/profiles/profile_library.h) that a job names without
 * defining it. */
typedef struct tp_agent_profile_config {
  /* Strings point into the loaded document, GnuTLS's static name tables or
   * the built-in library; the name lists are owned through `lists`. */
  tp_profile_spec spec;
  const char *description; /* built-ins only: what the profile emulates */
  int defined;             /* 1: from `profiles:`; 0: a built-in used by name */
  const char **lists[8];   /* owned NULL-terminated arrays spec points at */
} tp_agent_profile_config;

/* target `family:`: which addresses to probe; both = one series per family. */
typedef enum {
  TP_AGENT_FAMILY_ANY = 0,
  TP_AGENT_FAMILY_IPV4,
  TP_AGENT_FAMILY_IPV6,
  TP_AGENT_FAMILY_BOTH,
} tp_agent_family;

typedef struct tp_agent_target_config {
  const char *name, *host, *sni; /* sni may be NULL */
  uint16_t port;
  tp_agent_family family;
} tp_agent_target_config;

typedef struct tp_agent_job_config {
  const char *name;
  size_t *target_index; /* into targets[] */
  size_t n_targets;
  size_t *profile_index; /* into profiles[] */
  size_t n_profiles;
  uint64_t interval_ms;
} tp_agent_job_config;

/* Bounds of agent.yaml's numbers (inclusive; the messages quote them). The
 * durations' bounds are in config.c. */
#define TP_AGENT_MAX_LOOPS 64            /* limits.loops: 1..64 */
#define TP_AGENT_MAX_IN_FLIGHT 4096u     /* limits.max_in_flight: 1..4096 per loop */
#define TP_AGENT_MAX_PENDING 65536u      /* limits.max_pending: 1..65536 per loop */
#define TP_AGENT_DEFAULT_BATCH_BYTES (1024u * 1024u) /* collector.max_batch_bytes default */
#define TP_AGENT_MIN_BATCH_BYTES (64u * 1024u)        /* collector.max_batch_bytes: 64 KiB.. */
#define TP_AGENT_MAX_BATCH_BYTES (64u * 1024u * 1024u) /* ..64 MiB */
#define TP_AGENT_MAX_SPOOL_BYTES (UINT64_C(1) << 40)  /* spool.max_bytes: 64 KiB..1 TiB */
#define TP_AGENT_MAX_PATH 4096           /* file paths (PATH_MAX) */
#define TP_AGENT_MAX_URL 2048            /* collector.url bytes */
#define TP_AGENT_MAX_JOB_NAME 128        /* jobs[].name bytes */
#define TP_AGENT_MAX_DESCRIPTION 4096    /* profiles[].description bytes */
#define TP_AGENT_MAX_ALPN 32             /* profiles[].alpn entries */

typedef struct tp_agent_config {
  const char *path;
  const char *agent_id, *region, *log_level;
  /* collector push */
  const char *collector_url;
  unsigned batch_size;
  unsigned max_batch_bytes;
  uint64_t flush_interval_ms, push_timeout_ms;
  uint64_t max_result_age_ms; /* older spooled results are dropped as too_old */
  /* collector transport: NULL = not configured */
  const char *ca_file, *client_cert_file, *client_key_file, *token_file;
  bool insecure_plaintext; /* an http:// collector URL was allowed explicitly */
  /* spool */
  char *spool_path; /* owned; NULL with spool_memory */
  bool spool_memory;
  uint64_t spool_max_bytes;
  /* metrics: {listen: 127.0.0.1:9465}: GET /metrics (the agent's health, Prometheus text
   * format), plain HTTP on a local port; off when the section is absent */
  bool metrics_enabled;
  tp_listen_addr metrics_listen;
  /* probing */
  unsigned loops;                     /* probe loop threads */
  unsigned max_in_flight, max_pending; /* per loop */
  /* saturation (saturation.h): a result is marked when its loop lag, its lateness or
   * the loop's CPU wait while it ran passes these; the in-flight limit adapts
   * between min_in_flight and max_in_flight when adaptive_in_flight */
  uint64_t max_loop_lag_ms, max_lateness_ms;
  unsigned max_cpu_wait_percent, min_in_flight;
  bool adaptive_in_flight;
  uint64_t connect_timeout_ms, handshake_timeout_ms;
  const char *dns_servers; /* NULL = /etc/resolv.conf */
  tp_agent_profile_config *profiles;
  size_t n_profiles;
  tp_agent_target_config *targets;
  size_t n_targets;
  tp_agent_job_config *jobs;
  size_t n_jobs;
  void *document; /* the libcyaml tree the strings live in */
} tp_agent_config;

/* Loads and validates `path`. On failure returns TP_E_CONFIG or TP_E_IO and
 * writes "file:line:col: message" into err. */
tp_err tp_agent_config_load(const char *path, tp_agent_config **out, char *err, size_t errlen);
void tp_agent_config_free(tp_agent_config *config);

#endif
