/* config.c - agent.yaml: libcyaml schema (shape, types, unknown keys) and the
 * semantic checks libcyaml cannot do (durations, ranges, references between
 * jobs, targets and profiles, duplicates). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "config_profile.h"
#include "profile_library.h"
#include "tp_duration.h"
#include "tp_log.h"
#include "tp_mem.h"
#include "tp_yaml.h"

/* ---- document shape (what libcyaml loads) ----------------------------- */

typedef struct {
  char *id, *region, *log_level;
} doc_agent;

typedef struct {
  char *url;
  unsigned batch_size;
  char *flush_interval;
  unsigned queue_limit;
  char *timeout;
} doc_collector;

typedef struct {
  unsigned loops, max_in_flight, max_pending;
} doc_limits;

typedef struct {
  char *connect_timeout, *handshake_timeout;
} doc_defaults;

typedef struct {
  char *name, *host, *sni;
  unsigned port;
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

static const cyaml_schema_field_t agent_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, doc_agent, id, 1, 128),
    CYAML_FIELD_STRING_PTR("region", OPT, doc_agent, region, 1, 64),
    CYAML_FIELD_STRING_PTR("log_level", OPT, doc_agent, log_level, 1, 16),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t collector_fields[] = {
    CYAML_FIELD_STRING_PTR("url", CYAML_FLAG_POINTER, doc_collector, url, 8, 2048),
    CYAML_FIELD_UINT("batch_size", CYAML_FLAG_OPTIONAL, doc_collector, batch_size),
    CYAML_FIELD_STRING_PTR("flush_interval", OPT, doc_collector, flush_interval, 2, 32),
    CYAML_FIELD_UINT("queue_limit", CYAML_FLAG_OPTIONAL, doc_collector, queue_limit),
    CYAML_FIELD_STRING_PTR("timeout", OPT, doc_collector, timeout, 2, 32),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t limits_fields[] = {
    CYAML_FIELD_UINT("loops", CYAML_FLAG_OPTIONAL, doc_limits, loops),
    CYAML_FIELD_UINT("max_in_flight", CYAML_FLAG_OPTIONAL, doc_limits, max_in_flight),
    CYAML_FIELD_UINT("max_pending", CYAML_FLAG_OPTIONAL, doc_limits, max_pending),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t defaults_fields[] = {
    CYAML_FIELD_STRING_PTR("connect_timeout", OPT, doc_defaults, connect_timeout, 2, 32),
    CYAML_FIELD_STRING_PTR("handshake_timeout", OPT, doc_defaults, handshake_timeout, 2, 32),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t target_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, doc_target, name, 1, 255),
    CYAML_FIELD_STRING_PTR("host", CYAML_FLAG_POINTER, doc_target, host, 1, 255),
    CYAML_FIELD_UINT("port", CYAML_FLAG_DEFAULT, doc_target, port),
    CYAML_FIELD_STRING_PTR("sni", OPT, doc_target, sni, 1, 255),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t job_fields[] = {
    CYAML_FIELD_STRING_PTR("name", OPT, doc_job, name, 1, 128),
    CYAML_FIELD_SEQUENCE("targets", CYAML_FLAG_POINTER, doc_job, targets, &string_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("profiles", CYAML_FLAG_POINTER, doc_job, profiles, &string_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("interval", CYAML_FLAG_POINTER, doc_job, interval, 2, 32),
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
    /* Optional: jobs may use built-in profiles only. */
    CYAML_FIELD_SEQUENCE("profiles", OPT, doc_root, profiles,
                         &tp__profile_entry_schema, 1,
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

/* ---- semantic validation ---------------------------------------------- */

/* Parses an optional duration at `node_path`; absent = default. */
static tp_err duration_field(const char *file, const char *node_path, const char *text,
                             uint64_t fallback_ms, uint64_t min_ms, uint64_t *out, char *err,
                             size_t errlen) {
  if (text == NULL) {
    *out = fallback_ms;
    return TP_E_OK;
  }
  uint64_t ms;
  if (tp_duration_parse_ms(text, &ms) != TP_E_OK) {
    tp_yaml_error_at(err, errlen, file, node_path,
                     "\"%s\" is not a duration (use an integer and a unit: 500ms, 5s, 2m, 1h)",
                     text);
    return TP_E_CONFIG;
  }
  if (ms < min_ms) {
    tp_yaml_error_at(err, errlen, file, node_path, "%s is too short (minimum %llums)", text,
                     (unsigned long long)min_ms);
    return TP_E_CONFIG;
  }
  *out = ms;
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

static tp_err check_collector(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  const doc_collector *dc = doc->collector;
  if (strncmp(dc->url, "http://", 7) != 0 && strncmp(dc->url, "https://", 8) != 0) {
    tp_yaml_error_at(err, errlen, c->path, "collector.url",
                     "\"%s\" is not an http:// or https:// URL", dc->url);
    return TP_E_CONFIG;
  }
  c->collector_url = dc->url;
  c->batch_size = dc->batch_size ? dc->batch_size : 200;
  if (c->batch_size > 10000) {
    tp_yaml_error_at(err, errlen, c->path, "collector.batch_size",
                     "%u is above the collector's limit of 10000 results per batch",
                     c->batch_size);
    return TP_E_CONFIG;
  }
  c->queue_limit = dc->queue_limit ? dc->queue_limit : 10000;
  if (c->queue_limit < c->batch_size) {
    tp_yaml_error_at(err, errlen, c->path, "collector.queue_limit",
                     "%u is smaller than batch_size (%u)", c->queue_limit, c->batch_size);
    return TP_E_CONFIG;
  }
  tp_err rc = duration_field(c->path, "collector.flush_interval", dc->flush_interval, 2000, 10,
                             &c->flush_interval_ms, err, errlen);
  if (rc == TP_E_OK)
    rc = duration_field(c->path, "collector.timeout", dc->timeout, 5000, 100, &c->push_timeout_ms,
                        err, errlen);
  return rc;
}

static tp_err check_targets(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  c->n_targets = doc->targets_count;
  c->targets = tp_xcalloc(c->n_targets, sizeof(*c->targets));
  for (size_t i = 0; i < c->n_targets; i++) {
    const doc_target *dt = &doc->targets[i];
    char node[64];
    for (size_t j = 0; j < i; j++) {
      if (strcmp(doc->targets[j].name, dt->name) == 0) {
        snprintf(node, sizeof(node), "targets[%zu].name", i);
        tp_yaml_error_at(err, errlen, c->path, node, "duplicate target name \"%s\"", dt->name);
        return TP_E_CONFIG;
      }
    }
    if (dt->port < 1 || dt->port > 65535) {
      snprintf(node, sizeof(node), "targets[%zu].port", i);
      tp_yaml_error_at(err, errlen, c->path, node, "target \"%s\": port %u is out of range 1..65535",
                       dt->name, dt->port);
      return TP_E_CONFIG;
    }
    c->targets[i] = (tp_agent_target_config){
        .name = dt->name, .host = dt->host, .sni = dt->sni, .port = (uint16_t)dt->port};
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

static tp_err check_jobs(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  c->n_jobs = doc->jobs_count;
  c->jobs = tp_xcalloc(c->n_jobs, sizeof(*c->jobs));
  for (size_t i = 0; i < c->n_jobs; i++) {
    const doc_job *dj = &doc->jobs[i];
    tp_agent_job_config *job = &c->jobs[i];
    char node[64];
    job->name = dj->name ? dj->name : "job";
    job->n_targets = dj->targets_count;
    job->n_profiles = dj->profiles_count;
    tp_err rc = resolve_refs(c, doc, i, "target", dj->targets, dj->targets_count,
                             doc->targets_count, target_name_at, &job->target_index, err, errlen);
    if (rc != TP_E_OK)
      return rc;
    rc = resolve_profiles(c, doc, i, &job->profile_index, err, errlen);
    if (rc != TP_E_OK)
      return rc;
    snprintf(node, sizeof(node), "jobs[%zu].interval", i);
    rc = duration_field(c->path, node, dj->interval, 0, 100, &job->interval_ms, err, errlen);
    if (rc != TP_E_OK)
      return rc;
  }
  return TP_E_OK;
}

static tp_err check_document(tp_agent_config *c, const doc_root *doc, char *err, size_t errlen) {
  c->agent_id = doc->agent->id;
  c->region = doc->agent->region ? doc->agent->region : "default";
  c->log_level = doc->agent->log_level ? doc->agent->log_level : "info";
  tp_log_level level;
  if (tp_log_level_parse(c->log_level, &level) != 0) {
    tp_yaml_error_at(err, errlen, c->path, "agent.log_level",
                     "unknown log level \"%s\" (known: debug, info, warn, error)", c->log_level);
    return TP_E_CONFIG;
  }
  tp_err rc = check_collector(c, doc, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  const doc_limits *dl = doc->limits;
  c->loops = dl && dl->loops ? dl->loops : uv_available_parallelism();
  if (c->loops > TP_AGENT_MAX_LOOPS) {
    tp_yaml_error_at(err, errlen, c->path, "limits.loops", "%u loops is more than the maximum of %d",
                     c->loops, TP_AGENT_MAX_LOOPS);
    return TP_E_CONFIG;
  }
  c->max_in_flight = dl && dl->max_in_flight ? dl->max_in_flight : 64;
  c->max_pending = dl && dl->max_pending ? dl->max_pending : 16 * c->max_in_flight;
  const doc_defaults *dd = doc->defaults;
  rc = duration_field(c->path, "defaults.connect_timeout", dd ? dd->connect_timeout : NULL, 3000,
                      10, &c->connect_timeout_ms, err, errlen);
  if (rc == TP_E_OK)
    rc = duration_field(c->path, "defaults.handshake_timeout", dd ? dd->handshake_timeout : NULL,
                        5000, 10, &c->handshake_timeout_ms, err, errlen);
  if (rc == TP_E_OK)
    rc = tp__config_profiles(c, doc->profiles, doc->profiles_count, err, errlen);
  if (rc == TP_E_OK)
    rc = check_targets(c, doc, err, errlen);
  if (rc == TP_E_OK)
    rc = check_jobs(c, doc, err, errlen);
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
  free((char *)c->path);
  free(c);
}
