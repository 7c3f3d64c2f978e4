/* tp_yaml.h - loads a YAML file into a struct through a libcyaml schema and
 * turns failures into one precise message: "agent.yaml:14:3: <what is wrong>".
 *
 * libcyaml reports the problem and a backtrace with line/column through its
 * log callback; tp_yaml captures that into the error message. Semantic checks
 * done after loading (unknown profile name, bad duration...) locate the
 * offending node with tp_yaml_locate(), which re-reads the file with libyaml
 * and follows a path such as "profiles[2].versions[1]". */
#ifndef TP_YAML_H
#define TP_YAML_H
#include <cyaml/cyaml.h>
#include <stddef.h>

#include "tp_error.h"

/* A boolean field, strictly: true/false (and YAML 1.1's yes/no, on/off), any case.
 * libcyaml's own bool reads every string that is not a known "false" as true, so
 * `insecure_plaintext: nope` would switch plaintext on; this one refuses it with
 * "Invalid enumeration value" at its line. The member is a bool (pointer fields:
 * bool *), written as 0 or 1. */
extern const cyaml_strval_t tp_yaml_bool_strings[];
#define TP_YAML_BOOL_STRINGS 12
#define TP_YAML_FIELD_BOOL_PTR(key, flags, structure, member)                                      \
  CYAML_FIELD_ENUM_PTR(key, (flags) | CYAML_FLAG_STRICT, structure, member, tp_yaml_bool_strings, \
                       TP_YAML_BOOL_STRINGS)

/* Loads `path` with `schema` into *out (free with tp_yaml_free).
 * On failure returns TP_E_CONFIG (or TP_E_IO) and writes a message into err.
 * Messages of both functions here hold no control characters: those of
 * quoted values become '?'. */
tp_err tp_yaml_load(const char *path, const cyaml_schema_value_t *schema, void **out, char *err,
                    size_t errlen);
void tp_yaml_free(const cyaml_schema_value_t *schema, void *data);

/* Finds the node at `node_path` (keys joined by '.', sequence indices as [i])
 * and stores its 1-based line and column. Returns 0 if found; otherwise -1
 * and the position of the deepest parent found (1:1 at worst). */
int tp_yaml_locate(const char *file, const char *node_path, unsigned *line, unsigned *column);

/* Formats "file:line:col: <message>" for the node at node_path into err. */
void tp_yaml_error_at(char *err, size_t errlen, const char *file, const char *node_path,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
