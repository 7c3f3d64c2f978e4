/* test_resolve.c - tp_resolve against a real DNS server: a uv_udp responder on
 * 127.0.0.1 (free port) on the test's own loop, answering A/AAAA from a table
 * and never answering "blackhole.test". No mocks: real c-ares, real sockets.
 *   - good.test both: ::1 then 127.0.0.1; ipv4/ipv6 only one family;
 *     many.test interleaved v6/v4 and capped at 16; duplicates removed;
 *   - NXDOMAIN and NODATA are no_such_name, fast; SERVFAIL is an error; a
 *     server port nobody listens on is an error, not a hang;
 *   - the regression (issue #6, defect 7): with 8 blackholed lookups pending,
 *     good.test is answered first and fast;
 *   - a blackholed name times out at its own deadline, independently of
 *     others' (a shorter deadline started later fires first);
 *   - a cancelled request never calls back (also from another callback, and
 *     cancelling oneself in one's own callback is harmless);
 *   - IP literals: synchronously with tp_resolve_numeric, through the loop
 *     (never inline) with tp_resolve_start, no DNS query either way;
 *   - slots are bounded: requests wait, time out waiting, TP_E_FULL beyond;
 *     abandoned lookups free their slot, but max_abandoned of them stop
 *     new ones until c-ares gives them up;
 *   - close with lookups in flight (and from inside a callback): every
 *     request gets CANCELLED once, after tp_resolver_close returns;
 *   - 400 mixed requests on 8 slots with cancels: one callback each;
 *   - every loop ends with uv_loop_close() == 0. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "resolve.h"
#include "tp_mem.h"

/* ---- the DNS server ----------------------------------------------------- */

#define RCODE_SERVFAIL 2
#define RCODE_NXDOMAIN 3
#define MAX_ZONE_ADDRS 10

typedef struct {
  const char *name;
  int rcode;
  bool drop;
  const char *a[MAX_ZONE_ADDRS];
  const char *aaaa[MAX_ZONE_ADDRS];
} zone_entry;

static const zone_entry zone[] = {
    {.name = "good.test", .a = {"127.0.0.1"}, .aaaa = {"::1"}},
    {.name = "v4only.test", .a = {"127.0.0.2"}},
    {.name = "dup.test", .a = {"127.0.0.3", "127.0.0.3", "127.0.0.4"}},
    {.name = "many.test",
     .a = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7",
           "10.0.0.8", "10.0.0.9", "10.0.0.10"},
     .aaaa = {"fd00::1", "fd00::2", "fd00::3", "fd00::4", "fd00::5", "fd00::6", "fd00::7",
              "fd00::8", "fd00::9", "fd00::10"}},
    {.name = "nx.test", .rcode = RCODE_NXDOMAIN},
    {.name = "servfail.test", .rcode = RCODE_SERVFAIL},
    {.name = "blackhole.test", .drop = true},
};

typedef struct {
  uv_loop_t loop;
  uv_udp_t udp;
  uv_timer_t guard; /* keeps UV_RUN_ONCE from blocking forever in run_until */
  uint16_t port;
  unsigned char rbuf[2048];
  unsigned queries;           /* every query received */
  unsigned blackhole_queries; /* of which for blackhole.test */
  tp_resolver *r;
  bool closed;
  unsigned seq; /* order of callbacks */
} fixture;

static const zone_entry *zone_find(const char *name) {
  for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++)
    if (strcmp(zone[i].name, name) == 0)
      return &zone[i];
  return NULL;
}

static void put16(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}

/* Appends one answer record (name = pointer to the question) if it fits. */
static size_t put_answer(unsigned char *out, size_t len, size_t cap, int type, const char *text) {
  unsigned char rdata[16];
  int af = type == 28 ? AF_INET6 : AF_INET;
  size_t rdlen = type == 28 ? 16 : 4;
  assert_int_equal(inet_pton(af, text, rdata), 1);
  if (len + 12 + rdlen > cap)
    return len;
  unsigned char *p = out + len;
  put16(p, 0xC00C);
  put16(p + 2, (unsigned)type);
  put16(p + 4, 1);   /* IN */
  put16(p + 6, 0);   /* TTL, high */
  put16(p + 8, 60);  /* TTL, low */
  put16(p + 10, (unsigned)rdlen);
  memcpy(p + 12, rdata, rdlen);
  return len + 12 + rdlen;
}

/* Parses one query with bounds checks on every byte and answers it. */
static void answer(fixture *f, const unsigned char *q, size_t n, const struct sockaddr *from) {
  if (n < 12 || q[4] != 0 || q[5] != 1)
    return;
  char name[256];
  size_t nl = 0, off = 12;
  for (;;) {
    if (off >= n)
      return;
    size_t l = q[off++];
    if (l == 0)
      break;
    if (l > 63 || off + l > n || nl + l + 2 > sizeof(name))
      return;
    if (nl > 0)
      name[nl++] = '.';
    for (size_t i = 0; i < l; i++)
      name[nl++] = (char)tolower(q[off + i]);
    off += l;
  }
  name[nl] = '\0';
  if (off + 4 > n)
    return;
  int qtype = q[off] << 8 | q[off + 1];
  size_t qend = off + 4;
  f->queries++;

  const zone_entry *z = zone_find(name);
  if (z != NULL && z->drop) {
    f->blackhole_queries++;
    return;
  }
  unsigned char out[512];
  if (qend > sizeof(out))
    return;
  memcpy(out, q, qend);
  int rcode = z == NULL ? RCODE_NXDOMAIN : z->rcode;
  out[2] = (unsigned char)(0x84 | (q[2] & 0x01)); /* QR, AA, RD as asked */
  out[3] = (unsigned char)(0x80 | rcode);         /* RA */
  put16(out + 6, 0);
  put16(out + 8, 0);
  put16(out + 10, 0);
  size_t len = qend;
  unsigned count = 0;
  if (z != NULL && rcode == 0) {
    const char *const *list = qtype == 28 ? z->aaaa : qtype == 1 ? z->a : NULL;
    for (size_t i = 0; list != NULL && i < MAX_ZONE_ADDRS && list[i] != NULL; i++, count++)
      len = put_answer(out, len, sizeof(out), qtype, list[i]);
  }
  put16(out + 6, count);
  uv_buf_t b = uv_buf_init((char *)out, (unsigned)len);
  assert_true(uv_udp_try_send(&f->udp, &b, 1, from) >= 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  fixture *f = handle->data;
  *buf = uv_buf_init((char *)f->rbuf, sizeof(f->rbuf));
}

static void on_query(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf,
                     const struct sockaddr *from, unsigned flags) {
  (void)flags;
  if (nread <= 0 || from == NULL)
    return;
  answer(udp->data, (const unsigned char *)buf->base, (size_t)nread, from);
}

/* ---- fixture ------------------------------------------------------------ */

static void on_guard(uv_timer_t *t) {
  (void)t;
}

static tp_resolver_options options_for(const fixture *f, char *servers, size_t cap) {
  snprintf(servers, cap, "127.0.0.1:%u", (unsigned)f->port);
  /* c-ares's own retry far beyond the deadlines the tests use, so the
   * deadlines measured are ours. */
  tp_resolver_options o = {.servers = servers, .try_timeout_ms = 3000, .tries = 1};
  return o;
}

static int setup(void **state) {
  fixture *f = tp_xcalloc(1, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(uv_udp_init(&f->loop, &f->udp), 0);
  f->udp.data = f;
  struct sockaddr_in sin;
  assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
  assert_int_equal(uv_udp_bind(&f->udp, (const struct sockaddr *)&sin, 0), 0);
  int len = sizeof(sin);
  assert_int_equal(uv_udp_getsockname(&f->udp, (struct sockaddr *)&sin, &len), 0);
  f->port = ntohs(sin.sin_port);
  assert_int_equal(uv_udp_recv_start(&f->udp, on_alloc, on_query), 0);
  assert_int_equal(uv_timer_init(&f->loop, &f->guard), 0);
  char servers[64];
  tp_resolver_options o = options_for(f, servers, sizeof(servers));
  assert_int_equal(tp_resolver_new(&f->loop, &o, &f->r), TP_E_OK);
  *state = f;
  return 0;
}

static void on_closed(void *data) {
  fixture *f = data;
  f->closed = true;
}

static void close_resolver(fixture *f) {
  if (f->r != NULL && !f->closed)
    tp_resolver_close(f->r, on_closed, f);
}

static int teardown(void **state) {
  fixture *f = *state;
  close_resolver(f);
  uv_close((uv_handle_t *)&f->udp, NULL);
  uv_close((uv_handle_t *)&f->guard, NULL);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_true(f->closed);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

/* ---- requests ------------------------------------------------------------ */

typedef struct {
  fixture *f;
  unsigned calls;
  unsigned order; /* 1 = the first callback of the test */
  tp_resolve_result res;
  char message[160];
  uint64_t t_start, t_done;
  tp_resolve_req *req;
  tp_resolve_req *cancel_in_cb; /* cancelled from this request's callback */
  bool close_in_cb;             /* closes the resolver from this callback */
  bool cancel_self_in_cb;
} outcome;

static void on_result(const tp_resolve_result *res, void *data) {
  outcome *o = data;
  o->calls++;
  o->order = ++o->f->seq;
  o->t_done = uv_hrtime();
  o->res = *res;
  snprintf(o->message, sizeof(o->message), "%s", res->message);
  o->res.message = o->message;
  if (o->cancel_self_in_cb)
    tp_resolve_cancel(o->req); /* documented no-op */
  if (o->cancel_in_cb != NULL)
    tp_resolve_cancel(o->cancel_in_cb);
  if (o->close_in_cb)
    close_resolver(o->f);
}

static void start(fixture *f, outcome *o, const char *host, tp_resolve_family fam, uint64_t timeout_ms) {
  o->f = f;
  o->t_start = uv_hrtime();
  assert_int_equal(tp_resolve_start(f->r, host, 443, fam, timeout_ms, on_result, o, &o->req), TP_E_OK);
  assert_non_null(o->req);
}

typedef bool (*predicate)(void *);

/* Runs the loop until pred says done or limit_ms pass; true when done. */
static bool run_until(fixture *f, predicate pred, void *arg, uint64_t limit_ms) {
  uint64_t end = uv_hrtime() + limit_ms * 1000000ull;
  assert_int_equal(uv_timer_start(&f->guard, on_guard, 20, 20), 0);
  bool done = pred(arg);
  while (!done && uv_hrtime() < end) {
    uv_run(&f->loop, UV_RUN_ONCE);
    done = pred(arg);
  }
  assert_int_equal(uv_timer_stop(&f->guard), 0);
  return done;
}

typedef struct {
  outcome *list;
  size_t n;
} outcomes;

static bool all_called(void *arg) {
  outcomes *os = arg;
  for (size_t i = 0; i < os->n; i++)
    if (os->list[i].calls == 0)
      return false;
  return true;
}

static bool one_called(void *arg) {
  return ((outcome *)arg)->calls > 0;
}

static bool never(void *arg) {
  (void)arg;
  return false;
}

static bool closed(void *arg) {
  return ((fixture *)arg)->closed;
}

static void resolve_one(fixture *f, outcome *o, const char *host, tp_resolve_family fam) {
  memset(o, 0, sizeof(*o));
  start(f, o, host, fam, 2000);
  assert_true(run_until(f, one_called, o, 3000));
  assert_int_equal(o->calls, 1);
}

static double ms_between(uint64_t from, uint64_t to) {
  return (double)(to - from) / 1e6;
}

static void assert_addr(const tp_resolve_addr *a, const char *text, uint16_t port) {
  char got[INET6_ADDRSTRLEN] = "";
  const struct sockaddr *sa = (const struct sockaddr *)&a->addr;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->addr;
    assert_int_equal(a->len, sizeof(*sin));
    assert_int_equal(ntohs(sin->sin_port), port);
    inet_ntop(AF_INET, &sin->sin_addr, got, sizeof(got));
  } else {
    assert_int_equal(sa->sa_family, AF_INET6);
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->addr;
    assert_int_equal(a->len, sizeof(*sin6));
    assert_int_equal(ntohs(sin6->sin6_port), port);
    inet_ntop(AF_INET6, &sin6->sin6_addr, got, sizeof(got));
  }
  assert_string_equal(got, text);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_good_name_families(void **state) {
  fixture *f = *state;
  outcome o;
  resolve_one(f, &o, "good.test", TP_RESOLVE_ANY);
  assert_int_equal(o.res.status, TP_RESOLVE_OK);
  assert_int_equal(o.res.count, 2);
  assert_false(o.res.truncated);
  assert_addr(&o.res.addrs[0], "::1", 443); /* RFC 8305 §4: IPv6 first */
  assert_addr(&o.res.addrs[1], "127.0.0.1", 443);

  resolve_one(f, &o, "good.test", TP_RESOLVE_V4);
  assert_int_equal(o.res.status, TP_RESOLVE_OK);
  assert_int_equal(o.res.count, 1);
  assert_addr(&o.res.addrs[0], "127.0.0.1", 443);

  resolve_one(f, &o, "GOOD.test", TP_RESOLVE_V6); /* names are case-insensitive */
  assert_int_equal(o.res.status, TP_RESOLVE_OK);
  assert_int_equal(o.res.count, 1);
  assert_addr(&o.res.addrs[0], "::1", 443);

  resolve_one(f, &o, "v4only.test", TP_RESOLVE_ANY); /* AAAA: NODATA, A answers */
  assert_int_equal(o.res.status, TP_RESOLVE_OK);
  assert_int_equal(o.res.count, 1);
  assert_addr(&o.res.addrs[0], "127.0.0.2", 443);

  resolve_one(f, &o, "v4only.test", TP_RESOLVE_V6);
  assert_int_equal(o.res.status, TP_RESOLVE_NONAME);
  assert_int_equal(o.res.count, 0);
}

static void test_interleaved_capped_deduplicated(void **state) {
  fixture *f = *state;
  outcome o;
  resolve_one(f, &o, "many.test", TP_RESOLVE_ANY);
  assert_int_equal(o.res.status, TP_RESOLVE_OK);
  assert_int_equal(o.res.count, TP_RESOLVE_MAX_ADDRS);
  assert_true(o.res.truncated); /* 20 answered */
  for (size_t i = 0; i < o.res.count; i++)
    assert_int_equal(o.res.addrs[i].addr.ss_family, i % 2 == 0 ? AF_INET6 : AF_INET);

  resolve_one(f, &o, "many.test", TP_RESOLVE_V4);
  assert_int_equal(o.res.count, 10);
  assert_false(o.res.truncated);

  resolve_one(f, &o, "dup.test", TP_RESOLVE_ANY);
  assert_int_equal(o.res.status, TP_RESOLVE_OK);
  assert_int_equal(o.res.count, 2); /* 127.0.0.3 answered twice */
}

static void test_nxdomain_and_servfail(void **state) {
  fixture *f = *state;
  outcome o;
  resolve_one(f, &o, "nx.test", TP_RESOLVE_ANY);
  assert_int_equal(o.res.status, TP_RESOLVE_NONAME);
  assert_string_equal(tp_resolve_status_name(o.res.status), "no_such_name");
  assert_string_equal(o.message, "Domain name not found");
  assert_true(ms_between(o.t_start, o.t_done) < 200);

  resolve_one(f, &o, "not-in-the-table.test", TP_RESOLVE_V4);
  assert_int_equal(o.res.status, TP_RESOLVE_NONAME);

  resolve_one(f, &o, "servfail.test", TP_RESOLVE_V4);
  assert_int_equal(o.res.status, TP_RESOLVE_ERROR);
  assert_true(ms_between(o.t_start, o.t_done) < 500);
}

/* The regression: libuv's 4 resolver threads would all be stuck on
 * blackholed names and good.test would wait for one of them (or time out). */
static void test_blackholed_names_do_not_stall_others(void **state) {
  fixture *f = *state;
  outcome o[9];
  memset(o, 0, sizeof(o));
  for (int i = 0; i < 8; i++)
    start(f, &o[i], "blackhole.test", TP_RESOLVE_ANY, 500);
  start(f, &o[8], "good.test", TP_RESOLVE_ANY, 500);
  tp_resolver_stats st;
  tp_resolver_get_stats(f->r, &st);
  assert_int_equal(st.active, 9);
  assert_int_equal(st.waiting, 0);

  assert_true(run_until(f, one_called, &o[8], 1000));
  for (int i = 0; i < 8; i++)
    assert_int_equal(o[i].calls, 0); /* answered before any blackhole deadline */
  assert_int_equal(o[8].order, 1);
  assert_int_equal(o[8].res.status, TP_RESOLVE_OK);
  assert_int_equal(o[8].res.count, 2);
  double good_ms = ms_between(o[8].t_start, o[8].t_done);
  print_message("good.test with 8 blackholed lookups pending: %.2f ms\n", good_ms);
  assert_true(good_ms < 100);

  outcomes all = {o, 9};
  assert_true(run_until(f, all_called, &all, 2000));
  for (int i = 0; i < 8; i++) {
    assert_int_equal(o[i].calls, 1);
    assert_int_equal(o[i].res.status, TP_RESOLVE_TIMEOUT);
    assert_true(o[i].order > 1);
  }
  assert_int_equal(f->blackhole_queries, 16); /* A and AAAA each */
  tp_resolver_get_stats(f->r, &st);
  assert_int_equal(st.active, 0);
  assert_int_equal(st.abandoned, 8); /* c-ares still waits for them */
}

static void test_blackhole_times_out_at_its_own_deadline(void **state) {
  fixture *f = *state;
  outcome o[2];
  memset(o, 0, sizeof(o));
  start(f, &o[0], "blackhole.test", TP_RESOLVE_ANY, 500);
  start(f, &o[1], "blackhole.test", TP_RESOLVE_V4, 200); /* later, shorter: first */
  outcomes all = {o, 2};
  assert_true(run_until(f, all_called, &all, 2000));
  double ms0 = ms_between(o[0].t_start, o[0].t_done);
  double ms1 = ms_between(o[1].t_start, o[1].t_done);
  print_message("blackhole deadlines 500 / 200 ms fired after %.1f / %.1f ms\n", ms0, ms1);
  assert_int_equal(o[0].res.status, TP_RESOLVE_TIMEOUT);
  assert_string_equal(tp_resolve_status_name(o[0].res.status), "timeout");
  assert_string_equal(o[0].message, "no answer within 500 ms");
  assert_true(ms0 >= 500 && ms0 <= 800);
  assert_int_equal(o[1].res.status, TP_RESOLVE_TIMEOUT);
  assert_true(ms1 >= 200 && ms1 <= 500);
  assert_int_equal(o[1].order, 1);
  assert_int_equal(o[0].order, 2);
}

static void test_cancel_never_calls_back(void **state) {
  fixture *f = *state;
  outcome o[6];
  memset(o, 0, sizeof(o));
  start(f, &o[0], "blackhole.test", TP_RESOLVE_ANY, 300);
  start(f, &o[1], "good.test", TP_RESOLVE_ANY, 300); /* cancelled before its answer */
  start(f, &o[2], "192.0.2.1", TP_RESOLVE_ANY, 300); /* literal: done, not yet delivered */
  tp_resolve_cancel(o[0].req);
  tp_resolve_cancel(o[1].req);
  tp_resolve_cancel(o[2].req);
  tp_resolver_stats st;
  tp_resolver_get_stats(f->r, &st);
  assert_int_equal(st.active, 0);
  assert_int_equal(st.abandoned, 2);

  /* o[3]'s callback cancels o[4] (still pending) and cancels itself (no-op). */
  start(f, &o[4], "blackhole.test", TP_RESOLVE_ANY, 300);
  o[3].cancel_in_cb = o[4].req;
  o[3].cancel_self_in_cb = true;
  start(f, &o[3], "good.test", TP_RESOLVE_ANY, 300);
  assert_true(run_until(f, one_called, &o[3], 1000));
  assert_int_equal(o[3].res.status, TP_RESOLVE_OK);

  (void)run_until(f, never, NULL, 600); /* past every deadline */
  assert_int_equal(o[0].calls, 0);
  assert_int_equal(o[1].calls, 0);
  assert_int_equal(o[2].calls, 0);
  assert_int_equal(o[3].calls, 1);
  assert_int_equal(o[4].calls, 0);
  tp_resolver_get_stats(f->r, &st);
  assert_int_equal(st.active, 0);
  assert_int_equal(st.waiting, 0);
}

static void test_ip_literals(void **state) {
  fixture *f = *state;
  tp_resolve_result res;
  assert_true(tp_resolve_numeric("127.0.0.1", 8443, TP_RESOLVE_ANY, &res));
  assert_int_equal(res.status, TP_RESOLVE_OK);
  assert_int_equal(res.count, 1);
  assert_addr(&res.addrs[0], "127.0.0.1", 8443);
  assert_true(tp_resolve_numeric("2001:db8::1", 443, TP_RESOLVE_V6, &res));
  assert_addr(&res.addrs[0], "2001:db8::1", 443);
  assert_true(tp_resolve_numeric("fe80::1%1", 443, TP_RESOLVE_ANY, &res));
  assert_int_equal(res.status, TP_RESOLVE_OK);
  assert_int_equal(((const struct sockaddr_in6 *)&res.addrs[0].addr)->sin6_scope_id, 1);
  assert_true(tp_resolve_numeric("fe80::1%lo", 443, TP_RESOLVE_ANY, &res));
  assert_int_equal(res.status, TP_RESOLVE_OK);
  /* negative: wrong family, unknown scope, not literals */
  assert_true(tp_resolve_numeric("::1", 443, TP_RESOLVE_V4, &res));
  assert_int_equal(res.status, TP_RESOLVE_NONAME);
  assert_int_equal(res.count, 0);
  assert_true(tp_resolve_numeric("127.0.0.1", 443, TP_RESOLVE_V6, &res));
  assert_int_equal(res.status, TP_RESOLVE_NONAME);
  assert_true(tp_resolve_numeric("fe80::1%no-such-if0", 443, TP_RESOLVE_ANY, &res));
  assert_int_equal(res.status, TP_RESOLVE_ERROR);
  assert_false(tp_resolve_numeric("127.1", 443, TP_RESOLVE_ANY, &res));
  assert_false(tp_resolve_numeric("good.test", 443, TP_RESOLVE_ANY, &res));
  assert_false(tp_resolve_numeric("", 443, TP_RESOLVE_ANY, &res));
  assert_false(tp_resolve_numeric("%1", 443, TP_RESOLVE_ANY, &res));

  /* Through the resolver: deferred to the loop, no DNS query. */
  outcome o[2];
  memset(o, 0, sizeof(o));
  start(f, &o[0], "::1", TP_RESOLVE_ANY, 100);
  start(f, &o[1], "::1", TP_RESOLVE_V4, 100);
  assert_int_equal(o[0].calls, 0); /* never inside tp_resolve_start */
  outcomes all = {o, 2};
  assert_true(run_until(f, all_called, &all, 1000));
  assert_int_equal(o[0].res.status, TP_RESOLVE_OK);
  assert_addr(&o[0].res.addrs[0], "::1", 443);
  assert_int_equal(o[1].res.status, TP_RESOLVE_NONAME);
  assert_int_equal(f->queries, 0);
}

static void test_abandoned_lookup_frees_its_slot(void **state) {
  fixture *f = *state;
  tp_resolver_close(f->r, on_closed, f);
  assert_true(run_until(f, closed, f, 1000));
  f->closed = false;
  char servers[64];
  tp_resolver_options opt = options_for(f, servers, sizeof(servers));
  opt.max_in_flight = 1;
  assert_int_equal(tp_resolver_new(&f->loop, &opt, &f->r), TP_E_OK);
  outcome o[3];
  memset(o, 0, sizeof(o));
  start(f, &o[0], "blackhole.test", TP_RESOLVE_ANY, 200);
  start(f, &o[1], "blackhole.test", TP_RESOLVE_ANY, 5000); /* cancelled while active */
  start(f, &o[2], "good.test", TP_RESOLVE_ANY, 5000);
  outcomes all = {o, 1};
  assert_true(run_until(f, all_called, &all, 1000)); /* o[0] timed out: o[1] got the slot */
  tp_resolve_cancel(o[1].req);                       /* abandoned: o[2] gets it at once */
  assert_true(run_until(f, one_called, &o[2], 1000));
  assert_int_equal(o[2].res.status, TP_RESOLVE_OK);
  double ms = ms_between(o[0].t_done, o[2].t_done);
  print_message("good.test after its slot's holders were abandoned: %.2f ms later\n", ms);
  assert_true(ms < 100);
  tp_resolver_stats st;
  tp_resolver_get_stats(f->r, &st);
  assert_int_equal(st.abandoned, 2);
  assert_int_equal(o[1].calls, 0);
}

static void test_slots_are_bounded(void **state) {
  fixture *f = *state;
  tp_resolver_close(f->r, on_closed, f);
  assert_true(run_until(f, closed, f, 1000));
  f->closed = false;
  char servers[64];
  tp_resolver_options opt = options_for(f, servers, sizeof(servers));
  opt.max_in_flight = 1;
  opt.max_abandoned = 1;
  opt.max_waiting = 2;
  opt.try_timeout_ms = 1000; /* c-ares gives the abandoned lookup up after 1 s */
  assert_int_equal(tp_resolver_new(&f->loop, &opt, &f->r), TP_E_OK);

  outcome o[3];
  memset(o, 0, sizeof(o));
  start(f, &o[0], "blackhole.test", TP_RESOLVE_ANY, 300);
  start(f, &o[1], "good.test", TP_RESOLVE_ANY, 3000); /* waits: the slot is taken */
  start(f, &o[2], "good.test", TP_RESOLVE_ANY, 500);  /* waits, times out waiting */
  tp_resolve_req *extra = NULL;
  assert_int_equal(tp_resolve_start(f->r, "good.test", 443, TP_RESOLVE_ANY, 100, on_result, &o[2], &extra),
                   TP_E_FULL);
  assert_null(extra);
  tp_resolver_stats st;
  tp_resolver_get_stats(f->r, &st);
  assert_int_equal(st.active, 1);
  assert_int_equal(st.waiting, 2);

  assert_true(run_until(f, one_called, &o[0], 1000));
  assert_int_equal(o[0].res.status, TP_RESOLVE_TIMEOUT);
  tp_resolver_get_stats(f->r, &st);
  assert_int_equal(st.active, 0);
  assert_int_equal(st.abandoned, 1); /* = max_abandoned: nothing may start */
  assert_int_equal(st.waiting, 2);

  outcomes all = {o, 3};
  assert_true(run_until(f, all_called, &all, 3000));
  /* No lookup starts until c-ares gives the abandoned one up (1 s), so o[2]
   * runs out of time waiting and o[1] starts then. */
  assert_int_equal(o[2].res.status, TP_RESOLVE_TIMEOUT);
  assert_non_null(strstr(o[2].message, "no resolver slot within 500 ms"));
  assert_int_equal(o[1].res.status, TP_RESOLVE_OK);
  double ms1 = ms_between(o[1].t_start, o[1].t_done);
  print_message("good.test waiting behind an abandoned lookup: answered after %.0f ms\n", ms1);
  assert_true(ms1 >= 900 && ms1 < 2000);
  tp_resolver_get_stats(f->r, &st);
  assert_int_equal(st.active + st.abandoned + st.waiting, 0);
}

static void test_close_with_requests_in_flight(void **state) {
  fixture *f = *state;
  outcome o[6];
  memset(o, 0, sizeof(o));
  for (int i = 0; i < 4; i++)
    start(f, &o[i], "blackhole.test", TP_RESOLVE_ANY, 5000);
  start(f, &o[4], "good.test", TP_RESOLVE_ANY, 5000);
  start(f, &o[5], "127.0.0.1", TP_RESOLVE_ANY, 5000);
  tp_resolver_close(f->r, on_closed, f);
  for (int i = 0; i < 6; i++)
    assert_int_equal(o[i].calls, 0); /* not inside tp_resolver_close */
  outcome late;
  memset(&late, 0, sizeof(late));
  assert_int_equal(tp_resolve_start(f->r, "good.test", 443, TP_RESOLVE_ANY, 100, on_result, &late, NULL),
                   TP_E_INVAL); /* closing: refused, and no callback will come */
  assert_true(run_until(f, closed, f, 1000));
  for (int i = 0; i < 6; i++) {
    assert_int_equal(o[i].calls, 1);
    assert_int_equal(o[i].res.status, TP_RESOLVE_CANCELLED);
  }
  assert_int_equal(late.calls, 0);
}

static void test_close_from_a_callback(void **state) {
  fixture *f = *state;
  outcome o[3];
  memset(o, 0, sizeof(o));
  start(f, &o[0], "blackhole.test", TP_RESOLVE_ANY, 5000);
  start(f, &o[1], "blackhole.test", TP_RESOLVE_V6, 5000);
  o[2].close_in_cb = true;
  start(f, &o[2], "good.test", TP_RESOLVE_ANY, 5000);
  assert_true(run_until(f, closed, f, 2000));
  assert_int_equal(o[2].calls, 1);
  assert_int_equal(o[2].res.status, TP_RESOLVE_OK);
  assert_int_equal(o[0].calls, 1);
  assert_int_equal(o[0].res.status, TP_RESOLVE_CANCELLED);
  assert_int_equal(o[1].calls, 1);
  assert_int_equal(o[1].res.status, TP_RESOLVE_CANCELLED);
}

static void test_no_server_listening_is_an_error_not_a_hang(void **state) {
  fixture *f = *state;
  /* A port where nobody listens: bind one, remember it, close it. */
  uv_udp_t tmp;
  struct sockaddr_in sin;
  assert_int_equal(uv_udp_init(&f->loop, &tmp), 0);
  assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sin), 0);
  assert_int_equal(uv_udp_bind(&tmp, (const struct sockaddr *)&sin, 0), 0);
  int len = sizeof(sin);
  assert_int_equal(uv_udp_getsockname(&tmp, (struct sockaddr *)&sin, &len), 0);
  uv_close((uv_handle_t *)&tmp, NULL);

  tp_resolver *dead = NULL;
  char servers[64];
  snprintf(servers, sizeof(servers), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
  tp_resolver_options opt = {.servers = servers, .try_timeout_ms = 3000, .tries = 2};
  assert_int_equal(tp_resolver_new(&f->loop, &opt, &dead), TP_E_OK);
  outcome o;
  memset(&o, 0, sizeof(o));
  o.f = f;
  o.t_start = uv_hrtime();
  assert_int_equal(tp_resolve_start(dead, "good.test", 443, TP_RESOLVE_ANY, 2000, on_result, &o, NULL),
                   TP_E_OK);
  assert_true(run_until(f, one_called, &o, 3000));
  print_message("no server listening: %s after %.1f ms (%s)\n", tp_resolve_status_name(o.res.status),
                ms_between(o.t_start, o.t_done), o.message);
  assert_int_equal(o.res.status, TP_RESOLVE_ERROR); /* ICMP port unreachable: refused */
  assert_true(ms_between(o.t_start, o.t_done) < 1000);
  tp_resolver_close(dead, NULL, NULL); /* on_closed may be NULL; teardown runs the loop */
}

/* Many requests of every kind at once, some cancelled (also from other
 * callbacks), with few slots: every request not cancelled is called back
 * exactly once with the status its name deserves; nothing leaks (ASan). */
static void test_mixed_load(void **state) {
  fixture *f = *state;
  tp_resolver_close(f->r, on_closed, f);
  assert_true(run_until(f, closed, f, 1000));
  f->closed = false;
  char servers[64];
  tp_resolver_options opt = options_for(f, servers, sizeof(servers));
  opt.max_in_flight = 8;
  assert_int_equal(tp_resolver_new(&f->loop, &opt, &f->r), TP_E_OK);

  enum { N = 400 };
  static const char *const hosts[] = {"good.test", "nx.test", "blackhole.test", "v4only.test",
                                      "127.0.0.1", "many.test"};
  static const tp_resolve_status expect[] = {TP_RESOLVE_OK, TP_RESOLVE_NONAME, TP_RESOLVE_TIMEOUT,
                                             TP_RESOLVE_OK, TP_RESOLVE_OK, TP_RESOLVE_OK};
  outcome *o = tp_xcalloc(N, sizeof(*o));
  bool cancelled[N] = {false};
  size_t host_of[N];
  uint32_t seed = 12345;
  for (int i = 0; i < N; i++) {
    seed = seed * 1103515245u + 12345u;
    size_t k = (seed >> 16) % (sizeof(hosts) / sizeof(hosts[0]));
    host_of[i] = k;
    /* blackholes get short deadlines; the others enough to wait for a slot */
    start(f, &o[i], hosts[k], TP_RESOLVE_ANY, k == 2 ? 150 : 5000);
    if (i % 7 == 3) {
      tp_resolve_cancel(o[i].req);
      cancelled[i] = true;
    }
  }
  /* Cancel some from another request's callback: a literal's, which runs in
   * the first loop iteration's idle phase, before any answer is read, so its
   * victim is surely still pending. */
  for (int i = 1; i < N; i++) {
    if (host_of[i - 1] == 4 && host_of[i] != 4 && !cancelled[i - 1] && !cancelled[i]) {
      o[i - 1].cancel_in_cb = o[i].req;
      cancelled[i] = true;
    }
  }

  outcome *live[N];
  size_t n_live = 0;
  for (int i = 0; i < N; i++)
    if (!cancelled[i])
      live[n_live++] = &o[i];
  bool all_done = false;
  uint64_t end = uv_hrtime() + 8000ull * 1000000ull;
  assert_int_equal(uv_timer_start(&f->guard, on_guard, 20, 20), 0);
  while (!all_done && uv_hrtime() < end) {
    uv_run(&f->loop, UV_RUN_ONCE);
    all_done = true;
    for (size_t j = 0; j < n_live && all_done; j++)
      all_done = live[j]->calls > 0;
  }
  assert_int_equal(uv_timer_stop(&f->guard), 0);
  assert_true(all_done);
  (void)run_until(f, never, NULL, 200); /* let late callbacks show themselves */
  unsigned by_status[TP_RESOLVE__STATUS_COUNT] = {0};
  for (int i = 0; i < N; i++) {
    if (cancelled[i]) {
      assert_int_equal(o[i].calls, 0);
      continue;
    }
    assert_int_equal(o[i].calls, 1);
    assert_int_equal(o[i].res.status, expect[host_of[i]]);
    by_status[o[i].res.status]++;
  }
  print_message("mixed load: %u ok, %u no_such_name, %u timeout, %zu cancelled\n",
                by_status[TP_RESOLVE_OK], by_status[TP_RESOLVE_NONAME], by_status[TP_RESOLVE_TIMEOUT],
                (size_t)N - n_live);
  tp_resolver_stats st;
  tp_resolver_get_stats(f->r, &st);
  assert_int_equal(st.active + st.waiting, 0);
  free(o);
}

static void test_bad_arguments(void **state) {
  fixture *f = *state;
  tp_resolver *r = NULL;
  tp_resolver_options bad = {.servers = "not an address"};
  assert_int_equal(tp_resolver_new(&f->loop, &bad, &r), TP_E_CONFIG);
  bad.servers = "";
  assert_int_equal(tp_resolver_new(&f->loop, &bad, &r), TP_E_CONFIG);
  assert_null(r);
  assert_int_equal(tp_resolver_new(NULL, NULL, &r), TP_E_INVAL);

  outcome o;
  memset(&o, 0, sizeof(o));
  o.f = f;
  tp_resolve_req *req = (tp_resolve_req *)&o;
  char longname[300];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  assert_int_equal(tp_resolve_start(f->r, "", 443, TP_RESOLVE_ANY, 100, on_result, &o, &req), TP_E_INVAL);
  assert_null(req);
  assert_int_equal(tp_resolve_start(f->r, longname, 443, TP_RESOLVE_ANY, 100, on_result, &o, NULL),
                   TP_E_INVAL);
  assert_int_equal(tp_resolve_start(f->r, "good.test", 443, TP_RESOLVE_ANY, 0, on_result, &o, NULL),
                   TP_E_INVAL);
  assert_int_equal(tp_resolve_start(f->r, "good.test", 443, TP_RESOLVE_ANY, UINT64_MAX, on_result, &o, NULL),
                   TP_E_INVAL);
  assert_int_equal(tp_resolve_start(f->r, "good.test", 443, TP_RESOLVE_ANY, 100, NULL, &o, NULL),
                   TP_E_INVAL);
  assert_int_equal(tp_resolve_start(f->r, "good.test", 443, (tp_resolve_family)7, 100, on_result, &o, NULL),
                   TP_E_INVAL);
  (void)run_until(f, never, NULL, 50);
  assert_int_equal(o.calls, 0);

  tp_resolve_family fam = TP_RESOLVE_V4;
  assert_true(tp_resolve_family_parse("both", &fam));
  assert_int_equal(fam, TP_RESOLVE_ANY);
  assert_true(tp_resolve_family_parse("ipv6", &fam));
  assert_int_equal(fam, TP_RESOLVE_V6);
  assert_false(tp_resolve_family_parse("IPv6", &fam));
  assert_false(tp_resolve_family_parse(NULL, &fam));
  assert_string_equal(tp_resolve_family_name(TP_RESOLVE_V4), "ipv4");
  /* status names are unique and stable */
  for (int i = 0; i < TP_RESOLVE__STATUS_COUNT; i++)
    for (int j = i + 1; j < TP_RESOLVE__STATUS_COUNT; j++)
      assert_string_not_equal(tp_resolve_status_name((tp_resolve_status)i),
                              tp_resolve_status_name((tp_resolve_status)j));
  assert_string_equal(tp_resolve_status_name(TP_RESOLVE__STATUS_COUNT), "?");
}

int main(void) {
  if (tp_resolve_global_init() != TP_E_OK) {
    fprintf(stderr, "tp_resolve_global_init failed\n");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_good_name_families, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interleaved_capped_deduplicated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nxdomain_and_servfail, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blackholed_names_do_not_stall_others, setup, teardown),
      cmocka_unit_test_setup_teardown(test_blackhole_times_out_at_its_own_deadline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_never_calls_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ip_literals, setup, teardown),
      cmocka_unit_test_setup_teardown(test_abandoned_lookup_frees_its_slot, setup, teardown),
      cmocka_unit_test_setup_teardown(test_slots_are_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_with_requests_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_from_a_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_server_listening_is_an_error_not_a_hang, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mixed_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  tp_resolve_global_cleanup();
  return failed;
}
