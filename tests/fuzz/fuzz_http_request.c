/* fuzz_http_request.c - libFuzzer target for the agent's metrics responder's
 * request-head parser (agent/http_request.c): the bytes anyone who reaches the
 * agent's metrics port may send.
 *
 * Besides sanitizer findings it aborts when a contract breaks: a verdict outside
 * the four, slices outside the input, a method or path longer than allowed, a
 * BAD without a reason, a complete head that does not end with an empty line --
 * and when parsing is not incremental: the responder parses again after every
 * read, so whatever a prefix of the input decided (OK with its head length, BAD,
 * VERSION) the whole input must decide the same. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "fuzz_seed.h"
#include "http_request.h"

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_http_request: invariant broken: %s\n", what);
    abort();
  }
}

static int within(const uint8_t *data, size_t size, const char *p, size_t n) {
  const char *start = (const char *)data;
  return p >= start && n <= size && p - start <= (ptrdiff_t)(size - n);
}

static tp_http_request_status parse_checked(const uint8_t *data, size_t size,
                                            tp_http_request *req) {
  tp_http_request_status st = tp_http_request_parse(data, size, req);
  check(st == TP_HTTP_REQUEST_OK || st == TP_HTTP_REQUEST_INCOMPLETE ||
            st == TP_HTTP_REQUEST_BAD || st == TP_HTTP_REQUEST_VERSION,
        "a verdict of the four");
  if (st == TP_HTTP_REQUEST_BAD || st == TP_HTTP_REQUEST_VERSION)
    check(req->why != NULL && req->why[0] != '\0', "a refusal says why");
  if (st != TP_HTTP_REQUEST_OK)
    return st;
  check(req->head_len >= 2 && req->head_len <= size, "the head within the input");
  check(data[req->head_len - 1] == '\n', "a head ends with its empty line");
  check(req->method_len >= 1 && req->method_len <= TP_HTTP_REQUEST_MAX_METHOD &&
            within(data, req->head_len, req->method, req->method_len),
        "the method within the head and its bound");
  check(req->target_len >= 1 && within(data, req->head_len, req->target, req->target_len),
        "the target within the head");
  check(req->path_len <= req->target_len, "the path within the target");
  check(req->version_minor <= 1, "HTTP/1.0 or HTTP/1.1");
  check(req->n_headers <= TP_HTTP_REQUEST_MAX_HEADERS, "headers within their bound");
  return st;
}

/* Returns the whole input's verdict. */
static tp_http_request_status run(const uint8_t *data, size_t size) {
  tp_http_request whole, part;
  tp_http_request_status st = parse_checked(data, size, &whole);
  size_t cuts[2] = {size / 2, size > 0 ? size - 1 : 0};
  for (size_t i = 0; i < 2; i++) {
    tp_http_request_status sp = parse_checked(data, cuts[i], &part);
    if (sp == TP_HTTP_REQUEST_INCOMPLETE)
      continue;
    check(sp == st, "more bytes changed a prefix's verdict");
    if (sp == TP_HTTP_REQUEST_OK)
      check(part.head_len == whole.head_len, "more bytes changed where the head ends");
  }
  return st;
}

/* ok-* must parse as a complete request head, reject-* must be refused (400 or 505);
 * others (incomplete-*, crash inputs) only have to run. */
int tp_fuzz_seed_run(const char *name, const uint8_t *data, size_t size) {
  tp_http_request_status st = run(data, size);
  if (st == TP_HTTP_REQUEST_INCOMPLETE && (strncmp(name, "ok-", 3) == 0 ||
                                           strncmp(name, "reject-", 7) == 0)) {
    fprintf(stderr, "FAIL %s: incomplete\n", name);
    return 1;
  }
  return tp_fuzz_seed_verdict(name, st == TP_HTTP_REQUEST_OK, "parsed", "refused");
}

void tp_fuzz_seed_cleanup(void) {}

/* The libFuzzer entry point (unused in the seed runner). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)run(data, size);
  return 0;
}
