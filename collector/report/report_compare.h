/* report_compare.h - `report compare`: a canary against its baseline. Two reports
 * over the same window and grouping (default: per profile), one for each selector
 * ("target=api-old", "target=api,region=eu"), matched group by group. For each
 * group: failure rates and a one-sided two-proportion z-test of "the candidate
 * fails more often"; the verdict is
 *   worse          p-value below 0.05 / m (Bonferroni over the m groups tested:
 *                  160 profiles must not turn into 8 false alarms),
 *   not worse      tested and not significantly worse,
 *   not enough data fewer than TP_COMPARE_MIN_PROBES probes on either side.
 * Emulation-divergent successes are left out of both sides (they are no outcome of
 * the server's policy). Overall: worse if any group is worse. */
#ifndef TP_REPORT_COMPARE_H
#define TP_REPORT_COMPARE_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "report.h"
#include "report_output.h"

#define TP_COMPARE_MIN_PROBES 30
#define TP_COMPARE_ALPHA 0.05

typedef enum { TP_COMPARE_NOT_WORSE, TP_COMPARE_NOT_ENOUGH, TP_COMPARE_WORSE } tp_compare_verdict;
const char *tp_compare_verdict_name(tp_compare_verdict v); /* "not worse", ... */

/* One side's selector: dimension globs, the rest of the query shared. */
typedef struct tp_compare_side {
  const char *text;               /* as typed, for the output */
  const char *glob[TP_DIM_COUNT]; /* NULL = the shared query's */
} tp_compare_side;

/* "target=api-old,region=eu" -> side (pointers into a copy owned by *store, free it).
 * false with a message in err on anything else. */
bool tp_compare_parse_side(const char *text, tp_compare_side *side, char **store, char *err,
                           size_t errlen);

typedef struct tp_compare_group {
  char *key[TP_DIM_COUNT]; /* as in tp_report_series, owned */
  uint64_t base_n, base_failures, cand_n, cand_failures;
  const char *cand_top_error; /* static outcome name or NULL */
  double p_value;             /* one-sided; 1 when not tested */
  tp_compare_verdict verdict;
} tp_compare_group;

typedef struct tp_compare tp_compare;

/* Builds both reports from `shared` (window, grouping, filters) and compares them. */
tp_err tp_compare_build(tp_store *store, const tp_report_query *shared,
                        const tp_compare_side *baseline, const tp_compare_side *candidate,
                        tp_compare **out, char *err, size_t errlen);
size_t tp_compare_group_count(const tp_compare *c);
const tp_compare_group *tp_compare_group_at(const tp_compare *c, size_t i);
tp_compare_verdict tp_compare_overall(const tp_compare *c);
/* Text, JSON or CSV (TP_E_INVAL for HTML), written whole (TP_E_IO). */
tp_err tp_compare_write(const tp_compare *c, tp_report_format format, FILE *out);
void tp_compare_free(tp_compare *c);

/* The test itself: one-sided p-value of "rate 2 > rate 1" (pooled two-proportion
 * z-test, normal approximation); 1 when both rates are equal and degenerate. */
double tp_compare_p_value(uint64_t n1, uint64_t f1, uint64_t n2, uint64_t f2);

#endif
