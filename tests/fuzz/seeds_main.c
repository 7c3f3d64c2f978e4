/* seeds_main.c - fuzz_ingest_seeds: runs the fuzz entry point over every file of
 * the seed corpus with the normal compiler, so the seeds (and any crash input
 * added to them) are regression tests in every build. A seed named ok-* must be
 * stored (200), reject-* must be refused (400); other names (inputs the fuzzer
 * found) only have to run without breaking an invariant. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_ingest.h"

#define MAX_SEED (1024 * 1024)

static int run_file(const char *dir, const char *name) {
  char path[4096];
  static unsigned char buf[MAX_SEED];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return 1;
  }
  size_t n = fread(buf, 1, sizeof(buf), f);
  int err = ferror(f) || !feof(f);
  fclose(f);
  if (err) {
    fprintf(stderr, "%s: unreadable or larger than %d bytes\n", path, MAX_SEED);
    return 1;
  }
  int want = strncmp(name, "ok-", 3) == 0 ? 200 : strncmp(name, "reject-", 7) == 0 ? 400 : 0;
  int got = tp_fuzz_ingest_one(buf, n);
  if (want != 0 && got != want) {
    fprintf(stderr, "FAIL %s: status %d, want %d\n", name, got, want);
    return 1;
  }
  printf("ok   %s: %zu bytes, status %d\n", name, n, got);
  return 0;
}

int main(int argc, char **argv) {
  int failures = 0, files = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    struct dirent **entries = NULL;
    int n = scandir(argv[i], &entries, NULL, alphasort); /* sorted: stable output */
    if (n < 0) {
      perror(argv[i]);
      return 1;
    }
    for (int k = 0; k < n; k++) {
      if (entries[k]->d_name[0] != '.') {
        files++;
        failures += run_file(argv[i], entries[k]->d_name);
      }
      free(entries[k]);
    }
    free(entries);
  }
  tp_fuzz_ingest_cleanup();
  if (files == 0) {
    fprintf(stderr, "no seed files found\n");
    return 1;
  }
  printf("%d seed(s), %d failure(s)\n", files, failures);
  return failures ? 1 : 0;
}
