/* handshake_cpu.c - CPU cost per probe: the tlsprobe engine vs a bare GnuTLS
 * client loop, side by side against the same local server.
 *
 *   bench-handshake --port P --sni NAME --ca CA.pem [--count N] [--in-flight K]
 *                   [--side both|bare|engine] [--rounds R] [--caches on|off]
 *                   [--key-shares 0..3]
 *
 * "bare": N sequential blocking handshakes (socket, connect, handshake with
 * the same priority cache and credentials built once, verification with
 * hostname check, bye, close) -- the least a prober can do.
 * "engine": the same N probes submitted to the probe engine on one libuv
 * loop, K in flight. CPU is getrusage(RUSAGE_SELF) user+sys; the server's
 * CPU is another process and not counted. Prints one line per side and the
 * ratio; max RSS of the process after both runs. --side runs one side only
 * (after the same warm-up), so callgrind or strace -c can measure it alone.
 * --rounds R alternates the sides in R chunks of N/R (one engine throughout,
 * its caches kept), so a load that comes and goes on a shared machine weighs
 * on both alike. --caches off runs the engine without its verification and
 * facts caches, --key-shares sets the profile's (0 = automatic), to see what
 * each costs. */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "probe.h"
#include "profile_internal.h"
#include "resolve.h"

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static int bare_one(const tp_profile *profile, unsigned port, const char *sni) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  int ok = -1;
  gnutls_session_t s = NULL;
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
    goto out;
  if (gnutls_init(&s, GNUTLS_CLIENT) < 0)
    goto out;
  gnutls_priority_set(s, tp__profile_priority(profile));
  gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tp__profile_credentials(profile));
  gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni));
  gnutls_session_set_verify_cert(s, sni, 0);
  gnutls_transport_set_int(s, fd);
  int rc;
  do
    rc = gnutls_handshake(s);
  while (rc < 0 && !gnutls_error_is_fatal(rc));
  if (rc == 0) {
    ok = 0;
    gnutls_bye(s, GNUTLS_SHUT_WR);
  }
out:
  if (s != NULL)
    gnutls_deinit(s);
  if (fd >= 0)
    close(fd);
  return ok;
}

typedef struct {
  unsigned done, ok;
} tally;

static void on_done(tp_result *r, void *data) {
  tally *t = data;
  t->done++;
  t->ok += r->outcome == TP_OUTCOME_OK;
  tp_result_free(r);
}

int main(int argc, char **argv) {
  unsigned port = 0, count = 1000, in_flight = 32;
  const char *sni = NULL, *ca = NULL, *side = "both", *caches = "on";
  unsigned rounds = 1, key_shares = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0) port = (unsigned)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--sni") == 0) sni = argv[i + 1];
    else if (strcmp(argv[i], "--ca") == 0) ca = argv[i + 1];
    else if (strcmp(argv[i], "--count") == 0) count = (unsigned)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--in-flight") == 0) in_flight = (unsigned)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--side") == 0) side = argv[i + 1];
    else if (strcmp(argv[i], "--rounds") == 0) rounds = (unsigned)strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--caches") == 0) caches = argv[i + 1];
    else if (strcmp(argv[i], "--key-shares") == 0) key_shares = (unsigned)strtoul(argv[i + 1], NULL, 10);
  }
  if (rounds == 0 || rounds > count)
    rounds = 1;
  bool run_bare = strcmp(side, "both") == 0 || strcmp(side, "bare") == 0;
  bool run_engine = strcmp(side, "both") == 0 || strcmp(side, "engine") == 0;
  if (port == 0 || sni == NULL || ca == NULL || (!run_bare && !run_engine)) {
    fprintf(stderr, "usage: bench-handshake --port P --sni NAME --ca CA.pem [--count N] [--in-flight K] "
                    "[--side both|bare|engine]\n");
    return 2;
  }
  gnutls_global_init();
  (void)tp_resolve_global_init(); /* names are never resolved here: IP literals only */
  char err[256];
  tp_profile_spec spec = {.name = "bench", .versions = TP_TLS1_3, .trust = ca, .key_shares = key_shares};
  tp_profile *profile;
  if (tp_profile_new(&spec, &profile, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "profile: %s\n", err);
    return 1;
  }

  /* warm-up: page in code, fill caches on both sides */
  for (int i = 0; i < 20; i++)
    bare_one(profile, port, sni);

  uv_loop_t loop;
  uv_loop_init(&loop);
  bool caches_off = strcmp(caches, "off") == 0;
  tp_probe_engine_options eo = {.max_in_flight = in_flight,
                                .max_pending = count,
                                .verify_cache_entries = caches_off ? TP_PROBE_CACHE_OFF : 0,
                                .facts_cache_entries = caches_off ? TP_PROBE_CACHE_OFF : 0};
  tp_probe_engine *engine;
  tp_probe_engine_new(&loop, &eo, NULL, &engine);
  tp_target target = {.name = "bench", .host = "127.0.0.1", .port = (uint16_t)port, .sni = sni};
  tp_probe_timeouts to = {.connect_ms = 5000, .handshake_ms = 10000};
  tally t = {0, 0};
  unsigned bare_ok = 0;
  double bare_cpu = 0, bare_wall = 0, engine_cpu = 0, engine_wall = 0;
  for (unsigned r = 0; r < rounds; r++) {
    unsigned chunk = count / rounds + (r < count % rounds);
    double c0 = cpu_seconds();
    uint64_t w0 = uv_hrtime();
    for (unsigned i = 0; run_bare && i < chunk; i++)
      bare_ok += bare_one(profile, port, sni) == 0;
    bare_cpu += cpu_seconds() - c0;
    bare_wall += (double)(uv_hrtime() - w0) / 1e9;
    c0 = cpu_seconds();
    w0 = uv_hrtime();
    for (unsigned i = 0; run_engine && i < chunk; i++)
      tp_probe_engine_submit(engine, &target, profile, &to, on_done, &t);
    uv_run(&loop, UV_RUN_DEFAULT);
    engine_cpu += cpu_seconds() - c0;
    engine_wall += (double)(uv_hrtime() - w0) / 1e9;
  }
  tp_probe_engine_close(engine, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  if (run_bare)
    printf("bare   : %u/%u ok, %.3f ms CPU per handshake, %.0f handshakes/s wall\n", bare_ok, count,
           bare_cpu * 1e3 / count, count / bare_wall);
  if (run_engine)
    printf("engine : %u/%u ok, %.3f ms CPU per probe (in flight %u), %.0f probes/s wall\n", t.ok,
           count, engine_cpu * 1e3 / count, in_flight, count / engine_wall);
  if (run_bare && run_engine)
    printf("ratio  : engine/bare CPU per handshake = %.3f%s\n", engine_cpu / bare_cpu,
           rounds > 1 ? " (interleaved rounds)" : "");
  printf("max RSS: %.1f MiB (whole process, after both runs)\n", ru.ru_maxrss / 1024.0);
  tp_profile_free(profile);
  gnutls_global_deinit();
  return (!run_bare || bare_ok == count) && (!run_engine || t.ok == count) ? 0 : 1;
}
