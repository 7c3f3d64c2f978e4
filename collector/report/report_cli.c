/* report_cli.c - `tlsprobe-collector report [VIEW [NAME]] --db FILE [options]`:
 * parses the command line into a query and an output, builds the report and
 * writes it; with --check the worst line decides the exit status. */
#include "report_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "report_compare.h"
#include "report_output.h"
#include "report_time.h"

#define EXIT_USAGE 2
#define CHECK_WARNING 1
#define CHECK_CRITICAL 2
#define CHECK_FAILED 3 /* the report could not be made (database missing, unreadable...) */
#define TARGET_VIEW_BUCKETS 12
#define HTML_BUCKETS 24 /* the HTML's charts over time: one point per 1/24 of the window */
/* A report reads the database the collector writes, usually on the same machine: at
 * nice 10 (CFS weight 110 against 1024) it takes what ingest leaves. Measured
 * (bench/ingest.sh TP_BENCH_WITH_REPORT=1, 2 vCPU, 8 pushers, a 24 h raw report back to
 * back): ingest at 0.68-0.91 of its rate alone at the same priority, 0.86-0.96 with this
 * default. On an idle machine the report runs as fast as ever. */
#define DEFAULT_NICE 10

void tp_report_usage(FILE *out) {
  fputs("  tlsprobe-collector report [VIEW [TARGET]] --db FILE | --config FILE [options]\n"
        "      VIEW: summary (default), errors, versions, expiry, clients TARGET,\n"
        "            target TARGET, agents\n"
        "      --since WHEN     window start: a duration back from --until (30m, 1h, 7d)\n"
        "                       or RFC 3339 (2026-12-01T10:00:00Z); default 1h\n"
        "      --until WHEN     window end (exclusive): RFC 3339 or a duration ago; default now\n"
        "      --by DIMS        group by any of target,profile,region,agent,family\n"
        "                       (default target,profile,region; per view otherwise)\n"
        "      --target GLOB  --profile GLOB  --region GLOB  --agent GLOB  --family GLOB\n"
        "                       keep only matching results (fnmatch(3) patterns)\n"
        "      --format text|json|csv|html   (json: docs/report.schema.json, rates 0..1;\n"
        "                       html: one self-contained page with charts, whatever the view)\n"
        "      --buckets N      time series of N buckets per group (view target: 12, html: 24)\n"
        "      --source auto|raw|rollup  raw rows (exact percentiles) or per-minute/hour/day\n"
        "                       rollups (within 1 %); auto: rollups beyond 6 h or raw retention\n"
        "      --silent-after DURATION  an agent quiet this long is SILENT (default 5m)\n"
        "      --include-saturated  count the latencies of results the agent took while\n"
        "                       saturated (left out by default; raw rows only)\n"
        "      --config FILE    the collector's config: its database and its slo: objectives\n"
        "                       (summary and target views add burn-rate alerts; default\n"
        "                       objective 99.9 % success, quorum 1 region)\n"
        "      --check          exit 0 healthy, 1 a WARN line, 2 a CRIT line, 3 no report\n"
        "      --nice N         lower the report's CPU priority by N (0..19, default 10): a\n"
        "                       report on the collector's machine yields to ingest\n"
        "  tlsprobe-collector report compare --baseline SEL --candidate SEL --db FILE\n"
        "                            [--by profile] [--since/--until] [--format text|json]\n"
        "      SEL: DIM=GLOB[,DIM=GLOB] (e.g. target=api-old); per group a one-sided\n"
        "      two-proportion z-test of the candidate failing more often, Bonferroni-\n"
        "      corrected; --check exits 0 not worse, 1 not enough data, 2 worse\n"
        "      Colour only on a terminal, never with NO_COLOR set.\n",
        out);
}

typedef struct cli {
  const char *db;
  const char *config; /* collector.yaml: the database and the SLOs */
  const char *since;
  const char *until;
  const char *by;
  const char *name; /* VIEW's TARGET argument */
  const char *buckets;
  const char *silent_after;
  const char *nice; /* --nice N; NULL: DEFAULT_NICE */
  tp_report_output out;
  tp_report_query query;
  bool check;
  bool compare; /* report compare --baseline SEL --candidate SEL */
  const char *baseline, *candidate;
} cli;

static bool fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool fail_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("tlsprobe-collector report: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return false;
}

static bool parse_format(const char *v, tp_report_format *out) {
  static const char *const names[] = {"text", "json", "csv", "html"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(v, names[i]) == 0) {
      *out = (tp_report_format)i;
      return true;
    }
  return false;
}

/* "region,agent" -> by[]; each dimension once. */
static bool parse_by(const char *text, tp_report_query *q) {
  char copy[128];
  if (strlen(text) >= sizeof(copy))
    return false;
  strcpy(copy, text);
  q->n_by = 0;
  char *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    tp_report_dim d;
    if (!tp_report_dim_from_name(tok, &d))
      return false;
    for (size_t i = 0; i < q->n_by; i++)
      if (q->by[i] == d)
        return false;
    q->by[q->n_by++] = d;
  }
  return q->n_by > 0;
}

/* An option with a value; false when it is not one of ours. */
static bool option(cli *c, const char *opt, const char *val) {
  tp_report_dim dim;
  if (strcmp(opt, "--db") == 0)
    c->db = val;
  else if (strcmp(opt, "--config") == 0)
    c->config = val;
  else if (strcmp(opt, "--source") == 0) {
    if (strcmp(val, "auto") == 0)
      c->query.source = TP_REPORT_SOURCE_AUTO;
    else if (strcmp(val, "raw") == 0)
      c->query.source = TP_REPORT_SOURCE_RAW;
    else if (strcmp(val, "rollup") == 0)
      c->query.source = TP_REPORT_SOURCE_ROLLUP;
    else
      return fail_usage("--source \"%s\" is not one of auto, raw, rollup", val);
  } else if (strcmp(opt, "--baseline") == 0)
    c->baseline = val;
  else if (strcmp(opt, "--candidate") == 0)
    c->candidate = val;
  else if (strcmp(opt, "--since") == 0)
    c->since = val;
  else if (strcmp(opt, "--until") == 0)
    c->until = val;
  else if (strcmp(opt, "--by") == 0)
    c->by = val;
  else if (strcmp(opt, "--buckets") == 0)
    c->buckets = val;
  else if (strcmp(opt, "--silent-after") == 0)
    c->silent_after = val;
  else if (strcmp(opt, "--nice") == 0)
    c->nice = val;
  else if (strcmp(opt, "--format") == 0) {
    if (!parse_format(val, &c->out.format))
      return fail_usage("--format \"%s\" is not one of text, json, csv, html", val);
  } else if (strncmp(opt, "--", 2) == 0 && tp_report_dim_from_name(opt + 2, &dim))
    c->query.glob[dim] = val;
  else
    return fail_usage("unexpected argument %s %s", opt, val);
  return true;
}

/* VIEW and its TARGET, wherever they stand among the options. */
static bool positional(cli *c, const char *arg, int *seen) {
  if (*seen == 0 && strcmp(arg, "compare") == 0) {
    c->compare = true;
  } else if (*seen == 0) {
    if (!tp_report_view_from_name(arg, &c->out.view))
      return fail_usage("unknown view \"%s\" (summary, errors, versions, expiry, clients,"
                        " target, agents)",
                        arg);
  } else if (*seen == 1 && (c->out.view == TP_VIEW_TARGET || c->out.view == TP_VIEW_CLIENTS)) {
    c->name = arg;
  } else {
    return fail_usage("unexpected argument \"%s\"", arg);
  }
  (*seen)++;
  return true;
}

static bool parse_args(int argc, char **argv, cli *c) {
  int seen = 0;
  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "--", 2) != 0) {
      if (!positional(c, argv[i], &seen))
        return false;
      continue;
    }
    if (strcmp(argv[i], "--check") == 0) {
      c->check = true;
      continue;
    }
    if (strcmp(argv[i], "--include-saturated") == 0) {
      c->query.include_saturated = true;
      continue;
    }
    if (i + 1 >= argc)
      return fail_usage("%s needs a value", argv[i]);
    if (!option(c, argv[i], argv[i + 1]))
      return false;
    i++;
  }
  if (c->db == NULL && c->config == NULL)
    return fail_usage("--db FILE or --config collector.yaml is required");
  if (c->compare != (c->baseline != NULL) || c->compare != (c->candidate != NULL))
    return fail_usage("compare needs --baseline SEL and --candidate SEL (and they need compare)");
  if (c->compare && (c->out.format == TP_FORMAT_CSV || c->out.format == TP_FORMAT_HTML))
    return fail_usage("compare writes text or json");
  return true;
}

/* Per view: its grouping and what it loads, unless the user said otherwise. */
static bool shape_query(cli *c) {
  tp_report_query *q = &c->query;
  static const tp_report_dim by_target[] = {TP_DIM_TARGET};
  static const tp_report_dim by_profile[] = {TP_DIM_PROFILE};
  static const tp_report_dim by_profile_region[] = {TP_DIM_PROFILE, TP_DIM_REGION};
  static const tp_report_dim by_agent[] = {TP_DIM_AGENT};
  const tp_report_dim *by = NULL;
  size_t n = 0;
  if (c->name != NULL)
    q->glob[TP_DIM_TARGET] = c->name;
  switch (c->out.view) {
  case TP_VIEW_ERRORS:
  case TP_VIEW_VERSIONS:
    by = by_target, n = 1;
    break;
  case TP_VIEW_EXPIRY:
    q->with_chains = true;
    by = by_target, n = 1;
    break;
  case TP_VIEW_CLIENTS:
    if (q->glob[TP_DIM_TARGET] == NULL)
      return fail_usage("clients needs a target: report clients NAME");
    by = by_profile, n = 1;
    break;
  case TP_VIEW_TARGET:
    if (q->glob[TP_DIM_TARGET] == NULL)
      return fail_usage("target needs a name: report target NAME");
    q->with_facts = true;
    q->with_slo = true;
    q->buckets = TARGET_VIEW_BUCKETS;
    by = by_profile_region, n = 2;
    break;
  case TP_VIEW_AGENTS:
    by = by_agent, n = 1;
    break;
  case TP_VIEW_SUMMARY:
    /* --target NAME alone (no glob) keeps its long-standing meaning: add facts. */
    q->with_facts = q->glob[TP_DIM_TARGET] != NULL;
    q->with_slo = true;
    break;
  }
  if (c->compare)
    by = by_profile, n = 1;
  /* The HTML page shows every section whatever the view: its charts over time
   * need buckets (--buckets still decides, parse_window), its expiry chart chains. */
  if (c->out.format == TP_FORMAT_HTML) {
    q->with_chains = true;
    q->with_slo = true;
    if (q->buckets == 0)
      q->buckets = HTML_BUCKETS;
  }
  if (c->by != NULL) {
    if (!parse_by(c->by, q))
      return fail_usage("--by \"%s\" is not a list of target, profile, region, agent,"
                        " family (each once)",
                        c->by);
  } else if (by != NULL) {
    memcpy(q->by, by, n * sizeof(by[0]));
    q->n_by = n;
  }
  /* Facts are per target x profile x region: only when the groups are those. */
  if (q->with_facts &&
      !(q->n_by == 0 || (q->n_by == 3 && q->by[0] == TP_DIM_TARGET && q->by[1] == TP_DIM_PROFILE &&
                         q->by[2] == TP_DIM_REGION)) &&
      c->out.view != TP_VIEW_TARGET)
    q->with_facts = false;
  return true;
}

static bool parse_window(cli *c, int64_t now_ns) {
  tp_report_query *q = &c->query;
  char err[256];
  q->now_unix_ns = now_ns;
  q->since_text = c->since ? c->since : "1h";
  q->until_text = c->until;
  if (tp_report_window(q->since_text, c->until, now_ns, &q->since_unix_ns, &q->until_unix_ns, err,
                       sizeof(err)) != TP_E_OK)
    return fail_usage("%s", err);
  if (c->buckets != NULL) {
    char *end = NULL;
    unsigned long n = strtoul(c->buckets, &end, 10);
    if (end == c->buckets || *end != '\0' || n < 1 || n > TP_REPORT_MAX_BUCKETS)
      return fail_usage("--buckets \"%s\" is not a number 1..1000", c->buckets);
    q->buckets = n;
  }
  if (c->silent_after != NULL &&
      (tp_duration_parse_ms(c->silent_after, &q->silent_after_ms) != TP_E_OK ||
       q->silent_after_ms == 0))
    return fail_usage("--silent-after \"%s\" is not a duration like 5m", c->silent_after);
  return true;
}

/* Lowers this process' CPU priority by --nice (a relative step: lowering needs no
 * privilege, so the only failure is a bad value). */
static bool lower_priority(const cli *c) {
  long n = DEFAULT_NICE;
  if (c->nice != NULL) {
    char *end = NULL;
    n = strtol(c->nice, &end, 10);
    if (end == c->nice || *end != '\0' || n < 0 || n > 19)
      return fail_usage("--nice \"%s\" is not a number 0..19", c->nice);
  }
  errno = 0;
  if (n > 0 && nice((int)n) == -1 && errno != 0)
    fprintf(stderr, "tlsprobe-collector report: cannot lower the CPU priority: %s\n",
            strerror(errno)); /* the report still runs, at the priority it has */
  return true;
}

static int check_status(const tp_report *rep) {
  int worst = tp_report_worst_level(rep);
  int status = worst == TP_REPORT_CRIT   ? CHECK_CRITICAL
               : worst == TP_REPORT_WARN ? CHECK_WARNING
                                         : 0;
  fprintf(stderr, "tlsprobe-collector report --check: %s\n",
          status == CHECK_CRITICAL  ? "critical"
          : status == CHECK_WARNING ? "warning"
                                    : "healthy");
  return status;
}

/* report compare: the verdict decides under --check (2 worse, 1 not enough data). */
static int compare(cli *c, tp_store *store, char *err, size_t errlen, bool *reported) {
  tp_compare_side base, cand;
  char *base_store = NULL, *cand_store = NULL;
  tp_compare *cmp = NULL;
  int status = EXIT_FAILURE;
  if (!tp_compare_parse_side(c->baseline, &base, &base_store, err, errlen) ||
      !tp_compare_parse_side(c->candidate, &cand, &cand_store, err, errlen)) {
    fprintf(stderr, "tlsprobe-collector report compare: %s\n", err);
    status = EXIT_USAGE;
    goto out;
  }
  if (tp_compare_build(store, &c->query, &base, &cand, &cmp, err, errlen) != TP_E_OK) {
    fprintf(stderr, "tlsprobe-collector report compare: %s\n", err);
    goto out;
  }
  if (tp_compare_write(cmp, c->out.format, stdout) != TP_E_OK) {
    perror("tlsprobe-collector report compare: writing output");
    goto out;
  }
  status = 0;
  *reported = true;
  if (c->check) {
    tp_compare_verdict v = tp_compare_overall(cmp);
    status = v == TP_COMPARE_WORSE        ? CHECK_CRITICAL
             : v == TP_COMPARE_NOT_ENOUGH ? CHECK_WARNING
                                          : 0;
    fprintf(stderr, "tlsprobe-collector report compare --check: %s\n", tp_compare_verdict_name(v));
  }
out:
  tp_compare_free(cmp);
  free(base_store);
  free(cand_store);
  return status;
}

/* report target NAME shows its time series per region unless --by chose the groups
 * (text and JSON; the HTML page charts per group of the main report). */
static bool wants_region_timelines(const cli *c) {
  return c->out.view == TP_VIEW_TARGET && c->by == NULL &&
         (c->out.format == TP_FORMAT_TEXT || c->out.format == TP_FORMAT_JSON);
}

static bool use_color(void) {
  const char *no_color = getenv("NO_COLOR"); /* https://no-color.org: any non-empty value */
  return isatty(STDOUT_FILENO) && (no_color == NULL || no_color[0] == '\0');
}

int tp_report_command(int argc, char **argv) {
  char err[1024];
  cli c = {0};
  tp_store *store = NULL;
  tp_report *rep = NULL, *regions = NULL;
  tp_collector_config *config = NULL;
  struct timespec now;
  int status = EXIT_FAILURE;
  bool reported = false;

  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs("usage:\n", stdout);
      tp_report_usage(stdout);
      return 0;
    }
  if (!parse_args(argc, argv, &c) || !shape_query(&c))
    return EXIT_USAGE;
  if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
    perror("clock_gettime");
    goto out;
  }
  if (!parse_window(&c, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec) || !lower_priority(&c))
    return EXIT_USAGE;
  c.out.color = c.out.format == TP_FORMAT_TEXT && use_color();
  if (c.config != NULL) {
    if (tp_collector_config_load(c.config, &config, err, sizeof(err)) != TP_E_OK) {
      fprintf(stderr, "tlsprobe-collector report: %s\n", err);
      goto out;
    }
    c.query.slo = &config->slo;
    if (c.db == NULL)
      c.db = config->database;
  }
  if (tp_store_open_sqlite(c.db, TP_STORE_READONLY, &store, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "tlsprobe-collector report: %s\n", err);
    goto out;
  }
  if (c.compare) {
    status = compare(&c, store, err, sizeof(err), &reported);
    goto out;
  }
  if (tp_report_build(store, &c.query, &rep, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "tlsprobe-collector report: %s\n", err);
    goto out;
  }
  if (wants_region_timelines(&c)) {
    tp_report_query q = c.query;
    static const tp_report_dim by_region[] = {TP_DIM_REGION};
    memcpy(q.by, by_region, sizeof(by_region));
    q.n_by = 1;
    q.with_facts = q.with_chains = q.with_slo = false;
    if (tp_report_build(store, &q, &regions, err, sizeof(err)) != TP_E_OK) {
      fprintf(stderr, "tlsprobe-collector report: %s\n", err);
      goto out;
    }
    c.out.by_region = regions;
  }
  if (tp_report_write(rep, &c.out, stdout) != TP_E_OK) {
    perror("tlsprobe-collector report: writing output");
    goto out;
  }
  /* For cron, CI and canary gates: the worst line printed decides. */
  reported = true;
  status = c.check ? check_status(rep) : 0;
out:
  tp_report_free(rep);
  tp_report_free(regions);
  tp_store_close(store);
  tp_collector_config_free(config);
  if (c.check && !reported)
    return CHECK_FAILED; /* 1 and 2 mean warning and critical under --check */
  return status;
}
