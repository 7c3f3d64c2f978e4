/* fuzz_collector_config.c - libFuzzer target for collector.yaml: the input is
 * written to a private file and loaded with tp_collector_config_load, exactly
 * as `tlsprobe-collector serve --config FILE [--check]` does (an empty file
 * used to crash serve, issue #6 defect 10). Besides sanitizer findings
 * (leaks included: a refused file must free everything libcyaml built) it
 * aborts when the loader's contract breaks: a refusal is TP_E_CONFIG with a
 * located one-line message and no config; an accepted config holds values
 * within the documented ranges (retention's cross-key rules included). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../collector/config.h" /* agent/ has a config.h too */
#include "fuzz_file.h"
#include "fuzz_seed.h"

static void check(int ok, const char *what, const char *detail) {
  if (!ok) {
    fprintf(stderr, "fuzz_collector_config: invariant broken: %s\n  %s\n", what,
            detail ? detail : "");
    abort();
  }
}

static void check_config(const tp_collector_config *c) {
  check(c->database != NULL && c->database[0] != '\0', "database set", NULL);
  check(strlen(c->database) <= TP_COLLECTOR_MAX_DB_PATH, "database length", c->database);
  check(c->max_body_bytes >= TP_COLLECTOR_MIN_MAX_BODY &&
            c->max_body_bytes <= TP_COLLECTOR_MAX_MAX_BODY,
        "max_body_bytes in range", NULL);
  check((unsigned)c->log_level <= TP_LOG_ERROR, "log level", NULL);
  check(c->listen.len > 0 && c->listen.len <= sizeof(c->listen.ss), "listen address", NULL);
  /* HTTPS, or plain HTTP said explicitly; and at least one way in. */
  check(c->insecure_plaintext != (c->tls.cert_file != NULL), "TLS or explicit plaintext", NULL);
  check((c->tls.cert_file == NULL) == (c->tls.key_file == NULL), "certificate with its key",
        NULL);
  check(c->auth.tokens_file != NULL || c->tls.client_ca_file != NULL ||
            c->auth.allow_unauthenticated,
        "a way in", NULL);
  const tp_collector_limits *l = &c->limits;
  check(l->max_connections >= 1 && l->max_connections_per_ip >= 1 &&
            l->max_connections_per_ip <= l->max_connections,
        "connection limits", NULL);
  check(l->header_timeout_ms <= l->request_timeout_ms, "header within the request timeout", NULL);
  check(l->max_buffered_bytes >= c->max_body_bytes, "a whole body can be buffered", NULL);
  check(l->agent_rate >= 1 && l->agent_burst >= 1, "rate limits", NULL);
  /* Raw rows outlive max_result_age (dedup), rollups outlive raw rows. */
  const tp_collector_retention *r = &c->retention;
  check(r->raw_ms >= c->max_result_age_ms && r->raw_ms >= 3600000, "retention.raw in range", NULL);
  check(r->rollups_ms >= r->raw_ms && r->rollups_ms <= (uint64_t)3650 * 86400000,
        "retention.rollups in range", NULL);
  check(r->interval_ms >= 1000 && r->interval_ms <= 3600000, "retention.interval in range", NULL);
}

/* Returns 1 if the input loaded as a configuration, 0 if it was refused. */
static int load(const uint8_t *data, size_t size) {
  const char *path = tp_fuzz_file(0, data, size);
  char err[1024] = "";
  static tp_collector_config stale;
  tp_collector_config *c = &stale; /* the loader must reset it, even on failure */
  tp_err rc = tp_collector_config_load(path, &c, err, sizeof(err));
  if (rc == TP_E_OK) {
    check(c != NULL, "TP_E_OK with a config", NULL);
    check_config(c);
    tp_collector_config_free(c);
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
