/* fuzz_agent_config.c - libFuzzer target for agent.yaml: the input is written
 * to a private file and loaded with tp_agent_config_load, as
 * `tlsprobe-agent --config FILE [--check]` does; that load includes the
 * `profiles:` section (config_profile.c: base merging, GnuTLS name checks,
 * recorded offers). There is no separate profile reader: the profile YAML
 * code is a writer (profile_yaml.c, behind `profiles show` and the testssl.sh
 * importer), whose contract is that its output loads back unchanged. So every
 * accepted config's profiles are written with it, loaded again, and compared.
 *
 * Besides sanitizer findings (leaks included) it aborts when a contract
 * breaks: a refusal is TP_E_CONFIG with a located one-line message and no
 * config; an accepted config has its numbers within the documented ranges
 * and its job references within their arrays; the written profiles load
 * back with the same fields and the same GnuTLS priority string. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../agent/config.h" /* collector/ has a config.h too */
#include "fuzz_file.h"
#include "fuzz_seed.h"
#include "priority.h"
#include "profile_yaml.h"
#include "tp_limits.h"

/* The rest of an agent.yaml around the written `profiles:`; the job names a
 * built-in, so it loads whatever the written profiles are called. */
static const char round_trip_head[] = "agent: {id: fuzz}\n"
                                      "collector: {url: 'http://127.0.0.1:1/v1/results', "
                                      "insecure_plaintext: true}\n"
                                      "spool: {memory: true}\n"
                                      "targets: [{name: t, host: h, port: 443}]\n"
                                      "jobs: [{targets: [t], profiles: [modern], interval: 5s}]\n";

static void check(int ok, const char *what, const char *detail) {
  if (!ok) {
    fprintf(stderr, "fuzz_agent_config: invariant broken: %s\n  %s\n", what,
            detail ? detail : "");
    abort();
  }
}

static void check_ranges(const tp_agent_config *c) {
  check(c->agent_id != NULL && c->region != NULL && c->collector_url != NULL, "identity set",
        NULL);
  check(c->batch_size >= 1 && c->batch_size <= TP_V_MAX_RESULTS, "batch_size", NULL);
  check(c->max_batch_bytes >= TP_AGENT_MIN_BATCH_BYTES &&
            c->max_batch_bytes <= TP_AGENT_MAX_BATCH_BYTES,
        "max_batch_bytes", NULL);
  check(c->spool_memory != (c->spool_path != NULL), "spool: a path or memory", NULL);
  check(c->spool_max_bytes > 0 && c->spool_max_bytes <= TP_AGENT_MAX_SPOOL_BYTES,
        "spool.max_bytes", NULL);
  check(c->insecure_plaintext == (strncasecmp(c->collector_url, "http://", 7) == 0),
        "plain HTTP exactly when the URL says so", c->collector_url);
  check(c->loops >= 1 && c->loops <= TP_AGENT_MAX_LOOPS, "loops", NULL);
  check(c->max_in_flight >= 1 && c->max_in_flight <= TP_AGENT_MAX_IN_FLIGHT, "max_in_flight",
        NULL);
  check(c->max_pending >= 1 && c->max_pending <= TP_AGENT_MAX_PENDING, "max_pending", NULL);
  check(c->flush_interval_ms >= 100 && c->flush_interval_ms <= 3600000, "flush_interval", NULL);
  check(c->push_timeout_ms >= 100 && c->push_timeout_ms <= 300000, "collector.timeout", NULL);
  check(c->connect_timeout_ms >= 10 && c->connect_timeout_ms <= 300000, "connect_timeout", NULL);
  check(c->handshake_timeout_ms >= 10 && c->handshake_timeout_ms <= 300000, "handshake_timeout",
        NULL);
  check(c->n_targets > 0 && c->n_jobs > 0, "targets and jobs", NULL);
  for (size_t i = 0; i < c->n_targets; i++)
    check(c->targets[i].port >= 1, "target port", c->targets[i].name);
  for (size_t i = 0; i < c->n_jobs; i++) {
    const tp_agent_job_config *j = &c->jobs[i];
    check(j->n_targets > 0 && j->n_profiles > 0, "a job has targets and profiles", j->name);
    check(j->interval_ms >= 1000 && j->interval_ms <= 86400000, "job interval", j->name);
    for (size_t k = 0; k < j->n_targets; k++)
      check(j->target_index[k] < c->n_targets, "job target index", j->name);
    for (size_t k = 0; k < j->n_profiles; k++)
      check(j->profile_index[k] < c->n_profiles, "job profile index", j->name);
  }
}

static bool str_eq(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool list_eq(const char *const *a, const char *const *b) {
  if (a == NULL || b == NULL)
    return a == b;
  size_t i = 0;
  for (; a[i] != NULL && b[i] != NULL; i++)
    if (strcmp(a[i], b[i]) != 0)
      return false;
  return a[i] == NULL && b[i] == NULL;
}

static bool ids_eq(const uint16_t *a, size_t na, const uint16_t *b, size_t nb) {
  return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}

/* The recorded offer's parts the loader reads (config_profile.c). */
static bool offer_eq(const tp_profile_spec *a, const tp_profile_spec *b) {
  if (a->has_recorded_offer != b->has_recorded_offer)
    return false;
  if (!a->has_recorded_offer)
    return true;
  const tp_hello_offer *x = &a->recorded_offer, *y = &b->recorded_offer;
  return x->versions == y->versions &&
         ids_eq(x->cipher_suites, x->n_cipher_suites, y->cipher_suites, y->n_cipher_suites) &&
         ids_eq(x->groups, x->n_groups, y->groups, y->n_groups) &&
         ids_eq(x->signature_algorithms, x->n_signature_algorithms, y->signature_algorithms,
                y->n_signature_algorithms);
}

static bool early_data_eq(const tp_early_data_spec *a, const tp_early_data_spec *b) {
  if (a->raw == NULL || b->raw == NULL)
    return a->raw == b->raw;
  return a->raw_len == b->raw_len && memcmp(a->raw, b->raw, a->raw_len) == 0 &&
         (a->expect_reply != 0) == (b->expect_reply != 0);
}

/* Which field of the two specs differs, or NULL. */
static const char *spec_difference(const tp_profile_spec *a, const tp_profile_spec *b) {
  if (!str_eq(a->priority, b->priority))
    return "priority";
  if (a->versions != b->versions)
    return "versions";
  if (!list_eq(a->ciphers, b->ciphers) || !list_eq(a->key_exchanges, b->key_exchanges) ||
      !list_eq(a->macs, b->macs) || !list_eq(a->groups, b->groups) ||
      !list_eq(a->signature_algorithms, b->signature_algorithms))
    return "algorithm lists";
  if (!list_eq(a->alpn, b->alpn))
    return "alpn";
  if (!str_eq(a->trust, b->trust) || !str_eq(a->intermediates, b->intermediates) ||
      !str_eq(a->client_certificate, b->client_certificate) ||
      !str_eq(a->client_key, b->client_key))
    return "files";
  if (a->sni_mode != b->sni_mode || !str_eq(a->sni_name, b->sni_name))
    return "sni";
  if (a->mode != b->mode)
    return "mode";
  if (!str_eq(a->http.method, b->http.method) || !str_eq(a->http.path, b->http.path) ||
      !str_eq(a->http.host, b->http.host))
    return "http";
  if (!early_data_eq(&a->early_data, &b->early_data))
    return "early_data";
  if ((a->aia_fetch_off != 0) != (b->aia_fetch_off != 0))
    return "aia_fetch";
  if (a->min_dh_bits != b->min_dh_bits || a->max_dh_bits != b->max_dh_bits)
    return "dh bits";
  if (!offer_eq(a, b))
    return "recorded_offer";
  if (!str_eq(a->fidelity_note, b->fidelity_note))
    return "fidelity_note";
  return NULL;
}

static const tp_agent_profile_config *find_profile(const tp_agent_config *c, const char *name) {
  for (size_t i = 0; i < c->n_profiles; i++)
    if (strcmp(c->profiles[i].spec.name, name) == 0)
      return &c->profiles[i];
  return NULL;
}

/* The priority string both specs build to (NULL = refused, message dropped). */
static void check_same_priority(const tp_profile_spec *a, const tp_profile_spec *b,
                                const char *yaml) {
  char err[1024];
  char *pa = tp__priority_build(a, err, sizeof(err));
  char *pb = tp__priority_build(b, err, sizeof(err));
  check(str_eq(pa, pb), "a written profile builds another priority string", yaml);
  free(pa);
  free(pb);
}

/* Writes every profile of c (defined and built-ins used by name) through the
 * profile writer into a second file and loads that. */
static void round_trip(const tp_agent_config *c) {
  char *yaml = NULL, err[1024] = "";
  size_t len = 0;
  tp_profile_yaml *w = NULL;
  FILE *out = open_memstream(&yaml, &len);
  check(out != NULL, "open_memstream", NULL);
  check(fputs(round_trip_head, out) >= 0, "write the head", NULL);
  check(tp_profile_yaml_open(out, &w, err, sizeof(err)) == TP_E_OK, "profile writer opens", err);
  for (size_t i = 0; i < c->n_profiles; i++)
    check(tp_profile_yaml_add(w, &c->profiles[i].spec, c->profiles[i].description, err,
                              sizeof(err)) == TP_E_OK,
          "a loaded profile can be written", err);
  check(tp_profile_yaml_close(w, err, sizeof(err)) == TP_E_OK, "profile writer closes", err);
  check(fclose(out) == 0, "close the memstream", NULL);

  tp_agent_config *back = NULL;
  const char *path = tp_fuzz_file(1, yaml, len);
  if (tp_agent_config_load(path, &back, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s\n--- written:\n%s", err, yaml);
    check(0, "written profiles load back", err);
  }
  for (size_t i = 0; i < c->n_profiles; i++) {
    const tp_profile_spec *a = &c->profiles[i].spec;
    const tp_agent_profile_config *b = find_profile(back, a->name);
    check(b != NULL && b->defined, "a written profile is defined after loading", a->name);
    const char *diff = spec_difference(a, &b->spec);
    if (diff != NULL)
      fprintf(stderr, "profile \"%s\": %s differs\n--- written:\n%s", a->name, diff, yaml);
    check(diff == NULL, "a written profile loads back unchanged", diff);
    check_same_priority(a, &b->spec, yaml);
  }
  tp_agent_config_free(back);
  free(yaml);
}

/* Returns 1 if the input loaded as a configuration, 0 if it was refused. */
static int load(const uint8_t *data, size_t size) {
  const char *path = tp_fuzz_file(0, data, size);
  char err[1024] = "";
  tp_agent_config *c = NULL;
  tp_err rc = tp_agent_config_load(path, &c, err, sizeof(err));
  if (rc == TP_E_OK) {
    check(c != NULL, "TP_E_OK with a config", NULL);
    check_ranges(c);
    round_trip(c);
    tp_agent_config_free(c);
    return 1;
  }
  check(rc == TP_E_CONFIG, "a refused file is TP_E_CONFIG", err);
  check(c == NULL, "no config on failure", err);
  const char *problem = tp_fuzz_message_problem(path, err);
  check(problem == NULL, problem, err);
  return 0;
}

/* Seeds named ok-* must be accepted, reject-* refused (fuzz_file.h). */
int tp_fuzz_seed_run(const char *name, const uint8_t *data, size_t size) {
  return tp_fuzz_seed_verdict(name, load(data, size), "loaded", "refused");
}

void tp_fuzz_seed_cleanup(void) {
  tp_fuzz_file_cleanup();
}

/* The libFuzzer entry point (unused in the seed runner). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)load(data, size);
  return 0;
}
