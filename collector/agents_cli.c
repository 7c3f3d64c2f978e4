/* agents_cli.c - minting and revoking agent tokens. Changes are made under an
 * exclusive lock on "<tokens_file>.lock" (two operators adding at once must not lose
 * one of the tokens) and written atomically; the running collector reads them on its
 * next SIGHUP. A new token is printed once, on stdout, and nowhere else. */
#include "agents_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "auth_tokens.h"
#include "config.h"
#include "tp_mem.h"
#include "validate.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static void usage(FILE *out) {
  fputs("usage:\n"
        "  tlsprobe-collector agents add NAME --config FILE\n"
        "      mint a bearer token for agent NAME (its agent.id), store its SHA-256 in\n"
        "      auth.tokens_file and print the token once on stdout; an agent may hold\n"
        "      several tokens (rotation)\n"
        "  tlsprobe-collector agents list --config FILE\n"
        "      NAME, TOKEN_ID (first 12 hex digits of the hash) and creation time\n"
        "  tlsprobe-collector agents revoke NAME [--token TOKEN_ID] --config FILE\n"
        "      remove NAME's tokens (or only one)\n"
        "  Then send SIGHUP to the running collector to apply the change.\n",
        out);
}

typedef struct agents_args {
  const char *verb, *name, *config, *token_id;
} agents_args;

static bool parse(int argc, char **argv, agents_args *a) {
  *a = (agents_args){0};
  if (argc < 1)
    return false;
  a->verb = argv[0];
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      a->config = argv[++i];
    else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
      a->token_id = argv[++i];
    else if (argv[i][0] != '-' && a->name == NULL)
      a->name = argv[i];
    else
      return false;
  }
  bool named = strcmp(a->verb, "add") == 0 || strcmp(a->verb, "revoke") == 0;
  if (a->config == NULL || (named != (a->name != NULL)) ||
      (a->token_id != NULL && strcmp(a->verb, "revoke") != 0))
    return false;
  return named || strcmp(a->verb, "list") == 0;
}

/* An exclusive lock beside the tokens file, held until the fd is closed. */
static int lock_tokens(const char *tokens_file) {
  char *path = tp_xasprintf("%s.lock", tokens_file);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || flock(fd, LOCK_EX) != 0) {
    fprintf(stderr, "tlsprobe-collector agents: cannot lock %s: %s\n", path, strerror(errno));
    if (fd >= 0)
      close(fd);
    fd = -1;
  }
  free(path);
  return fd;
}

static int add_token(tp_token_table *table, const char *file, const char *name) {
  char token[TP_TOKEN_HEX + 1], why[160], err[1024], id[TP_TOKEN_ID_HEX + 1];
  uint8_t hash[32];
  if (tp_wire_check_agent_id(name, why, sizeof(why)) != TP_E_OK) {
    fprintf(stderr, "tlsprobe-collector agents add: name \"%.64s\": %s (it is the agent's "
                    "agent.id)\n",
            name, why);
    return EXIT_USAGE;
  }
  if (tp_token_mint(token, hash) != TP_E_OK) {
    fprintf(stderr, "tlsprobe-collector agents add: the random number generator failed\n");
    return EXIT_RUNTIME;
  }
  if (tp_token_table_add(table, name, hash, (int64_t)time(NULL)) != TP_E_OK ||
      tp_token_table_save(table, file, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "tlsprobe-collector agents add: %s\n",
            tp_token_table_count(table) >= TP_TOKEN_MAX_ENTRIES ? "too many tokens" : err);
    return EXIT_RUNTIME;
  }
  tp_token_table_id(table, tp_token_table_count(table) - 1, id);
  printf("%s\n", token);
  if (fflush(stdout) != 0) {
    perror("tlsprobe-collector agents add: stdout");
    return EXIT_RUNTIME;
  }
  fprintf(stderr,
          "added token %s for agent %s to %s; it is printed above once and stored only as a "
          "hash. Send SIGHUP to the collector to accept it.\n",
          id, name, file);
  return 0;
}

static int list_tokens(const tp_token_table *table) {
  char id[TP_TOKEN_ID_HEX + 1];
  printf("%-32s %-12s %s\n", "NAME", "TOKEN_ID", "CREATED");
  for (size_t i = 0; i < tp_token_table_count(table); i++) {
    tp_token_table_id(table, i, id);
    printf("%-32s %-12s %s\n", tp_token_table_name(table, i), id,
           tp_token_table_created(table, i));
  }
  return fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
}

static int revoke_tokens(tp_token_table *table, const char *file, const char *name, const char *id) {
  char err[1024];
  size_t removed = 0;
  tp_token_table_revoke(table, name, id, &removed);
  if (removed == 0) {
    fprintf(stderr, "tlsprobe-collector agents revoke: agent %.128s has no token%s%.16s in %s\n",
            name, id ? " " : "", id ? id : "", file);
    return EXIT_RUNTIME;
  }
  if (tp_token_table_save(table, file, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "tlsprobe-collector agents revoke: %s\n", err);
    return EXIT_RUNTIME;
  }
  fprintf(stderr,
          "revoked %zu token(s) of agent %s in %s. Send SIGHUP to the collector to apply.\n",
          removed, name, file);
  return 0;
}

int tp_agents_command(int argc, char **argv) {
  agents_args a;
  char err[1024];
  tp_collector_config *cfg = NULL;
  tp_token_table *table = NULL;
  int status = EXIT_USAGE, lock = -1;
  if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  if (!parse(argc, argv, &a)) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (tp_collector_config_load(a.config, &cfg, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s\n", err);
    goto out;
  }
  const char *file = cfg->auth.tokens_file;
  if (file == NULL) {
    fprintf(stderr, "%s: auth.tokens_file is not set: the collector uses no bearer tokens\n",
            a.config);
    goto out;
  }
  status = EXIT_RUNTIME;
  bool changes = strcmp(a.verb, "list") != 0;
  if (changes && (lock = lock_tokens(file)) < 0)
    goto out;
  tp_err rc = tp_token_table_load(file, strcmp(a.verb, "add") == 0, &table, err, sizeof(err));
  if (rc != TP_E_OK) {
    fprintf(stderr, "%s\n", err);
    status = rc == TP_E_CONFIG ? EXIT_USAGE : EXIT_RUNTIME;
    goto out;
  }
  if (strcmp(a.verb, "add") == 0)
    status = add_token(table, file, a.name);
  else if (strcmp(a.verb, "list") == 0)
    status = list_tokens(table);
  else
    status = revoke_tokens(table, file, a.name, a.token_id);
out:
  if (lock >= 0)
    close(lock);
  tp_token_table_free(table);
  tp_collector_config_free(cfg);
  return status;
}
