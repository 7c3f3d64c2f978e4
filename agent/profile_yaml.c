/* profile_yaml.c - tp_profile_spec -> YAML text (see profile_yaml.h). */
#include "profile_yaml.h"

#include <string.h>

/* A YAML double-quoted scalar (YAML 1.1 §5.7 escapes). */
static void scalar(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(out, "\\%c", ch);
    else if (ch == '\n')
      fputs("\\n", out);
    else if (ch == '\t')
      fputs("\\t", out);
    else if (ch < 0x20 || ch == 0x7f)
      fprintf(out, "\\x%02x", ch);
    else
      fputc(ch, out);
  }
  fputc('"', out);
}

static void list(FILE *out, const char *key, const char *const *items) {
  if (items == NULL)
    return;
  fprintf(out, "    %s: [", key);
  for (size_t i = 0; items[i] != NULL; i++) {
    if (i)
      fputs(", ", out);
    scalar(out, items[i]);
  }
  fputs("]\n", out);
}

static void field(FILE *out, const char *key, const char *value) {
  if (value == NULL)
    return;
  fprintf(out, "    %s: ", key);
  scalar(out, value);
  fputc('\n', out);
}

/* "  # " lines of at most ~96 columns, breaking at spaces; control
 * characters become spaces so a comment never ends early. */
static void comment_lines(FILE *out, const char *text) {
  const size_t width = 92;
  while (*text) {
    size_t n = strlen(text);
    if (n > width) {
      n = width;
      while (n > 0 && text[n] != ' ')
        n--;
      if (n == 0)
        n = width;
    }
    fputs("  #", out);
    if (n > 0)
      fputc(' ', out);
    for (size_t i = 0; i < n; i++)
      fputc((unsigned char)text[i] < 0x20 ? ' ' : text[i], out);
    fputc('\n', out);
    text += n;
    while (*text == ' ')
      text++;
  }
}

void tp_profile_yaml_write(FILE *out, const tp_profile_spec *spec, const char *comment) {
  static const char *const version_names[] = {"TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"};
  if (comment != NULL)
    comment_lines(out, comment);
  fputs("  - name: ", out);
  scalar(out, spec->name);
  fputc('\n', out);
  if (spec->versions != 0) {
    const char *v[5] = {NULL};
    size_t n = 0;
    for (size_t i = 0; i < 4; i++)
      if (spec->versions & (1u << i))
        v[n++] = version_names[i];
    list(out, "versions", v);
  }
  field(out, "priority", spec->priority);
  list(out, "ciphers", spec->ciphers);
  list(out, "key_exchanges", spec->key_exchanges);
  list(out, "macs", spec->macs);
  list(out, "groups", spec->groups);
  list(out, "signature_algorithms", spec->signature_algorithms);
  list(out, "alpn", spec->alpn);
  field(out, "trust", spec->trust);
  field(out, "intermediates", spec->intermediates);
  field(out, "client_certificate", spec->client_certificate);
  field(out, "client_key", spec->client_key);
  if (spec->sni_mode == TP_SNI_OFF)
    fputs("    sni: \"off\"\n", out);
  else if (spec->sni_mode == TP_SNI_OVERRIDE)
    field(out, "sni", spec->sni_name);
  if (spec->mode == TP_MODE_RESUMPTION)
    fputs("    mode: \"resumption\"\n", out);
  else if (spec->mode == TP_MODE_EARLY_DATA)
    fputs("    mode: \"early_data\"\n", out);
  if (spec->http.method != NULL) {
    fputs("    http:\n  ", out);
    field(out, "method", spec->http.method);
    if (spec->http.path != NULL) {
      fputs("  ", out);
      field(out, "path", spec->http.path);
    }
    if (spec->http.host != NULL) {
      fputs("  ", out);
      field(out, "host", spec->http.host);
    }
  }
  field(out, "fidelity_note", spec->fidelity_note);
}
