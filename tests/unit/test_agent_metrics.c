/* test_agent_metrics.c - the agent's /metrics: the request-head parser over good,
 * incomplete and hostile heads (table-driven, every case of RFC 9112 it refuses),
 * the text rendered from a snapshot, and the responder on a real libuv loop with
 * real sockets (answers, the head cap, closing with connections open), each loop
 * ending with uv_loop_close() == 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "agent_metrics.h"
#include "http_request.h"
#include "metrics_server.h"

/* ---- the parser ----------------------------------------------------------------------- */

typedef struct parse_case {
  const char *head;
  tp_http_request_status status;
  const char *why_or_path; /* BAD/VERSION: a substring of why; OK: the path */
} parse_case;

static const parse_case CASES[] = {
    {"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", TP_HTTP_REQUEST_OK, "/metrics"},
    {"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", TP_HTTP_REQUEST_OK, "/metrics"},
    {"GET /metrics HTTP/1.0\r\n\r\n", TP_HTTP_REQUEST_OK, "/metrics"}, /* 1.0: Host optional */
    {"GET /metrics HTTP/1.1\nHost: a\n\n", TP_HTTP_REQUEST_OK, "/metrics"}, /* bare LF lines */
    {"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", TP_HTTP_REQUEST_OK, "/"}, /* leading CRLFs */
    {"HEAD /metrics HTTP/1.1\r\nhOsT:a\r\nX-Empty:\r\nX-Tab: a\tb\r\n\r\n", TP_HTTP_REQUEST_OK,
     "/metrics"},
    {"GET /metrics HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", TP_HTTP_REQUEST_OK, "/metrics"},
    {"", TP_HTTP_REQUEST_INCOMPLETE, NULL},
    {"GET /metrics HTTP/1.1", TP_HTTP_REQUEST_INCOMPLETE, NULL},
    {"GET /metrics HTTP/1.1\r\nHost: a\r\n", TP_HTTP_REQUEST_INCOMPLETE, NULL},
    {"GET /metrics HTTP/1.1\r\nHost: a\r\n\r", TP_HTTP_REQUEST_INCOMPLETE, NULL},
    {"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", TP_HTTP_REQUEST_OK, NULL},
    {" GET /metrics HTTP/1.1\r\n\r\n", TP_HTTP_REQUEST_BAD, "method"},
    {"GET  /metrics HTTP/1.1\r\n\r\n", TP_HTTP_REQUEST_BAD, "target"},
    {"GET /met rics HTTP/1.1\r\n\r\n", TP_HTTP_REQUEST_BAD, "version"},
    {"GET /metrics HTTP/1.1 \r\n\r\n", TP_HTTP_REQUEST_BAD, "version"},
    {"GET /metrics\r\n\r\n", TP_HTTP_REQUEST_BAD, "target"}, /* HTTP/0.9 */
    {"GET /metrics HTTP/1.2\r\nHost: a\r\n\r\n", TP_HTTP_REQUEST_VERSION, "version"},
    {"GET /metrics HTTP/2.0\r\n\r\n", TP_HTTP_REQUEST_VERSION, "version"},
    {"GET /metrics http/1.1\r\n\r\n", TP_HTTP_REQUEST_BAD, "version"},
    {"GET /metrics HTTP/1.1\r\n\r\n", TP_HTTP_REQUEST_BAD, "without Host"},
    {"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", TP_HTTP_REQUEST_BAD, "one Host"},
    {"GET /metrics HTTP/1.1\r\nHost : a\r\n\r\n", TP_HTTP_REQUEST_BAD, "before a header's colon"},
    {"GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", TP_HTTP_REQUEST_BAD, "folding"},
    {"GET /metrics HTTP/1.1\r\nHost: a\rb\r\n\r\n", TP_HTTP_REQUEST_BAD, "bare CR"},
    {"GET /metrics HTTP/1.1\rHost: a\r\n\r\n", TP_HTTP_REQUEST_BAD, "bare CR"},
    {"GET /metrics HTTP/1.1\r\nHost: a\x01\r\n\r\n", TP_HTTP_REQUEST_BAD, "control"},
    {"GET /metrics HTTP/1.1\r\nHost: a\x7f\r\n\r\n", TP_HTTP_REQUEST_BAD, "control"},
    {"GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n", TP_HTTP_REQUEST_BAD, "header name"},
    {"GET /metrics HTTP/1.1\r\n: empty\r\n\r\n", TP_HTTP_REQUEST_BAD, "header name"},
    {"VERYLONGMETHODNAMEX /metrics HTTP/1.1\r\n\r\n", TP_HTTP_REQUEST_BAD, "method"},
    {"G\xc3\xa9T / HTTP/1.1\r\n\r\n", TP_HTTP_REQUEST_BAD, "request line"},
};

static void test_parse_cases(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
    const parse_case *c = &CASES[i];
    tp_http_request req;
    tp_http_request_status st =
        tp_http_request_parse((const uint8_t *)c->head, strlen(c->head), &req);
    if (st != c->status)
      fail_msg("case %zu (%s): status %d, expected %d (why: %s)", i, c->head, st, c->status,
               req.why ? req.why : "-");
    if (st == TP_HTTP_REQUEST_OK && c->why_or_path != NULL) {
      assert_int_equal(req.path_len, strlen(c->why_or_path));
      assert_memory_equal(req.target, c->why_or_path, req.path_len);
      assert_true(req.head_len <= strlen(c->head));
    }
    if ((st == TP_HTTP_REQUEST_BAD || st == TP_HTTP_REQUEST_VERSION) &&
        strstr(req.why, c->why_or_path) == NULL)
      fail_msg("case %zu: why \"%s\" lacks \"%s\"", i, req.why, c->why_or_path);
  }
}

/* A NUL inside the head is bytes like any other: never a terminator. */
static void test_parse_binary(void **state) {
  (void)state;
  static const uint8_t head[] = "GET /metrics HTTP/1.1\r\nHost: a\0b\r\n\r\n";
  tp_http_request req;
  assert_int_equal(tp_http_request_parse(head, sizeof(head) - 1, &req), TP_HTTP_REQUEST_BAD);
  static const uint8_t ok[] = "GET /m HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\0AFTER";
  assert_int_equal(tp_http_request_parse(ok, sizeof(ok) - 1, &req), TP_HTTP_REQUEST_OK);
  assert_int_equal(req.head_len, strlen("GET /m HTTP/1.1\r\nHost: a\r\n\r\n"));
  /* Too many header fields. */
  char many[8192];
  size_t n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: a\r\n");
  for (int i = 0; i < TP_HTTP_REQUEST_MAX_HEADERS; i++)
    n += (size_t)snprintf(many + n, sizeof(many) - n, "X: %d\r\n", i);
  n += (size_t)snprintf(many + n, sizeof(many) - n, "\r\n");
  assert_int_equal(tp_http_request_parse((const uint8_t *)many, n, &req), TP_HTTP_REQUEST_BAD);
  assert_non_null(strstr(req.why, "too many"));
}

/* ---- the rendered text --------------------------------------------------------------------- */

static void test_render(void **state) {
  (void)state;
  tp_loop_numbers loops[2] = {{.in_flight = 3, .pending = 1, .started = 10, .skipped = 2},
                              {.started = 5}};
  loops[0].late[0] = 9;
  loops[0].late[TP_LOOP_LATE_BUCKETS] = 1; /* above 5 s */
  loops[0].late_sum_ns = 7500000000;
  tp_agent_metrics_snapshot s = {.agent_id = "edge-1",
                                 .region = "eu \"west\"",
                                 .version = "0.1.0",
                                 .spool = "sqlite:/var/lib/x.spool",
                                 .spool_durable = true,
                                 .spool_max_bytes = 1 << 20,
                                 .loops = 2,
                                 .loop = loops,
                                 .max_in_flight = 64,
                                 .max_pending = 1024};
  s.results[1] = 7;                              /* ok */
  s.results[3] = 2;                              /* connection_refused */
  s.results[TP_AGENT_METRICS_DIVERGENT] = 1;
  s.push.spool.records = 12;
  s.push.spool.bytes = 3456;
  s.push.spool.dropped_full = 4;
  s.push.failures_by[TP_PUSH_FAILURE_RETRY] = 5;
  tp_buf b;
  tp_buf_init(&b, 1 << 20);
  assert_int_equal(tp_agent_metrics_render(&s, &b), TP_E_OK);
  const char *text = (const char *)b.data;
  const char *expect[] = {
      "tlsprobe_agent_info{agent=\"edge-1\",region=\"eu \\\"west\\\"\",version=\"0.1.0\","
      "spool=\"sqlite:/var/lib/x.spool\",spool_durable=\"true\"} 1\n",
      "tlsprobe_agent_probes_in_flight{loop=\"0\"} 3\n",
      "tlsprobe_agent_probes_in_flight{loop=\"1\"} 0\n",
      "tlsprobe_agent_probes_pending{loop=\"0\"} 1\n",
      "tlsprobe_agent_probes_skipped_total{loop=\"0\"} 2\n",
      "tlsprobe_agent_schedule_lateness_seconds_bucket{loop=\"0\",le=\"0.001\"} 9\n",
      "tlsprobe_agent_schedule_lateness_seconds_bucket{loop=\"0\",le=\"5\"} 9\n",
      "tlsprobe_agent_schedule_lateness_seconds_bucket{loop=\"0\",le=\"+Inf\"} 10\n",
      "tlsprobe_agent_schedule_lateness_seconds_sum{loop=\"0\"} 7.5\n",
      "tlsprobe_agent_schedule_lateness_seconds_count{loop=\"0\"} 10\n",
      "tlsprobe_agent_results_total{result=\"ok\"} 7\n",
      "tlsprobe_agent_results_total{result=\"connection_refused\"} 2\n",
      "tlsprobe_agent_results_total{result=\"divergent\"} 1\n",
      "tlsprobe_agent_spool_records 12\n",
      "tlsprobe_agent_spool_bytes 3456\n",
      "tlsprobe_agent_spool_limit_bytes 1048576\n",
      "tlsprobe_agent_spool_dropped_results_total{reason=\"spool_full\"} 4\n",
      "tlsprobe_agent_push_failures_total{answer=\"retry\"} 5\n",
      "tlsprobe_agent_push_failures_total{answer=\"network\"} 0\n",
      "# TYPE tlsprobe_agent_schedule_lateness_seconds histogram\n",
  };
  for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
    if (strstr(text, expect[i]) == NULL)
      fail_msg("missing line: %s", expect[i]);
  tp_buf_free(&b);
}

/* ---- the responder on a real loop ------------------------------------------------------- */

typedef struct server_fixture {
  uv_loop_t loop;
  tp_agent_metrics_server *server;
  unsigned renders;
} server_fixture;

static tp_err render_fixed(tp_buf *out, void *data) {
  server_fixture *f = data;
  f->renders++;
  return tp_buf_append(out, "x_total 1\n", 10);
}

/* A blocking client on its own thread, so the loop can run meanwhile; it wakes the
 * loop when the server has closed the connection. */
typedef struct client {
  uint16_t port;
  const char *request;
  size_t request_len;
  char reply[4096];
  size_t reply_len;
  uv_thread_t thread;
  uv_async_t done;
} client;

static void client_main(void *arg) {
  client *c = arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(c->port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
    for (size_t sent = 0; sent < c->request_len;) {
      ssize_t n = send(fd, c->request + sent, c->request_len - sent, MSG_NOSIGNAL);
      if (n <= 0)
        break;
      sent += (size_t)n;
    }
    for (;;) {
      ssize_t n = recv(fd, c->reply + c->reply_len, sizeof(c->reply) - 1 - c->reply_len, 0);
      if (n <= 0)
        break;
      c->reply_len += (size_t)n;
    }
  }
  c->reply[c->reply_len] = '\0';
  if (fd >= 0)
    close(fd);
  uv_async_send(&c->done);
}

static void on_client_done(uv_async_t *async) {
  uv_close((uv_handle_t *)async, NULL);
}

/* Runs the loop until the client thread has its whole answer (the server closes
 * after answering, which ends the client's read loop). */
static void run_client(server_fixture *f, client *c) {
  c->port = tp_agent_metrics_server_port(f->server);
  assert_int_equal(uv_async_init(&f->loop, &c->done, on_client_done), 0);
  assert_int_equal(uv_thread_create(&c->thread, client_main, c), 0);
  /* The server's handles keep the loop alive: run until the async closed. */
  while (!uv_is_closing((uv_handle_t *)&c->done))
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* the async's close callback */
  assert_int_equal(uv_thread_join(&c->thread), 0);
}

static void test_responder(void **state) {
  (void)state;
  server_fixture f = {0};
  char err[256] = "";
  tp_listen_addr addr;
  assert_int_equal(uv_loop_init(&f.loop), 0);
  assert_int_equal(tp_listen_addr_parse("127.0.0.1:0", &addr, err, sizeof(err)), TP_E_OK);
  if (tp_agent_metrics_server_start(&f.loop, &addr, render_fixed, &f, NULL, &f.server, err,
                                    sizeof(err)) != TP_E_OK)
    fail_msg("start: %s", err);
  assert_int_not_equal(tp_agent_metrics_server_port(f.server), 0);

  client ok = {.request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"};
  ok.request_len = strlen(ok.request);
  run_client(&f, &ok);
  assert_non_null(strstr(ok.reply, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(ok.reply, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  assert_non_null(strstr(ok.reply, "Content-Length: 10\r\n"));
  assert_non_null(strstr(ok.reply, "Connection: close\r\n\r\nx_total 1\n"));
  assert_int_equal(f.renders, 1);

  client head = {.request = "HEAD /metrics HTTP/1.0\r\n\r\n"};
  head.request_len = strlen(head.request);
  run_client(&f, &head);
  assert_non_null(strstr(head.reply, "HTTP/1.1 200 OK\r\n"));
  assert_null(strstr(head.reply, "x_total")); /* no body for HEAD */

  client notfound = {.request = "GET /other HTTP/1.1\r\nHost: x\r\n\r\n"};
  notfound.request_len = strlen(notfound.request);
  run_client(&f, &notfound);
  assert_non_null(strstr(notfound.reply, "HTTP/1.1 404 Not Found\r\n"));

  /* A head that never ends: answered 431 at the cap, with unread bytes still coming. */
  static char big[TP_HTTP_REQUEST_MAX_HEAD + 100];
  memset(big, 'a', sizeof(big));
  memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
  client toobig = {.request = big, .request_len = sizeof(big)};
  run_client(&f, &toobig);
  assert_non_null(strstr(toobig.reply, "HTTP/1.1 431 "));
  assert_int_equal(f.renders, 2); /* 404 and 431 render nothing */

  tp_agent_metrics_server_close(f.server);
  assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f.loop), 0);
}

/* A port in use is an error with the address in it; closing frees everything. */
static void test_port_in_use(void **state) {
  (void)state;
  uv_loop_t loop;
  char err[256] = "";
  tp_listen_addr addr;
  tp_agent_metrics_server *a = NULL, *b = NULL;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(tp_listen_addr_parse("127.0.0.1:0", &addr, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_agent_metrics_server_start(&loop, &addr, render_fixed, NULL, NULL, &a, err,
                                                 sizeof(err)),
                   TP_E_OK);
  char text[64];
  snprintf(text, sizeof(text), "127.0.0.1:%u", tp_agent_metrics_server_port(a));
  assert_int_equal(tp_listen_addr_parse(text, &addr, err, sizeof(err)), TP_E_OK);
  assert_int_equal(tp_agent_metrics_server_start(&loop, &addr, render_fixed, NULL, NULL, &b, err,
                                                 sizeof(err)),
                   TP_E_IO);
  assert_null(b);
  assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
  assert_non_null(strstr(err, "Address already in use"));
  tp_agent_metrics_server_close(a);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_cases), cmocka_unit_test(test_parse_binary),
      cmocka_unit_test(test_render),      cmocka_unit_test(test_responder),
      cmocka_unit_test(test_port_in_use),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
