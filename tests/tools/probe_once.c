/* probe_once.c - runs exactly one probe with a profile given on the command
 * line and prints every fact of the result as key=value lines. A test and
 * debugging tool: it drives the real engine (tp_engine) on a real loop
 * against real servers, without the agent's config, scheduler or pusher.
 *
 *   probe-once --host 127.0.0.1 --port 8443 [--sni NAME|--no-sni] [--trust CA]
 *              [--versions TLS1.2,TLS1.3] [--priority STR] [--mode handshake|resumption|early_data]
 *              [--http METHOD PATH] [--alpn h2,http/1.1] [--intermediates PEM]
 *              [--client-cert PEM --client-key PEM] [--key-shares 1..3]
 *              [--connect-timeout MS] [--handshake-timeout MS]
 *              [--dns-server IP:PORT] [--family any|ipv4|ipv6] [--extra-host NAME]...
 *              [--stdin] [--verify-cache-max-age S] [--stall-ms MS [--stall-at-ms AT]]
 * Exit status: 0 when the outcome is ok, 1 otherwise, 2 on usage errors.
 *
 * --stdin: instead of one probe, one probe per line read from stdin (the
 * line is the port to probe), all on the same engine and profile, so its
 * caches carry over from one probe to the next; each result is followed by
 * the engine's cache counters (cache_*=N) and a line "end". Exit status 0.
 *
 * --stall-ms MS [--stall-at-ms AT]: AT ms (default 50) after the probe started, the
 * loop's thread blocks for MS ms (once) -- an agent whose loop is
 * stalled by a CPU hog or a long callback: the probe's deadline passes while the
 * server's answer waits unread (tests/tools/delay_proxy.py makes it come later). */
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "probe.h"
#include "resolve.h"
#include "tp_mem.h"

static void print_list(const char *key, char **v, size_t n) {
  printf("%s=", key);
  for (size_t i = 0; i < n; i++)
    printf("%s%s", i ? "," : "", v[i]);
  printf("\n");
}

static void print_result(const tp_result *r) {
  printf("outcome=%s\n", tp_outcome_name((int)r->outcome));
  printf("detail=%s\n", r->detail ? r->detail : "");
  printf("address=%s\nsni=%s\n", r->address ? r->address : "", r->sni ? r->sni : "");
  printf("address_family=%s\n", r->address_family ? r->address_family : "");
  printf("dns_ns=%llu\nconnect_ns=%llu\nhandshake_ns=%llu\ntotal_ns=%llu\nloop_lag_ns=%llu\n",
         (unsigned long long)r->dns_ns, (unsigned long long)r->connect_ns,
         (unsigned long long)r->handshake_ns, (unsigned long long)r->total_ns,
         (unsigned long long)r->loop_lag_ns);
  printf("tls_version=%s\ncipher=%s\ngroup=%s\nalpn=%s\nserver_signature_algorithm=%s\n",
         r->tls_version ? r->tls_version : "", r->cipher ? r->cipher : "", r->group ? r->group : "",
         r->alpn ? r->alpn : "",
         r->server_signature_algorithm ? r->server_signature_algorithm : "");
  printf("hello_retry_request=%d\nresumed=%d\nticket_received=%d\n", r->hello_retry_request,
         r->resumed, r->ticket_received);
  printf("resumption_handshake_ns=%llu\n", (unsigned long long)r->resumption_handshake_ns);
  printf("early_data_attempted=%d\nearly_data_accepted=%d\n", r->early_data_attempted,
         r->early_data_accepted);
  print_list("groups_offered", r->groups_offered, r->n_groups_offered);
  print_list("key_shares_offered", r->key_shares_offered, r->n_key_shares_offered);
  printf("ocsp_stapled=%d\nocsp_cert_status=%s\nocsp_age_seconds=%lld\n", r->ocsp_stapled,
         r->ocsp_cert_status ? r->ocsp_cert_status : "", (long long)r->ocsp_age_seconds);
  printf("http_done=%d\nhttp_status=%u\nhttp_hsts=%d\nhttp_first_byte_ns=%llu\n", r->http_done,
         r->http_status, r->http_hsts, (unsigned long long)r->http_first_byte_ns);
  printf("chain_length=%zu\nchain_length_sent=%u\nchain_complete=%d\ndays_to_earliest_expiry=%d\n",
         r->chain_len, r->chain_length_sent, r->chain_complete, r->days_to_earliest_expiry);
  for (size_t i = 0; i < r->chain_len; i++)
    printf("chain[%zu]=%s | issuer %s | %s %u | %s\n", i,
           r->chain[i].subject ? r->chain[i].subject : "",
           r->chain[i].issuer ? r->chain[i].issuer : "",
           r->chain[i].key_type ? r->chain[i].key_type : "", r->chain[i].key_bits,
           r->chain[i].signature_algorithm ? r->chain[i].signature_algorithm : "");
}

/* Shared by every probe of the run: when the last one ends the engine is
 * closed, so the loop stops even while the resolver still retries a lookup
 * that was abandoned at its deadline. */
typedef struct {
  tp_probe_engine *engine;
  size_t extras_left; /* extra probes not finished yet */
  size_t outstanding; /* all probes not finished yet */
} run_state;

typedef struct {
  tp_result *result;
  run_state *run;
  uint64_t done_ns;
  int finished_before_extras;
} outcome_box;

static void probe_ended(run_state *run) {
  if (--run->outstanding == 0 && run->engine != NULL) {
    tp_probe_engine_close(run->engine, NULL, NULL);
    run->engine = NULL;
  }
}

static void on_done(tp_result *result, void *data) {
  outcome_box *box = data;
  box->result = result;
  box->run->extras_left--;
  probe_ended(box->run);
}

static void on_done_timed(tp_result *result, void *data) {
  outcome_box *box = data;
  box->result = result;
  box->done_ns = uv_hrtime();
  box->finished_before_extras = box->run->extras_left > 0;
  probe_ended(box->run);
}

static void print_cache_stats(const tp_probe_engine *engine) {
  tp_probe_cache_stats st;
  tp_probe_engine_cache_stats(engine, &st);
  printf("cache_verify_hits=%llu\ncache_verify_misses=%llu\ncache_verify_rechecks=%llu\n",
         (unsigned long long)st.verify_hits, (unsigned long long)st.verify_misses,
         (unsigned long long)st.verify_rechecks);
  printf("cache_verify_entries=%zu\ncache_facts_hits=%llu\ncache_facts_misses=%llu\n",
         st.verify_entries, (unsigned long long)st.facts_hits, (unsigned long long)st.facts_misses);
  printf("cache_facts_entries=%zu\n", st.facts_entries);
}

/* --stdin: probes of the ports named on stdin, one at a time, on one engine. */
static void probe_stdin_ports(uv_loop_t *loop, tp_probe_engine *engine, tp_target target,
                              const tp_profile *profile, const tp_probe_timeouts *timeouts) {
  char line[64];
  while (fgets(line, sizeof(line), stdin) != NULL) {
    unsigned long port = strtoul(line, NULL, 10);
    if (port == 0 || port > 65535)
      continue;
    target.port = (uint16_t)port;
    run_state run = {.engine = NULL, .extras_left = 0, .outstanding = 1}; /* engine stays open */
    outcome_box box = {.run = &run};
    if (tp_probe_engine_submit(engine, &target, profile, timeouts, on_done_timed, &box) !=
        TP_E_OK) {
      printf("outcome=submit_failed\nend\n");
      fflush(stdout);
      continue;
    }
    (void)uv_run(loop, UV_RUN_DEFAULT); /* until the probe's handles are closed */
    print_result(box.result);
    print_cache_stats(engine);
    printf("end\n");
    fflush(stdout);
    tp_result_free(box.result);
  }
}

/* Splits "a,b,c" into a NULL-terminated array (strings point into `text`). */
static const char **split(char *text) {
  size_t n = 1;
  for (char *c = text; *c; c++)
    n += *c == ',';
  const char **v = tp_xcalloc(n + 1, sizeof(char *));
  size_t i = 0;
  for (char *tok = strtok(text, ","); tok != NULL; tok = strtok(NULL, ","))
    v[i++] = tok;
  return v;
}

/* --stall-ms: the timer starts a check handle, whose callback (after this round of
 * callbacks, before the next round's timers) blocks the thread: the next round runs
 * the timers that came due first, as a busy agent's loop would. */
typedef struct {
  uv_timer_t timer;
  uv_check_t check;
  unsigned long long ms;
} stall_state;

static void stall_now(uv_check_t *check) {
  stall_state *st = check->data;
  struct timespec left = {.tv_sec = (time_t)(st->ms / 1000),
                          .tv_nsec = (long)(st->ms % 1000) * 1000000L};
  while (nanosleep(&left, &left) != 0)
    ; /* EINTR: sleep the rest */
  uv_close((uv_handle_t *)check, NULL);
}

static void stall_soon(uv_timer_t *timer) {
  stall_state *st = timer->data;
  uv_close((uv_handle_t *)timer, NULL);
  if (uv_check_start(&st->check, stall_now) != 0)
    uv_close((uv_handle_t *)&st->check, NULL);
}

static int usage(void) {
  fprintf(stderr, "usage: probe-once --host H --port P [options] (see the source header)\n");
  return 2;
}

int main(int argc, char **argv) {
  tp_target target = {.name = "once"};
  tp_profile_spec spec = {.name = "once"};
  tp_probe_timeouts timeouts = {.connect_ms = 3000, .handshake_ms = 5000};
  tp_probe_engine_options engine_options = {0};
  const char **alpn = NULL;
  /* --extra-host NAME: probes of other names submitted first, on the same
   * engine (same port and profile): a slow name must not delay this probe. */
  enum { MAX_EXTRA = 16 };
  const char *extra_hosts[MAX_EXTRA];
  size_t n_extra = 0;
  tp_target extra_targets[MAX_EXTRA];
  outcome_box extra_box[MAX_EXTRA];
  memset(extra_box, 0, sizeof(extra_box));
  int from_stdin = 0;
  unsigned long long stall_ms = 0, stall_at_ms = 50;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--no-sni") == 0) {
      spec.sni_mode = TP_SNI_OFF;
      continue;
    }
    if (strcmp(a, "--stdin") == 0) {
      from_stdin = 1;
      continue;
    }
    if (v == NULL)
      return usage();
    i++;
    if (strcmp(a, "--host") == 0)
      target.host = v;
    else if (strcmp(a, "--port") == 0)
      target.port = (uint16_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--sni") == 0)
      target.sni = v;
    else if (strcmp(a, "--trust") == 0)
      spec.trust = v;
    else if (strcmp(a, "--client-cert") == 0)
      spec.client_certificate = v;
    else if (strcmp(a, "--client-key") == 0)
      spec.client_key = v;
    else if (strcmp(a, "--intermediates") == 0)
      spec.intermediates = v;
    else if (strcmp(a, "--priority") == 0)
      spec.priority = v;
    else if (strcmp(a, "--versions") == 0) {
      char *copy = tp_xstrdup(v);
      for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
        spec.versions |= tp_tls_version_from_name(tok);
      free(copy);
    } else if (strcmp(a, "--mode") == 0)
      spec.mode = strcmp(v, "resumption") == 0   ? TP_MODE_RESUMPTION
                  : strcmp(v, "early_data") == 0 ? TP_MODE_EARLY_DATA
                                                 : TP_MODE_HANDSHAKE;
    else if (strcmp(a, "--http") == 0 && i + 1 < argc) {
      spec.http.method = v;
      spec.http.path = argv[++i];
    } else if (strcmp(a, "--alpn") == 0)
      alpn = split(tp_xstrdup(v));
    else if (strcmp(a, "--dns-server") == 0)
      engine_options.dns_servers = v;
    else if (strcmp(a, "--family") == 0)
      target.family = strcmp(v, "ipv4") == 0   ? TP_FAMILY_IPV4
                      : strcmp(v, "ipv6") == 0 ? TP_FAMILY_IPV6
                                               : TP_FAMILY_ANY;
    else if (strcmp(a, "--extra-host") == 0 && n_extra < MAX_EXTRA)
      extra_hosts[n_extra++] = v;
    else if (strcmp(a, "--verify-cache-max-age") == 0)
      engine_options.verify_cache_max_age_s = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(a, "--key-shares") == 0)
      spec.key_shares = (unsigned)strtoul(v, NULL, 10);
    else if (strcmp(a, "--connect-timeout") == 0)
      timeouts.connect_ms = strtoull(v, NULL, 10);
    else if (strcmp(a, "--handshake-timeout") == 0)
      timeouts.handshake_ms = strtoull(v, NULL, 10);
    else if (strcmp(a, "--stall-ms") == 0)
      stall_ms = strtoull(v, NULL, 10);
    else if (strcmp(a, "--stall-at-ms") == 0)
      stall_at_ms = strtoull(v, NULL, 10);
    else
      return usage();
  }
  if (target.host == NULL || (target.port == 0 && !from_stdin))
    return usage();
  spec.alpn = alpn;

  int status = 2;
  char err[512];
  tp_profile *profile = NULL;
  tp_probe_engine *engine = NULL;
  uv_loop_t loop;
  outcome_box box = {NULL};
  if (gnutls_global_init() < 0 || tp_resolve_global_init() != TP_E_OK || uv_loop_init(&loop) != 0)
    return 2;
  if (tp_profile_new(&spec, &profile, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "probe-once: profile: %s\n", err);
    goto out;
  }
  if (tp_probe_engine_new(&loop, &engine_options, NULL, &engine) != TP_E_OK) {
    fprintf(stderr, "probe-once: cannot start the engine\n");
    goto out;
  }
  if (from_stdin) {
    probe_stdin_ports(&loop, engine, target, profile, &timeouts);
    status = 0;
    goto out;
  }
  run_state run = {.engine = engine, .extras_left = n_extra, .outstanding = n_extra + 1};
  box.run = &run;
  for (size_t k = 0; k < n_extra; k++) {
    extra_box[k].run = &run;
    extra_targets[k] = target;
    extra_targets[k].name = "extra";
    extra_targets[k].host = extra_hosts[k];
    extra_targets[k].sni = NULL;
    if (tp_probe_engine_submit(engine, &extra_targets[k], profile, &timeouts, on_done,
                               &extra_box[k]) != TP_E_OK) {
      fprintf(stderr, "probe-once: cannot start probe %zu\n", k);
      goto out;
    }
  }
  uint64_t t0 = uv_hrtime();
  if (tp_probe_engine_submit(engine, &target, profile, &timeouts, on_done_timed, &box) != TP_E_OK) {
    fprintf(stderr, "probe-once: cannot start the probe\n");
    goto out;
  }
  stall_state stall = {.ms = stall_ms};
  if (stall_ms > 0) {
    stall.timer.data = stall.check.data = &stall;
    if (uv_timer_init(&loop, &stall.timer) != 0 || uv_check_init(&loop, &stall.check) != 0 ||
        uv_timer_start(&stall.timer, stall_soon, stall_at_ms, 0) != 0) {
      fprintf(stderr, "probe-once: cannot arm --stall-ms\n");
      goto out;
    }
  }
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  engine = run.engine; /* NULL: closed by the last probe's callback */
  print_result(box.result);
  /* whether this probe ended before every extra one, and how long it took */
  printf("finished_before_extras=%d\n", box.finished_before_extras);
  printf("elapsed_ms=%llu\n", (unsigned long long)((box.done_ns - t0) / 1000000));
  for (size_t k = 0; k < n_extra; k++) {
    printf("extra_%zu_outcome=%s\n", k, tp_outcome_name(extra_box[k].result->outcome));
    tp_result_free(extra_box[k].result);
  }
  status = box.result->outcome == TP_OUTCOME_OK ? 0 : 1;
  tp_result_free(box.result);
out:
  if (engine != NULL)
    tp_probe_engine_close(engine, NULL, NULL);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) {
    fprintf(stderr, "probe-once: handles left open on the loop\n");
    status = 2;
  }
  tp_profile_free(profile);
  if (alpn != NULL) {
    free((char *)alpn[0]);
    free(alpn);
  }
  tp_resolve_global_cleanup();
  gnutls_global_deinit();
  return status;
}
