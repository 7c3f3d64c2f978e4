/* test_report_html.c - `report --format html` over a real temporary SQLite store
 * filled through ingest (the real write path), with a dataset small enough to
 * compute by hand: every chart must carry exactly the numbers below in its data-*
 * attributes. Agent-supplied strings are hostile (a target named
 * <script>alert(1)</script>, a profile that tries to close an attribute, an error
 * detail and a certificate subject with markup and a URL): the page must hold them
 * as escaped text only -- every tag in it is one of ours, every attribute one we
 * write, no <script>, no URL outside the escaped text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ingest.h"
#include "report.h"
#include "report_html.h"
#include "report_output.h"
#include "store.h"
#include "tlsprobe.pb-c.h"

#define NOW_NS INT64_C(1700000000000000000)
#define NOW_S INT64_C(1700000000)
#define MINUTE_NS INT64_C(60000000000)
#define MS_NS UINT64_C(1000000)
#define DAY_S INT64_C(86400)

/* The hostile names, and what the page must show instead. */
#define EVIL_TARGET "<script>alert(1)</script>"
#define EVIL_TARGET_HTML "&lt;script&gt;alert(1)&lt;/script&gt;"
#define EVIL_PROFILE "x\"onmouseover=\"alert(2)"
#define EVIL_PROFILE_HTML "x&quot;onmouseover=&quot;alert(2)"
#define EVIL_DETAIL "</td><script>alert(3)</script> it's \"a\" & b, see https://evil.example/x"
#define EVIL_DETAIL_HTML                                                                           \
  "&lt;/td&gt;&lt;script&gt;alert(3)&lt;/script&gt; it&#39;s &quot;a&quot; &amp; b, see "        \
  "https://evil.example/x"
#define EVIL_SUBJECT "CN=<img src=x onerror=alert(4)>,O='q'"
#define EVIL_SUBJECT_HTML "CN=&lt;img src=x onerror=alert(4)&gt;,O=&#39;q&#39;"
#define EVIL_GROUP_HTML EVIL_TARGET_HTML "/" EVIL_PROFILE_HTML "/eu"

typedef struct fixture {
  char dir[64];
  char db[128];
  tp_store *store;
  uint64_t next_seq;
} fixture;

static int setup(void **state) {
  char err[512] = "";
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/tp_report_html_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->db, sizeof(f->db), "%s/r.db", f->dir);
  if (tp_store_open_sqlite(f->db, TP_STORE_READWRITE, &f->store, err, sizeof(err)) != TP_E_OK)
    fail_msg("open store: %s", err);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char path[160];
  tp_store_close(f->store);
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof(path), "%s%s", f->db, suffixes[i]);
    unlink(path);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

enum { OK = 1, REFUSED = 3, UNKNOWN_CA = 12, EXPIRED = 14 };

typedef struct probe {
  const char *target, *profile, *region;
  int cls;
  uint64_t handshake_ms;
  int64_t age_min; /* started this many minutes before NOW */
  const char *version;
  const char *subject; /* non-NULL: a one-certificate chain ... */
  int64_t not_after;   /* ... expiring then (Unix seconds) */
} probe;

/* Stores one result as its own batch through ingest (validation included). */
static void put(fixture *f, const probe *p) {
  Tlsprobe__V1__ProbeResult r = TLSPROBE__V1__PROBE_RESULT__INIT;
  Tlsprobe__V1__ProbeResult *rp = &r;
  Tlsprobe__V1__CertificateFacts cert = TLSPROBE__V1__CERTIFICATE_FACTS__INIT;
  Tlsprobe__V1__CertificateFacts *certs[1] = {&cert};
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  r.target = (char *)p->target;
  r.profile = (char *)p->profile;
  r.region = (char *)p->region;
  r.host = "localhost";
  r.port = 443;
  r.started_unix_ns = NOW_NS - p->age_min * MINUTE_NS;
  r.handshake_ns = p->handshake_ms * MS_NS;
  r.error_class = (Tlsprobe__V1__ErrorClass)p->cls;
  r.ok = p->cls == OK;
  r.tls_version = r.ok ? (char *)p->version : "";
  r.error_detail = r.ok ? "" : EVIL_DETAIL;
  if (p->subject != NULL) {
    cert.subject = (char *)p->subject;
    cert.issuer = "CN=test CA";
    cert.not_after_unix = p->not_after;
    r.chain = certs;
    r.n_chain = 1;
    r.days_to_earliest_expiry = (int32_t)((p->not_after - NOW_S) / DAY_S);
  }
  b.agent_id = "agent-h";
  b.instance_id = 1;
  b.batch_seq = ++f->next_seq;
  r.result_seq = b.batch_seq;
  b.results = &rp;
  b.n_results = 1;
  size_t len = tlsprobe__v1__result_batch__get_packed_size(&b);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  assert_int_equal(tlsprobe__v1__result_batch__pack(&b, buf), len);
  tp_ingest_reply reply;
  if (tp_ingest_batch(f->store, buf, len, NOW_NS, &reply) != TP_E_OK)
    fail_msg("ingest: %s", reply.reason);
  tp_ingest_reply_clear(&reply);
  free(buf);
}

/* A 1-hour window in 4 buckets of 15 minutes (bucket 0 = 60..45 minutes ago).
 *   a/modern/eu: bucket 0: ok 10 ms, ok 20 ms (TLS1.2)      -> rate 1, p99 20
 *                bucket 1: ok 5 ms, expired                   -> rate 0.5, p99 5
 *                bucket 2: nothing                            -> "-"
 *                bucket 3: ok 1, 2, 3, 4 ms (TLS1.3), the latest with a chain
 *                          expiring in 12 days 1 hour        -> rate 1, p99 4
 *                overall 7 of 8: 0.875; versions TLS1.3 5/7, TLS1.2 2/7
 *   EVIL/EVIL/eu: bucket 3: ok 3 ms (TLS1.3), unknown_ca (latest, chain expired
 *                           2 days ago)                       -> rate 0.5, p99 3
 *   b/old/us:    bucket 3: 2 x connection_refused            -> rate 0, p99 "-" */
static void load(fixture *f) {
  const int64_t in12d = NOW_S + 12 * DAY_S + 3600, ago2d = NOW_S - 2 * DAY_S + 60;
  const probe probes[] = {
      {"a", "modern", "eu", OK, 10, 55, "TLS1.2", NULL, 0},
      {"a", "modern", "eu", OK, 20, 50, "TLS1.2", NULL, 0},
      {"a", "modern", "eu", OK, 5, 40, "TLS1.3", NULL, 0},
      {"a", "modern", "eu", EXPIRED, 0, 35, NULL, NULL, 0},
      {"a", "modern", "eu", OK, 3, 5, "TLS1.3", NULL, 0},
      {"a", "modern", "eu", OK, 4, 4, "TLS1.3", NULL, 0},
      {"a", "modern", "eu", OK, 2, 3, "TLS1.3", NULL, 0},
      {"a", "modern", "eu", OK, 1, 1, "TLS1.3", "CN=a.test", in12d},
      {EVIL_TARGET, EVIL_PROFILE, "eu", OK, 3, 3, "TLS1.3", NULL, 0},
      {EVIL_TARGET, EVIL_PROFILE, "eu", UNKNOWN_CA, 0, 2, NULL, EVIL_SUBJECT, ago2d},
      {"b", "old", "us", REFUSED, 0, 4, NULL, NULL, 0},
      {"b", "old", "us", REFUSED, 0, 6, NULL, NULL, 0},
  };
  for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
    put(f, &probes[i]);
}

static tp_report *build(fixture *f, size_t buckets, bool chains) {
  char err[512] = "";
  tp_report *rep = NULL;
  tp_report_query q = {.now_unix_ns = NOW_NS,
                       .since_unix_ns = NOW_NS - 3600 * INT64_C(1000000000),
                       .until_unix_ns = NOW_NS,
                       .since_text = "1h",
                       .buckets = buckets,
                       .with_chains = chains};
  if (tp_report_build(f->store, &q, &rep, err, sizeof(err)) != TP_E_OK)
    fail_msg("report: %s", err);
  return rep;
}

/* noinline: see test_report.c's render (gcc -O0 and open_memstream). */
__attribute__((noinline)) static char *render(const tp_report *rep, tp_report_view view) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  tp_report_output o = {.view = view, .format = TP_FORMAT_HTML};
  assert_int_equal(tp_report_write(rep, &o, out), TP_E_OK);
  assert_int_equal(fclose(out), 0);
  assert_int_equal(strlen(text), len); /* no NUL inside */
  return text;
}

/* The markup of one chart: from <svg id="ID" to its </svg> (a new string). */
static char *chart(const char *html, const char *id) {
  char open[64];
  snprintf(open, sizeof(open), "<svg id=\"%s\" ", id);
  const char *start = strstr(html, open);
  if (start == NULL)
    fail_msg("no %s in the page", open);
  const char *end = strstr(start, "</svg>");
  assert_non_null(end);
  return strndup(start, (size_t)(end - start));
}

static void assert_has(const char *hay, const char *needle) {
  if (strstr(hay, needle) == NULL)
    fail_msg("expected to find [%s]", needle);
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
    n++;
  return n;
}

/* ---- the page's markup is only ours --------------------------------------------- */

static bool allowed(const char *name, const char *const *list) {
  for (size_t i = 0; list[i] != NULL; i++)
    if (strcmp(name, list[i]) == 0)
      return true;
  return false;
}

static const char *const our_tags[] = {
    "html", "head", "meta",  "title", "style", "body", "header", "h1",    "h2",   "p",
    "dl",   "div",  "dt",    "dd",    "section", "table", "thead", "tbody", "tr", "th",
    "td",   "small", "ul",   "li",    "span", "svg",  "g",     "line",  "text", "path",
    "rect", "footer", NULL};
static const char *const our_attrs[] = {
    "lang", "charset", "http-equiv", "content", "name", "id",   "class", "style", "width",
    "height", "viewBox", "role", "aria-label", "x", "y", "x1", "y1", "x2", "y2", "d",
    "stroke", "fill", "rx", "text-anchor", NULL};

/* Parses one tag's attributes from p (after its name): name="value" pairs only,
 * values free of '<'. Returns the position after '>'. */
static const char *check_attributes(const char *p, const char *tag) {
  for (;;) {
    while (*p == ' ' || *p == '\n')
      p++;
    if (*p == '>')
      return p + 1;
    if (p[0] == '/' && p[1] == '>')
      return p + 2;
    char name[32];
    size_t n = 0;
    while ((isalnum((unsigned char)*p) || *p == '-') && n + 1 < sizeof(name))
      name[n++] = *p++;
    name[n] = '\0';
    if (n == 0 || p[0] != '=' || p[1] != '"')
      fail_msg("<%s>: malformed attribute at [%.40s]", tag, p);
    if (strncmp(name, "data-", 5) != 0 && !allowed(name, our_attrs))
      fail_msg("<%s>: attribute %s is not one the report writes", tag, name);
    const char *end = strchr(p + 2, '"');
    assert_non_null(end);
    for (const char *c = p + 2; c < end; c++)
      if (*c == '<' || *c == '>')
        fail_msg("<%s %s>: raw %c in an attribute value", tag, name, *c);
    p = end + 1;
  }
}

/* Every tag is one of ours with attributes we write; returns the number of tags. */
static size_t check_markup(const char *html) {
  const char *doctype = "<!DOCTYPE html>\n";
  assert_memory_equal(html, doctype, strlen(doctype));
  size_t tags = 0;
  for (const char *p = strchr(html + strlen(doctype), '<'); p != NULL; p = strchr(p, '<')) {
    p++;
    if (*p == '/')
      p++;
    char name[16];
    size_t n = 0;
    while (isalnum((unsigned char)*p) && n + 1 < sizeof(name))
      name[n++] = *p++;
    name[n] = '\0';
    if (!allowed(name, our_tags))
      fail_msg("tag <%s> is not one the report writes (at [%.60s])", name, p - n - 1);
    p = check_attributes(p, name);
    tags++;
  }
  return tags;
}

/* Removes every occurrence of s from html (in place). */
static void cut_all(char *html, const char *s) {
  size_t n = strlen(s);
  for (char *p = strstr(html, s); p != NULL; p = strstr(p, s))
    memmove(p, p + n, strlen(p + n) + 1);
}

static void test_hostile_strings_escaped(void **state) {
  fixture *f = *state;
  load(f);
  tp_report *rep = build(f, 4, true);
  char *html = render(rep, TP_VIEW_SUMMARY);
  /* Shown, escaped: in the tables, the charts' labels and data attributes. */
  assert_has(html, "<td>" EVIL_TARGET_HTML "</td><td>" EVIL_PROFILE_HTML "</td><td>eu</td>");
  assert_has(html, "data-group=\"" EVIL_GROUP_HTML "\"");
  assert_has(html, "<td class=\"detail\">" EVIL_DETAIL_HTML "</td>");
  assert_has(html, "data-subject=\"" EVIL_SUBJECT_HTML "\"");
  assert_has(html, "data-target=\"" EVIL_TARGET_HTML "\"");
  /* Never raw. */
  assert_null(strstr(html, EVIL_TARGET));
  assert_null(strstr(html, EVIL_PROFILE));
  assert_null(strstr(html, "<img"));
  assert_null(strcasestr(html, "<script"));
  assert_true(check_markup(html) > 500);
  /* No URL but the one inside the escaped detail; nothing that loads anything. */
  assert_true(count(html, EVIL_DETAIL_HTML) >= 2); /* both unknown_ca rows' details */
  cut_all(html, EVIL_DETAIL_HTML);
  assert_null(strcasestr(html, "http://"));
  assert_null(strcasestr(html, "https://"));
  assert_null(strcasestr(html, "url("));
  assert_null(strcasestr(html, "@import"));
  /* The subject's " src=" is text after an escaped "<img" (the markup check above
   * proved no tag has such an attribute). */
  for (const char *p = strstr(html, " src="); p != NULL; p = strstr(p + 1, " src="))
    assert_true(p - html >= 7 && strncmp(p - 7, "&lt;img", 7) == 0);
  assert_null(strcasestr(html, " href="));
  assert_null(strcasestr(html, "javascript:"));
  /* And the browser is told so. */
  assert_has(html, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';");
  free(html);
  tp_report_free(rep);
}

/* The escaper itself: references for the five characters, a visible \xNN for
 * control characters and bytes that are not UTF-8, UTF-8 kept; the cut counts
 * code points and never splits a reference. */
static void test_escaper(void **state) {
  (void)state;
  tp_buf b;
  tp_buf_init(&b, 1 << 16);
  tp_html h = {.b = &b, .rc = TP_E_OK};
  tp__html_text(&h, "a&b<c>d\"e'f\x1b[2J\xc2\x9b\x7f\xff caf\xc3\xa9\ttab");
  assert_int_equal(h.rc, TP_E_OK);
  assert_string_equal((char *)b.data,
                      "a&amp;b&lt;c&gt;d&quot;e&#39;f\\x1B[2J\\u009B\\x7F\\xFF caf\xc3\xa9\ttab");
  tp_buf_reset(&b);
  tp__html_text_cut(&h, "<<\xc3\xa9xyz", 3);
  assert_string_equal((char *)b.data, "&lt;&lt;\xc3\xa9...");
  tp_buf_reset(&b);
  tp__html_text_cut(&h, "abc", 3); /* fits: no "..." */
  assert_string_equal((char *)b.data, "abc");
  tp_buf_free(&b);
}

static void test_charts_carry_the_numbers(void **state) {
  fixture *f = *state;
  load(f);
  tp_report *rep = build(f, 4, true);
  char *html = render(rep, TP_VIEW_SUMMARY);
  assert_has(html, "<dd id=\"total-probes\">12</dd>");
  assert_has(html, "<dd id=\"total-successes\">8</dd>");

  char *c = chart(html, "chart-success");
  assert_has(c, "width=\"960\" height=\"268\" viewBox=\"0 0 960 268\"");
  assert_has(c, "data-buckets=\"4\"");
  assert_has(c, "data-bucket-starts=\"1699996400,1699997300,1699998200,1699999100\"");
  assert_has(c, "data-group=\"a/modern/eu\" data-values=\"1.000000,0.500000,-,1.000000\""
                " data-probes=\"2,2,0,4\"");
  assert_has(c, "data-group=\"" EVIL_GROUP_HTML "\" data-values=\"-,-,-,0.500000\""
                " data-probes=\"0,0,0,2\"");
  assert_has(c, "data-group=\"b/old/us\" data-values=\"-,-,-,0.000000\" data-probes=\"0,0,0,2\"");
  assert_int_equal(count(c, "<path class=\"series\""), 3);
  free(c);

  c = chart(html, "chart-p99");
  assert_has(c, "data-y-max=\"20\"");
  assert_has(c, "data-group=\"a/modern/eu\" data-values=\"20.000,5.000,-,4.000\"");
  assert_has(c, "data-group=\"" EVIL_GROUP_HTML "\" data-values=\"-,-,-,3.000\"");
  assert_has(c, "data-group=\"b/old/us\" data-values=\"-,-,-,-\"");
  free(c);

  c = chart(html, "chart-versions");
  assert_has(c, "data-successes=\"7\" data-group=\"a/modern/eu\"");
  assert_has(c, "data-count=\"5\" data-share=\"0.714286\" data-version=\"TLS1.3\""
                " data-group=\"a/modern/eu\"");
  assert_has(c, "data-count=\"2\" data-share=\"0.285714\" data-version=\"TLS1.2\""
                " data-group=\"a/modern/eu\"");
  assert_has(c, "data-successes=\"1\" data-group=\"" EVIL_GROUP_HTML "\"");
  assert_has(c, "data-count=\"1\" data-share=\"1.000000\" data-version=\"TLS1.3\""
                " data-group=\"" EVIL_GROUP_HTML "\"");
  assert_has(c, "data-successes=\"0\" data-group=\"b/old/us\"");
  assert_int_equal(count(c, "<rect class=\"version\""), 3);
  free(c);

  /* Soonest first: the expired one, then 12 days (WARN: 14 crossed, 7 not). */
  c = chart(html, "chart-expiry");
  assert_has(c, "data-certificates=\"2\"");
  const char *expired = strstr(c, "data-days=\"-2\" data-severity=\"CRIT\" data-position=\"0\"");
  const char *warn = strstr(c, "data-days=\"12\" data-severity=\"WARN\" data-position=\"0\"");
  assert_non_null(expired);
  assert_non_null(warn);
  assert_true(expired < warn);
  assert_has(expired, "data-target=\"" EVIL_TARGET_HTML "\" data-subject=\"" EVIL_SUBJECT_HTML);
  assert_has(warn, "data-target=\"a\" data-subject=\"CN=a.test\"");
  for (int i = 0; i < 4; i++) {
    char mark[48];
    snprintf(mark, sizeof(mark), "<g class=\"mark\" data-days=\"%d\">", (int[]){30, 14, 7, 3}[i]);
    assert_has(c, mark);
  }
  free(c);

  /* Rows are target/region, columns the profiles (sorted). */
  c = chart(html, "chart-matrix");
  assert_has(c, "data-rows=\"3\" data-cols=\"3\"");
  assert_has(c, "data-probes=\"8\" data-success-rate=\"0.875000\" data-top-error=\"expired\""
                " data-group=\"a/modern/eu\"");
  assert_has(c, "data-probes=\"2\" data-success-rate=\"0.500000\" data-top-error=\"unknown_ca\""
                " data-group=\"" EVIL_GROUP_HTML "\"");
  assert_has(c, "data-probes=\"2\" data-success-rate=\"0.000000\""
                " data-top-error=\"connection_refused\" data-group=\"b/old/us\"");
  assert_int_equal(count(c, "<g class=\"cell\""), 3);
  assert_int_equal(count(c, "<rect class=\"cell empty\""), 6); /* 3 x 3 - 3 */
  const char *modern = strstr(c, ">modern<"), *old = strstr(c, ">old<");
  assert_true(modern != NULL && old != NULL && modern < old);
  free(c);

  /* Warnings styled by level, the expired certificate CRIT. */
  assert_has(html, "<li class=\"crit\"><span class=\"level\">CRIT</span>" EVIL_GROUP_HTML
                   ": certificate expired");
  assert_has(html, "<li class=\"warn\"><span class=\"level\">WARN</span>a/modern/eu: success rate"
                   " 87.50%");
  assert_has(html, "<tr class=\"crit\"><td>" EVIL_TARGET_HTML "</td>");
  assert_has(html, "<table id=\"agents-table\">");
  assert_has(html, "<td>agent-h</td>");
  free(html);
  tp_report_free(rep);
}

/* The same page whatever the view; the view's grouping decides the rows. */
static void test_every_view_is_the_whole_page(void **state) {
  fixture *f = *state;
  load(f);
  tp_report *rep = build(f, 4, true);
  static const char *const ids[] = {"id=\"report-header\"", "id=\"summary-table\"",
                                    "<svg id=\"chart-success\"", "<svg id=\"chart-p99\"",
                                    "<svg id=\"chart-versions\"", "<svg id=\"chart-expiry\"",
                                    "<svg id=\"chart-matrix\"", "id=\"errors-table\"",
                                    "id=\"agents-table\""};
  for (int v = TP_VIEW_SUMMARY; v <= TP_VIEW_AGENTS; v++) {
    char *html = render(rep, (tp_report_view)v);
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
      assert_has(html, ids[i]);
    assert_true(strlen(html) > 10000);
    assert_has(html, "</body>\n</html>\n");
    free(html);
  }
  tp_report_free(rep);
}

/* No probes, no buckets, no chains: every chart is still there, sized, saying so. */
static void test_empty_and_unbucketed(void **state) {
  fixture *f = *state;
  tp_report *rep = build(f, 4, true);
  char *html = render(rep, TP_VIEW_SUMMARY);
  assert_int_equal(count(html, "no probes in window"), 5); /* summary, 2 lines, versions, matrix */
  assert_has(html, "<svg id=\"chart-expiry\" width=\"960\" height=\"52\" viewBox=\"0 0 960 52\"");
  assert_has(html, ">no certificate chains in window</text>");
  assert_has(html, "<p class=\"note\">no agent has delivered results</p>");
  check_markup(html);
  free(html);
  tp_report_free(rep);

  load(f);
  rep = build(f, 0, false); /* a library caller that asked for no time series */
  html = render(rep, TP_VIEW_SUMMARY);
  assert_int_equal(count(html, "no time series (report --buckets N)"), 2);
  assert_has(html, ">no certificate chains in window</text>");
  assert_has(html, "data-successes=\"7\" data-group=\"a/modern/eu\"");
  check_markup(html);
  free(html);
  tp_report_free(rep);
}

/* The SLO burn rates of each target x region (default objective 99.9 %, quorum 1):
 * b/us failed every probe, so it burns 1 / 0.001 = 1000 times its budget in every
 * window and pages; its CRIT line is counted in the header. */
static void test_slo_section(void **state) {
  fixture *f = *state;
  load(f);
  char err[512] = "";
  tp_report *rep = NULL;
  tp_report_query q = {.now_unix_ns = NOW_NS,
                       .since_unix_ns = NOW_NS - 3600 * INT64_C(1000000000),
                       .until_unix_ns = NOW_NS,
                       .since_text = "1h",
                       .with_slo = true};
  if (tp_report_build(f->store, &q, &rep, err, sizeof(err)) != TP_E_OK)
    fail_msg("report: %s", err);
  char *html = render(rep, TP_VIEW_SUMMARY);
  const char *table = strstr(html, "<table id=\"slo-table\">");
  assert_non_null(table);
  assert_has(table, "<tr class=\"crit\" data-state=\"page\"><td>b</td><td>us</td>"
                    "<td>99.9 % success</td><td class=\"n\">1000.00</td><td class=\"n\">1000.00</td>"
                    "<td class=\"n\">1000.00</td><td class=\"n\">1000.00</td>"
                    "<td class=\"n\">1000.00</td><td class=\"n\">1</td>"
                    "<td><span class=\"crit\">page</span></td></tr>");
  assert_has(table, "<td>" EVIL_TARGET_HTML "</td><td>eu</td>");
  assert_has(html, "<ul class=\"warnings\" id=\"slo-warnings\">\n");
  assert_has(html, "<li class=\"crit\"><span class=\"level\">CRIT</span>slo b: ");
  assert_has(html, "<span class=\"level\">CRIT</span>slo " EVIL_TARGET_HTML ": ");
  size_t crit = 0;
  for (size_t i = 0; i < tp_report_warning_count(rep); i++)
    crit += tp_report_warning_at(rep, i)->level == TP_REPORT_CRIT;
  for (size_t i = 0; i < tp_report_slo_warning_count(rep); i++)
    crit += tp_report_slo_warning_at(rep, i)->level == TP_REPORT_CRIT;
  char want[64];
  snprintf(want, sizeof(want), "<dd id=\"total-crit\">%zu</dd>", crit);
  assert_true(crit >= 2); /* the expired certificate, b's page */
  assert_has(html, want);
  check_markup(html);
  free(html);
  tp_report_free(rep);
}

/* Many groups: the line charts draw 40, the version bars 200, the matrix 200 rows;
 * each says how many it left out. Stored as one batch of 250 results. */
static void test_caps_say_what_is_left_out(void **state) {
  fixture *f = *state;
  enum { N = 250 };
  static Tlsprobe__V1__ProbeResult results[N];
  static Tlsprobe__V1__ProbeResult *ptrs[N];
  static char names[N][8];
  for (size_t i = 0; i < N; i++) {
    Tlsprobe__V1__ProbeResult r = TLSPROBE__V1__PROBE_RESULT__INIT;
    snprintf(names[i], sizeof(names[i]), "t%03zu", i);
    r.target = names[i];
    r.profile = "p";
    r.region = "eu";
    r.host = "localhost";
    r.port = 443;
    r.started_unix_ns = NOW_NS - MINUTE_NS;
    r.handshake_ns = MS_NS;
    r.error_class = (Tlsprobe__V1__ErrorClass)OK;
    r.ok = 1;
    r.tls_version = "TLS1.3";
    r.result_seq = i + 1;
    results[i] = r;
    ptrs[i] = &results[i];
  }
  Tlsprobe__V1__ResultBatch b = TLSPROBE__V1__RESULT_BATCH__INIT;
  b.agent_id = "agent-h";
  b.instance_id = 1;
  b.batch_seq = 1;
  b.results = ptrs;
  b.n_results = N;
  size_t len = tlsprobe__v1__result_batch__get_packed_size(&b);
  uint8_t *buf = malloc(len);
  assert_non_null(buf);
  assert_int_equal(tlsprobe__v1__result_batch__pack(&b, buf), len);
  tp_ingest_reply reply;
  if (tp_ingest_batch(f->store, buf, len, NOW_NS, &reply) != TP_E_OK)
    fail_msg("ingest: %s", reply.reason);
  tp_ingest_reply_clear(&reply);
  free(buf);

  tp_report *rep = build(f, 4, true);
  assert_int_equal(tp_report_series_count(rep), N);
  char *html = render(rep, TP_VIEW_SUMMARY);
  char *c = chart(html, "chart-success");
  assert_int_equal(count(c, "<path class=\"series\""), 40);
  free(c);
  assert_int_equal(count(html, "<p class=\"note\">210 more groups not drawn: narrow"), 2);
  c = chart(html, "chart-versions");
  assert_int_equal(count(c, "<g class=\"bar\""), 200);
  free(c);
  assert_has(html, "<p class=\"note\">50 more groups not drawn</p>");
  c = chart(html, "chart-matrix");
  assert_has(c, "data-rows=\"200\" data-cols=\"1\"");
  assert_int_equal(count(c, "<g class=\"cell\""), 200);
  free(c);
  assert_has(html, "<p class=\"note\">50 more groups not drawn (at most 200 rows and 60 profiles)");
  assert_int_equal(count(html, "<tr class=\"ok\"><td>t"), N); /* the table has them all */
  check_markup(html);
  free(html);
  tp_report_free(rep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_escaper),
      cmocka_unit_test_setup_teardown(test_hostile_strings_escaped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_charts_carry_the_numbers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_every_view_is_the_whole_page, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_and_unbucketed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_caps_say_what_is_left_out, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slo_section, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
