/* report_chains.c - `report expiry`: the certificates of each series' latest chain
 * in the window, one entry per (target, position, subject, issuer, notAfter) --
 * the same leaf seen by every profile and region of a target is one line, with the
 * number of series that hold it -- soonest to expire first. For a window that ends now,
 * each series' newest chain is the store's (one lookup per series, whatever serves the
 * rest of the report); otherwise the report's own scan finds each series' latest result
 * with a chain (report.c) and here only those rows' chains are read by identity. */
#include <stdlib.h>
#include <string.h>

#include "report_impl.h"
#include "tp_mem.h"

#define SECONDS_PER_DAY 86400

typedef struct chains_ctx {
  tp_report *report;
  const char *target; /* of the chain being read */
} chains_ctx;

static bool same_cert(const tp_report_cert *a, const char *target, const tp_store_chain_cert *c) {
  return a->position == c->position && a->not_after_unix == c->not_after_unix &&
         strcmp(a->target, target) == 0 && strcmp(a->subject, c->subject) == 0 &&
         strcmp(a->issuer, c->issuer) == 0;
}

/* floor division: a certificate expiring in 6.5 days has 6 full days left, one that
 * expired an hour ago has -1. */
static int64_t days_left(int64_t not_after, int64_t end_unix) {
  int64_t d = not_after - end_unix;
  return d >= 0 ? d / SECONDS_PER_DAY : -((-d + SECONDS_PER_DAY - 1) / SECONDS_PER_DAY);
}

static tp_err on_cert(const tp_store_chain_cert *c, void *data) {
  chains_ctx *ctx = data;
  tp_report *r = ctx->report;
  for (size_t i = 0; i < r->n_certs; i++)
    if (same_cert(&r->certs[i], ctx->target, c)) {
      r->certs[i].series++;
      return TP_E_OK;
    }
  if (r->n_certs == r->alloc_certs) {
    r->alloc_certs = r->alloc_certs ? 2 * r->alloc_certs : 16;
    r->certs = tp_xrealloc(r->certs, r->alloc_certs * sizeof(r->certs[0]));
  }
  r->certs[r->n_certs++] = (tp_report_cert){
      .target = tp_xstrdup(ctx->target),
      .subject = tp_xstrdup(c->subject),
      .issuer = tp_xstrdup(c->issuer),
      .position = c->position,
      .not_after_unix = c->not_after_unix,
      .days_left = days_left(c->not_after_unix, r->query.until_unix_ns / 1000000000),
      .series = 1,
  };
  return TP_E_OK;
}

static int cmp_cert(const void *pa, const void *pb) {
  const tp_report_cert *a = pa, *b = pb;
  if (a->not_after_unix != b->not_after_unix)
    return a->not_after_unix < b->not_after_unix ? -1 : 1;
  int c = strcmp(a->target, b->target);
  if (c != 0)
    return c;
  if (a->position != b->position)
    return a->position < b->position ? -1 : 1;
  c = strcmp(a->subject, b->subject);
  return c != 0 ? c : strcmp(a->issuer, b->issuer);
}

tp_err tp__report_chains(tp_store *store, tp_report *r, const tp__chain_ref *refs, size_t n,
                         bool latest, char *err, size_t errlen) {
  tp_err rc = TP_E_OK;
  for (size_t i = 0; rc == TP_E_OK && i < n; i++) {
    chains_ctx ctx = {.report = r, .target = refs[i].target};
    if (!latest) {
      rc = tp_store_scan_chain(store, refs[i].row_id, on_cert, &ctx, err, errlen);
      continue;
    }
    rc = tp_store_scan_latest_chain(store, refs[i].target, refs[i].profile, refs[i].region,
                                    r->query.since_unix_ns, on_cert, &ctx, err, errlen);
    if (rc == TP_E_NOTFOUND)
      rc = TP_E_OK; /* no certificate in the window: nothing to expire */
  }
  if (rc == TP_E_OK && r->n_certs > 1)
    qsort(r->certs, r->n_certs, sizeof(r->certs[0]), cmp_cert);
  return rc;
}

void tp__report_chains_free(tp_report *r) {
  for (size_t i = 0; i < r->n_certs; i++) {
    free(r->certs[i].target);
    free(r->certs[i].subject);
    free(r->certs[i].issuer);
  }
  free(r->certs);
  r->certs = NULL;
  r->n_certs = 0;
}
