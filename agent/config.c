/* config.c - agent.yaml: libcyaml schema (shape, types, unknown keys) and the
 * semantic checks libcyaml cannot do (durations, ranges, references between
 * jobs, targets and profiles, duplicates). */
#include "config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "config_profile.h"
#include "config_rules.h"
#include "config_transport.h"
#include "spool.h"
#include "profile_library.h"
#include "tp_duration.h"
#include "tp_log.h"
#include "tp_mem.h"
#include "tp_yaml.h"
#include "validate.h"

/* ---- document shape (what libcyaml loads) ----------------------------- */

/* Numbers are optional pointers (NULL = absent) so that an explicit 0 is an
 * error instead of silently meaning "default", and unsigned long long so a
 * value far out of range gets a range message rather than a parse error. */
typedef unsigned long long doc_uint;

typedef struct {
  char *id, *region, *log_level;
} doc_agent;

typedef struct {
  char *url;
  doc_uint *batch_size;
  doc_uint *max_batch_bytes;
  char *flush_interval;
  char *timeout;
  char *max_result_age;
  char *ca_file, *client_cert_file, *client_key_file, *token_file;
  bool *insecure_plaintext;
} doc_collector;

typedef struct {
  char *path;
  doc_uint *max_bytes;
  bool *memory;
} doc_spool;

typedef struct {
  doc_uint *loops, *max_in_flight, *max_pending;
} doc_limits;

typedef struct {
  char *listen;
} doc_metrics;

typedef struct {
  char *max_loop_lag, *max_lateness;
  doc_uint *max_cpu_wait_percent, *min_in_flight;
  bool *adaptive;
} doc_saturation;

typedef struct {
  char *connect_timeout, *handshake_timeout;
  char *dns_servers;
} doc_defaults;

typedef struct {
  char *name, *host, *sni;
  doc_uint port;
  char *family;
} doc_target;

typedef struct {
  char *name;
  char **targets;
  unsigned targets_count;
  char **profiles;
  unsigned profiles_count;
  char *interval;
} doc_job;

typedef struct {
  doc_agent *agent;
  doc_collector *collector;
  doc_limits *limits;
  doc_defaults *defaults;
  doc_spool *spool;
  doc_metrics *metrics;
  doc_saturation *saturation;
  tp__doc_profile *profiles;
  unsigned profiles_count;
  doc_target *targets;
  unsigned targets_count;
  doc_job *jobs;
  unsigned jobs_count;
} doc_root;

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 255),
};

/* String length bounds are generous on purpose: the exact limits are checked
 * afterwards, with a message that names the limit and where it comes from. */
static const cyaml_schema_field_t agent_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, doc_agent, id, 1, 1024),
    CYAML_FIELD_STRING_PTR("region", OPT, doc_agent, region, 1, 1024),
    CYAML_FIELD_STRING_PTR("log_level", OPT, doc_agent, log_level, 1, 16),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t collector_fields[] = {
    CYAML_FIELD_STRING_PTR("url", CYAML_FLAG_POINTER, doc_collector, url, 1, TP_AGENT_MAX_URL),
    CYAML_FIELD_UINT_PTR("batch_size", OPT, doc_collector, batch_size),
    CYAML_FIELD_UINT_PTR("max_batch_bytes", OPT, doc_collector, max_batch_bytes),
    CYAML_FIELD_STRING_PTR("flush_interval", OPT, doc_collector, flush_interval, 1, 32),
    CYAML_FIELD_STRING_PTR("timeout", OPT, doc_collector, timeout, 1, 32),
    CYAML_FIELD_STRING_PTR("max_result_age", OPT, doc_collector, max_result_age, 1, 32),
    CYAML_FIELD_STRING_PTR("ca_file", OPT, doc_collector, ca_file, 1, TP_AGENT_MAX_PATH),
    CYAML_FIELD_STRING_PTR("client_cert_file", OPT, doc_collector, client_cert_file, 1,
                           TP_AGENT_MAX_PATH),
    CYAML_FIELD_STRING_PTR("client_key_file", OPT, doc_collector, client_key_file, 1,
                           TP_AGENT_MAX_PATH),
    CYAML_FIELD_STRING_PTR("token_file", OPT, doc_collector, token_file, 1, TP_AGENT_MAX_PATH),
    TP_YAML_FIELD_BOOL_PTR("insecure_plaintext", OPT, doc_collector, insecure_plaintext),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t spool_fields[] = {
    CYAML_FIELD_STRING_PTR("path", OPT, doc_spool, path, 1, TP_AGENT_MAX_PATH),
    CYAML_FIELD_UINT_PTR("max_bytes", OPT, doc_spool, max_bytes),
    TP_YAML_FIELD_BOOL_PTR("memory", OPT, doc_spool, memory),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t limits_fields[] = {
    CYAML_FIELD_UINT_PTR("loops", OPT, doc_limits, loops),
    CYAML_FIELD_UINT_PTR("max_in_flight", OPT, doc_limits, max_in_flight),
    CYAML_FIELD_UINT_PTR("max_pending", OPT, doc_limits, max_pending),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t defaults_fields[] = {
    CYAML_FIELD_STRING_PTR("connect_timeout", OPT, doc_defaults, connect_timeout, 1, 32),
    CYAML_FIELD_STRING_PTR("handshake_timeout", OPT, doc_defaults, handshake_timeout, 1, 32),
    CYAML_FIELD_STRING_PTR("dns_servers", OPT, doc_defaults, dns_servers, 1, 1023),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t target_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, doc_target, name, 1, 1024),
    CYAML_FIELD_STRING_PTR("host", CYAML_FLAG_POINTER, doc_target, host, 1, 1024),
    CYAML_FIELD_UINT("port", CYAML_FLAG_DEFAULT, doc_target, port),
    CYAML_FIELD_STRING_PTR("sni", OPT, doc_target, sni, 1, 1024),
    CYAML_FIELD_STRING_PTR("family", OPT, doc_target, family, 1, 16),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t job_fields[] = {
    CYAML_FIELD_STRING_PTR("name", OPT, doc_job, name, 1, 1024),
    CYAML_FIELD_SEQUENCE("targets", CYAML_FLAG_POINTER, doc_job, targets, &string_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("profiles", CYAML_FLAG_POINTER, doc_job, profiles, &string_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("interval", CYAML_FLAG_POINTER, doc_job, interval, 1, 32),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t saturation_fields[] = {
    CYAML_FIELD_STRING_PTR("max_loop_lag", OPT, doc_saturation, max_loop_lag, 1, 32),
    CYAML_FIELD_STRING_PTR("max_lateness", OPT, doc_saturation, max_lateness, 1, 32),
    CYAML_FIELD_UINT_PTR("max_cpu_wait_percent", OPT, doc_saturation, max_cpu_wait_percent),
    CYAML_FIELD_UINT_PTR("min_in_flight", OPT, doc_saturation, min_in_flight),
    TP_YAML_FIELD_BOOL_PTR("adaptive", OPT, doc_saturation, adaptive),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t metrics_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER, doc_metrics, listen, 1, 300),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t target_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, doc_target, target_fields),
};
static const cyaml_schema_value_t job_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, doc_job, job_fields),
};

static const cyaml_schema_field_t root_fields[] = {
    CYAML_FIELD_MAPPING_PTR("agent", CYAML_FLAG_POINTER, doc_root, agent, agent_fields),
    CYAML_FIELD_MAPPING_PTR("collector", CYAML_FLAG_POINTER, doc_root, collector, collector_fields),
    CYAML_FIELD_MAPPING_PTR("limits", OPT, doc_root, limits, limits_fields),
    CYAML_FIELD_MAPPING_PTR("defaults", OPT, doc_root, defaults, defaults_fields),
    CYAML_FIELD_MAPPING_PTR("spool", OPT, doc_root, spool, spool_fields),
    CYAML_FIELD_MAPPING_PTR("metrics", OPT, doc_root, metrics, metrics_fields),
    CYAML_FIELD_MAPPING_PTR("saturation", OPT, doc_root, saturation, saturation_fields),
    /* Optional: jobs may use built-in profiles only. May be empty: that is
     * what `profiles import-testssl` writes when it skips every client. */
    CYAML_FIELD_SEQUENCE("profiles", OPT, doc_root, profiles,
                         &tp__profile_entry_schema, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("targets", CYAML_FLAG_POINTER, doc_root, targets, &target_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("jobs", CYAML_FLAG_POINTER, doc_root, jobs, &job_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t root_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, doc_root, root_fields),
};

/* ---- ranges ------------------------------------------------------------- */

/* A duration field: default when absent, inclusive bounds. Upper bounds keep
 * every value far inside what the wire can carry (TP_V_MAX_DURATION_NS = 1 h
 * for a probe's timings) and what an operator can mean; lower bounds keep a
 * typo (1ms for 1m) from hammering a target or the collector. */
typedef struct duration_rule {
  uint64_t fallback_ms, min_ms, max_ms;
} duration_rule;

static const duration_rule FLUSH_INTERVAL = {2000, 100, 3600000};    /* 100ms..1h */
static const duration_rule PUSH_TIMEOUT = {5000, 100, 300000};       /* 100ms..5m */
/* The collector's max_result_age (1h..3650d, default 7d); keep them equal. */
static const duration_rule RESULT_AGE = {604800000, 3600000, 315360000000}; /* 1h..3650d */
static const duration_rule CONNECT_TIMEOUT = {3000, 10, 300000};     /* 10ms..5m */
static const duration_rule HANDSHAKE_TIMEOUT = {5000, 10, 300000};   /* 10ms..5m */
static const duration_rule JOB_INTERVAL = {0, 1000, 86400000};       /* 1s..1d, required */
/* saturation: a loop whose events wait 10 ms behind other work, or a probe that
 * starts a second behind its plan, no longer measures the server alone. */
static const duration_rule MAX_LOOP_LAG = {10, 1, 60000};     /* 1ms..1m */
static const duration_rule MAX_LATENESS = {1000, 1, 3600000}; /* 1ms..1h */

/* A count field: default when absent, inclusive bounds, and what it counts. */
typedef struct count_rule {
  const char *node;
  unsigned fallback, min, max;
  const char *unit;
} count_rule;

/* ---- semantic validation ---------------------------------------------- */

/* A configured value quoted in a message: at most about len bytes, control
 * characters as '?', so a stray escape sequence cannot reach the terminal. */
static const char *quoted(const char *s, char *buf, size_t len) {
  size_t i = 0;
  for (; s[i] != '\0' && i + 4 < len; i++)
    buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
  if (s[i] != '\0') {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = '\0';
  return buf;
}

/* "1500ms", "2s", "5m", "1h", "1d": the largest unit that divides ms. */
static void format_ms(uint64_t ms, char *buf, size_t len) {
  static const struct {
    const char *unit;
    uint64_t ms;
  } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
  size_t i = 0;
  while (ms != 0 && ms % units[i].ms != 0)
    i++;
  if (ms == 0)
    i = sizeof(units) / sizeof(units[0]) - 1;
  snprintf(buf, len, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].unit);
}

/* Parses an optional duration at `node_path`; `label` names it in messages. */
static tp_err duration_field(const char *file, const char *node_path, const char *label,
                             const char *text, const duration_rule *rule, uint64_t *out,
                             char *err, size_t errlen) {
  char lo[32], hi[32];
  format_ms(rule->min_ms, lo, sizeof(lo));
  format_ms(rule->max_ms, hi, sizeof(hi));
  if (text == NULL) {
    *out = rule->fallback_ms;
    return TP_E_OK;
  }
  uint64_t ms;
  char shown[40];
  if (tp_duration_parse_ms(text, &ms) != TP_E_OK) {
    tp_yaml_error_at(err, errlen, file, node_path,
                     "%s: \"%s\" is not a duration (an integer and a unit: 500ms, 5s, 2m, 1h, 1d; "
                     "allowed: %s..%s)",
                     label, quoted(text, shown, sizeof(shown)), lo, hi);
    return TP_E_CONFIG;
  }
  if (ms < rule->min_ms || ms > rule->max_ms) {
    tp_yaml_error_at(err, errlen, file, node_path, "%s: %s is too %s (allowed: %s..%s)", label,
                     quoted(text, shown, sizeof(shown)), ms < rule->min_ms ? "short" : "long", lo,
                     hi);
    return TP_E_CONFIG;
  }
  *out = ms;
  return TP_E_OK;
}

/* An optional count: absent = rule->fallback, else within rule's bounds. */
static tp_err count_field(const char *file, const count_rule *rule, const doc_uint *value,
                          unsigned *out, char *err, size_t errlen) {
  if (value == NULL) {
    *out = rule->fallback;
    return TP_E_OK;
  }
  if (*value < rule->min || *value > rule->max) {
    tp_yaml_error_at(err, errlen, file, rule->node, "%s: %llu is out of range (allowed: %u..%u %s)",
                     rule->node, *value, rule->min, rule->max, rule->unit);
    return TP_E_CONFIG;
  }
  *out = (unsigned)*value;
  return TP_E_OK;
}

/* Appends the names of `n` items (read through `name_at`) to buf as "a, b, c". */
static void list_names(char *buf, size_t len, size_t n, const char *(*name_at)(const doc_root *,
                                                                             size_t),
                       const doc_root *doc) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", name_at(doc, i));
}

static const char *target_name_at(const doc_root *doc, size_t i) {
  return doc->targets[i].name;
}

/* An identity field every result repeats: the wire's rule (validate.h), so
 * the configuration cannot hold what the collector would reject in every
 * result, then `extra` (a stricter local rule, may be NULL). */
static tp_err identity_field(const tp_agent_config *c, const char *node, const char *label,
                             const char *value,
                             tp_err (*wire)(const char *, char *, size_t), const char *allowed,
                             int (*extra)(const char *, char *, size_t), char *err,
                             size_t errlen) {
  char why[256], shown[48];
  if (wire(value, why, sizeof(why)) != TP_E_OK) {
    tp_yaml_error_at(err, errlen, c->path, node, "%s \"%s\": %s (allowed: %s)", label,
                     quoted(value, shown, sizeof(shown)), why, allowed);
    return TP_E_CONFIG;
  }
  /* The local rules' reasons say what is allowed themselves. */
  if (extra != NULL && extra(value, why, sizeof(why)) != 0) {
    tp_yaml_error_at(err, errlen, c->path, node, "%s \"%s\": %s", label,
                     quoted(value, shown, sizeof(shown)), why);
    return TP_E_CONFIG;
  }
  return TP_E_OK;
}

static tp_err check_agent(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  c->agent_id = doc->agent->id;
  c->region = doc->agent->region ? doc->agent->region : "default";
  c->log_level = doc->agent->log_level ? doc->agent->log_level : "info";
  tp_err rc = identity_field(c, "agent.id", "agent.id", c->agent_id, tp_wire_check_agent_id,
                             "1..128 printable ASCII characters without spaces, e.g. edge-eu-1",
                             NULL, err, errlen);
  if (rc == TP_E_OK && doc->agent->region != NULL)
    rc = identity_field(c, "agent.region", "agent.region", c->region, tp_wire_check_region,
                        "1..64 bytes of text without control characters", tp__rule_display_name, err,
                        errlen);
  if (rc != TP_E_OK)
    return rc;
  tp_log_level level;
  if (tp_log_level_parse(c->log_level, &level) != 0) {
    tp_yaml_error_at(err, errlen, c->path, "agent.log_level",
                     "agent.log_level: unknown log level \"%s\" (allowed: debug, info, warn, error)",
                     c->log_level);
    return TP_E_CONFIG;
  }
  return TP_E_OK;
}

static tp_err check_collector(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  const doc_collector *dc = doc->collector;
  char why[512], shown[96];
  if (tp__rule_collector_url(dc->url, why, sizeof(why)) != 0) {
    tp_yaml_error_at(err, errlen, c->path, "collector.url", "collector.url \"%s\" %s",
                     quoted(dc->url, shown, sizeof(shown)), why);
    return TP_E_CONFIG;
  }
  c->collector_url = dc->url;
  /* The collector refuses a batch of more than TP_V_MAX_RESULTS results. */
  const count_rule batch = {"collector.batch_size", 200, 1, TP_V_MAX_RESULTS, "results per push"};
  tp_err rc = count_field(c->path, &batch, dc->batch_size, &c->batch_size, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  /* A batch of one result must fit (a certificate chain can be ~100 KiB); the
   * collector's body limit caps the rest (a 413 splits the batch). */
  const count_rule batch_bytes = {"collector.max_batch_bytes", TP_AGENT_DEFAULT_BATCH_BYTES,
                                  TP_AGENT_MIN_BATCH_BYTES, TP_AGENT_MAX_BATCH_BYTES, "bytes"};
  rc = count_field(c->path, &batch_bytes, dc->max_batch_bytes, &c->max_batch_bytes, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  rc = duration_field(c->path, "collector.flush_interval", "collector.flush_interval",
                      dc->flush_interval, &FLUSH_INTERVAL, &c->flush_interval_ms, err, errlen);
  if (rc == TP_E_OK)
    rc = duration_field(c->path, "collector.timeout", "collector.timeout", dc->timeout,
                        &PUSH_TIMEOUT, &c->push_timeout_ms, err, errlen);
  if (rc == TP_E_OK)
    rc = duration_field(c->path, "collector.max_result_age", "collector.max_result_age",
                        dc->max_result_age, &RESULT_AGE, &c->max_result_age_ms, err, errlen);
  return rc;
}

/* Last, after every other check: a file with a mistake in its targets should hear
 * about that mistake, whatever its collector URL. */
static tp_err check_transport(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  const doc_collector *dc = doc->collector;
  return tp__config_transport(c, dc->url, dc->ca_file, dc->client_cert_file, dc->client_key_file,
                              dc->token_file,
                              dc->insecure_plaintext != NULL && *dc->insecure_plaintext, err,
                              errlen);
}

/* spool: the default is a file next to the configuration, named after it
 * (agent.yaml -> agent.spool), so two agents with two configs never share one. */
static tp_err check_spool(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  const doc_spool *ds = doc->spool;
  c->spool_memory = ds != NULL && ds->memory != NULL && *ds->memory;
  if (ds != NULL && ds->path != NULL && c->spool_memory) {
    tp_yaml_error_at(err, errlen, c->path, "spool.memory",
                     "spool: path and memory: true exclude each other");
    return TP_E_CONFIG;
  }
  const doc_uint *max = ds != NULL ? ds->max_bytes : NULL;
  if (max != NULL && (*max < TP_SPOOL_MIN_MAX_BYTES || *max > TP_AGENT_MAX_SPOOL_BYTES)) {
    tp_yaml_error_at(err, errlen, c->path, "spool.max_bytes",
                     "spool.max_bytes: %llu is out of range (allowed: %llu..%llu bytes)", *max,
                     (unsigned long long)TP_SPOOL_MIN_MAX_BYTES,
                     (unsigned long long)TP_AGENT_MAX_SPOOL_BYTES);
    return TP_E_CONFIG;
  }
  c->spool_max_bytes = max != NULL ? *max : TP_SPOOL_DEFAULT_MAX_BYTES;
  if (c->spool_memory)
    return TP_E_OK;
  if (ds != NULL && ds->path != NULL) {
    c->spool_path = tp_xstrdup(ds->path);
    return TP_E_OK;
  }
  return tp__config_default_spool_path(c, err, errlen);
}

/* any: every address, IPv6 and IPv4 interleaved; both: one series per family. */
static int parse_family(const char *s, tp_agent_family *out) {
  static const struct {
    const char *name;
    tp_agent_family family;
  } names[] = {{"any", TP_AGENT_FAMILY_ANY},
               {"ipv4", TP_AGENT_FAMILY_IPV4},
               {"ipv6", TP_AGENT_FAMILY_IPV6},
               {"both", TP_AGENT_FAMILY_BOTH}};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strcmp(s, names[i].name) == 0) {
      *out = names[i].family;
      return 0;
    }
  }
  return -1;
}

/* "IP[:port],[IPv6]:port,...": numeric only (a resolver found by name would
 * need a resolver). The same form c-ares's ares_set_servers_ports_csv takes. */
static int dns_servers_valid(const char *csv) {
  char copy[1024];
  if (snprintf(copy, sizeof(copy), "%s", csv) >= (int)sizeof(copy))
    return 0;
  char *save = NULL;
  int n = 0;
  for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
    unsigned char buf[16];
    char host[64];
    const char *port = NULL;
    if (item[0] == '[') {
      char *end = strchr(item, ']');
      if (end == NULL || (size_t)(end - item - 1) >= sizeof(host))
        return 0;
      memcpy(host, item + 1, (size_t)(end - item - 1));
      host[end - item - 1] = '\0';
      if (inet_pton(AF_INET6, host, buf) != 1)
        return 0;
      if (end[1] == ':')
        port = end + 2;
      else if (end[1] != '\0')
        return 0;
    } else {
      char *colon = strchr(item, ':');
      size_t hl = colon ? (size_t)(colon - item) : strlen(item);
      if (hl >= sizeof(host))
        return 0;
      memcpy(host, item, hl);
      host[hl] = '\0';
      if (inet_pton(AF_INET, host, buf) != 1)
        return 0;
      port = colon ? colon + 1 : NULL;
    }
    if (port != NULL) {
      char *end = NULL;
      unsigned long v = strtoul(port, &end, 10);
      if (end == port || *end != '\0' || v < 1 || v > 65535)
        return 0;
    }
    n++;
  }
  return n > 0;
}

static tp_err check_limits(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  const doc_limits *dl = doc->limits;
  /* Default: one loop per CPU, but never more than the maximum a configured
   * value may have (a 128-core host must not fail its own default). */
  unsigned cpus = uv_available_parallelism();
  const count_rule loops = {"limits.loops", cpus < TP_AGENT_MAX_LOOPS ? cpus : TP_AGENT_MAX_LOOPS,
                            1, TP_AGENT_MAX_LOOPS, "probe loop threads"};
  /* Bounded so 16 * max_in_flight (the max_pending default) and the
   * file-descriptor budget (fd_budget.h) cannot overflow. */
  const count_rule in_flight = {"limits.max_in_flight", 64, 1, TP_AGENT_MAX_IN_FLIGHT,
                                "probes per loop"};
  tp_err rc = count_field(c->path, &loops, dl ? dl->loops : NULL, &c->loops, err, errlen);
  if (rc == TP_E_OK)
    rc = count_field(c->path, &in_flight, dl ? dl->max_in_flight : NULL, &c->max_in_flight, err,
                     errlen);
  if (rc != TP_E_OK)
    return rc;
  const count_rule pending = {"limits.max_pending", 16 * c->max_in_flight, 1,
                              TP_AGENT_MAX_PENDING, "probes waiting per loop"};
  return count_field(c->path, &pending, dl ? dl->max_pending : NULL, &c->max_pending, err,
                     errlen);
}

/* metrics: the agent's own /metrics, off when absent (listen_addr.h: numeric only). */
static tp_err check_metrics(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  char why[256];
  if (doc->metrics == NULL)
    return TP_E_OK;
  if (tp_listen_addr_parse(doc->metrics->listen, &c->metrics_listen, why, sizeof(why)) !=
      TP_E_OK) {
    tp_yaml_error_at(err, errlen, c->path, "metrics.listen", "metrics.listen: %s", why);
    return TP_E_CONFIG;
  }
  c->metrics_enabled = true;
  return TP_E_OK;
}

/* saturation: when the agent's own timings stop being the server's (saturation.h). */
static tp_err check_saturation(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  const doc_saturation *ds = doc->saturation;
  const count_rule cpu_wait = {"saturation.max_cpu_wait_percent", 20, 1, 100,
                               "percent of the probe's time spent waiting for a CPU"};
  tp_err rc = duration_field(c->path, "saturation.max_loop_lag", "saturation.max_loop_lag",
                             ds ? ds->max_loop_lag : NULL, &MAX_LOOP_LAG, &c->max_loop_lag_ms, err,
                             errlen);
  if (rc == TP_E_OK)
    rc = duration_field(c->path, "saturation.max_lateness", "saturation.max_lateness",
                        ds ? ds->max_lateness : NULL, &MAX_LATENESS, &c->max_lateness_ms, err,
                        errlen);
  if (rc == TP_E_OK)
    rc = count_field(c->path, &cpu_wait, ds ? ds->max_cpu_wait_percent : NULL,
                     &c->max_cpu_wait_percent, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  unsigned floor_default = c->max_in_flight < 4 ? c->max_in_flight : 4;
  const count_rule floor = {"saturation.min_in_flight", floor_default, 1, c->max_in_flight,
                            "probes per loop (at most limits.max_in_flight)"};
  rc = count_field(c->path, &floor, ds ? ds->min_in_flight : NULL, &c->min_in_flight, err, errlen);
  c->adaptive_in_flight = ds == NULL || ds->adaptive == NULL || *ds->adaptive;
  return rc;
}

static tp_err check_defaults(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  const doc_defaults *dd = doc->defaults;
  if (dd != NULL && dd->dns_servers != NULL) {
    if (!dns_servers_valid(dd->dns_servers)) {
      tp_yaml_error_at(err, errlen, c->path, "defaults.dns_servers",
                       "\"%s\" is not a list of DNS servers (allowed: IPv4[:port] or "
                       "[IPv6]:port, comma-separated; omit to use /etc/resolv.conf)",
                       dd->dns_servers);
      return TP_E_CONFIG;
    }
    c->dns_servers = dd->dns_servers;
  }
  tp_err rc = duration_field(c->path, "defaults.connect_timeout", "defaults.connect_timeout",
                             dd ? dd->connect_timeout : NULL, &CONNECT_TIMEOUT,
                             &c->connect_timeout_ms, err, errlen);
  if (rc == TP_E_OK)
    rc = duration_field(c->path, "defaults.handshake_timeout", "defaults.handshake_timeout",
                        dd ? dd->handshake_timeout : NULL, &HANDSHAKE_TIMEOUT,
                        &c->handshake_timeout_ms, err, errlen);
  return rc;
}

/* Defined profiles' names are in every result too. */
static tp_err check_profile_names(tp_agent_config *c, char *err, size_t errlen) {
  for (size_t i = 0; i < c->n_profiles; i++) {
    char node[64];
    if (!c->profiles[i].defined)
      continue;
    snprintf(node, sizeof(node), "profiles[%zu].name", i);
    tp_err rc = identity_field(c, node, "profile", c->profiles[i].spec.name,
                               tp_wire_check_profile_name, "1..128 bytes of text", NULL, err,
                               errlen);
    if (rc != TP_E_OK)
      return rc;
  }
  return TP_E_OK;
}

static tp_err check_target(tp_agent_config *c, const doc_root *doc, size_t i, char *err,
                           size_t errlen) {
  const doc_target *dt = &doc->targets[i];
  char node[64], label[300];
  snprintf(node, sizeof(node), "targets[%zu].name", i);
  tp_err rc = identity_field(c, node, "target", dt->name, tp_wire_check_target_name,
                             "1..255 bytes of text without control characters", tp__rule_display_name,
                             err, errlen);
  if (rc != TP_E_OK)
    return rc;
  for (size_t j = 0; j < i; j++) {
    if (strcmp(doc->targets[j].name, dt->name) == 0) {
      tp_yaml_error_at(err, errlen, c->path, node,
                       "duplicate target name \"%s\" (allowed: each name once)", dt->name);
      return TP_E_CONFIG;
    }
  }
  snprintf(label, sizeof(label), "target \"%s\": host", dt->name);
  snprintf(node, sizeof(node), "targets[%zu].host", i);
  rc = identity_field(c, node, label, dt->host, tp_wire_check_host,
                      "a DNS name or an IP address, at most 253 bytes", tp__rule_host, err, errlen);
  if (rc == TP_E_OK && dt->sni != NULL) {
    snprintf(label, sizeof(label), "target \"%s\": sni", dt->name);
    snprintf(node, sizeof(node), "targets[%zu].sni", i);
    rc = identity_field(c, node, label, dt->sni, tp_wire_check_host,
                        "a DNS name without a trailing dot, at most 253 bytes", tp__rule_sni, err,
                        errlen);
  }
  if (rc != TP_E_OK)
    return rc;
  if (dt->port < 1 || dt->port > 65535) {
    snprintf(node, sizeof(node), "targets[%zu].port", i);
    tp_yaml_error_at(err, errlen, c->path, node,
                     "target \"%s\": port %llu is out of range (allowed: 1..65535)", dt->name,
                     dt->port);
    return TP_E_CONFIG;
  }
  tp_agent_family family = TP_AGENT_FAMILY_ANY;
  if (dt->family != NULL && parse_family(dt->family, &family) != 0) {
    snprintf(node, sizeof(node), "targets[%zu].family", i);
    tp_yaml_error_at(err, errlen, c->path, node,
                     "target \"%s\": family \"%s\" is unknown (allowed: any, ipv4, ipv6, both)",
                     dt->name, dt->family);
    return TP_E_CONFIG;
  }
  c->targets[i] = (tp_agent_target_config){.name = dt->name,
                                           .host = dt->host,
                                           .sni = dt->sni,
                                           .port = (uint16_t)dt->port,
                                           .family = family};
  return TP_E_OK;
}

static tp_err check_targets(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  c->n_targets = doc->targets_count;
  c->targets = tp_xcalloc(c->n_targets, sizeof(*c->targets));
  for (size_t i = 0; i < c->n_targets; i++) {
    tp_err rc = check_target(c, doc, i, err, errlen);
    if (rc != TP_E_OK)
      return rc;
  }
  return TP_E_OK;
}

/* Resolves each name in `names` to an index using `name_at`. */
static tp_err resolve_refs(const tp_agent_config *c, const doc_root *doc, size_t job,
                           const char *kind, char **names, unsigned n, size_t n_known,
                           const char *(*name_at)(const doc_root *, size_t), size_t **out,
                           char *err, size_t errlen) {
  *out = tp_xcalloc(n, sizeof(size_t));
  for (unsigned i = 0; i < n; i++) {
    size_t k = 0;
    while (k < n_known && strcmp(name_at(doc, k), names[i]) != 0)
      k++;
    if (k == n_known) {
      char node[64], known[512];
      snprintf(node, sizeof(node), "jobs[%zu].%ss[%u]", job, kind, i);
      list_names(known, sizeof(known), n_known, name_at, doc);
      tp_yaml_error_at(err, errlen, c->path, node, "unknown %s \"%s\" (defined: %s)", kind,
                       names[i], known);
      return TP_E_CONFIG;
    }
    (*out)[i] = k;
  }
  return TP_E_OK;
}

/* A job's profiles: configured ones first, then built-ins by name. */
static tp_err resolve_profiles(tp_agent_config *c, const doc_root *doc, size_t job, size_t **out,
                               char *err, size_t errlen) {
  const doc_job *dj = &doc->jobs[job];
  *out = tp_xcalloc(dj->profiles_count, sizeof(size_t));
  for (unsigned i = 0; i < dj->profiles_count; i++) {
    long k = tp__config_profile_ref(c, dj->profiles[i]);
    if (k < 0) {
      char node[64], defined[512], builtin[512];
      snprintf(node, sizeof(node), "jobs[%zu].profiles[%u]", job, i);
      size_t used = 0;
      defined[0] = '\0';
      for (size_t p = 0; p < c->n_profiles && used < sizeof(defined); p++)
        if (c->profiles[p].defined)
          used += (size_t)snprintf(defined + used, sizeof(defined) - used, "%s%s",
                                   used ? ", " : "", c->profiles[p].spec.name);
      tp_profile_library_names(builtin, sizeof(builtin));
      tp_yaml_error_at(err, errlen, c->path, node, "unknown profile \"%s\" (defined: %s; built-in: %s)",
                       dj->profiles[i], used ? defined : "none", builtin);
      return TP_E_CONFIG;
    }
    (*out)[i] = (size_t)k;
  }
  return TP_E_OK;
}

static tp_err check_job(tp_agent_config *c, const doc_root *doc, size_t i, char *err,
                        size_t errlen) {
  const doc_job *dj = &doc->jobs[i];
  tp_agent_job_config *job = &c->jobs[i];
  char node[64], label[200];
  job->name = dj->name ? dj->name : "job";
  job->n_targets = dj->targets_count;
  job->n_profiles = dj->profiles_count;
  if (dj->name != NULL) {
    char why[128];
    if (strlen(dj->name) > TP_AGENT_MAX_JOB_NAME || tp__rule_display_name(dj->name, why, sizeof(why)) != 0) {
      char shown[48];
      snprintf(node, sizeof(node), "jobs[%zu].name", i);
      tp_yaml_error_at(err, errlen, c->path, node,
                       "job \"%s\": unusable name (allowed: 1..%d bytes of text without control "
                       "characters)",
                       quoted(dj->name, shown, sizeof(shown)), TP_AGENT_MAX_JOB_NAME);
      return TP_E_CONFIG;
    }
  }
  tp_err rc = resolve_refs(c, doc, i, "target", dj->targets, dj->targets_count, doc->targets_count,
                           target_name_at, &job->target_index, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  rc = resolve_profiles(c, doc, i, &job->profile_index, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  snprintf(node, sizeof(node), "jobs[%zu].interval", i);
  if (dj->name != NULL)
    snprintf(label, sizeof(label), "job \"%.100s\": interval", dj->name);
  else
    snprintf(label, sizeof(label), "jobs[%zu].interval", i);
  return duration_field(c->path, node, label, dj->interval, &JOB_INTERVAL, &job->interval_ms, err,
                        errlen);
}

static tp_err check_jobs(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  c->n_jobs = doc->jobs_count;
  c->jobs = tp_xcalloc(c->n_jobs, sizeof(*c->jobs));
  for (size_t i = 0; i < c->n_jobs; i++) {
    tp_err rc = check_job(c, doc, i, err, errlen);
    if (rc != TP_E_OK)
      return rc;
  }
  return TP_E_OK;
}

/* In file order, so the first error reported is the first in the file. */
static tp_err check_document(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  tp_err rc = check_agent(c, doc, err, errlen);
  if (rc == TP_E_OK)
    rc = check_collector(c, doc, err, errlen);
  if (rc == TP_E_OK)
    rc = check_limits(c, doc, err, errlen);
  if (rc == TP_E_OK)
    rc = check_saturation(c, doc, err, errlen);
  if (rc == TP_E_OK)
    rc = check_defaults(c, doc, err, errlen);
  if (rc == TP_E_OK)
    rc = check_spool(c, doc, err, errlen);
  if (rc == TP_E_OK)
    rc = check_metrics(c, doc, err, errlen);
  if (rc == TP_E_OK)
    rc = tp__config_profiles(c, doc->profiles, doc->profiles_count, err, errlen);
  if (rc == TP_E_OK)
    rc = check_profile_names(c, err, errlen);
  if (rc == TP_E_OK)
    rc = check_targets(c, doc, err, errlen);
  if (rc == TP_E_OK)
    rc = check_jobs(c, doc, err, errlen);
  if (rc == TP_E_OK)
    rc = check_transport(c, doc, err, errlen);
  return rc;
}

tp_err tp_agent_config_load(const char *path, tp_agent_config **out, char *err, size_t errlen) {
  void *doc = NULL;
  tp_err rc = tp_yaml_load(path, &root_schema, &doc, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  tp_agent_config *c = tp_xcalloc(1, sizeof(*c));
  c->path = tp_xstrdup(path);
  c->document = doc;
  rc = check_document(c, doc, err, errlen);
  if (rc != TP_E_OK) {
    tp_agent_config_free(c);
    return rc;
  }
  *out = c;
  return TP_E_OK;
}

void tp_agent_config_free(tp_agent_config *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n_jobs; i++) {
    free(c->jobs[i].target_index);
    free(c->jobs[i].profile_index);
  }
  free(c->jobs);
  free(c->targets);
  tp__config_profiles_free(c);
  tp_yaml_free(&root_schema, c->document);
  free(c->spool_path);
  free((char *)c->path);
  free(c);
}
