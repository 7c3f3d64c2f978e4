/* limit_loop.c - "the limit": the least CPU and time a TLS prober can spend per probe,
 * measured with a minimal GnuTLS client against a local server (bench/suite.sh).
 *
 *   bench-limit --port P --sni NAME --ca CA.pem [--host 127.0.0.1] [--priority STR]
 *               [--mode sequential|concurrent|paced] [--threads T] [--in-flight K]
 *               [--rate R] [--count N] [--duration SECONDS] [--warmup N] [--json]
 *
 * Every probe: socket, connect, a full handshake with one priority cache and one set of
 * credentials built at start (as a prober's profile would), chain verification with the
 * hostname check right after the handshake (gnutls_certificate_verify_peers3, which is
 * what the engine does too, so "handshake" time means the same on both sides), a
 * close_notify, close. No resumption, no application data.
 *
 *   sequential  blocking sockets, one probe after the other: the "bare" loop.
 *   concurrent  T threads, each an epoll loop with K probes in flight (non-blocking
 *               sockets; the epoll interest changes only when GnuTLS wants the other
 *               direction): the limit at a prober's concurrency.
 *   paced       one epoll loop starting a probe every 1/R s (up to K in flight; a start
 *               that finds no free slot is late, and its lateness is counted): latency
 *               percentiles at a low rate while something else runs on the machine.
 *
 * Bounded: stops after --count probes or --duration seconds, whichever comes first; a
 * probe not done within 10 s fails. CPU is getrusage(RUSAGE_SELF) (every thread) over the
 * measured probes only (the warm-up runs before). --json prints one object (the figures
 * bench/suite.sh reads), otherwise one line. Exit: 0 all ok, 1 any failure, 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBE_TIMEOUT_NS (10ULL * 1000000000ULL)
#define MAX_IN_FLIGHT 4096
#define MAX_THREADS 64
#define MAX_COUNT 10000000UL
#define DEFAULT_PRIORITY                                                                           \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"          \
  "+GROUP-SECP384R1:+GROUP-SECP521R1"

typedef enum { MODE_SEQUENTIAL, MODE_CONCURRENT, MODE_PACED } run_mode;

typedef struct {
  const char *host, *sni, *ca, *priority;
  unsigned port, threads, in_flight, warmup;
  unsigned long count;
  double duration_s, rate;
  run_mode mode;
  bool json;
} options;

/* Shared, read-only after setup: what every probe borrows. */
typedef struct {
  const options *opt;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  gnutls_priority_t priority;
  gnutls_certificate_credentials_t cred;
  uint64_t t_end_ns;    /* no probe starts after this (the duration limit) */
  atomic_ulong started; /* probes started, all threads (the count limit) */
} shared;

/* Durations per probe, nanoseconds; growable (bounded by --count). */
typedef struct {
  uint64_t *v;
  size_t n, cap;
} samples;

/* What one thread measured. */
typedef struct {
  samples connect, handshake, verify, total, late;
  unsigned long ok, failed;
  char first_error[256];
  char version[32], group[32];
} tally;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(double *user, double *sys) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return -1;
  *user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  *sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  return *user + *sys;
}

static int samples_add(samples *s, uint64_t v) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    uint64_t *nv = realloc(s->v, cap * sizeof(*nv));
    if (nv == NULL)
      return -1;
    s->v = nv;
    s->cap = cap;
  }
  s->v[s->n++] = v;
  return 0;
}

static int samples_merge(samples *into, const samples *from) {
  for (size_t i = 0; i < from->n; i++)
    if (samples_add(into, from->v[i]) != 0)
      return -1;
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest rank (every value printed was observed), milliseconds; -1 when empty. */
static double quantile_ms(const samples *s, double q) {
  if (s->n == 0)
    return -1;
  size_t rank = (size_t)(q * (double)s->n + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > s->n)
    rank = s->n;
  return (double)s->v[rank - 1] / 1e6;
}

static void tally_fail(tally *t, const char *what, const char *why) {
  t->failed++;
  if (t->first_error[0] == '\0')
    snprintf(t->first_error, sizeof(t->first_error), "%s: %s", what, why);
}

static void tally_free(tally *t) {
  free(t->connect.v);
  free(t->handshake.v);
  free(t->verify.v);
  free(t->total.v);
  free(t->late.v);
}

/* One more probe may start: under the count limit (claims it) and the time limit. */
static bool claim_probe(shared *sh) {
  if (now_ns() >= sh->t_end_ns)
    return false;
  unsigned long n = atomic_fetch_add(&sh->started, 1);
  if (n >= sh->opt->count) {
    atomic_fetch_sub(&sh->started, 1);
    return false;
  }
  return true;
}

static int new_session(shared *sh, int fd, gnutls_session_t *out, bool nonblock) {
  gnutls_session_t s;
  int rc = gnutls_init(&s, GNUTLS_CLIENT | (nonblock ? GNUTLS_NONBLOCK : 0));
  if (rc < 0)
    return rc;
  if ((rc = gnutls_priority_set(s, sh->priority)) < 0 ||
      (rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, sh->cred)) < 0 ||
      (rc = gnutls_server_name_set(s, GNUTLS_NAME_DNS, sh->opt->sni, strlen(sh->opt->sni))) < 0) {
    gnutls_deinit(s);
    return rc;
  }
  gnutls_transport_set_int(s, fd);
  *out = s;
  return 0;
}

/* Chain and hostname, as a prober judges the server; 0 when trusted. */
static int verify(gnutls_session_t s, const char *sni, char *why, size_t len) {
  unsigned status = 0;
  int rc = gnutls_certificate_verify_peers3(s, sni, &status);
  if (rc < 0) {
    snprintf(why, len, "%s", gnutls_strerror(rc));
    return -1;
  }
  if (status != 0) {
    gnutls_datum_t txt = {NULL, 0};
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0) == 0) {
      snprintf(why, len, "%s", (const char *)txt.data);
      gnutls_free(txt.data);
    } else {
      snprintf(why, len, "verification status 0x%x", status);
    }
    return -1;
  }
  return 0;
}

static void note_facts(tally *t, gnutls_session_t s) {
  if (t->version[0] != '\0')
    return;
  const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(s));
  const char *g = gnutls_group_get_name(gnutls_group_get(s));
  snprintf(t->version, sizeof(t->version), "%s", v ? v : "?");
  snprintf(t->group, sizeof(t->group), "%s", g ? g : "?");
}

/* ---- sequential: blocking, one at a time ----------------------------------------------- */

/* 0 ok, -1 the probe failed (counted), 1 out of memory for its samples. */
static int blocking_probe(shared *sh, tally *t, bool record) {
  char why[160];
  uint64_t t0 = now_ns(), t1, t2, t3;
  gnutls_session_t s = NULL;
  int rc, ok = -1;
  int fd = socket(sh->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    tally_fail(t, "socket", strerror(errno));
    return -1;
  }
  if (connect(fd, (struct sockaddr *)&sh->addr, sh->addr_len) != 0) {
    tally_fail(t, "connect", strerror(errno));
    goto out;
  }
  t1 = now_ns();
  if ((rc = new_session(sh, fd, &s, false)) < 0) {
    tally_fail(t, "session", gnutls_strerror(rc));
    goto out;
  }
  do
    rc = gnutls_handshake(s);
  while (rc < 0 && !gnutls_error_is_fatal(rc));
  if (rc < 0) {
    tally_fail(t, "handshake", gnutls_strerror(rc));
    goto out;
  }
  t2 = now_ns();
  if (verify(s, sh->opt->sni, why, sizeof(why)) != 0) {
    tally_fail(t, "verify", why);
    goto out;
  }
  t3 = now_ns();
  (void)gnutls_bye(s, GNUTLS_SHUT_WR); /* best effort: the result is already known */
  ok = 0;
  if (record) {
    note_facts(t, s);
    t->ok++;
    if (samples_add(&t->connect, t1 - t0) || samples_add(&t->handshake, t2 - t1) ||
        samples_add(&t->verify, t3 - t2) || samples_add(&t->total, now_ns() - t0))
      ok = 1;
  }
out:
  if (s != NULL)
    gnutls_deinit(s);
  close(fd);
  return ok;
}

static int run_sequential(shared *sh, tally *t) {
  while (claim_probe(sh))
    if (blocking_probe(sh, t, true) == 1)
      return -1;
  return 0;
}

/* ---- concurrent and paced: non-blocking, on epoll -------------------------------------- */

typedef enum { SLOT_FREE, SLOT_CONNECTING, SLOT_HANDSHAKING } slot_state;

typedef struct {
  slot_state state;
  int fd;
  uint32_t events; /* current epoll interest */
  gnutls_session_t s;
  uint64_t t_start, t_connected, late;
} slot;

typedef struct {
  shared *sh;
  tally t;
  int ep;
  slot *slots;
  unsigned n_slots, busy;
  /* paced: the next planned start and the interval between starts */
  uint64_t next_start, interval_ns;
  int rc;
} worker;

static void slot_close(worker *w, slot *sl) {
  if (sl->s != NULL)
    gnutls_deinit(sl->s);
  if (sl->fd >= 0)
    close(sl->fd); /* also leaves the epoll set */
  sl->s = NULL;
  sl->fd = -1;
  sl->state = SLOT_FREE;
  w->busy--;
}

static void slot_fail(worker *w, slot *sl, const char *what, const char *why) {
  tally_fail(&w->t, what, why);
  slot_close(w, sl);
}

static int slot_want(worker *w, slot *sl, uint32_t events) {
  if (sl->events == events)
    return 0;
  struct epoll_event ev = {.events = events, .data.ptr = sl};
  if (epoll_ctl(w->ep, EPOLL_CTL_MOD, sl->fd, &ev) != 0)
    return -1;
  sl->events = events;
  return 0;
}

static void slot_done(worker *w, slot *sl) {
  char why[160];
  uint64_t t2 = now_ns();
  if (verify(sl->s, w->sh->opt->sni, why, sizeof(why)) != 0) {
    slot_fail(w, sl, "verify", why);
    return;
  }
  uint64_t t3 = now_ns();
  (void)gnutls_bye(sl->s, GNUTLS_SHUT_WR); /* non-blocking, best effort */
  note_facts(&w->t, sl->s);
  w->t.ok++;
  if (samples_add(&w->t.connect, sl->t_connected - sl->t_start) ||
      samples_add(&w->t.handshake, t2 - sl->t_connected) || samples_add(&w->t.verify, t3 - t2) ||
      samples_add(&w->t.total, now_ns() - sl->t_start) || samples_add(&w->t.late, sl->late))
    w->rc = -1;
  slot_close(w, sl);
}

static void slot_handshake(worker *w, slot *sl) {
  int rc = gnutls_handshake(sl->s);
  if (rc == 0) {
    slot_done(w, sl);
    return;
  }
  if (gnutls_error_is_fatal(rc)) {
    slot_fail(w, sl, "handshake", gnutls_strerror(rc));
    return;
  }
  uint32_t want = gnutls_record_get_direction(sl->s) ? EPOLLOUT : EPOLLIN;
  if (slot_want(w, sl, want) != 0)
    slot_fail(w, sl, "epoll_ctl", strerror(errno));
}

static void slot_connected(worker *w, slot *sl) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  if (err != 0) {
    slot_fail(w, sl, "connect", strerror(err));
    return;
  }
  sl->t_connected = now_ns();
  int rc = new_session(w->sh, sl->fd, &sl->s, true);
  if (rc < 0) {
    slot_fail(w, sl, "session", gnutls_strerror(rc));
    return;
  }
  sl->state = SLOT_HANDSHAKING;
  slot_handshake(w, sl);
}

static void slot_start(worker *w, slot *sl, uint64_t late) {
  shared *sh = w->sh;
  w->busy++;
  sl->state = SLOT_CONNECTING;
  sl->s = NULL;
  sl->late = late;
  sl->t_start = now_ns();
  sl->fd = socket(sh->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (sl->fd < 0) {
    slot_fail(w, sl, "socket", strerror(errno));
    return;
  }
  int rc = connect(sl->fd, (struct sockaddr *)&sh->addr, sh->addr_len);
  if (rc != 0 && errno != EINPROGRESS) {
    slot_fail(w, sl, "connect", strerror(errno));
    return;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = sl};
  if (epoll_ctl(w->ep, EPOLL_CTL_ADD, sl->fd, &ev) != 0) {
    slot_fail(w, sl, "epoll_ctl", strerror(errno));
    return;
  }
  sl->events = EPOLLOUT;
  if (rc == 0) /* loopback may connect at once */
    slot_connected(w, sl);
}

static slot *free_slot(worker *w) {
  for (unsigned i = 0; i < w->n_slots; i++)
    if (w->slots[i].state == SLOT_FREE)
      return &w->slots[i];
  return NULL;
}

/* Starts what is due; returns false once no more probes will start. */
static bool start_due(worker *w) {
  const options *o = w->sh->opt;
  if (o->mode == MODE_CONCURRENT) {
    slot *sl;
    while (w->busy < w->n_slots && (sl = free_slot(w)) != NULL) {
      if (!claim_probe(w->sh))
        return false;
      slot_start(w, sl, 0);
    }
    return true;
  }
  uint64_t now = now_ns();
  while (w->next_start <= now) {
    slot *sl = free_slot(w);
    if (sl == NULL)
      return true; /* every slot busy: this start waits, and counts as late */
    if (!claim_probe(w->sh))
      return false;
    slot_start(w, sl, now - w->next_start);
    w->next_start += w->interval_ns;
    now = now_ns();
  }
  return true;
}

static void expire_slow(worker *w) {
  uint64_t now = now_ns();
  for (unsigned i = 0; i < w->n_slots; i++) {
    slot *sl = &w->slots[i];
    if (sl->state != SLOT_FREE && now - sl->t_start > PROBE_TIMEOUT_NS)
      slot_fail(w, sl, "timeout", "no handshake within 10 s");
  }
}

static int epoll_timeout_ms(const worker *w) {
  if (w->sh->opt->mode != MODE_PACED)
    return 100;
  uint64_t now = now_ns();
  if (w->next_start <= now)
    return 0;
  uint64_t ms = (w->next_start - now) / 1000000;
  return ms > 100 ? 100 : (int)ms;
}

static void *run_worker(void *arg) {
  worker *w = arg;
  struct epoll_event evs[64];
  bool more = true;
  while (w->rc == 0 && (more || w->busy > 0)) {
    if (more)
      more = start_due(w);
    int n = epoll_wait(w->ep, evs, 64, more ? epoll_timeout_ms(w) : 100);
    if (n < 0 && errno != EINTR) {
      w->rc = -1;
      break;
    }
    for (int i = 0; i < n; i++) {
      slot *sl = evs[i].data.ptr;
      if (sl->state == SLOT_CONNECTING)
        slot_connected(w, sl);
      else if (sl->state == SLOT_HANDSHAKING)
        slot_handshake(w, sl);
    }
    expire_slow(w);
  }
  return NULL;
}

static int worker_init(worker *w, shared *sh, unsigned slots) {
  memset(w, 0, sizeof(*w));
  w->sh = sh;
  w->n_slots = slots;
  w->ep = epoll_create1(EPOLL_CLOEXEC);
  w->slots = calloc(slots, sizeof(*w->slots));
  if (w->ep < 0 || w->slots == NULL)
    return -1;
  for (unsigned i = 0; i < slots; i++)
    w->slots[i].fd = -1;
  if (sh->opt->mode == MODE_PACED) {
    w->interval_ns = (uint64_t)(1e9 / sh->opt->rate);
    w->next_start = now_ns();
  }
  return 0;
}

static void worker_free(worker *w) {
  for (unsigned i = 0; w->slots != NULL && i < w->n_slots; i++)
    if (w->slots[i].state != SLOT_FREE)
      slot_close(w, &w->slots[i]);
  free(w->slots);
  if (w->ep >= 0)
    close(w->ep);
  tally_free(&w->t);
}

static int tally_merge(tally *into, const tally *from) {
  into->ok += from->ok;
  into->failed += from->failed;
  if (into->first_error[0] == '\0')
    memcpy(into->first_error, from->first_error, sizeof(into->first_error));
  if (into->version[0] == '\0') {
    memcpy(into->version, from->version, sizeof(into->version));
    memcpy(into->group, from->group, sizeof(into->group));
  }
  return samples_merge(&into->connect, &from->connect) ||
                 samples_merge(&into->handshake, &from->handshake) ||
                 samples_merge(&into->verify, &from->verify) ||
                 samples_merge(&into->total, &from->total) ||
                 samples_merge(&into->late, &from->late)
             ? -1
             : 0;
}

static int run_epoll(shared *sh, tally *out) {
  unsigned n = sh->opt->mode == MODE_PACED ? 1 : sh->opt->threads;
  worker *ws = calloc(n, sizeof(*ws));
  pthread_t *th = calloc(n, sizeof(*th));
  unsigned started = 0;
  int rc = -1;
  if (ws == NULL || th == NULL)
    goto out;
  for (unsigned i = 0; i < n; i++) {
    ws[i].ep = -1;
    if (worker_init(&ws[i], sh, sh->opt->in_flight) != 0)
      goto join;
  }
  for (; started < n; started++)
    if (pthread_create(&th[started], NULL, run_worker, &ws[started]) != 0)
      goto join;
  rc = 0;
join:
  for (unsigned i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  for (unsigned i = 0; rc == 0 && i < n; i++)
    if (ws[i].rc != 0 || tally_merge(out, &ws[i].t) != 0)
      rc = -1;
out:
  for (unsigned i = 0; ws != NULL && i < n; i++)
    worker_free(&ws[i]);
  free(ws);
  free(th);
  return rc;
}

/* ---- setup and output ------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: bench-limit --port P --sni NAME --ca CA.pem [--host 127.0.0.1] [--priority STR]\n"
          "                   [--mode sequential|concurrent|paced] [--threads T] [--in-flight K]\n"
          "                   [--rate R] [--count N] [--duration SECONDS] [--warmup N] [--json]\n");
}

static bool parse_ulong(const char *s, unsigned long lo, unsigned long hi, unsigned long *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
    return false;
  *out = v;
  return true;
}

static bool parse_double(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
    return false;
  *out = v;
  return true;
}

static int parse_args(int argc, char **argv, options *o) {
  *o = (options){.host = "127.0.0.1",
                 .priority = DEFAULT_PRIORITY,
                 .threads = 1,
                 .in_flight = 32,
                 .warmup = 20,
                 .count = 1000,
                 .duration_s = 10,
                 .rate = 20,
                 .mode = MODE_SEQUENTIAL};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    unsigned long u;
    if (strcmp(a, "--json") == 0) {
      o->json = true;
      continue;
    }
    if (v == NULL) {
      fprintf(stderr, "bench-limit: %s needs a value\n", a);
      return -1;
    }
    i++;
    if (strcmp(a, "--host") == 0)
      o->host = v;
    else if (strcmp(a, "--sni") == 0)
      o->sni = v;
    else if (strcmp(a, "--ca") == 0)
      o->ca = v;
    else if (strcmp(a, "--priority") == 0)
      o->priority = v;
    else if (strcmp(a, "--port") == 0 && parse_ulong(v, 1, 65535, &u))
      o->port = (unsigned)u;
    else if (strcmp(a, "--threads") == 0 && parse_ulong(v, 1, MAX_THREADS, &u))
      o->threads = (unsigned)u;
    else if (strcmp(a, "--in-flight") == 0 && parse_ulong(v, 1, MAX_IN_FLIGHT, &u))
      o->in_flight = (unsigned)u;
    else if (strcmp(a, "--warmup") == 0 && parse_ulong(v, 0, 100000, &u))
      o->warmup = (unsigned)u;
    else if (strcmp(a, "--count") == 0 && parse_ulong(v, 1, MAX_COUNT, &u))
      o->count = u;
    else if (strcmp(a, "--duration") == 0 && parse_double(v, 0.01, 86400, &o->duration_s))
      ;
    else if (strcmp(a, "--rate") == 0 && parse_double(v, 0.1, 100000, &o->rate))
      ;
    else if (strcmp(a, "--mode") == 0 && strcmp(v, "sequential") == 0)
      o->mode = MODE_SEQUENTIAL;
    else if (strcmp(a, "--mode") == 0 && strcmp(v, "concurrent") == 0)
      o->mode = MODE_CONCURRENT;
    else if (strcmp(a, "--mode") == 0 && strcmp(v, "paced") == 0)
      o->mode = MODE_PACED;
    else {
      fprintf(stderr, "bench-limit: bad option or value: %s %s\n", a, v);
      return -1;
    }
  }
  if (o->port == 0 || o->sni == NULL || o->ca == NULL) {
    fprintf(stderr, "bench-limit: --port, --sni and --ca are required\n");
    return -1;
  }
  return 0;
}

static int setup(shared *sh, const options *o, char *err, size_t len) {
  memset(sh, 0, sizeof(*sh));
  sh->opt = o;
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai = NULL;
  char port[8];
  snprintf(port, sizeof(port), "%u", o->port);
  int rc = getaddrinfo(o->host, port, &hints, &ai);
  if (rc != 0) { /* an IP literal only: a benchmark measures no DNS */
    snprintf(err, len, "--host %s: %s (an IP address is needed)", o->host, gai_strerror(rc));
    return -1;
  }
  memcpy(&sh->addr, ai->ai_addr, ai->ai_addrlen);
  sh->addr_len = ai->ai_addrlen;
  freeaddrinfo(ai);
  const char *where = NULL;
  if ((rc = gnutls_priority_init(&sh->priority, o->priority, &where)) < 0) {
    snprintf(err, len, "--priority: %s at \"%s\"", gnutls_strerror(rc), where ? where : "");
    return -1;
  }
  if ((rc = gnutls_certificate_allocate_credentials(&sh->cred)) < 0) {
    snprintf(err, len, "credentials: %s", gnutls_strerror(rc));
    return -1;
  }
  rc = gnutls_certificate_set_x509_trust_file(sh->cred, o->ca, GNUTLS_X509_FMT_PEM);
  if (rc <= 0) {
    snprintf(err, len, "--ca %s: %s", o->ca, rc < 0 ? gnutls_strerror(rc) : "no certificate");
    return -1;
  }
  return 0;
}

static void teardown(shared *sh) {
  if (sh->priority != NULL)
    gnutls_priority_deinit(sh->priority);
  if (sh->cred != NULL)
    gnutls_certificate_free_credentials(sh->cred);
}

static const char *mode_name(run_mode m) {
  return m == MODE_SEQUENTIAL ? "sequential" : m == MODE_CONCURRENT ? "concurrent" : "paced";
}

/* A JSON string of text we made or GnuTLS made: quotes, backslashes and controls escaped. */
static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void json_quantiles(const char *name, samples *s) {
  printf(",\"%s\":", name);
  if (s->n == 0) {
    printf("null");
    return;
  }
  qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
  printf("{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}", quantile_ms(s, 0.5),
         quantile_ms(s, 0.9), quantile_ms(s, 0.99), quantile_ms(s, 1.0));
}

static void print_json(const options *o, tally *t, double wall, double cpu, double user,
                       double sys) {
  struct rusage ru;
  long rss = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
  unsigned long n = t->ok + t->failed;
  printf("{\"tool\":\"bench-limit\",\"mode\":\"%s\",\"priority\":", mode_name(o->mode));
  json_str(o->priority);
  printf(",\"host\":");
  json_str(o->host);
  printf(",\"port\":%u,\"threads\":%u,\"in_flight\":%u", o->port,
         o->mode == MODE_CONCURRENT ? o->threads : 1,
         o->mode == MODE_SEQUENTIAL ? 1 : o->in_flight);
  if (o->mode == MODE_PACED)
    printf(",\"rate\":%.3f", o->rate);
  else
    printf(",\"rate\":null");
  printf(",\"probes\":%lu,\"ok\":%lu,\"failed\":%lu,\"first_error\":", n, t->ok, t->failed);
  if (t->first_error[0])
    json_str(t->first_error);
  else
    printf("null");
  printf(",\"version\":");
  json_str(t->version[0] ? t->version : "?");
  printf(",\"group\":");
  json_str(t->group[0] ? t->group : "?");
  printf(",\"wall_s\":%.3f,\"cpu_s\":%.4f,\"cpu_user_s\":%.4f,\"cpu_sys_s\":%.4f", wall, cpu, user,
         sys);
  if (t->ok > 0)
    printf(",\"cpu_ms_per_probe\":%.4f,\"probes_per_cpu_s\":%.1f", cpu * 1e3 / (double)t->ok,
           cpu > 0 ? (double)t->ok / cpu : 0.0);
  else
    printf(",\"cpu_ms_per_probe\":null,\"probes_per_cpu_s\":null");
  printf(",\"probes_per_s\":%.1f", wall > 0 ? (double)t->ok / wall : 0.0);
  json_quantiles("connect_ms", &t->connect);
  json_quantiles("handshake_ms", &t->handshake);
  json_quantiles("verify_ms", &t->verify);
  json_quantiles("total_ms", &t->total);
  if (o->mode == MODE_PACED)
    json_quantiles("late_ms", &t->late);
  printf(",\"max_rss_kib\":%ld}\n", rss);
}

static void print_text(const options *o, tally *t, double wall, double cpu) {
  if (t->handshake.n > 0)
    qsort(t->handshake.v, t->handshake.n, sizeof(uint64_t), cmp_u64);
  printf("limit %-10s: %lu/%lu ok, %.3f ms CPU per probe, %.0f probes/s, handshake p50 %.3f "
         "p99 %.3f ms, %s %s%s%s\n",
         mode_name(o->mode), t->ok, t->ok + t->failed, t->ok ? cpu * 1e3 / (double)t->ok : 0.0,
         wall > 0 ? (double)t->ok / wall : 0.0, quantile_ms(&t->handshake, 0.5),
         quantile_ms(&t->handshake, 0.99), t->version, t->group,
         t->first_error[0] ? "; first error: " : "", t->first_error);
}

int main(int argc, char **argv) {
  options o;
  if (parse_args(argc, argv, &o) != 0) {
    usage();
    return 2;
  }
  int rc = gnutls_global_init();
  if (rc < 0) {
    fprintf(stderr, "bench-limit: gnutls_global_init: %s\n", gnutls_strerror(rc));
    return 1;
  }
  shared sh;
  tally t = {0}, warm = {0};
  char err[256];
  int exit_code = 1;
  if (setup(&sh, &o, err, sizeof(err)) != 0) {
    fprintf(stderr, "bench-limit: %s\n", err);
    exit_code = 2;
    goto out;
  }
  /* Warm-up: pages in code, fills the server's caches; not measured. */
  for (unsigned i = 0; i < o.warmup; i++)
    (void)blocking_probe(&sh, &warm, false);
  if (o.warmup > 0 && warm.failed == o.warmup) {
    fprintf(stderr, "bench-limit: every warm-up probe failed; first: %s\n", warm.first_error);
    goto out;
  }
  double u0, s0, u1, s1;
  double c0 = cpu_seconds(&u0, &s0);
  uint64_t w0 = now_ns();
  sh.t_end_ns = w0 + (uint64_t)(o.duration_s * 1e9);
  rc = o.mode == MODE_SEQUENTIAL ? run_sequential(&sh, &t) : run_epoll(&sh, &t);
  double wall = (double)(now_ns() - w0) / 1e9;
  double c1 = cpu_seconds(&u1, &s1);
  if (rc != 0 || c0 < 0 || c1 < 0) {
    fprintf(stderr, "bench-limit: run failed (out of memory, epoll or threads)\n");
    goto out;
  }
  if (o.json)
    print_json(&o, &t, wall, c1 - c0, u1 - u0, s1 - s0);
  else
    print_text(&o, &t, wall, c1 - c0);
  exit_code = t.failed == 0 && t.ok > 0 ? 0 : 1;
out:
  tally_free(&t);
  tally_free(&warm);
  teardown(&sh);
  gnutls_global_deinit();
  return exit_code;
}
