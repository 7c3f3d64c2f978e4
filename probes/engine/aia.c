/* aia.c - see aia.h. One fetch per probe at most: resolve (an IP literal
 * inline, a name on libuv's resolver), connect, send one HTTP/1.0 GET, read
 * the answer into a bounded buffer until the server closes, then judge. The
 * fetch's socket and poll handle are its own; the probe's timer bounds it. */
#include "aia.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "chain.h"
#include "http.h"
#include "resolve.h"
#include "tp_mem.h"

#define OK_TTL_MS (3600u * 1000u)
#define FAIL_TTL_MS (300u * 1000u)

/* ---- cache -------------------------------------------------------------- */

typedef struct aia_entry {
  char url[sizeof(((tp_verdict *)0)->aia_url)];
  uint8_t *body; /* NULL = the fetch failed, why says how */
  size_t len;
  char why[160];
  uint64_t expires_ms; /* uv_now() of the engine's loop */
} aia_entry;

struct tp_aia_cache {
  aia_entry entries[TP_AIA_CACHE_ENTRIES];
  size_t next; /* replaced round-robin: bounded memory, no eviction policy to get wrong */
};

tp_aia_cache *tp__aia_cache_new(void) {
  return tp_xcalloc(1, sizeof(tp_aia_cache));
}

void tp__aia_cache_free(tp_aia_cache *cache) {
  if (cache == NULL)
    return;
  for (size_t i = 0; i < TP_AIA_CACHE_ENTRIES; i++)
    free(cache->entries[i].body);
  free(cache);
}

static const aia_entry *cache_find(const tp_aia_cache *cache, const char *url, uint64_t now) {
  for (size_t i = 0; i < TP_AIA_CACHE_ENTRIES; i++) {
    const aia_entry *e = &cache->entries[i];
    if (e->url[0] != '\0' && e->expires_ms > now && strcmp(e->url, url) == 0)
      return e;
  }
  return NULL;
}

static void cache_store(tp_aia_cache *cache, const char *url, const uint8_t *body, size_t len,
                        const char *why, uint64_t now) {
  aia_entry *e = &cache->entries[cache->next];
  cache->next = (cache->next + 1) % TP_AIA_CACHE_ENTRIES;
  free(e->body);
  memset(e, 0, sizeof(*e));
  snprintf(e->url, sizeof(e->url), "%s", url);
  if (body != NULL) {
    e->body = tp_xmalloc(len ? len : 1);
    memcpy(e->body, body, len);
    e->len = len;
  }
  snprintf(e->why, sizeof(e->why), "%s", why ? why : "");
  e->expires_ms = now + (body != NULL ? OK_TTL_MS : FAIL_TTL_MS);
}

/* ---- the verdict ---------------------------------------------------------- */

static void conclude(tp_probe *p, const char *url, const uint8_t *body, size_t len,
                     const char *why) {
  char detail[sizeof(p->primary.detail) + sizeof(p->primary.aia_url) + 256];
  tp_outcome outcome;
  size_t n_pool;
  const gnutls_x509_crt_t *pool = tp__profile_intermediates(p->profile, &n_pool);
  if (body == NULL) {
    outcome = TP_OUTCOME_UNKNOWN_CA;
    snprintf(detail, sizeof(detail),
             "%s; fetching it failed: %s, so nothing proves the server left it out",
             p->primary.detail, why);
  } else {
    gnutls_datum_t issuer = {(unsigned char *)body, (unsigned)len};
    outcome = tp_chain_verify_with_issuer(p->peer_der, p->n_peer_der, &issuer,
                                          tp__profile_credentials(p->profile), pool, n_pool,
                                          tp__probe_expected_name(p), url, detail,
                                          sizeof(detail));
  }
  p->result->chain_complete = false;
  tp__probe_finish(p, outcome, detail);
}

/* ---- URL ------------------------------------------------------------------ */

typedef struct aia_url {
  char host[256];
  char port[8];
  char path[512];
} aia_url;

/* http://host[:port]/path, host a name, IPv4 or [IPv6]. 0 or -1. */
static int parse_url(const char *url, aia_url *out) {
  const char *prefix = "http://";
  if (strncasecmp(url, prefix, strlen(prefix)) != 0)
    return -1;
  const char *h = url + strlen(prefix);
  const char *host_end;
  const char *after;
  if (*h == '[') {
    host_end = strchr(h, ']');
    if (host_end == NULL)
      return -1;
    h++;
    after = host_end + 1;
  } else {
    host_end = h + strcspn(h, ":/");
    after = host_end;
  }
  size_t hl = (size_t)(host_end - h);
  if (hl == 0 || hl >= sizeof(out->host))
    return -1;
  memcpy(out->host, h, hl);
  out->host[hl] = '\0';
  snprintf(out->port, sizeof(out->port), "80");
  if (*after == ':') {
    char *end = NULL;
    unsigned long port = strtoul(after + 1, &end, 10);
    if (end == after + 1 || port == 0 || port > 65535)
      return -1;
    snprintf(out->port, sizeof(out->port), "%lu", port);
    after = end;
  }
  if (*after == '\0')
    after = "/";
  if (*after != '/' || strlen(after) >= sizeof(out->path) || strpbrk(after, " \r\n") != NULL)
    return -1;
  snprintf(out->path, sizeof(out->path), "%s", after);
  return 0;
}

/* ---- the fetch ------------------------------------------------------------ */

struct tp_aia_fetch {
  tp_probe *probe;
  char url[sizeof(((tp_verdict *)0)->aia_url)];
  aia_url parts;
  int fd;
  uv_poll_t poll;
  bool poll_open, connecting, done;
  bool quiet; /* aborted: report nothing, the probe ends on its own */
  tp_resolve_req *dns; /* the lookup of the URL's host, or NULL */
  char request[1024];
  size_t request_len, request_sent;
  tp_buf response;
  /* the verdict, delivered once every handle is closed */
  bool have_body;
  char why[160];
};

static void on_fetch_closed(uv_handle_t *handle);

static void fetch_release(tp_aia_fetch *f) {
  tp_probe *p = f->probe;
  p->aia = NULL;
  bool report = f->done && !f->quiet;
  if (report) {
    const uint8_t *body = NULL;
    size_t len = 0;
    if (f->have_body) {
      /* tp_http_parse_head found the head; the body follows it */
      const uint8_t *data = f->response.data;
      const uint8_t *end = memmem(data, f->response.len, "\r\n\r\n", 4);
      if (end != NULL) {
        body = end + 4;
        len = f->response.len - (size_t)(body - data);
      }
    }
    uint64_t now = uv_now(tp__engine_loop(p->engine));
    cache_store(tp__engine_aia_cache(p->engine), f->url, body, len, f->why, now);
    conclude(p, f->url, body, len, f->why); /* f (and its buffer) is freed after it */
  } else {
    tp__probe_conn_gone(p);
  }
  if (f->fd >= 0)
    close(f->fd);
  tp_buf_free(&f->response);
  free(f);
}

static void maybe_release_fetch(tp_aia_fetch *f) {
  if (!f->poll_open && f->dns == NULL)
    fetch_release(f);
}

static void on_fetch_closed(uv_handle_t *handle) {
  tp_aia_fetch *f = handle->data;
  f->poll_open = false;
  maybe_release_fetch(f);
}

/* Ends the fetch: why = NULL when the body is usable. */
static void fetch_end(tp_aia_fetch *f, const char *why) {
  if (f->done)
    return;
  f->done = true;
  f->have_body = why == NULL;
  snprintf(f->why, sizeof(f->why), "%s", why ? why : "");
  uv_timer_stop(&f->probe->timer);
  if (f->dns != NULL) { /* no callback follows a cancel */
    tp_resolve_cancel(f->dns);
    f->dns = NULL;
  }
  if (f->poll_open && !uv_is_closing((uv_handle_t *)&f->poll))
    uv_close((uv_handle_t *)&f->poll, on_fetch_closed);
  else
    maybe_release_fetch(f);
}

void tp__aia_on_timeout(tp_aia_fetch *f) {
  fetch_end(f, "no complete answer within the handshake timeout");
}

void tp__aia_abort(tp_aia_fetch *f) {
  if (f->done)
    return;
  f->quiet = true;
  fetch_end(f, "aborted");
}

static void judge_response(tp_aia_fetch *f, bool overflow) {
  tp_http_response resp;
  char why[96];
  if (overflow) {
    snprintf(why, sizeof(why), "the answer exceeds %d bytes", TP_AIA_MAX_BYTES);
    fetch_end(f, why);
    return;
  }
  if (tp_http_parse_head(&f->response, &resp) < 0 || !resp.complete || resp.status == 0) {
    fetch_end(f, "the answer is not an HTTP/1.x response");
    return;
  }
  if (resp.status != 200) {
    snprintf(why, sizeof(why), "HTTP status %u", resp.status);
    fetch_end(f, why);
    return;
  }
  fetch_end(f, NULL);
}

static void on_fetch_poll(uv_poll_t *handle, int status, int events);

static void fetch_step(tp_aia_fetch *f, int status) {
  if (f->connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = errno;
    if (err == 0 && status < 0)
      err = -status;
    if (err != 0) {
      char why[64];
      snprintf(why, sizeof(why), "connect: %s", strerrorname_np(err) ? strerrorname_np(err) : "?");
      fetch_end(f, why);
      return;
    }
    f->connecting = false;
  }
  while (f->request_sent < f->request_len) {
    ssize_t n = send(f->fd, f->request + f->request_sent, f->request_len - f->request_sent,
                     MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return; /* still watching UV_WRITABLE */
    if (n < 0) {
      fetch_end(f, "the request could not be sent");
      return;
    }
    f->request_sent += (size_t)n;
    if (f->request_sent == f->request_len &&
        uv_poll_start(&f->poll, UV_READABLE, on_fetch_poll) < 0) {
      fetch_end(f, "cannot watch the socket");
      return;
    }
  }
  for (;;) {
    uint8_t buf[4096];
    ssize_t n = recv(f->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return;
    if (n < 0) {
      fetch_end(f, "the connection failed while reading the answer");
      return;
    }
    if (n == 0) { /* HTTP/1.0 with Connection: close: the body ends here */
      judge_response(f, false);
      return;
    }
    if (tp_buf_append(&f->response, buf, (size_t)n) != TP_E_OK) {
      judge_response(f, true);
      return;
    }
  }
}

static void on_fetch_poll(uv_poll_t *handle, int status, int events) {
  tp_aia_fetch *f = handle->data;
  (void)events;
  if (f->done)
    return;
  fetch_step(f, status);
}

static void fetch_connect(tp_aia_fetch *f, const struct sockaddr *addr, socklen_t addrlen) {
  f->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (f->fd < 0) {
    fetch_end(f, "no socket");
    return;
  }
  if (uv_poll_init_socket(tp__engine_loop(f->probe->engine), &f->poll, f->fd) < 0) {
    fetch_end(f, "cannot watch the socket");
    return;
  }
  f->poll.data = f;
  f->poll_open = true;
  f->connecting = true;
  if (connect(f->fd, addr, addrlen) != 0 && errno != EINPROGRESS) {
    char why[64];
    snprintf(why, sizeof(why), "connect: %s", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
    fetch_end(f, why);
    return;
  }
  if (uv_poll_start(&f->poll, UV_WRITABLE, on_fetch_poll) < 0)
    fetch_end(f, "cannot watch the socket");
}

static void on_fetch_resolved(const tp_resolve_result *res, void *data) {
  tp_aia_fetch *f = data;
  f->dns = NULL;
  if (res->status != TP_RESOLVE_OK || res->count == 0) {
    char why[128];
    snprintf(why, sizeof(why), "cannot resolve \"%.60s\": %s", f->parts.host, res->message);
    fetch_end(f, why);
    return;
  }
  fetch_connect(f, (const struct sockaddr *)&res->addrs[0].addr, res->addrs[0].len);
}

static void start_fetch(tp_probe *p, const char *url) {
  tp_aia_fetch *f = tp_xcalloc(1, sizeof(*f));
  f->probe = p;
  f->fd = -1;
  snprintf(f->url, sizeof(f->url), "%s", url);
  tp_buf_init(&f->response, TP_AIA_MAX_BYTES + TP_HTTP_MAX_HEADER_BYTES);
  p->aia = f;
  tp__probe_arm_timer(p, p->timeouts.handshake_ms);
  if (p->state == PROBE_DONE)
    return;
  if (parse_url(url, &f->parts) != 0) {
    fetch_end(f, "the URL is not http://host[:port]/path");
    return;
  }
  int n = snprintf(f->request, sizeof(f->request),
                   "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: tlsprobe\r\n"
                   "Accept: application/pkix-cert\r\nConnection: close\r\n\r\n",
                   f->parts.path, f->parts.host);
  if (n < 0 || (size_t)n >= sizeof(f->request)) {
    fetch_end(f, "the URL is too long");
    return;
  }
  f->request_len = (size_t)n;
  uint16_t port = (uint16_t)strtoul(f->parts.port, NULL, 10);
  tp_resolve_result literal;
  if (tp_resolve_numeric(f->parts.host, port, TP_RESOLVE_ANY, &literal)) {
    if (literal.status != TP_RESOLVE_OK || literal.count == 0)
      fetch_end(f, literal.message);
    else /* an IP literal: no lookup */
      fetch_connect(f, (const struct sockaddr *)&literal.addrs[0].addr, literal.addrs[0].len);
    return;
  }
  tp_err rc = tp_resolve_start(tp__engine_resolver(p->engine), f->parts.host, port, TP_RESOLVE_ANY,
                               p->timeouts.handshake_ms, on_fetch_resolved, f, &f->dns);
  if (rc != TP_E_OK) {
    f->dns = NULL;
    fetch_end(f, tp_strerror(rc));
  }
}

void tp__aia_begin(tp_probe *p, const tp_verdict *primary) {
  p->primary = *primary;
  p->timings_fixed = true;
  tp__probe_end_timings(p); /* the fetch is evidence, not part of the probe's latency */
  uint64_t now = uv_now(tp__engine_loop(p->engine));
  const aia_entry *hit = cache_find(tp__engine_aia_cache(p->engine), primary->aia_url, now);
  if (hit != NULL) {
    conclude(p, hit->url, hit->body, hit->len, hit->why);
    return;
  }
  p->state = PROBE_RUNNING;
  start_fetch(p, primary->aia_url);
}
