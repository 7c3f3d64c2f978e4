/* fuzz_file.h - a private file holding one fuzz input, for the loaders that
 * take a path (agent.yaml, collector.yaml, testssl.sh data). The loaders open
 * the file several times (libcyaml, then libyaml again to place an error), so
 * the bytes must stay readable by name for the whole call. */
#ifndef TP_FUZZ_FILE_H
#define TP_FUZZ_FILE_H
#include <stddef.h>
#include <stdint.h>

/* Independent files: a target that writes a loader's output and loads it
 * again needs a second one. */
#define TP_FUZZ_FILE_SLOTS 2

/* Replaces the contents of file `slot` (0..TP_FUZZ_FILE_SLOTS-1) with
 * data[0..size) and returns its path (static, valid until tp_fuzz_file_cleanup).
 * Aborts if the file cannot be created or written: the target would
 * otherwise fuzz the error path of a missing file only. */
const char *tp_fuzz_file(unsigned slot, const void *data, size_t size);
/* Closes (and, for a /tmp fallback, removes) every file. */
void tp_fuzz_file_cleanup(void);

/* What every error message of these loaders must be: non-empty, naming
 * `path` first (so the operator knows which file), one line without control
 * characters (a value quoted from a hostile file must not drive the
 * terminal it is printed on). Returns NULL, or which rule is broken. */
const char *tp_fuzz_message_problem(const char *path, const char *message);

/* The seed naming rule of the file-based targets: a seed named ok-* must be
 * accepted, reject-* refused, any other only run. Returns 1 (after a FAIL line
 * naming what happened, in the words `accepted_word` / `refused_word`) when the
 * verdict `accepted` breaks the rule, else 0. */
int tp_fuzz_seed_verdict(const char *name, int accepted, const char *accepted_word,
                         const char *refused_word);

#endif
