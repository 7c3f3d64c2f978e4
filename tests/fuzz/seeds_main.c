/* seeds_main.c - the seed runner linked with each fuzz target (fuzz_*_seeds):
 * runs the target over every file of its corpus with the normal compiler, so
 * the seeds (and any crash input added to them) are regression tests in every
 * build. What a seed's name promises is the target's to check
 * (tp_fuzz_seed_run); names the fuzzer chose only have to run without breaking
 * an invariant. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_seed.h"

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
  if (tp_fuzz_seed_run(name, buf, n) != 0)
    return 1;
  printf("ok   %s: %zu bytes\n", name, n);
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
  tp_fuzz_seed_cleanup();
  if (files == 0) {
    fprintf(stderr, "no seed files found\n");
    return 1;
  }
  printf("%d seed(s), %d failure(s)\n", files, failures);
  return failures ? 1 : 0;
}
