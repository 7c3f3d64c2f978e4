/* profile_yaml.h - writes tp_profile_specs as a `profiles:` YAML document
 * (for `profiles show` and `profiles import-testssl`) through libyaml's
 * emitter, never by pasting text: every name, note and description -- some
 * come from imported, untrusted data -- is one scalar the emitter quotes and
 * escapes, so no value can end a line, start a comment or add a key. The
 * output loads back through agent/config.c unchanged. */
#ifndef TP_AGENT_PROFILE_YAML_H
#define TP_AGENT_PROFILE_YAML_H
#include <stdio.h>

#include "profile.h"
#include "tp_error.h"

typedef struct tp_profile_yaml tp_profile_yaml;

/* Starts a document with a top-level `profiles:` sequence on out (which the
 * caller keeps owning). On failure (TP_E_IO, message in err) *writer is
 * NULL and nothing needs closing. */
tp_err tp_profile_yaml_open(FILE *out, tp_profile_yaml **writer, char *err, size_t errlen);

/* Appends one profile: `description` (may be NULL) becomes its description:
 * key. Text that is not valid UTF-8 is written as tp_text_fit makes it. */
tp_err tp_profile_yaml_add(tp_profile_yaml *writer, const tp_profile_spec *spec,
                           const char *description, char *err, size_t errlen);

/* Ends the document, flushes it and frees the writer -- also after a failed
 * add, so every open has exactly one close. */
tp_err tp_profile_yaml_close(tp_profile_yaml *writer, char *err, size_t errlen);

#endif
