/* fuzz_testssl.c - libFuzzer target for `tlsprobe-agent profiles
 * import-testssl FILE` (agent/testssl_import.c): the input is written to a
 * private file and imported with tp_testssl_import, which parses the bash
 * arrays as data, maps every client from its recorded ClientHello (hex,
 * parsed by probes/profiles/hello.c), asks GnuTLS for the ClientHello of each
 * mapped profile, and writes the profiles as YAML.
 *
 * An imported file is someone else's data, so besides sanitizer findings it
 * aborts when the importer's promises break: a refused file is TP_E_CONFIG
 * with a one-line "path:line: ..." message; what it writes always loads as
 * the `profiles:` of an agent.yaml (tp_agent_config_load, the same
 * round trip as tests/unit/test_testssl_import.c); and nothing from the
 * file reaches the diagnostics unescaped (one line per skipped client, no
 * other control characters). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/config.h" /* collector/ has a config.h too */
#include "fuzz_file.h"
#include "fuzz_seed.h"
#include "testssl_import.h"

/* The agent.yaml around the imported `profiles:`; the job names a built-in,
 * so it loads whatever the imported profiles are called. */
static const char agent_head[] = "agent: {id: fuzz}\n"
                                 "collector: {url: 'http://127.0.0.1:1/v1/results', "
                                 "insecure_plaintext: true}\n"
                                 "spool: {memory: true}\n"
                                 "targets: [{name: t, host: h, port: 443}]\n"
                                 "jobs: [{targets: [t], profiles: [modern], interval: 5s}]\n";

static void check(int ok, const char *what, const char *detail) {
  if (!ok) {
    fprintf(stderr, "fuzz_testssl: invariant broken: %s\n  %s\n", what, detail ? detail : "");
    abort();
  }
}

/* Diagnostics are lines of fitted text: '\n' ends each, nothing else below
 * 0x20 or DEL. */
static void check_diag(const char *diag, size_t len) {
  check(strlen(diag) == len, "a NUL byte in the diagnostics", NULL);
  check(len == 0 || diag[len - 1] == '\n', "diagnostics end with a newline", diag);
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)diag[i];
    check(ch == '\n' || (ch >= 0x20 && ch != 0x7f), "control character in the diagnostics",
          diag);
  }
}

/* Loads what the import wrote; it must be a valid agent.yaml. */
static void load_back(const char *yaml, size_t len) {
  char err[1024] = "";
  tp_agent_config *c = NULL;
  const char *path = tp_fuzz_file(1, yaml, len);
  if (tp_agent_config_load(path, &c, err, sizeof(err)) != TP_E_OK) {
    fprintf(stderr, "%s\n--- written:\n%s", err, yaml);
    check(0, "imported profiles load as agent.yaml", err);
  }
  tp_agent_config_free(c);
}

/* Returns 1 if the input imported, 0 if it was refused. */
static int import(const uint8_t *data, size_t size) {
  const char *path = tp_fuzz_file(0, data, size);
  char *yaml = NULL, *diag = NULL, err[1024] = "";
  size_t yaml_len = 0, diag_len = 0;
  FILE *out = open_memstream(&yaml, &yaml_len);
  FILE *diag_fp = open_memstream(&diag, &diag_len);
  check(out != NULL && diag_fp != NULL, "open_memstream", NULL);
  check(fputs(agent_head, out) >= 0, "write the head", NULL);
  tp_err rc = tp_testssl_import(path, false, out, diag_fp, err, sizeof(err));
  check(fclose(out) == 0 && fclose(diag_fp) == 0, "close the memstreams", NULL);
  check_diag(diag, diag_len);
  if (rc == TP_E_OK) {
    load_back(yaml, yaml_len);
  } else {
    check(rc == TP_E_CONFIG, "a refused file is TP_E_CONFIG", err);
    const char *problem = tp_fuzz_message_problem(path, err);
    check(problem == NULL, problem, err);
  }
  free(yaml);
  free(diag);
  return rc == TP_E_OK;
}

/* Seeds named ok-* must be accepted, reject-* refused (fuzz_file.h). */
int tp_fuzz_seed_run(const char *name, const uint8_t *data, size_t size) {
  return tp_fuzz_seed_verdict(name, import(data, size), "imported", "refused");
}

void tp_fuzz_seed_cleanup(void) {
  tp_fuzz_file_cleanup();
}

/* The libFuzzer entry point (unused in the seed runner). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)import(data, size);
  return 0;
}
