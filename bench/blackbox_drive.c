/* blackbox_drive.c - drives prometheus-blackbox-exporter at a fixed rate, as Prometheus
 * scraping many probe targets would, so that bench/suite.sh can read the exporter's CPU
 * per probe next to the agent's at the same rate.
 *
 *   bench-blackbox-drive --url URL [--rate R] [--duration SECONDS] [--count N]
 *                        [--max-in-flight K] [--json]
 *
 * URL is the exporter's probe URL (http://127.0.0.1:PORT/probe?target=...&module=...):
 * only loopback is accepted (a benchmark talks to this machine only). Request i starts at
 * t0 + i/R (libcurl multi, connections kept alive like Prometheus keeps them); a start
 * that finds all K requests in flight is not sent and is counted as skipped, so the rate
 * never silently drops. A probe is ok when the answer is 200 and says
 * `probe_success 1`; its `probe_duration_seconds` is collected too.
 *
 * Bounded: stops starting after --count requests or --duration seconds, then waits at
 * most 10 s for those in flight. Exit: 0 every probe ok, 1 otherwise, 2 usage. */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BODY_MAX (64 * 1024) /* an exporter's answer for one TCP probe is ~2 KiB */
#define MAX_IN_FLIGHT 4096
#define DRAIN_NS (10ULL * 1000000000ULL)

typedef struct {
  const char *url;
  double rate, duration_s;
  unsigned long count;
  unsigned max_in_flight;
  bool json;
} options;

typedef struct {
  double *v;
  size_t n, cap;
} samples;

typedef struct request {
  CURL *easy;
  bool busy;
  uint64_t planned, started;
  char *body;
  size_t len;
  bool truncated;
} request;

typedef struct {
  const options *opt;
  CURLM *multi;
  request *reqs;
  unsigned busy;
  unsigned long planned, started, completed, ok, failed, skipped;
  samples request_ms, probe_ms, late_ms;
  char first_error[256];
} driver;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int samples_add(samples *s, double v) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    double *nv = realloc(s->v, cap * sizeof(*nv));
    if (nv == NULL)
      return -1;
    s->v = nv;
    s->cap = cap;
  }
  s->v[s->n++] = v;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest rank over sorted samples. */
static double quantile(const samples *s, double q) {
  size_t rank = (size_t)(q * (double)s->n + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > s->n)
    rank = s->n;
  return s->v[rank - 1];
}

/* Counts a failed probe; the first one's reason is kept: WHAT then DETAIL. */
static void fail(driver *d, const char *what, const char *detail) {
  d->failed++;
  if (d->first_error[0] == '\0')
    snprintf(d->first_error, sizeof(d->first_error), "%s%s", what, detail);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  request *r = arg;
  size_t len = size * n, room = BODY_MAX - r->len;
  if (len > room) {
    r->truncated = true;
    len = room;
  }
  memcpy(r->body + r->len, data, len);
  r->len += len;
  return size * n; /* keep reading: the answer is judged, not the transfer */
}

/* The value of a metric line "NAME VALUE" in the answer (bounded by its length). */
static bool metric_value(const request *r, const char *name, double *out) {
  size_t nl = strlen(name);
  const char *p = r->body, *end = r->body + r->len;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL)
      eol = end;
    if ((size_t)(eol - p) > nl + 1 && memcmp(p, name, nl) == 0 && p[nl] == ' ') {
      char num[64];
      size_t vl = (size_t)(eol - p) - nl - 1;
      if (vl >= sizeof(num))
        return false;
      memcpy(num, p + nl + 1, vl);
      num[vl] = '\0';
      char *e;
      errno = 0;
      *out = strtod(num, &e);
      return errno == 0 && e != num;
    }
    p = eol + 1;
  }
  return false;
}

static void on_complete(driver *d, request *r, CURLcode res) {
  uint64_t done = now_ns();
  long status = 0;
  double success = 0, took = 0;
  d->completed++;
  d->busy--;
  r->busy = false;
  curl_multi_remove_handle(d->multi, r->easy);
  if (res != CURLE_OK) {
    fail(d, "request: ", curl_easy_strerror(res));
    return;
  }
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    char s[16];
    snprintf(s, sizeof(s), "%ld", status);
    fail(d, "exporter answered HTTP ", s);
    return;
  }
  if (r->truncated || !metric_value(r, "probe_success", &success) || success != 1) {
    fail(d, r->truncated ? "answer larger than 64 KiB" : "probe_success is not 1", "");
    return;
  }
  d->ok++;
  if (samples_add(&d->request_ms, (double)(done - r->started) / 1e6) != 0 ||
      samples_add(&d->late_ms, (double)(r->started - r->planned) / 1e6) != 0 ||
      (metric_value(r, "probe_duration_seconds", &took) &&
       samples_add(&d->probe_ms, took * 1e3) != 0))
    fail(d, "out of memory for samples", "");
}

static int start(driver *d, request *r, uint64_t planned) {
  r->busy = true;
  r->planned = planned;
  r->started = now_ns();
  r->len = 0;
  r->truncated = false;
  CURLMcode mc = curl_multi_add_handle(d->multi, r->easy);
  if (mc != CURLM_OK) {
    r->busy = false;
    fail(d, "curl_multi_add_handle: ", curl_multi_strerror(mc));
    return -1;
  }
  d->busy++;
  d->started++;
  return 0;
}

static request *idle_request(driver *d) {
  for (unsigned i = 0; i < d->opt->max_in_flight; i++)
    if (!d->reqs[i].busy)
      return &d->reqs[i];
  return NULL;
}

static void collect(driver *d) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(d->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    request *r = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (r != NULL)
      on_complete(d, r, m->data.result);
  }
}

static int run(driver *d) {
  const options *o = d->opt;
  uint64_t t0 = now_ns(), interval = (uint64_t)(1e9 / o->rate);
  uint64_t t_end = t0 + (uint64_t)(o->duration_s * 1e9), next = t0;
  for (;;) {
    uint64_t now = now_ns();
    bool starting = now < t_end && d->planned < o->count;
    while (starting && next <= now && d->planned < o->count) {
      d->planned++;
      request *r = idle_request(d);
      if (r == NULL)
        d->skipped++; /* every request in flight: the exporter falls behind this rate */
      else if (start(d, r, next) != 0)
        return -1;
      next += interval;
    }
    if (!starting && d->busy == 0)
      return 0;
    if (!starting && now > t_end + DRAIN_NS) {
      fail(d, "requests still in flight 10 s after the last start", "");
      return 0;
    }
    int running;
    CURLMcode mc = curl_multi_perform(d->multi, &running);
    if (mc != CURLM_OK) {
      fail(d, "curl_multi_perform: ", curl_multi_strerror(mc));
      return -1;
    }
    collect(d);
    now = now_ns();
    int wait_ms = 100;
    if (starting && next > now && (next - now) / 1000000 < 100)
      wait_ms = (int)((next - now) / 1000000);
    else if (starting && next <= now)
      wait_ms = 0;
    if ((mc = curl_multi_poll(d->multi, NULL, 0, wait_ms, NULL)) != CURLM_OK) {
      fail(d, "curl_multi_poll: ", curl_multi_strerror(mc));
      return -1;
    }
  }
}

static int driver_init(driver *d, const options *o) {
  memset(d, 0, sizeof(*d));
  d->opt = o;
  d->multi = curl_multi_init();
  d->reqs = calloc(o->max_in_flight, sizeof(*d->reqs));
  if (d->multi == NULL || d->reqs == NULL)
    return -1;
  /* as many kept-alive connections as requests in flight: none is closed and reopened */
  if (curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)o->max_in_flight) != CURLM_OK)
    return -1;
  for (unsigned i = 0; i < o->max_in_flight; i++) {
    request *r = &d->reqs[i];
    r->body = malloc(BODY_MAX);
    r->easy = curl_easy_init();
    if (r->body == NULL || r->easy == NULL)
      return -1;
    if (curl_easy_setopt(r->easy, CURLOPT_URL, o->url) != CURLE_OK ||
        curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
        curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, 10000L) != CURLE_OK ||
        curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r) != CURLE_OK ||
        curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r) != CURLE_OK)
      return -1;
  }
  return 0;
}

static void driver_free(driver *d) {
  for (unsigned i = 0; d->reqs != NULL && i < d->opt->max_in_flight; i++) {
    request *r = &d->reqs[i];
    if (r->easy != NULL) {
      if (r->busy)
        curl_multi_remove_handle(d->multi, r->easy);
      curl_easy_cleanup(r->easy);
    }
    free(r->body);
  }
  free(d->reqs);
  if (d->multi != NULL)
    curl_multi_cleanup(d->multi);
  free(d->request_ms.v);
  free(d->probe_ms.v);
  free(d->late_ms.v);
}

static void json_quantiles(const char *name, samples *s) {
  printf(",\"%s\":", name);
  if (s->n == 0) {
    printf("null");
    return;
  }
  qsort(s->v, s->n, sizeof(*s->v), cmp_double);
  printf("{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}", quantile(s, 0.5),
         quantile(s, 0.9), quantile(s, 0.99), quantile(s, 1.0));
}

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

static void report(driver *d, double wall) {
  const options *o = d->opt;
  if (!o->json) {
    printf("blackbox drive: %lu planned, %lu ok, %lu failed, %lu skipped in %.1f s (%.0f/s)%s%s\n",
           d->planned, d->ok, d->failed, d->skipped, wall, wall > 0 ? d->completed / wall : 0.0,
           d->first_error[0] ? "; first error: " : "", d->first_error);
    return;
  }
  printf(
      "{\"tool\":\"bench-blackbox-drive\",\"rate\":%.3f,\"duration_s\":%.3f,\"max_in_flight\":%u,"
      "\"planned\":%lu,\"started\":%lu,\"completed\":%lu,\"ok\":%lu,\"failed\":%lu,"
      "\"skipped\":%lu,\"wall_s\":%.3f,\"achieved_per_s\":%.1f,\"first_error\":",
      o->rate, o->duration_s, o->max_in_flight, d->planned, d->started, d->completed, d->ok,
      d->failed, d->skipped, wall, wall > 0 ? d->completed / wall : 0.0);
  if (d->first_error[0])
    json_str(d->first_error);
  else
    printf("null");
  json_quantiles("request_ms", &d->request_ms);
  json_quantiles("probe_duration_ms", &d->probe_ms);
  json_quantiles("late_ms", &d->late_ms);
  printf("}\n");
}

static bool parse_num(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
    return false;
  *out = v;
  return true;
}

static bool loopback_url(const char *u) {
  static const char *const ok[] = {"http://127.0.0.1:", "http://127.0.0.1/",
                                   "http://[::1]:", "http://localhost:"};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    if (strncmp(u, ok[i], strlen(ok[i])) == 0)
      return true;
  return false;
}

static int parse_args(int argc, char **argv, options *o) {
  *o = (options){.rate = 100, .duration_s = 10, .count = 1000000, .max_in_flight = 256};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    double x;
    if (strcmp(a, "--json") == 0) {
      o->json = true;
      continue;
    }
    if (v == NULL) {
      fprintf(stderr, "bench-blackbox-drive: %s needs a value\n", a);
      return -1;
    }
    i++;
    if (strcmp(a, "--url") == 0)
      o->url = v;
    else if (strcmp(a, "--rate") == 0 && parse_num(v, 0.1, 100000, &x))
      o->rate = x;
    else if (strcmp(a, "--duration") == 0 && parse_num(v, 0.01, 86400, &x))
      o->duration_s = x;
    else if (strcmp(a, "--count") == 0 && parse_num(v, 1, 1e8, &x))
      o->count = (unsigned long)x;
    else if (strcmp(a, "--max-in-flight") == 0 && parse_num(v, 1, MAX_IN_FLIGHT, &x))
      o->max_in_flight = (unsigned)x;
    else {
      fprintf(stderr, "bench-blackbox-drive: bad option or value: %s %s\n", a, v);
      return -1;
    }
  }
  if (o->url == NULL || !loopback_url(o->url)) {
    fprintf(stderr, "bench-blackbox-drive: --url http://127.0.0.1:PORT/probe?... is required "
                    "(loopback only)\n");
    return -1;
  }
  return 0;
}

/* One descriptor per request in flight, and some: raises the soft limit if it may. */
static int fd_budget(unsigned in_flight) {
  struct rlimit rl;
  rlim_t want = (rlim_t)in_flight + 64;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  if (rl.rlim_cur >= want)
    return 0;
  if (rl.rlim_max < want)
    return -1;
  rl.rlim_cur = want;
  return setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv) {
  options o;
  if (parse_args(argc, argv, &o) != 0) {
    fprintf(stderr, "usage: bench-blackbox-drive --url URL [--rate R] [--duration SECONDS] "
                    "[--count N] [--max-in-flight K] [--json]\n");
    return 2;
  }
  if (fd_budget(o.max_in_flight) != 0) {
    fprintf(stderr, "bench-blackbox-drive: RLIMIT_NOFILE too low for --max-in-flight %u\n",
            o.max_in_flight);
    return 2;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "bench-blackbox-drive: curl_global_init failed\n");
    return 1;
  }
  driver d;
  int rc = 1;
  if (driver_init(&d, &o) != 0) {
    fprintf(stderr, "bench-blackbox-drive: out of memory or libcurl refused an option\n");
    goto out;
  }
  uint64_t t0 = now_ns();
  if (run(&d) != 0)
    fprintf(stderr, "bench-blackbox-drive: %s\n", d.first_error);
  report(&d, (double)(now_ns() - t0) / 1e9);
  rc = d.failed == 0 && d.skipped == 0 && d.ok > 0 ? 0 : 1;
out:
  driver_free(&d);
  curl_global_cleanup();
  return rc;
}
