/* validate.c - ResultBatch validation. Checks stop at the first problem: the reason
 * names one field path so an agent developer can find the bug without a debugger. */
#include "validate.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "outcome.h"
#include "tp_text.h"

int tp_utf8_valid(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    /* ASCII a word at a time: nearly every byte of a batch is ASCII, and calling the
     * decoder per byte was a tenth of ingest's CPU. */
    uint64_t w;
    if (n - i >= sizeof(w)) {
      memcpy(&w, s + i, sizeof(w));
      if ((w & UINT64_C(0x8080808080808080)) == 0) {
        i += sizeof(w);
        continue;
      }
    }
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    uint32_t cp;
    size_t len = tp_utf8_seq(s + i, n - i, &cp);
    if (len == 0)
      return 0;
    i += len;
  }
  return 1;
}

/* Where a check is, for messages: "results[3].port", "results[0].chain[1].subject".
 * Kept as indices and written out only when a check fails: formatting the path of
 * every result, certificate and list entry cost more than the checks. */
typedef struct vctx {
  char *reason;
  size_t len;
  const char *top; /* "results", "drops", or NULL (the batch itself) */
  size_t top_i;
  bool in_chain;
  size_t chain_i;
} vctx;

static tp_err bad(vctx *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tp_err bad(vctx *v, const char *field, const char *fmt, ...) {
  char path[96] = "";
  size_t o = 0;
  if (v->top != NULL)
    o = (size_t)snprintf(path, sizeof(path), "%s[%zu]", v->top, v->top_i);
  if (v->in_chain && o < sizeof(path))
    (void)snprintf(path + o, sizeof(path) - o, o ? ".chain[%zu]" : "chain[%zu]", v->chain_i);
  int n = snprintf(v->reason, v->len, "%s%s%s: ", path, path[0] ? "." : "", field);
  if (n >= 0 && (size_t)n < v->len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason + n, v->len - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return TP_E_VALIDATE;
}

/* A string field: valid UTF-8, at most max bytes, non-empty if required. */
static tp_err check_str(vctx *v, const char *field, const char *s, size_t max, bool required) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 && required)
    return bad(v, field, "must not be empty");
  if (n > max)
    return bad(v, field, "%zu bytes exceeds the limit of %zu", n, max);
  if (!tp_utf8_valid((const unsigned char *)s, n))
    return bad(v, field, "invalid UTF-8");
  return TP_E_OK;
}

/* check_str of entry i of a repeated field, named "field[i]" only when it fails. */
static tp_err check_item(vctx *v, const char *field, size_t i, const char *s, size_t max,
                         bool required) {
  size_t n = s ? strlen(s) : 0;
  if ((n > 0 || !required) && n <= max && tp_utf8_valid((const unsigned char *)s, n))
    return TP_E_OK;
  char name[48];
  snprintf(name, sizeof(name), "%s[%zu]", field, i);
  return check_str(v, name, s, max, required);
}

static tp_err check_duration(vctx *v, const char *field, uint64_t ns) {
  if (ns <= TP_V_MAX_DURATION_NS)
    return TP_E_OK;
  return bad(v, field, "%" PRIu64 " ns exceeds the limit of 1 hour", ns);
}

/* One phase of a probe: bounded by its own deadline (tp_limits.h). */
static tp_err check_phase(vctx *v, const char *field, uint64_t ns) {
  if (ns <= TP_V_MAX_PHASE_NS)
    return TP_E_OK;
  return bad(v, field, "%" PRIu64 " ns exceeds the limit of 10 minutes (no probe timeout can be "
                       "set above 5 minutes)", ns);
}

static tp_err check_agent_id(vctx *v, const char *field, const char *id, bool required) {
  tp_err rc = check_str(v, field, id, TP_V_MAX_AGENT_ID, required);
  if (rc != TP_E_OK)
    return rc;
  /* Agent ids appear in logs as key=value and in reports: printable ASCII only. */
  for (const unsigned char *p = (const unsigned char *)(id ? id : ""); *p; p++)
    if (*p < 0x21 || *p > 0x7E)
      return bad(v, field, "must be printable ASCII without spaces");
  return TP_E_OK;
}

static tp_err check_cert(vctx *v, const Tlsprobe__V1__CertificateFacts *c) {
  tp_err rc = check_str(v, "subject", c->subject, TP_V_MAX_CERT_TEXT, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "issuer", c->issuer, TP_V_MAX_CERT_TEXT, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "key_type", c->key_type, TP_V_MAX_SHORT, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "signature_algorithm", c->signature_algorithm, TP_V_MAX_SHORT, false);
  if (rc == TP_E_OK && c->n_san_dns > TP_V_MAX_SANS)
    return bad(v, "san_dns", "too many entries (limit 1000)");
  for (size_t i = 0; rc == TP_E_OK && i < c->n_san_dns; i++)
    rc = check_item(v, "san_dns", i, c->san_dns[i], TP_V_MAX_HOST, false);
  return rc;
}

static tp_err check_strings(vctx *v, const Tlsprobe__V1__ProbeResult *r) {
  static const size_t SHORT = TP_V_MAX_SHORT;
  tp_err rc = check_str(v, "target", r->target, TP_V_MAX_TARGET, true);
  if (rc == TP_E_OK)
    rc = check_str(v, "profile", r->profile, TP_V_MAX_PROFILE, true);
  if (rc == TP_E_OK)
    rc = check_str(v, "host", r->host, TP_V_MAX_HOST, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "region", r->region, TP_V_MAX_REGION, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "sni", r->sni, TP_V_MAX_HOST, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "address", r->address, SHORT, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "error_detail", r->error_detail, TP_V_MAX_DETAIL, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "tls_version", r->tls_version, SHORT, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "cipher", r->cipher, SHORT, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "group", r->group, SHORT, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "alpn", r->alpn, SHORT, false);
  if (rc == TP_E_OK)
    rc = check_str(v, "server_signature_algorithm", r->server_signature_algorithm, SHORT, false);
  return rc;
}

/* A repeated string field: at most TP_V_MAX_OFFERED non-empty entries. */
static tp_err check_str_list(vctx *v, const char *field, char *const *items, size_t n) {
  if (n > TP_V_MAX_OFFERED)
    return bad(v, field, "%zu entries exceeds the limit of %d", n, TP_V_MAX_OFFERED);
  tp_err rc = TP_E_OK;
  for (size_t i = 0; rc == TP_E_OK && i < n; i++)
    rc = check_item(v, field, i, items[i], TP_V_MAX_SHORT, true);
  return rc;
}

/* A rejected value echoed in a reason: the reason is logged as reason="..." and
 * sent back, so only printable ASCII survives (others become '?'), and at most
 * 32 bytes of it. */
static const char *echo(const char *s, char out[36]) {
  size_t i = 0;
  for (; s != NULL && s[i] != '\0' && i < 32; i++)
    out[i] = (s[i] >= 0x20 && s[i] < 0x7F && s[i] != '"' && s[i] != '\\') ? s[i] : '?';
  if (s != NULL && s[i] != '\0') {
    memcpy(out + i, "...", 3);
    i += 3;
  }
  out[i] = '\0';
  return out;
}

/* 0 if s is one of the n names, else -1. */
static int one_of(const char *s, const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0)
      return 0;
  return -1;
}

/* What the profile emulated and how the probe ran (fields 37-44). */
static tp_err check_evidence(vctx *v, const Tlsprobe__V1__ProbeResult *r) {
  /* "" = an agent that predates modes: a plain handshake. */
  static const char *const modes[] = {"", "handshake", "resumption", "early_data"};
  tp_err rc = check_str_list(v, "groups_offered", r->groups_offered, r->n_groups_offered);
  if (rc == TP_E_OK)
    rc = check_str_list(v, "key_shares_offered", r->key_shares_offered, r->n_key_shares_offered);
  if (rc == TP_E_OK)
    rc = check_str(v, "mode", r->mode, TP_V_MAX_SHORT, false);
  char shown[36];
  if (rc == TP_E_OK && one_of(r->mode ? r->mode : "", modes, 4) != 0)
    return bad(v, "mode", "\"%s\" is not one of handshake, resumption, early_data",
               echo(r->mode, shown));
  if (rc == TP_E_OK)
    rc = check_str(v, "fidelity_note", r->fidelity_note, TP_V_MAX_NOTE, false);
  if (rc == TP_E_OK)
    rc = check_phase(v, "resumption_handshake_ns", r->resumption_handshake_ns);
  /* The server can only accept early data the client sent (RFC 8446 §4.2.10). */
  if (rc == TP_E_OK && r->early_data_accepted && !r->early_data_attempted)
    return bad(v, "early_data_accepted", "true without early_data_attempted");
  if (rc == TP_E_OK && r->early_data_policy_violation && !r->early_data_accepted)
    return bad(v, "early_data_policy_violation", "true without early_data_accepted");
  if (rc == TP_E_OK)
    rc = check_str(v, "emulation_divergence", r->emulation_divergence, TP_V_MAX_NOTE, false);
  if (rc == TP_E_OK && r->emulation_divergence != NULL && r->emulation_divergence[0] != '\0' &&
      !r->emulation_checked)
    return bad(v, "emulation_divergence", "set without emulation_checked");
  static const char *const families[] = {"", "ipv4", "ipv6"};
  if (rc == TP_E_OK && one_of(r->address_family ? r->address_family : "", families, 3) != 0)
    return bad(v, "address_family", "\"%s\" is not one of ipv4, ipv6",
               echo(r->address_family, shown));
  return rc;
}

static tp_err check_ocsp_time(vctx *v, const char *field, int64_t t) {
  if (t >= -TP_V_MAX_OCSP_TIME && t <= TP_V_MAX_OCSP_TIME)
    return TP_E_OK;
  return bad(v, field, "%" PRId64 " is beyond year 9999", t);
}

/* Presence of the message = a staple was received. */
static tp_err check_ocsp(vctx *v, const Tlsprobe__V1__OcspFacts *o) {
  static const char *const statuses[] = {"good", "revoked", "unknown"};
  tp_err rc = check_str(v, "ocsp.cert_status", o->cert_status, TP_V_MAX_SHORT, false);
  char shown[36];
  if (rc == TP_E_OK && one_of(o->cert_status ? o->cert_status : "", statuses, 3) != 0)
    return bad(v, "ocsp.cert_status", "\"%s\" is not one of good, revoked, unknown",
               echo(o->cert_status, shown));
  if (rc == TP_E_OK)
    rc = check_ocsp_time(v, "ocsp.this_update_unix", o->this_update_unix);
  if (rc == TP_E_OK)
    rc = check_ocsp_time(v, "ocsp.next_update_unix", o->next_update_unix);
  if (rc == TP_E_OK)
    rc = check_ocsp_time(v, "ocsp.age_seconds", o->age_seconds);
  return rc;
}

static tp_err check_http(vctx *v, const Tlsprobe__V1__HttpFacts *h) {
  if (h->status > TP_V_MAX_HTTP_STATUS) /* 0 = no valid status line */
    return bad(v, "http.status", "%" PRIu32 " is out of range 0..999", h->status);
  return check_phase(v, "http.first_byte_ns", h->first_byte_ns);
}

static tp_err check_outcome(vctx *v, const Tlsprobe__V1__ProbeResult *r) {
  int cls = (int)r->error_class;
  if (cls == 0 || !tp_outcome_is_valid(cls)) {
    return bad(v, "error_class", "%d is not a known error class", cls);
  }
  bool class_ok = cls == TP_OUTCOME_OK;
  if ((r->ok != 0) != class_ok) {
    return bad(v, "ok", "ok=%s contradicts error_class %s", r->ok ? "true" : "false",
               tp_outcome_name(cls));
  }
  return TP_E_OK;
}

/* The engine's phases (DNS, connect, handshake) are disjoint slices of the probe's
 * interval and each has the loop lag within it subtracted, while total_ns has all of
 * the probe's lag subtracted: so dns + connect + handshake <= total + loop_lag holds by
 * construction (probes/engine/probe.c), and a strict "<= total" would not (a lag stamp
 * can count time just before a phase began). total_ns 0 is "not measured" (minimal
 * error records keep only what they can vouch for). */
static tp_err check_phase_sum(vctx *v, const Tlsprobe__V1__ProbeResult *r) {
  uint64_t phases = r->dns_ns + r->connect_ns + r->handshake_ns; /* each <= 10 min: no overflow */
  if (r->total_ns == 0 || phases <= r->total_ns + r->loop_lag_ns)
    return TP_E_OK;
  return bad(v, "total_ns",
             "%" PRIu64 " ns is less than dns_ns + connect_ns + handshake_ns = %" PRIu64
             " ns (with loop_lag_ns %" PRIu64 ")",
             r->total_ns, phases, r->loop_lag_ns);
}

static tp_err check_timing(vctx *v, const Tlsprobe__V1__ProbeResult *r) {
  if (r->started_unix_ns <= 0) {
    return bad(v, "started_unix_ns", "%" PRId64 " is not a positive timestamp", r->started_unix_ns);
  }
  tp_err rc = check_phase(v, "dns_ns", r->dns_ns);
  if (rc == TP_E_OK)
    rc = check_phase(v, "connect_ns", r->connect_ns);
  if (rc == TP_E_OK)
    rc = check_phase(v, "handshake_ns", r->handshake_ns);
  if (rc == TP_E_OK)
    rc = check_duration(v, "total_ns", r->total_ns);
  if (rc == TP_E_OK)
    rc = check_duration(v, "loop_lag_ns", r->loop_lag_ns);
  if (rc == TP_E_OK)
    rc = check_duration(v, "schedule_lateness_ns", r->schedule_lateness_ns);
  if (rc == TP_E_OK)
    rc = check_phase_sum(v, r);
  return rc;
}

/* A drop report must be countable without trusting anything else in it: a known
 * reason, a positive count that matches its sequence range when it has one, and
 * times in order. */
static tp_err check_drop(vctx *v, const Tlsprobe__V1__DropReport *d) {
  if (d->drop_id == 0)
    return bad(v, "drop_id", "is 0 (drop reports are numbered from 1)");
  if (d->drop_id > (uint64_t)INT64_MAX || d->last_seq > (uint64_t)INT64_MAX)
    return bad(v, "drop_id", "drop_id and sequence numbers must not exceed %" PRId64, INT64_MAX);
  if (d->count == 0 || d->count > TP_V_MAX_DROP_COUNT)
    return bad(v, "count", "%" PRIu64 " is out of range 1..%" PRIu64, d->count,
               (uint64_t)TP_V_MAX_DROP_COUNT);
  if (d->reason == NULL || one_of(d->reason, tp_wire_drop_reasons, TP_WIRE_DROP_REASONS) < 0) {
    char shown[36];
    return bad(v, "reason", "\"%s\" is not spool_full, spool_error, invalid_result or too_old",
               echo(d->reason ? d->reason : "", shown));
  }
  if ((d->first_seq == 0) != (d->last_seq == 0))
    return bad(v, "first_seq", "first_seq and last_seq must both be 0 or both be set");
  if (d->first_seq != 0 && (d->last_seq < d->first_seq || d->last_seq - d->first_seq + 1 != d->count))
    return bad(v, "last_seq", "range %" PRIu64 "..%" PRIu64 " does not hold count=%" PRIu64,
               d->first_seq, d->last_seq, d->count);
  if (d->first_unix_ns <= 0 || d->last_unix_ns < d->first_unix_ns)
    return bad(v, "first_unix_ns", "times %" PRId64 "..%" PRId64 " are not positive and in order",
               d->first_unix_ns, d->last_unix_ns);
  return TP_E_OK;
}

static tp_err check_result(vctx *v, const char *batch_agent_id,
                           const Tlsprobe__V1__ProbeResult *r) {
  tp_err rc = check_agent_id(v, "agent_id", r->agent_id, false);
  if (rc == TP_E_OK && r->agent_id != NULL && r->agent_id[0] != '\0' &&
      strcmp(r->agent_id, batch_agent_id) != 0)
    return bad(v, "agent_id", "differs from the batch agent_id");
  if (rc == TP_E_OK)
    rc = check_strings(v, r);
  if (rc == TP_E_OK && (r->port < 1 || r->port > 65535)) {
    return bad(v, "port", "%" PRIu32 " is out of range 1..65535", r->port);
  }
  if (rc == TP_E_OK)
    rc = check_outcome(v, r);
  if (rc == TP_E_OK)
    rc = check_timing(v, r);
  if (rc == TP_E_OK)
    rc = check_evidence(v, r);
  if (rc == TP_E_OK && r->ocsp != NULL)
    rc = check_ocsp(v, r->ocsp);
  if (rc == TP_E_OK && r->http != NULL)
    rc = check_http(v, r->http);
  if (rc == TP_E_OK && r->n_chain > TP_V_MAX_CHAIN)
    return bad(v, "chain", "too many certificates (limit 32)");
  /* The stored chain may be capped, so it can be shorter than what was sent, never
   * longer; 0 = not reported (an agent older than field 82). */
  if (rc == TP_E_OK && r->chain_length_sent != 0 && r->chain_length_sent < r->n_chain)
    return bad(v, "chain_length_sent", "%" PRIu32 " is less than the %zu certificates in chain",
               r->chain_length_sent, r->n_chain);
  for (size_t i = 0; rc == TP_E_OK && i < r->n_chain; i++) {
    v->in_chain = true;
    v->chain_i = i;
    rc = check_cert(v, r->chain[i]);
  }
  if (rc == TP_E_OK)
    v->in_chain = false; /* a failure keeps it: the message is written already */
  return rc;
}

tp_err tp_validate_batch(const Tlsprobe__V1__ResultBatch *batch, char *reason, size_t len) {
  vctx v = {.reason = reason, .len = len};
  /* First: a zero-length body decodes to an empty batch, and "empty batch" is
   * what its sender needs to hear. */
  if (batch->n_results == 0 && batch->n_drops == 0) {
    snprintf(reason, len, "empty batch");
    return TP_E_VALIDATE;
  }
  tp_err rc = check_agent_id(&v, "agent_id", batch->agent_id, true);
  if (rc != TP_E_OK)
    return rc;
  if (batch->n_results > TP_V_MAX_RESULTS) {
    return bad(&v, "results", "%zu results exceeds the limit of %d", batch->n_results,
               TP_V_MAX_RESULTS);
  }
  if (batch->n_drops > TP_V_MAX_DROPS) {
    return bad(&v, "drops", "%zu drop reports exceeds the limit of %d", batch->n_drops,
               TP_V_MAX_DROPS);
  }
  for (size_t i = 0; i < batch->n_results; i++) {
    v.top = "results";
    v.top_i = i;
    /* 0 is "not numbered": the collector could not tell a re-send from a new result. */
    if (batch->results[i]->result_seq == 0)
      return bad(&v, "result_seq", "is 0 (results are numbered from 1)");
    /* Stored as int64: above INT64_MAX it would read back negative and break max(). */
    if (batch->results[i]->result_seq > (uint64_t)INT64_MAX)
      return bad(&v, "result_seq", "%" PRIu64 " exceeds %" PRId64, batch->results[i]->result_seq,
                 INT64_MAX);
    /* Strictly increasing: a batch is a slice of the agent's spool, in order, so a
     * repeated number within one batch is a broken sender, not a re-send. */
    if (i > 0 && batch->results[i]->result_seq <= batch->results[i - 1]->result_seq)
      return bad(&v, "result_seq", "%" PRIu64 " does not follow %" PRIu64 " (must increase)",
                 batch->results[i]->result_seq, batch->results[i - 1]->result_seq);
    rc = check_result(&v, batch->agent_id, batch->results[i]);
    if (rc != TP_E_OK)
      return rc;
  }
  for (size_t i = 0; i < batch->n_drops; i++) {
    v.top = "drops";
    v.top_i = i;
    if (i > 0 && batch->drops[i]->drop_id <= batch->drops[i - 1]->drop_id)
      return bad(&v, "drop_id", "%" PRIu64 " does not follow %" PRIu64 " (must increase)",
                 batch->drops[i]->drop_id, batch->drops[i - 1]->drop_id);
    rc = check_drop(&v, batch->drops[i]);
    if (rc != TP_E_OK)
      return rc;
  }
  return TP_E_OK;
}

/* ---- the time window ----------------------------------------------------
 * Which results are believable depends on the receiver's clock, so this is not part
 * of tp_validate_batch (the agent validates before it knows when the batch will
 * arrive). */

/* "2262-04-11T23:47:16Z" (UTC, whole seconds; "?" beyond what gmtime can hold). */
static const char *utc_text(int64_t unix_ns, char out[32]) {
  time_t secs = (time_t)(unix_ns / 1000000000);
  struct tm tm;
  if (gmtime_r(&secs, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, 32, "?");
  return out;
}

static tp_err check_time(vctx *v, const char *field, int64_t t, const tp_time_window *w) {
  char when[32], clock[32];
  if (t > w->now_unix_ns && (uint64_t)(t - w->now_unix_ns) > w->max_skew_ns)
    return bad(v, field,
               "%s is more than %" PRIu64 " s ahead of the collector's clock (%s; "
               "max_clock_skew)",
               utc_text(t, when), w->max_skew_ns / 1000000000, utc_text(w->now_unix_ns, clock));
  if (t < w->now_unix_ns && (uint64_t)w->now_unix_ns - (uint64_t)t > w->max_age_ns)
    return bad(v, field,
               "%s is more than %" PRIu64 " s before the collector's clock (%s; "
               "max_result_age)",
               utc_text(t, when), w->max_age_ns / 1000000000, utc_text(w->now_unix_ns, clock));
  return TP_E_OK;
}

tp_err tp_validate_batch_window(const Tlsprobe__V1__ResultBatch *batch, const tp_time_window *w,
                                char *reason, size_t len) {
  vctx v = {.reason = reason, .len = len};
  tp_err rc = TP_E_OK;
  for (size_t i = 0; rc == TP_E_OK && i < batch->n_results; i++) {
    v.top = "results";
    v.top_i = i;
    rc = check_time(&v, "started_unix_ns", batch->results[i]->started_unix_ns, w);
  }
  /* Drop reports count loss; the older the loss, the more it matters that it is
   * seen (an outage longer than max_result_age is exactly when results are dropped).
   * Only a time ahead of the clock is refused. */
  tp_time_window drops_window = *w;
  drops_window.max_age_ns = UINT64_MAX;
  for (size_t i = 0; rc == TP_E_OK && i < batch->n_drops; i++) {
    v.top = "drops";
    v.top_i = i;
    rc = check_time(&v, "first_unix_ns", batch->drops[i]->first_unix_ns, &drops_window);
    if (rc == TP_E_OK)
      rc = check_time(&v, "last_unix_ns", batch->drops[i]->last_unix_ns, &drops_window);
  }
  return rc;
}

const char *const tp_wire_drop_reasons[TP_WIRE_DROP_REASONS] = {"spool_full", "spool_error",
                                                                 "invalid_result", "too_old"};

tp_err tp_validate_result(const char *batch_agent_id, const Tlsprobe__V1__ProbeResult *result,
                          char *reason, size_t len) {
  vctx v = {.reason = reason, .len = len};
  return check_result(&v, batch_agent_id, result);
}

/* ---- identity rules for producers --------------------------------------
 * Every result repeats the agent's id and region, the target's name, host and
 * SNI and the profile's name. A configuration that holds a value the checks
 * above reject would have every one of its results dropped, so the agent's
 * config loader calls these: the configuration can never accept what the wire
 * refuses. The reason is what is wrong without a field path (the caller's
 * message already names the field). */

/* Runs one check with a scratch field name and copies its reason without the
 * "field: " prefix that bad() puts in front. */
static tp_err identity_reason(tp_err rc, const char *scratch, char *reason, size_t len) {
  size_t skip = strlen("x: ");
  if (rc != TP_E_OK && len > 0 && strlen(scratch) >= skip)
    snprintf(reason, len, "%s", scratch + skip);
  return rc;
}

tp_err tp_wire_check_agent_id(const char *id, char *reason, size_t len) {
  char scratch[256] = "";
  vctx v = {.reason = scratch, .len = sizeof(scratch)};
  return identity_reason(check_agent_id(&v, "x", id, true), scratch, reason, len);
}

static tp_err identity_str(const char *s, size_t max, char *reason, size_t len) {
  char scratch[256] = "";
  vctx v = {.reason = scratch, .len = sizeof(scratch)};
  return identity_reason(check_str(&v, "x", s, max, true), scratch, reason, len);
}

tp_err tp_wire_check_region(const char *region, char *reason, size_t len) {
  return identity_str(region, TP_V_MAX_REGION, reason, len);
}

tp_err tp_wire_check_target_name(const char *name, char *reason, size_t len) {
  return identity_str(name, TP_V_MAX_TARGET, reason, len);
}

tp_err tp_wire_check_profile_name(const char *name, char *reason, size_t len) {
  return identity_str(name, TP_V_MAX_PROFILE, reason, len);
}

tp_err tp_wire_check_host(const char *host, char *reason, size_t len) {
  return identity_str(host, TP_V_MAX_HOST, reason, len);
}
