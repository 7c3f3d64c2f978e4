/* report_impl.h - the tp_report struct and the internal entry points shared by the
 * report's modules (aggregation, warnings, delivery, formats) only. */
#ifndef TP_REPORT_IMPL_H
#define TP_REPORT_IMPL_H
#include "report.h"
#include "report_output.h"
#include "tp_buf.h"

struct tp_report {
  tp_report_query query; /* strings not owned: the caller's argv */
  tp_report_series *series;
  size_t n_series;
  size_t alloc_series;
  uint64_t total_probes;
  tp_report_warning *warnings;
  size_t n_warnings;
  size_t alloc_warnings;
  tp_report_agent *agents;
  size_t n_agents;
  tp_report_warning *agent_warnings;
  size_t n_agent_warnings;
  tp_report_cert *certs;
  size_t n_certs;
  size_t alloc_certs;
  struct tp_report_slo_row *slo; /* report_slo.h */
  size_t n_slo;
  tp_report_warning *slo_warnings; /* .series indexes slo */
  size_t n_slo_warnings;
  bool from_rollups;
  uint64_t not_rolled_up;
  uint64_t mix_unrecorded; /* rollup successes without a negotiated mix (before v7) */
  bool details_from_store; /* rollups' groups got their error details from class_latest */
};

/* report.c: whether a row passes the query's glob filters. */
bool tp__report_row_selected(const tp_report_query *q, const tp_store_row *row);

/* report_slo.c: burn rates per target x region over the 3 days up to the window's
 * end, and their warnings (r->slo, r->slo_warnings). */
tp_err tp__report_slo(tp_store *store, tp_report *r, char *err, size_t errlen);
void tp__report_slo_free(tp_report *r);
tp_err tp__report_slo_text(const tp_report *r, const tp_report_output *o, tp_buf *b);
tp_err tp__report_slo_json(const tp_report *r, tp_buf *b);

/* report_warn.c: the thresholds of one series become warnings. */
void tp__report_series_warnings(tp_report *r, size_t i);
/* Appends a warning (takes ownership of text). */
void tp__report_warn(tp_report *r, size_t series, tp_report_level level, char *text);

/* report_delivery.c: fills agents and agent_warnings from the store's delivery
 * counters and drop reports. */
tp_err tp__report_delivery(tp_store *store, tp_report *r, int64_t since_unix_ns, char *err,
                           size_t errlen);
void tp__report_delivery_free(tp_report *r);
/* Text and JSON sections (report_format.c calls them). */
tp_err tp__report_delivery_text(const tp_report *r, tp_buf *buf);
tp_err tp__report_delivery_json(const tp_report *r, tp_buf *buf);

/* One series (target, profile, region) of the window for the expiry view, and -- when
 * the report's scan finds the chains (report.c: tp__report_latest_chains false) -- its
 * latest result with a chain. */
typedef struct tp__chain_ref {
  int64_t row_id; /* 0: no result with a chain seen (latest-chain lookups) */
  int64_t started_unix_ns;
  const char *target, *profile, *region; /* borrowed for the duration of tp__report_chains */
} tp__chain_ref;

/* Whether the expiry view's chains come from the store's newest chain per series
 * (tp_store_scan_latest_chain: a lookup per series, rollups may serve the rest) rather
 * than from the window's rows: for windows that end now and select no agent or
 * address family (the store's newest chain is per series, whatever agent saw it). */
bool tp__report_latest_chains(const tp_report_query *q);

/* report_chains.c: those chains' certificates, deduplicated per target and sorted;
 * `latest`: looked up per series (tp__report_latest_chains), else read by row. */
tp_err tp__report_chains(tp_store *store, tp_report *r, const tp__chain_ref *refs, size_t n,
                         bool latest, char *err, size_t errlen);
void tp__report_chains_free(tp_report *r);

/* Untrusted stored text made safe for a terminal line, in the style of redis's
 * sdscatrepr: '\\' and '"' are backslash-escaped, control characters (C0, DEL, C1)
 * and bytes that are not UTF-8 become \xNN (C1: \u00NN); printable UTF-8 is kept.
 * Returns a new string (tp_xmalloc). */
char *tp__report_repr(const char *s);

/* "WARN" / "CRIT", in colour when asked (report_text.c). */
const char *tp__report_level_word(tp_report_level level, bool color);
/* ,"KEY":[{"level","index","text"}...] (report_json.c). */
tp_err tp__report_json_warnings(tp_buf *b, const char *key, const tp_report_warning *w, size_t n);

/* The series' display name for warning lines: its key values joined by '/',
 * each escaped (tp__report_repr); a new string. */
char *tp__report_series_name(const tp_report *r, const tp_report_series *s);

/* Per format (report_text.c, report_json.c, report_csv.c, report_html.c). */
tp_err tp__report_text(const tp_report *r, const tp_report_output *o, tp_buf *b);
tp_err tp__report_json(const tp_report *r, const tp_report_output *o, tp_buf *b);
tp_err tp__report_csv(const tp_report *r, const tp_report_output *o, tp_buf *b);
/* One page whatever the view (report_html.c says what is on it). */
tp_err tp__report_html(const tp_report *r, const tp_report_output *o, tp_buf *b);

#endif
