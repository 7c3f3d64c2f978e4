/* main.c - tlsprobe-collector: parses the command line and wires the components.
 *
 *   tlsprobe-collector serve --config collector.yaml [--check]
 *   tlsprobe-collector report --db PATH [--since 1h] [--target NAME] [--format text|json]
 *
 * Exit codes: 0 success, 1 runtime failure (database, port in use...), 2 usage or
 * configuration error. Signals: SIGINT/SIGTERM are blocked before any thread starts
 * (so MHD's thread inherits the mask) and taken synchronously with sigwait -- no
 * signal handler, no global flag. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "http_server.h"
#include "report.h"
#include "store.h"
#include "tp_duration.h"
#include "tp_log.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static void usage(FILE *out) {
  fputs("usage:\n"
        "  tlsprobe-collector serve --config FILE [--check]\n"
        "      receive result batches (POST /v1/results) and store them in SQLite;\n"
        "      --check validates the configuration and exits\n"
        "  tlsprobe-collector report --db FILE [--since DURATION] [--target NAME]\n"
        "                            [--format text|json]\n"
        "      per target/profile/region: probes, success rate, p50/p90/p99 handshake\n"
        "      latency (ms, successful probes, nearest rank), top error class; then\n"
        "      WARN/CRIT lines for expiring certificates, stale OCSP staples, success\n"
        "      < 99.9 %, HelloRetryRequest > 5 %, resumption < 80 %. JSON adds the\n"
        "      error category and rates; --target adds the latest result's facts.\n"
        "      --since defaults to 1h (units: ms s m h d)\n"
        "  tlsprobe-collector --help\n",
        out);
}

/* ---- serve ------------------------------------------------------------------- */

/* --check: the same loader serve uses, then stop (exit 0 or 2). */
static int check_config(const char *config_path) {
  char err[1024];
  tp_collector_config *cfg = NULL;
  if (tp_collector_config_load(config_path, &cfg, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s\n", err);
    return EXIT_USAGE;
  }
  printf("%s: configuration OK (listen %s:%u, database %s, max_body_bytes %zu)\n", config_path,
         cfg->listen.host, cfg->listen.port, cfg->database, cfg->max_body_bytes);
  tp_collector_config_free(cfg);
  return 0;
}

static int serve(const char *config_path) {
  char err[1024];
  tp_collector_config *cfg = NULL;
  tp_store *store = NULL;
  tp_http_server *http = NULL;
  tp_log log = {.min_level = TP_LOG_INFO, .component = "collector"};
  sigset_t stop_signals;
  int sig = 0, status = EXIT_RUNTIME;

  if (tp_collector_config_load(config_path, &cfg, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s\n", err);
    return EXIT_USAGE;
  }
  log.min_level = cfg->log_level;
  /* Block before MHD creates its thread: it inherits the mask, and sigwait below
   * is then the only receiver of these signals. */
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
    tp_log_error(&log, "cannot set up signals", "%s", "");
    goto out;
  }
  if (tp_store_open_sqlite(cfg->database, TP_STORE_READWRITE, &store, err, sizeof(err)) !=
      TP_E_OK) {
    tp_log_error(&log, "cannot open database", "error=\"%s\"", err);
    goto out;
  }
  tp_http_options opts = {.listen = &cfg->listen, .max_body_bytes = cfg->max_body_bytes};
  if (tp_http_server_start(&opts, store, &log, &http, err, sizeof(err)) != TP_E_OK) {
    tp_log_error(&log, "cannot start HTTP server", "error=\"%s\"", err);
    goto out;
  }
  tp_log_info(&log, "listening", "address=%s port=%u database=%s max_body_bytes=%zu",
              cfg->listen.host, tp_http_server_port(http), cfg->database, cfg->max_body_bytes);
  if (sigwait(&stop_signals, &sig) != 0) {
    tp_log_error(&log, "sigwait failed", "%s", "");
    goto out;
  }
  tp_log_info(&log, "stopping", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
  status = 0;
out:
  tp_http_server_stop(http); /* before the store: the MHD thread uses it */
  tp_store_close(store);
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

/* ---- report ------------------------------------------------------------------ */

typedef struct report_args {
  const char *db;
  const char *since;
  const char *target;
  bool json;
} report_args;

/* Parses report options; false (after a message) on anything unexpected. */
static bool parse_report_args(int argc, char **argv, report_args *a) {
  *a = (report_args){.since = "1h"};
  for (int i = 0; i < argc; i += 2) { /* every option takes one value */
    const char *opt = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (val == NULL) {
      fprintf(stderr, "tlsprobe-collector report: %s needs a value\n", opt);
      return false;
    }
    if (strcmp(opt, "--db") == 0) {
      a->db = val;
    } else if (strcmp(opt, "--since") == 0) {
      a->since = val;
    } else if (strcmp(opt, "--target") == 0) {
      a->target = val;
    } else if (strcmp(opt, "--format") == 0 &&
               (strcmp(val, "text") == 0 || strcmp(val, "json") == 0)) {
      a->json = strcmp(val, "json") == 0;
    } else {
      fprintf(stderr, "tlsprobe-collector report: unexpected argument %s %s\n", opt, val);
      return false;
    }
  }
  if (a->db == NULL) {
    fprintf(stderr, "tlsprobe-collector report: --db is required\n");
    return false;
  }
  return true;
}

static int report(int argc, char **argv) {
  char err[1024];
  report_args args;
  tp_store *store = NULL;
  tp_report *rep = NULL;
  uint64_t window_ms = 0;
  struct timespec now;
  int status = EXIT_RUNTIME;

  if (!parse_report_args(argc, argv, &args)) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (tp_duration_parse_ms(args.since, &window_ms) != TP_E_OK || window_ms == 0) {
    fprintf(stderr,
            "tlsprobe-collector report: --since \"%s\" is not a duration like 30m, 1h, 7d\n",
            args.since);
    return EXIT_USAGE;
  }
  if (clock_gettime(CLOCK_REALTIME, &now) != 0) {
    perror("clock_gettime");
    return EXIT_RUNTIME;
  }
  if (tp_store_open_sqlite(args.db, TP_STORE_READONLY, &store, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "tlsprobe-collector report: %s\n", err);
    goto out;
  }
  tp_report_query q = {
      .now_unix_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec,
      .window_ms = window_ms,
      .since_text = args.since,
      .target = args.target,
      .with_facts = args.target != NULL,
  };
  if (tp_report_build(store, &q, &rep, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "tlsprobe-collector report: %s\n", err);
    goto out;
  }
  if ((args.json ? tp_report_write_json(rep, stdout) : tp_report_write_text(rep, stdout)) !=
      TP_E_OK) {
    perror("tlsprobe-collector report: writing output");
    goto out;
  }
  status = 0;
out:
  tp_report_free(rep);
  tp_store_close(store);
  return status;
}

int main(int argc, char **argv) {
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                    strcmp(argv[1], "help") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "serve") == 0)
    return serve_command(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "report") == 0)
    return report(argc - 2, argv + 2);
  usage(stderr);
  return EXIT_USAGE;
}
