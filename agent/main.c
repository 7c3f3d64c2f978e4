/* main.c - tlsprobe-agent: parses flags, initialises the libraries once,
 * loads the config and runs the agent. Exit codes: 0 ok, 1 runtime failure,
 * 2 usage or configuration error. */
#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "agent.h"
#include "config.h"
#include "fd_budget.h"
#include "host_policy.h"
#include "profiles_cmd.h"
#include "resolve.h"
#include "tp_duration.h"
#include "tp_log.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: tlsprobe-agent --config FILE [--run-for DURATION] [--check]\n"
          "                      [--honour-host-policy]\n"
          "       tlsprobe-agent profiles list | show NAME | import-testssl FILE "
          "[--current-only]\n"
          "       tlsprobe-agent --help | --version\n"
          "  --config FILE          agent configuration (YAML)\n"
          "  --run-for DURATION     stop after DURATION (e.g. 30s), flush results and exit\n"
          "  --check                validate the configuration and exit\n"
          "  --honour-host-policy   let the host's GnuTLS policy (/etc/gnutls/config) apply\n"
          "                         (default: ignored; also TLSPROBE_HOST_POLICY=honour)\n"
          "Runs scheduled TLS probes and pushes the results to the collector.\n");
}

/* Subcommands that print and exit need GnuTLS but no config or logger. */
static int run_subcommand(int argc, char **argv) {
  if (gnutls_global_init() < 0) {
    fprintf(stderr, "tlsprobe-agent: cannot initialise GnuTLS\n");
    return 1;
  }
  int status = tp_profiles_command(argc, argv);
  gnutls_global_deinit();
  return status;
}

/* Before anything opens descriptors: raise the soft RLIMIT_NOFILE if the
 * configuration needs more, or refuse to start (an EMFILE halfway through a
 * run would be reported as failed probes of healthy targets). Returns 0 or
 * the exit status. */
static int ensure_fd_budget(const tp_agent_config *config, const tp_log *log) {
  char err[512], line[256];
  tp_fd_budget b;
  tp_err rc = tp_fd_budget_ensure(config->loops, config->max_in_flight, true, &b, err, sizeof(err));
  if (rc == TP_E_IO) { /* cannot know: run, and let EMFILE speak if it comes */
    tp_log_warn(log, "file-descriptor budget unknown", "error=\"%s\"", err);
    return 0;
  }
  if (rc != TP_E_OK) {
    fprintf(stderr, "tlsprobe-agent: %s\n", err);
    return 1;
  }
  tp_fd_budget_describe(&b, line, sizeof(line));
  if (b.raised)
    tp_log_info(log, "raised the file-descriptor limit", "need=%llu soft=%llu new_soft=%llu",
                (unsigned long long)b.need, (unsigned long long)b.soft,
                (unsigned long long)b.limit);
  else
    tp_log_debug(log, "file-descriptor budget", "detail=\"%s\"", line);
  return 0;
}

/* --check: what the start would find, as information (the limit belongs to
 * the environment the agent will run in, not to the file). */
static void report_fd_budget(const tp_agent_config *config) {
  char err[512], line[256];
  tp_fd_budget b;
  tp_err rc = tp_fd_budget_ensure(config->loops, config->max_in_flight, false, &b, err, sizeof(err));
  if (rc == TP_E_IO) {
    printf("file descriptors: unknown: %s\n", err);
    return;
  }
  tp_fd_budget_describe(&b, line, sizeof(line));
  printf("%s\n", line);
}

int main(int argc, char **argv) {
  const char *config_path = NULL;
  uint64_t run_for_ms = 0;
  bool check_only = false, honour_host_policy = false;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--honour-host-policy") == 0)
      honour_host_policy = true;
  /* Before anything touches GnuTLS: may re-exec this binary (host_policy.h). */
  tp_host_policy_state host_policy;
  tp_host_policy_isolate(argv, honour_host_policy, &host_policy);
  if (argc >= 2 && strcmp(argv[1], "profiles") == 0)
    return run_subcommand(argc - 1, argv + 1);

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      config_path = argv[++i];
    } else if (strcmp(argv[i], "--run-for") == 0 && i + 1 < argc) {
      if (tp_duration_parse_ms(argv[++i], &run_for_ms) != TP_E_OK || run_for_ms == 0) {
        fprintf(stderr, "tlsprobe-agent: --run-for: \"%s\" is not a duration (e.g. 30s)\n", argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "--check") == 0) {
      check_only = true;
    } else if (strcmp(argv[i], "--honour-host-policy") == 0) {
      /* handled above */
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--version") == 0) {
      /* Ours and the libraries' at run time: what a bug report needs. */
      printf("tlsprobe-agent %s (GnuTLS %s, libuv %s, libcurl %s)\n", TP_VERSION,
             gnutls_check_version(NULL), uv_version_string(),
             curl_version_info(CURLVERSION_NOW)->version);
      return 0;
    } else {
      fprintf(stderr, "tlsprobe-agent: unknown or incomplete argument \"%s\"\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (config_path == NULL) {
    usage(stderr);
    return 2;
  }

  char err[1024];
  tp_agent_config *config = NULL;
  if (tp_agent_config_load(config_path, &config, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  tp_log log = {.min_level = TP_LOG_INFO, .component = "agent"};
  (void)tp_log_level_parse(config->log_level, &log.min_level); /* validated by the loader */
  tp_host_policy_log(&host_policy, &log);

  int status = 1;
  tp_agent *agent = NULL;
  if (!check_only) {
    status = ensure_fd_budget(config, &log);
    if (status != 0)
      goto out_config;
    status = 1;
  }
  if (gnutls_global_init() < 0) {
    fprintf(stderr, "tlsprobe-agent: cannot initialise GnuTLS\n");
    goto out_config;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "tlsprobe-agent: cannot initialise libcurl\n");
    goto out_gnutls;
  }
  if (tp_resolve_global_init() != TP_E_OK) {
    fprintf(stderr, "tlsprobe-agent: cannot initialise c-ares\n");
    goto out_curl;
  }
  tp_err rc = tp_agent_new(config, &log, check_only, &agent, err, sizeof(err));
  if (rc != TP_E_OK) {
    fprintf(stderr, "%s\n", err);
    status = rc == TP_E_CONFIG ? 2 : 1;
    goto out_resolve;
  }
  if (check_only) {
    printf("%s: configuration OK (%zu profiles, %zu targets, %zu jobs)\n", config_path,
           config->n_profiles, config->n_targets, config->n_jobs);
    report_fd_budget(config);
    status = 0;
    goto out_agent;
  }
  rc = tp_agent_run(agent, run_for_ms);
  if (rc != TP_E_OK) {
    tp_log_error(&log, "agent failed", "error=\"%s\"", tp_strerror(rc));
    goto out_agent;
  }
  tp_agent_stats st;
  char where[TP_AGENT_MAX_PATH + 64];
  tp_agent_get_stats(agent, &st);
  if (st.spool_durable)
    snprintf(where, sizeof(where), "unsent results stay in the spool %s for the next start",
             st.spool + strlen("sqlite:"));
  else
    snprintf(where, sizeof(where), "unsent results are lost: the spool was in memory");
  tp_log_info(&log, "agent stopped",
              "produced=%llu pushed=%llu duplicates=%llu rejected=%llu replaced=%llu invalid=%llu "
              "invalid_dropped=%llu dropped=%llu skipped=%llu unsent=%llu (%s)",
              (unsigned long long)st.produced, (unsigned long long)st.pushed,
              (unsigned long long)st.duplicates, (unsigned long long)st.rejected,
              (unsigned long long)st.replaced, (unsigned long long)st.invalid,
              (unsigned long long)st.invalid_dropped, (unsigned long long)st.dropped,
              (unsigned long long)st.skipped, (unsigned long long)st.unsent, where);
  status = 0;
out_agent:
  tp_agent_free(agent);
out_resolve:
  tp_resolve_global_cleanup();
out_curl:
  curl_global_cleanup();
out_gnutls:
  gnutls_global_deinit();
out_config:
  tp_agent_config_free(config);
  return status;
}
