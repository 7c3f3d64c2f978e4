/* main.c - tlsprobe-collector: parses the command line and wires the components.
 *
 *   tlsprobe-collector serve --config collector.yaml [--check]
 *   tlsprobe-collector agents add|list|revoke ... --config collector.yaml
 *   tlsprobe-collector report --db PATH [--since 1h] [--target NAME] [--format text|json]
 *
 * Exit codes: 0 success, 1 runtime failure (database, port in use...), 2 usage or
 * configuration error. Signals: SIGINT/SIGTERM/SIGHUP are blocked before any thread
 * starts (so MHD's threads inherit the mask) and taken synchronously with sigwait -- no
 * signal handler, no global flag. SIGHUP re-reads the TLS certificate, key, client CA
 * and the tokens file; it never stops the collector. */
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agents_cli.h"
#include "auth.h"
#include "config.h"
#include "http_server.h"
#include "metrics.h"
#include "metrics_http.h"
#include "maintenance.h"
#include "report_cli.h"
#include "store.h"
#include "tls_server.h"
#include "tp_duration.h"
#include "tp_log.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static void usage(FILE *out) {
  fputs("usage:\n"
        "  tlsprobe-collector serve --config FILE [--check]\n"
        "      receive result batches (POST /v1/results) and store them in SQLite;\n"
        "      --check validates the configuration (and loads its certificates and\n"
        "      tokens) and exits. SIGHUP reloads certificate, key, client CA and tokens.\n"
        "  tlsprobe-collector agents add NAME --config FILE\n"
        "  tlsprobe-collector agents list --config FILE\n"
        "  tlsprobe-collector agents revoke NAME [--token TOKEN_ID] --config FILE\n"
        "      mint (printed once), list and revoke agents' bearer tokens\n",
        out);
  tp_report_usage(out);
  fputs(        "  tlsprobe-collector --help | --version\n"
        "      every subcommand also takes --help\n",
        out);
}

/* ---- serve ------------------------------------------------------------------- */

/* The credentials the config names, loaded (so --check proves they load). */
typedef struct serve_parts {
  tp_tls_server *tls;
  tp_auth *auth;
} serve_parts;

static tp_err load_parts(const tp_collector_config *cfg, const tp_log *log, serve_parts *p,
                         char *err, size_t errlen) {
  *p = (serve_parts){0};
  if (cfg->tls.cert_file != NULL) {
    tp_tls_files files = {.cert_file = cfg->tls.cert_file,
                          .key_file = cfg->tls.key_file,
                          .client_ca_file = cfg->tls.client_ca_file,
                          .client_crl_file = cfg->tls.client_crl_file};
    tp_err rc = tp_tls_server_new(&files, log, &p->tls, err, errlen);
    if (rc != TP_E_OK)
      return rc;
  }
  tp_err rc =
      tp_auth_new(cfg->auth.tokens_file, cfg->auth.allow_unauthenticated, log, &p->auth, err, errlen);
  if (rc != TP_E_OK) {
    tp_tls_server_free(p->tls);
    p->tls = NULL;
  }
  return rc;
}

static void free_parts(serve_parts *p) {
  tp_auth_free(p->auth);
  tp_tls_server_free(p->tls);
  *p = (serve_parts){0};
}

/* One line on how agents get in; never a secret. */
static void describe_access(const tp_collector_config *cfg, serve_parts *p, char *out,
                            size_t len) {
  char subject[200] = "";
  if (p->tls != NULL)
    tp_tls_server_describe(p->tls, subject, sizeof(subject));
  snprintf(out, len,
           "tls=%s certificate=\"%s\" client_ca=%s tokens=%zu unauthenticated=%s",
           p->tls ? "on" : "off (insecure_plaintext)", subject,
           cfg->tls.client_ca_file ? cfg->tls.client_ca_file : "-", tp_auth_token_count(p->auth),
           cfg->auth.allow_unauthenticated ? "allowed" : "refused");
}

/* --check: the same loaders serve uses, then stop (exit 0 or 2). */
static int check_config(const char *config_path) {
  char err[1024], access[600];
  tp_collector_config *cfg = NULL;
  serve_parts parts;
  tp_log log = {.min_level = TP_LOG_WARN, .component = "collector"};
  if (tp_collector_config_load(config_path, &cfg, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s\n", err);
    return EXIT_USAGE;
  }
  if (load_parts(cfg, &log, &parts, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s: %s\n", config_path, err);
    tp_collector_config_free(cfg);
    return EXIT_USAGE;
  }
  describe_access(cfg, &parts, access, sizeof(access));
  printf("%s: configuration OK (listen %s:%u, database %s, max_body_bytes %zu; %s)\n", config_path,
         cfg->listen.host, cfg->listen.port, cfg->database, cfg->max_body_bytes, access);
  free_parts(&parts);
  tp_collector_config_free(cfg);
  return 0;
}

static tp_http_options http_options(const tp_collector_config *cfg, const serve_parts *p) {
  const tp_collector_limits *l = &cfg->limits;
  return (tp_http_options){
      .listen = &cfg->listen,
      .max_body_bytes = cfg->max_body_bytes,
      .connection_limit = l->max_connections,
      .per_ip_limit = l->max_connections_per_ip,
      .connection_timeout_s = l->connection_timeout_s,
      .header_timeout_ms = l->header_timeout_ms,
      .request_timeout_ms = l->request_timeout_ms,
      .max_buffered_bytes = l->max_buffered_bytes,
      .agent_rate = l->agent_rate,
      .agent_burst = l->agent_burst,
      .max_result_age_ms = cfg->max_result_age_ms,
      .max_clock_skew_ms = cfg->max_clock_skew_ms,
      .tls = p->tls,
      .auth = p->auth,
  };
}

/* SIGHUP: everything is re-read first and swapped only if it all loaded, per part. */
static void reload(serve_parts *p, const tp_log *log) {
  char err[1024], subject[200] = "";
  bool ok = true;
  if (p->tls != NULL && tp_tls_server_reload(p->tls, err, sizeof(err)) != TP_E_OK) {
    tp_log_error(log, "reload failed: keeping the TLS credentials in force", "error=\"%s\"", err);
    ok = false;
  }
  if (tp_auth_reload(p->auth, err, sizeof(err)) != TP_E_OK) {
    tp_log_error(log, "reload failed: keeping the tokens in force", "error=\"%s\"", err);
    ok = false;
  }
  if (p->tls != NULL)
    tp_tls_server_describe(p->tls, subject, sizeof(subject));
  tp_log_info(log, ok ? "reloaded" : "reloaded partly", "certificate=\"%s\" tokens=%zu", subject,
              tp_auth_token_count(p->auth));
}

/* Runs until SIGINT/SIGTERM; 0, or EXIT_RUNTIME if signals cannot be waited for. */
static int wait_for_stop(const sigset_t *signals, serve_parts *p, const tp_log *log) {
  for (;;) {
    int sig = 0;
    if (sigwait(signals, &sig) != 0) {
      tp_log_error(log, "sigwait failed", "%s", "");
      return EXIT_RUNTIME;
    }
    if (sig == SIGHUP) {
      reload(p, log);
      continue;
    }
    tp_log_info(log, "stopping", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    return 0;
  }
}

static int serve(const char *config_path) {
  char err[1024], access[600];
  tp_collector_config *cfg = NULL;
  tp_store *store = NULL;
  tp_http_server *http = NULL;
  tp_metrics *metrics = NULL;
  tp_metrics_server *metrics_http = NULL;
  tp_maintenance *maintenance = NULL;
  /* Ingest's requests in hand, read by maintenance (outlives both: stopped below) */
  atomic_uint ingest_pending = 0;
  serve_parts parts = {0};
  tp_log log = {.min_level = TP_LOG_INFO, .component = "collector"};
  sigset_t signals;
  int status = EXIT_RUNTIME;

  /* Block before anything else, so a SIGHUP during start-up waits for sigwait instead
   * of killing the process, and before MHD creates its threads: they inherit the mask,
   * and sigwait below is then the only receiver of these signals. */
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &signals, NULL) != 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
    tp_log_error(&log, "cannot set up signals", "%s", "");
    return EXIT_RUNTIME;
  }
  if (tp_collector_config_load(config_path, &cfg, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s\n", err);
    return EXIT_USAGE;
  }
  log.min_level = cfg->log_level;
  if (load_parts(cfg, &log, &parts, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s: %s\n", config_path, err);
    status = EXIT_USAGE;
    goto out;
  }
  if (cfg->insecure_plaintext)
    tp_log_warn(&log, "serving plain HTTP",
                "reason=\"insecure_plaintext: true\" risk=\"tokens and results cross the "
                "network in clear\"");
  /* The port first: a second collector on the same port must fail before it creates
   * or migrates anything. */
  tp_http_options opts = http_options(cfg, &parts);
  opts.ingest_pending = &ingest_pending;
  if (cfg->metrics.enabled) {
    if (tp_metrics_server_new(&cfg->metrics.listen, &log, &metrics_http, err, sizeof(err)) !=
        TP_E_OK) {
      tp_log_error(&log, "cannot start the metrics listener", "error=\"%s\"", err);
      goto out;
    }
    metrics = tp_metrics_new(cfg->metrics.max_series);
    if (metrics == NULL) {
      tp_log_error(&log, "cannot create the metrics registry", "%s", "");
      goto out;
    }
    tp_metrics_set_slo(metrics, &cfg->slo);
    opts.metrics = metrics;
  }
  if (tp_http_server_new(&opts, &log, &http, err, sizeof(err)) != TP_E_OK) {
    tp_log_error(&log, "cannot start HTTP server", "error=\"%s\"", err);
    goto out;
  }
  if (tp_store_open_sqlite(cfg->database, TP_STORE_READWRITE, &store, err, sizeof(err)) !=
      TP_E_OK) {
    tp_log_error(&log, "cannot open database", "error=\"%s\"", err);
    goto out;
  }
  /* Before ingest starts (the store is single-threaded): agents' last-seen times survive
   * a restart; a failure costs only those gauges. */
  if (metrics != NULL && tp_metrics_seed(metrics, store, err, sizeof(err)) != TP_E_OK)
    tp_log_warn(&log, "metrics: agents' last-seen times not seeded", "error=\"%s\"", err);
  /* Rollups and retention on a thread and connection of their own (maintenance.h). */
  tp_maintenance_options maint = {.database = cfg->database,
                                  .interval_ms = cfg->retention.interval_ms,
                                  .raw_retention_ms = cfg->retention.raw_ms,
                                  .rollup_retention_ms = cfg->retention.rollups_ms,
                                  .ingest_pending = &ingest_pending};
  if (tp_maintenance_start(&maint, &log, &maintenance, err, sizeof(err)) != TP_E_OK) {
    tp_log_error(&log, "cannot start maintenance", "error=\"%s\"", err);
    goto out;
  }
  if (tp_http_server_run(http, store, err, sizeof(err)) != TP_E_OK) {
    tp_log_error(&log, "cannot start HTTP server", "error=\"%s\"", err);
    goto out;
  }
  if (metrics_http != NULL) {
    if (tp_metrics_server_run(metrics_http, metrics, err, sizeof(err)) != TP_E_OK) {
      tp_log_error(&log, "cannot start the metrics listener", "error=\"%s\"", err);
      goto out;
    }
    tp_log_info(&log, "metrics listening", "address=%s port=%u path=/metrics max_series=%zu",
                cfg->metrics.listen.host, tp_metrics_server_port(metrics_http),
                cfg->metrics.max_series);
  }
  describe_access(cfg, &parts, access, sizeof(access));
  tp_log_info(&log, "listening", "address=%s port=%u database=%s max_body_bytes=%zu %s",
              cfg->listen.host, tp_http_server_port(http), cfg->database, cfg->max_body_bytes,
              access);
  status = wait_for_stop(&signals, &parts, &log);
out:
  tp_http_server_stop(http); /* before the store and credentials: the MHD thread uses them */
  tp_metrics_server_stop(metrics_http); /* before the registry it renders */
  tp_metrics_free(metrics);
  tp_maintenance_stop(maintenance); /* returns within one chunk */
  tp_store_close(store);
  free_parts(&parts);
  tp_collector_config_free(cfg);
  return status;
}

/* serve's options: --config FILE (required) and --check, in any order. */
static int serve_command(int argc, char **argv) {
  const char *config_path = NULL;
  bool check = false;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (strcmp(argv[i], "--check") == 0) {
      check = true;
    } else {
      fprintf(stderr, "tlsprobe-collector serve: unexpected argument %s\n", argv[i]);
      usage(stderr);
      return EXIT_USAGE;
    }
  }
  if (config_path == NULL) {
    fprintf(stderr, "tlsprobe-collector serve: --config FILE is required\n");
    usage(stderr);
    return EXIT_USAGE;
  }
  return check ? check_config(config_path) : serve(config_path);
}

static bool is_help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

/* The versions an operator's bug report needs: ours and the libraries' at run time. */
static int version(void) {
  printf("tlsprobe-collector %s (GnuTLS %s, libmicrohttpd %s, SQLite %s)\n", TP_VERSION,
         gnutls_check_version(NULL), MHD_get_version(), sqlite3_libversion());
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && is_help(argv[1])) {
    usage(stdout);
    return 0;
  }
  if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0))
    return version();
  /* `serve --help`, `report --help`: the usage, on stdout, exit 0 (agents has its own). */
  if (argc >= 3 && strcmp(argv[1], "agents") != 0 && is_help(argv[2])) {
    usage(stdout);
    return 0;
  }
  /* SQLite's global allocation statistics take a mutex on every allocation, shared by
   * the ingest writer, the maintenance thread and the report; nothing here reads
   * them. Before SQLite initializes, hence here (only main touches SQLite's globals). */
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  if (argc >= 2 && strcmp(argv[1], "serve") == 0)
    return serve_command(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "report") == 0)
    return tp_report_command(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "agents") == 0)
    return tp_agents_command(argc - 2, argv + 2);
  usage(stderr);
  return EXIT_USAGE;
}
