/* report_json.c - the report as one JSON object (schema: docs/report.schema.json,
 * TP_REPORT_SCHEMA_VERSION). Keys are stable; a value that does not exist (no
 * success, so no latency; no resumption probe, so no rate) is null, never 0. Rates
 * are fractions 0..1, durations milliseconds with 3 decimals, times Unix seconds. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json_out.h"
#include "outcome.h"
#include "report_impl.h"
#include "report_output.h"

static tp_err json_key_str(tp_buf *b, const char *key, const char *value) {
  tp_err rc = tp_json_raw(b, ",\"%s\":", key);
  return rc == TP_E_OK ? tp_json_str(b, value) : rc;
}

/* "handshake_ms":{"p50":..,"p90":..,"p99":..,"p99_9":..} or null. */
static tp_err json_latency(tp_buf *b, const char *key, const tp_report_latency *l) {
  if (!l->set)
    return tp_json_raw(b, ",\"%s\":null", key);
  return tp_json_raw(b, ",\"%s\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f}", key,
                     (double)l->p50_ns / 1e6, (double)l->p90_ns / 1e6, (double)l->p99_ns / 1e6,
                     (double)l->p999_ns / 1e6);
}

static tp_err json_opt_i64(tp_buf *b, const char *key, tp_store_opt v) {
  if (!v.set)
    return tp_json_raw(b, ",\"%s\":null", key);
  return tp_json_raw(b, ",\"%s\":%" PRId64, key, v.v);
}

static tp_err json_opt_bool(tp_buf *b, const char *key, tp_store_opt v) {
  if (!v.set)
    return tp_json_raw(b, ",\"%s\":null", key);
  return tp_json_raw(b, ",\"%s\":%s", key, v.v ? "true" : "false");
}

/* Nanoseconds as milliseconds with 3 decimals, like the latency columns. */
static tp_err json_opt_ms(tp_buf *b, const char *key, tp_store_opt ns) {
  if (!ns.set)
    return tp_json_raw(b, ",\"%s\":null", key);
  return tp_json_raw(b, ",\"%s\":%.3f", key, (double)ns.v / 1e6);
}

static tp_err json_opt_str(tp_buf *b, const char *key, const char *value) {
  if (value == NULL)
    return tp_json_raw(b, ",\"%s\":null", key);
  return json_key_str(b, key, value);
}

/* "errors":[{"class":"expired","owner":"server","count":3,"latest_detail":".."}],
 * by class name (the outcome list is ordered by value, so sort names here). */
static tp_err json_errors(tp_buf *b, const tp_report_series *s) {
  int order[TP_REPORT_MAX_CLASS];
  size_t n = 0;
  for (int cls = 0; cls < TP_REPORT_MAX_CLASS; cls++) {
    const char *name = tp_outcome_name(cls);
    if (cls == TP_OUTCOME_OK || name == NULL || s->class_counts[cls] == 0)
      continue;
    size_t at = n++;
    while (at > 0 && strcmp(tp_outcome_name(order[at - 1]), name) > 0) { /* <= 24 names */
      order[at] = order[at - 1];
      at--;
    }
    order[at] = cls;
  }
  tp_err rc = tp_json_raw(b, ",\"errors\":[");
  for (size_t i = 0; rc == TP_E_OK && i < n; i++) {
    int cls = order[i];
    rc = tp_json_raw(b, "%s{\"class\":\"%s\",\"owner\":\"%s\",\"count\":%" PRIu64, i ? "," : "",
                     tp_outcome_name(cls),
                     tp_outcome_category_name(tp_outcome_category_of((tp_outcome)cls)),
                     s->class_counts[cls]);
    if (rc == TP_E_OK)
      rc = json_opt_str(b, "latest_detail", s->class_example[cls]);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, "}");
  }
  return rc == TP_E_OK ? tp_json_raw(b, "]") : rc;
}

/* Rates are fractions 0..1 with 6 decimals: 99.9 % is 0.999000. */
static tp_err json_rate(tp_buf *b, const char *key, tp_report_rate r) {
  if (!r.set)
    return tp_json_raw(b, ",\"%s\":null", key);
  return tp_json_raw(b, ",\"%s\":%.6f", key, r.fraction);
}

/* A list of strings; null when stored before its schema version. */
static tp_err json_strings(tp_buf *b, const char *key, const tp_store_strings *l) {
  tp_err rc = tp_json_raw(b, ",\"%s\":", key);
  if (rc != TP_E_OK || !l->set)
    return rc == TP_E_OK ? tp_json_raw(b, "null") : rc;
  return tp_json_str_array(b, l->items, l->n);
}

/* The chain in the field order ingest always stored (chain_json.c). */
static tp_err json_chain(tp_buf *b, const tp_store_facts *f) {
  tp_err rc = tp_json_raw(b, ",\"chain\":[");
  for (size_t i = 0; rc == TP_E_OK && i < f->n_chain; i++) {
    const tp_store_cert *c = &f->chain[i];
    rc = tp_json_raw(b, "%s{\"subject\":", i ? "," : "");
    if (rc == TP_E_OK)
      rc = tp_json_str(b, c->subject);
    if (rc == TP_E_OK)
      rc = json_key_str(b, "issuer", c->issuer);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, ",\"san_dns\":");
    if (rc == TP_E_OK)
      rc = tp_json_str_array(b, c->san_dns.items, c->san_dns.n);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, ",\"not_before_unix\":%" PRId64 ",\"not_after_unix\":%" PRId64,
                       c->not_before_unix, c->not_after_unix);
    if (rc == TP_E_OK)
      rc = json_key_str(b, "key_type", c->key_type);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, ",\"key_bits\":%" PRIu32, c->key_bits);
    if (rc == TP_E_OK)
      rc = json_key_str(b, "signature_algorithm", c->signature_algorithm);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, "}");
  }
  return rc == TP_E_OK ? tp_json_raw(b, "]") : rc;
}

static tp_err json_ocsp(tp_buf *b, const tp_store_facts *f) {
  if (!f->ocsp_stapled)
    return tp_json_raw(b, ",\"ocsp\":null");
  tp_err rc = tp_json_raw(b, ",\"ocsp\":{\"cert_status\":");
  if (rc == TP_E_OK)
    rc = tp_json_str(b, f->ocsp_cert_status ? f->ocsp_cert_status : "");
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "this_update_unix", f->ocsp_this_update_unix);
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "next_update_unix", f->ocsp_next_update_unix);
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "age_seconds", f->ocsp_age_seconds);
  return rc == TP_E_OK ? tp_json_raw(b, "}") : rc;
}

static tp_err json_http(tp_buf *b, const tp_store_facts *f) {
  if (!f->http_present)
    return tp_json_raw(b, ",\"http\":null");
  tp_err rc = tp_json_raw(b, ",\"http\":{\"status\":%" PRId64, f->http_status.v);
  if (rc == TP_E_OK)
    rc = json_opt_ms(b, "first_byte_ms", f->http_first_byte_ns);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "hsts", f->http_hsts);
  return rc == TP_E_OK ? tp_json_raw(b, "}") : rc;
}

static tp_err json_facts(tp_buf *b, const tp_store_facts *f) {
  tp_err rc = json_key_str(b, "tls_version", f->tls_version);
  if (rc == TP_E_OK)
    rc = json_key_str(b, "cipher", f->cipher);
  if (rc == TP_E_OK)
    rc = json_key_str(b, "group", f->group);
  if (rc == TP_E_OK)
    rc = json_key_str(b, "alpn", f->alpn);
  /* days_to_earliest_expiry is only meaningful with a chain (tlsprobe.proto). */
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "days_to_earliest_expiry", f->days_to_earliest_expiry);
  if (rc == TP_E_OK)
    rc = json_key_str(b, "error_detail", f->error_detail);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"resumed\":%s,\"hello_retry_request\":%s", f->resumed ? "true" : "false",
                     f->hello_retry_request ? "true" : "false");
  /* Schema version 2 facts: null for a result stored before them. */
  if (rc == TP_E_OK)
    rc = json_opt_str(b, "mode", f->mode);
  if (rc == TP_E_OK)
    rc = json_strings(b, "groups_offered", &f->groups_offered);
  if (rc == TP_E_OK)
    rc = json_strings(b, "key_shares_offered", &f->key_shares_offered);
  if (rc == TP_E_OK)
    rc = json_opt_str(b, "fidelity_note", f->fidelity_note);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "ticket_received", f->ticket_received);
  if (rc == TP_E_OK)
    rc = json_opt_ms(b, "resumption_handshake_ms", f->resumption_handshake_ns);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "early_data_attempted", f->early_data_attempted);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "early_data_accepted", f->early_data_accepted);
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "chain_length_sent", f->chain_length_sent);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "chain_complete", f->chain_complete);
  if (rc == TP_E_OK)
    rc = json_ocsp(b, f);
  if (rc == TP_E_OK)
    rc = json_http(b, f);
  /* Schema version 3 facts: null for a result stored before them. */
  if (rc == TP_E_OK)
    rc = json_opt_str(b, "address_family", f->address_family);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "emulation_checked", f->emulation_checked);
  if (rc == TP_E_OK)
    rc = json_opt_str(b, "emulation_divergence", f->emulation_divergence);
  if (rc == TP_E_OK)
    rc = json_opt_bool(b, "early_data_policy_violation", f->early_data_policy_violation);
  if (rc == TP_E_OK)
    rc = json_chain(b, f);
  return rc;
}

static tp_err json_dist(tp_buf *b, const char *key, const tp_report_dist *d) {
  tp_err rc = tp_json_raw(b, ",\"%s\":[", key);
  for (size_t i = 0; rc == TP_E_OK && i < d->n; i++) {
    rc = tp_json_raw(b, "%s{\"name\":", i ? "," : "");
    if (rc == TP_E_OK)
      rc = tp_json_str(b, d->items[i].name);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, ",\"count\":%" PRIu64 "}", d->items[i].count);
  }
  return rc == TP_E_OK ? tp_json_raw(b, "]") : rc;
}

static tp_err json_buckets(tp_buf *b, const tp_report *r, const tp_report_series *s) {
  if (s->buckets == NULL)
    return TP_E_OK;
  tp_err rc = tp_json_raw(b, ",\"timeline\":[");
  for (size_t i = 0; rc == TP_E_OK && i < r->query.buckets; i++) {
    const tp_report_bucket *k = &s->buckets[i];
    rc = tp_json_raw(b,
                     "%s{\"start_unix\":%" PRId64 ",\"probes\":%" PRIu64 ",\"successes\":%" PRIu64,
                     i ? "," : "", k->start_unix_ns / 1000000000, k->probes, k->successes);
    if (rc == TP_E_OK)
      rc = json_rate(
          b, "success_rate",
          (tp_report_rate){.set = k->probes > 0,
                           .fraction = k->probes ? (double)k->successes / (double)k->probes : 0});
    if (rc == TP_E_OK)
      rc = json_opt_ms(b, "handshake_p99_ms",
                       (tp_store_opt){.set = k->have_p99, .v = (int64_t)k->p99_ns});
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, "}");
  }
  return rc == TP_E_OK ? tp_json_raw(b, "]") : rc;
}

/* The grouped dimensions by name; the others null. */
static tp_err json_key(tp_buf *b, const tp_report_series *s) {
  tp_err rc = TP_E_OK;
  for (int d = 0; rc == TP_E_OK && d < TP_DIM_COUNT; d++) {
    rc = tp_json_raw(b, "%s\"%s\":", d ? "," : "", tp_report_dim_name((tp_report_dim)d));
    if (rc == TP_E_OK)
      rc = s->key[d] ? tp_json_str(b, s->key[d]) : tp_json_raw(b, "null");
  }
  return rc;
}

static tp_err json_series(tp_buf *b, const tp_report *r, const tp_report_series *s) {
  tp_err rc = tp_json_raw(b, "{");
  if (rc == TP_E_OK)
    rc = json_key(b, s);
  if (rc == TP_E_OK)
    rc =
        tp_json_raw(b,
                    ",\"probes\":%" PRIu64 ",\"successes\":%" PRIu64
                    ",\"divergent_successes\":%" PRIu64 ",\"emulation_checked_successes\":%" PRIu64,
                    s->probes, s->successes, s->divergent, s->emulation_checked);

  if (rc == TP_E_OK)
    rc = json_rate(b, "success_rate", s->success_rate);
  if (rc == TP_E_OK)
    rc = json_latency(b, "handshake_ms", &s->handshake);
  if (rc == TP_E_OK)
    rc = json_latency(b, "connect_ms", &s->connect);
  if (rc == TP_E_OK)
    rc = json_latency(b, "total_ms", &s->total);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"loop_lag_ms\":{\"mean\":%.3f,\"p99\":%.3f}", s->mean_loop_lag_ms,
                     (double)s->loop_lag_p99_ns / 1e6);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b,
                     ",\"saturated\":{\"results\":%" PRIu64 ",\"excluded_from_latency\":%" PRIu64
                     "}",
                     s->saturated, s->saturated_excluded);
  if (rc == TP_E_OK && s->top_error != NULL)
    rc = tp_json_raw(b, ",\"top_error\":{\"class\":\"%s\",\"count\":%" PRIu64 ",\"owner\":\"%s\"}",
                     s->top_error, s->top_error_count,
                     s->top_error_category ? s->top_error_category : "internal");
  else if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"top_error\":null");
  if (rc == TP_E_OK)
    rc = json_errors(b, s);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b,
                     ",\"hrr\":%" PRIu64 ",\"resumption_probes\":%" PRIu64 ",\"resumed\":%" PRIu64
                     ",\"early_data_attempts\":%" PRIu64 ",\"early_data_accepts\":%" PRIu64
                     ",\"ocsp_stapled\":%" PRIu64,
                     s->hrr, s->resumption_probes, s->resumed, s->early_data_attempts,
                     s->early_data_accepts, s->ocsp_stapled);
  if (rc == TP_E_OK)
    rc = json_rate(b, "hrr_rate", s->hrr_rate);
  if (rc == TP_E_OK)
    rc = json_rate(b, "resumption_rate", s->resumption_rate);
  if (rc == TP_E_OK)
    rc = json_rate(b, "early_data_accept_rate", s->early_data_accept_rate);
  if (rc == TP_E_OK)
    rc = json_rate(b, "ocsp_staple_rate", s->ocsp_staple_rate);
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "min_days_to_expiry", s->min_days_to_expiry);
  if (rc == TP_E_OK)
    rc = json_opt_i64(b, "ocsp_max_age_seconds", s->ocsp_max_age_seconds);
  if (rc == TP_E_OK)
    rc = json_opt_str(b, "divergence_example", s->divergence_example);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"early_data_policy_violations\":%" PRIu64, s->early_data_violations);
  if (rc == TP_E_OK)
    rc = json_dist(b, "versions", &s->versions);
  if (rc == TP_E_OK)
    rc = json_dist(b, "ciphers", &s->ciphers);
  if (rc == TP_E_OK)
    rc = json_dist(b, "groups", &s->groups);
  if (rc == TP_E_OK)
    rc = json_buckets(b, r, s);
  if (rc == TP_E_OK && s->have_facts) {
    rc = tp_json_raw(b, ",\"latest\":{\"started_unix\":%" PRId64,
                     s->facts.started_unix_ns / 1000000000);
    if (rc == TP_E_OK)
      rc = json_facts(b, &s->facts);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, "}");
  }
  return rc == TP_E_OK ? tp_json_raw(b, "}") : rc;
}

tp_err tp__report_json_warnings(tp_buf *b, const char *key, const tp_report_warning *w, size_t n) {
  tp_err rc = tp_json_raw(b, ",\"%s\":[", key);
  for (size_t i = 0; rc == TP_E_OK && i < n; i++) {
    rc = tp_json_raw(b, "%s{\"level\":\"%s\",\"index\":%zu,\"text\":", i ? "," : "",
                     w[i].level == TP_REPORT_CRIT ? "CRIT" : "WARN", w[i].series);
    if (rc == TP_E_OK)
      rc = tp_json_str(b, w[i].text);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, "}");
  }
  return rc == TP_E_OK ? tp_json_raw(b, "]") : rc;
}

static tp_err json_certs(tp_buf *b, const tp_report *r) {
  tp_err rc = tp_json_raw(b, ",\"certificates\":[");
  for (size_t i = 0; rc == TP_E_OK && i < r->n_certs; i++) {
    const tp_report_cert *c = &r->certs[i];
    int threshold;
    int level = tp_report_expiry_level(c->days_left, &threshold);
    rc = tp_json_raw(b, "%s{\"target\":", i ? "," : "");
    if (rc == TP_E_OK)
      rc = tp_json_str(b, c->target);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b,
                       ",\"position\":%" PRIu32 ",\"not_after_unix\":%" PRId64
                       ",\"days_left\":%" PRId64 ",\"severity\":\"%s\",\"series\":%" PRIu64,
                       c->position, c->not_after_unix, c->days_left,
                       level == TP_REPORT_CRIT   ? "CRIT"
                       : level == TP_REPORT_WARN ? "WARN"
                                                 : "ok",
                       c->series);
    if (rc == TP_E_OK)
      rc = json_key_str(b, "subject", c->subject);
    if (rc == TP_E_OK)
      rc = json_key_str(b, "issuer", c->issuer);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, "}");
  }
  return rc == TP_E_OK ? tp_json_raw(b, "]") : rc;
}

static tp_err json_query(tp_buf *b, const tp_report *r, const tp_report_output *o) {
  const tp_report_query *q = &r->query;
  tp_err rc = tp_json_raw(b,
                          "{\"schema\":\"tlsprobe-report\",\"schema_version\":%d,\"view\":\"%s\""
                          ",\"generated_unix\":%" PRId64 ",\"window\":{\"since_unix\":%" PRId64
                          ",\"until_unix\":%" PRId64 ",\"seconds\":%" PRId64 "}"
                          ",\"source\":\"%s\",\"not_rolled_up\":%" PRIu64 ",\"by\":[",
                          TP_REPORT_SCHEMA_VERSION, tp_report_view_name(o->view),
                          q->now_unix_ns / 1000000000, q->since_unix_ns / 1000000000,
                          q->until_unix_ns / 1000000000,
                          (q->until_unix_ns - q->since_unix_ns) / 1000000000,
                          r->from_rollups ? "rollup" : "raw", r->from_rollups ? r->not_rolled_up : 0);
  for (size_t i = 0; rc == TP_E_OK && i < q->n_by; i++)
    rc = tp_json_raw(b, "%s\"%s\"", i ? "," : "", tp_report_dim_name(q->by[i]));
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, "],\"filters\":{");
  for (int d = 0; rc == TP_E_OK && d < TP_DIM_COUNT; d++) {
    rc = tp_json_raw(b, "%s\"%s\":", d ? "," : "", tp_report_dim_name((tp_report_dim)d));
    if (rc == TP_E_OK)
      rc = q->glob[d] ? tp_json_str(b, q->glob[d]) : tp_json_raw(b, "null");
  }
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, "},\"include_saturated\":%s,\"total_probes\":%" PRIu64,
                     q->include_saturated ? "true" : "false", r->total_probes);
  return rc;
}

/* view target: {"region": ..., "probes": N, "timeline": [...]} per region. */
static tp_err json_region_timelines(tp_buf *b, const tp_report *by_region) {
  tp_err rc = tp_json_raw(b, ",\"region_timelines\":[");
  for (size_t i = 0; rc == TP_E_OK && i < by_region->n_series; i++) {
    const tp_report_series *s = &by_region->series[i];
    rc = tp_json_raw(b, "%s{\"region\":", i ? "," : "");
    if (rc == TP_E_OK)
      rc = tp_json_str(b, s->region);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, ",\"probes\":%" PRIu64, s->probes);
    if (rc == TP_E_OK)
      rc = json_buckets(b, by_region, s);
    if (rc == TP_E_OK)
      rc = tp_json_raw(b, "}");
  }
  return rc == TP_E_OK ? tp_json_raw(b, "]") : rc;
}

tp_err tp__report_json(const tp_report *r, const tp_report_output *o, tp_buf *b) {
  tp_err rc = json_query(b, r, o);
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, ",\"series\":[");
  for (size_t i = 0; rc == TP_E_OK && i < r->n_series; i++) {
    if (i > 0)
      rc = tp_json_raw(b, ",");
    if (rc == TP_E_OK)
      rc = json_series(b, r, &r->series[i]);
  }
  if (rc == TP_E_OK)
    rc = tp_json_raw(b, "]");
  if (rc == TP_E_OK && o->by_region != NULL)
    rc = json_region_timelines(b, o->by_region);
  if (rc == TP_E_OK)
    rc = tp__report_json_warnings(b, "warnings", r->warnings, r->n_warnings);
  if (rc == TP_E_OK)
    rc = json_certs(b, r);
  if (rc == TP_E_OK)
    rc = tp__report_slo_json(r, b);
  if (rc == TP_E_OK)
    rc = tp__report_delivery_json(r, b);
  if (rc == TP_E_OK)
    rc = tp__report_json_warnings(b, "agent_warnings", r->agent_warnings, r->n_agent_warnings);
  return rc == TP_E_OK ? tp_json_raw(b, "}\n") : rc;
}
