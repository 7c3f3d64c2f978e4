/* fuzz_file.c - see fuzz_file.h. A memfd reached through /proc/self/fd/N:
 * no file system write per input, nothing left behind when the fuzzer is
 * killed, and private to this process. Where memfd_create or /proc is
 * missing, a mkstemp file under /tmp is used instead and removed at cleanup. */
#include "fuzz_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct fuzz_file {
  int fd; /* -1 until first use */
  int unlink_at_cleanup;
  char path[64];
} fuzz_file;

static fuzz_file g_files[TP_FUZZ_FILE_SLOTS] = {{-1, 0, ""}, {-1, 0, ""}};

static void die(const char *what) {
  perror(what);
  abort();
}

/* memfd first; the /proc path must really open, or the loaders would see
 * "cannot open" for every input. */
static void open_slot(fuzz_file *f) {
  f->fd = memfd_create("tp-fuzz-input", MFD_CLOEXEC);
  if (f->fd >= 0) {
    snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
    if (access(f->path, R_OK) == 0)
      return;
    close(f->fd);
  }
  snprintf(f->path, sizeof(f->path), "/tmp/tp-fuzz-input-XXXXXX");
  f->fd = mkstemp(f->path);
  if (f->fd < 0)
    die("tp_fuzz_file: mkstemp");
  f->unlink_at_cleanup = 1;
}

const char *tp_fuzz_file(unsigned slot, const void *data, size_t size) {
  if (slot >= TP_FUZZ_FILE_SLOTS)
    abort();
  fuzz_file *f = &g_files[slot];
  if (f->fd < 0)
    open_slot(f);
  if (ftruncate(f->fd, 0) != 0)
    die("tp_fuzz_file: ftruncate");
  for (size_t done = 0; done < size;) {
    ssize_t n = pwrite(f->fd, (const char *)data + done, size - done, (off_t)done);
    if (n <= 0)
      die("tp_fuzz_file: pwrite");
    done += (size_t)n;
  }
  return f->path;
}

void tp_fuzz_file_cleanup(void) {
  for (unsigned i = 0; i < TP_FUZZ_FILE_SLOTS; i++) {
    fuzz_file *f = &g_files[i];
    if (f->fd < 0)
      continue;
    if (f->unlink_at_cleanup && unlink(f->path) != 0)
      perror(f->path);
    close(f->fd);
    f->fd = -1;
  }
}

const char *tp_fuzz_message_problem(const char *path, const char *message) {
  size_t n = strlen(path);
  if (message[0] == '\0')
    return "empty error message";
  if (strncmp(message, path, n) != 0 || message[n] != ':')
    return "error message does not start with \"path:\"";
  for (const unsigned char *p = (const unsigned char *)message; *p != '\0'; p++)
    if (*p < 0x20 || *p == 0x7f)
      return "control character in an error message";
  return NULL;
}

int tp_fuzz_seed_verdict(const char *name, int accepted, const char *accepted_word,
                         const char *refused_word) {
  int want = strncmp(name, "ok-", 3) == 0 ? 1 : strncmp(name, "reject-", 7) == 0 ? 0 : -1;
  if (want < 0 || accepted == want)
    return 0;
  fprintf(stderr, "FAIL %s: %s, want %s\n", name, accepted ? accepted_word : refused_word,
          want ? accepted_word : refused_word);
  return 1;
}
