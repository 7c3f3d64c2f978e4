/* profile_yaml.c - tp_profile_spec -> YAML events -> libyaml's emitter (see
 * profile_yaml.h). Free text is emitted double-quoted (the emitter escapes
 * CR, LF, NEL, LS/PS, quotes and backslashes, YAML 1.1 §5.7), GnuTLS
 * keywords and numbers as plain scalars where YAML allows (the emitter
 * quotes them itself when it does not). */
#include "profile_yaml.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "tp_mem.h"
#include "tp_text.h"

struct tp_profile_yaml {
  yaml_emitter_t emitter;
  bool failed; /* an event was lost: the document can no longer be valid */
};

/* How a value is written: free text always double-quoted; a keyword plain
 * when YAML 1.1 would read it back as that same string (word_style); a
 * number we formatted ourselves always plain. */
typedef enum { TEXT, WORD, NUMBER } value_kind;

/* libyaml's emitter checks YAML syntax only, not YAML 1.1's implicit types:
 * a plain NULL (a GnuTLS cipher name) or off would read back as null or
 * false in every other YAML reader. So a keyword is plain only if it starts
 * with a letter, uses keyword characters and is no reserved word. */
static bool plain_is_string(const char *s) {
  static const char *const reserved[] = {"null", "true", "false", "yes", "no", "on", "off",
                                         "y", "n"};
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
    return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_' || *p == '.' || *p == '/'))
      return false;
  for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
    if (strcasecmp(s, reserved[i]) == 0)
      return false;
  return true;
}

static yaml_scalar_style_t style_of(const char *s, value_kind kind) {
  if (kind == NUMBER || (kind == WORD && plain_is_string(s)))
    return YAML_PLAIN_SCALAR_STYLE;
  return YAML_DOUBLE_QUOTED_SCALAR_STYLE;
}

/* The emitter owns the event from here on, and frees it even on failure
 * (yaml.h, yaml_emitter_emit). */
static bool emit(yaml_emitter_t *e, yaml_event_t *ev) {
  return yaml_emitter_emit(e, ev) == 1;
}

static bool scalar_once(yaml_emitter_t *e, const char *s, size_t n, yaml_scalar_style_t style) {
  yaml_event_t ev;
  if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n, 1, 1, style))
    return false;
  return emit(e, &ev);
}

/* libyaml refuses text that is not UTF-8 (and fails on no memory, which
 * tp_xmalloc's policy makes fatal elsewhere anyway): such text -- imported
 * names can be anything -- is written as tp_text_fit escapes it. */
static bool scalar(yaml_emitter_t *e, const char *s, value_kind kind) {
  yaml_scalar_style_t style = style_of(s, kind);
  size_t n = strlen(s);
  if (n > INT_MAX / 8)
    return false;
  yaml_event_t probe;
  if (yaml_scalar_event_initialize(&probe, NULL, NULL, (yaml_char_t *)s, (int)n, 1, 1, style))
    return emit(e, &probe);
  char *fitted = tp_text_fit(s, n, 4 * n + sizeof(TP_TEXT_CUT_MARK));
  bool ok = scalar_once(e, fitted, strlen(fitted), style);
  free(fitted);
  return ok;
}

static bool mapping_start(yaml_emitter_t *e, yaml_mapping_style_t style) {
  yaml_event_t ev;
  return yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, style) && emit(e, &ev);
}

static bool mapping_end(yaml_emitter_t *e) {
  yaml_event_t ev;
  return yaml_mapping_end_event_initialize(&ev) && emit(e, &ev);
}

static bool sequence_start(yaml_emitter_t *e, yaml_sequence_style_t style) {
  yaml_event_t ev;
  return yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, style) && emit(e, &ev);
}

static bool sequence_end(yaml_emitter_t *e) {
  yaml_event_t ev;
  return yaml_sequence_end_event_initialize(&ev) && emit(e, &ev);
}

/* key: "value" (nothing when value is NULL) */
static bool text_field(yaml_emitter_t *e, const char *key, const char *value,
                       value_kind style) {
  if (value == NULL)
    return true;
  return scalar(e, key, WORD) && scalar(e, value, style);
}

/* key: [a, b, ...] (nothing when the list is NULL) */
static bool list_field(yaml_emitter_t *e, const char *key, const char *const *items,
                       value_kind style) {
  if (items == NULL)
    return true;
  if (!scalar(e, key, WORD) || !sequence_start(e, YAML_FLOW_SEQUENCE_STYLE))
    return false;
  for (size_t i = 0; items[i] != NULL; i++)
    if (!scalar(e, items[i], style))
      return false;
  return sequence_end(e);
}

static bool versions_field(yaml_emitter_t *e, const char *key, unsigned mask) {
  static const char *const names[] = {"TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"};
  const char *v[5] = {NULL};
  size_t n = 0;
  if (mask == 0)
    return true;
  for (size_t i = 0; i < 4; i++)
    if (mask & (1u << i))
      v[n++] = names[i];
  return list_field(e, key, v, WORD);
}

static bool uint_field(yaml_emitter_t *e, const char *key, unsigned value) {
  char text[16];
  if (value == 0)
    return true;
  snprintf(text, sizeof(text), "%u", value);
  return scalar(e, key, WORD) && scalar(e, text, NUMBER);
}

/* IANA code points as 0xHHLL, the spelling of the registries. */
static bool ids_field(yaml_emitter_t *e, const char *key, const uint16_t *ids, size_t n) {
  if (!scalar(e, key, WORD) || !sequence_start(e, YAML_FLOW_SEQUENCE_STYLE))
    return false;
  for (size_t i = 0; i < n; i++) {
    char text[8];
    snprintf(text, sizeof(text), "0x%04x", ids[i]);
    if (!scalar(e, text, NUMBER))
      return false;
  }
  return sequence_end(e);
}

static bool recorded_offer(yaml_emitter_t *e, const tp_profile_spec *spec) {
  const tp_hello_offer *o = &spec->recorded_offer;
  if (!spec->has_recorded_offer)
    return true;
  return scalar(e, "recorded_offer", WORD) && mapping_start(e, YAML_BLOCK_MAPPING_STYLE) &&
         versions_field(e, "versions", o->versions) &&
         ids_field(e, "cipher_suites", o->cipher_suites, o->n_cipher_suites) &&
         ids_field(e, "groups", o->groups, o->n_groups) &&
         ids_field(e, "signature_algorithms", o->signature_algorithms,
                   o->n_signature_algorithms) &&
         mapping_end(e);
}

static bool http(yaml_emitter_t *e, const tp_http_spec *h) {
  if (h->method == NULL)
    return true;
  return scalar(e, "http", WORD) && mapping_start(e, YAML_FLOW_MAPPING_STYLE) &&
         text_field(e, "method", h->method, WORD) && text_field(e, "path", h->path, TEXT) &&
         text_field(e, "host", h->host, TEXT) && mapping_end(e);
}

static bool early_data(yaml_emitter_t *e, const tp_early_data_spec *d) {
  if (d->raw == NULL)
    return true;
  /* the loader reads the payload as a string, so it holds no NUL */
  char *text = tp_xstrndup((const char *)d->raw, d->raw_len);
  bool ok = scalar(e, "early_data", WORD) && mapping_start(e, YAML_BLOCK_MAPPING_STYLE) &&
            text_field(e, "data", text, TEXT) &&
            text_field(e, "expect_reply", d->expect_reply ? "yes" : "no", TEXT) && mapping_end(e);
  free(text);
  return ok;
}

static const char *sni_value(const tp_profile_spec *spec) {
  if (spec->sni_mode == TP_SNI_OFF)
    return "off";
  if (spec->sni_mode == TP_SNI_OVERRIDE)
    return spec->sni_name;
  return NULL; /* the default */
}

static const char *mode_value(tp_probe_mode mode) {
  switch (mode) {
  case TP_MODE_RESUMPTION:
    return "resumption";
  case TP_MODE_EARLY_DATA:
    return "early_data";
  default:
    return NULL; /* handshake, the default */
  }
}

static bool tls_fields(yaml_emitter_t *e, const tp_profile_spec *s) {
  return versions_field(e, "versions", s->versions) &&
         text_field(e, "priority", s->priority, TEXT) &&
         list_field(e, "ciphers", s->ciphers, WORD) &&
         list_field(e, "key_exchanges", s->key_exchanges, WORD) &&
         list_field(e, "macs", s->macs, WORD) && list_field(e, "groups", s->groups, WORD) &&
         list_field(e, "signature_algorithms", s->signature_algorithms, WORD) &&
         list_field(e, "alpn", s->alpn, TEXT);
}

static bool other_fields(yaml_emitter_t *e, const tp_profile_spec *s) {
  return text_field(e, "trust", s->trust, TEXT) &&
         text_field(e, "intermediates", s->intermediates, TEXT) &&
         text_field(e, "client_certificate", s->client_certificate, TEXT) &&
         text_field(e, "client_key", s->client_key, TEXT) &&
         text_field(e, "sni", sni_value(s), TEXT) && text_field(e, "mode", mode_value(s->mode), WORD) &&
         http(e, &s->http) && early_data(e, &s->early_data) &&
         text_field(e, "aia_fetch", s->aia_fetch_off ? "off" : NULL, TEXT) &&
         uint_field(e, "min_dh_bits", s->min_dh_bits) &&
         uint_field(e, "max_dh_bits", s->max_dh_bits) && recorded_offer(e, s) &&
         text_field(e, "fidelity_note", s->fidelity_note, TEXT);
}

static void emitter_error(const yaml_emitter_t *e, char *err, size_t errlen) {
  snprintf(err, errlen, "cannot write YAML: %s",
           e->problem != NULL ? e->problem : "out of memory or write error");
}

tp_err tp_profile_yaml_open(FILE *out, tp_profile_yaml **writer, char *err, size_t errlen) {
  tp_profile_yaml *w = tp_xcalloc(1, sizeof(*w));
  yaml_event_t ev;
  *writer = NULL;
  if (!yaml_emitter_initialize(&w->emitter)) {
    snprintf(err, errlen, "cannot write YAML: out of memory");
    free(w);
    return TP_E_IO;
  }
  yaml_emitter_set_output_file(&w->emitter, out);
  yaml_emitter_set_unicode(&w->emitter, 1); /* names stay readable */
  yaml_emitter_set_width(&w->emitter, 100);
  bool ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && emit(&w->emitter, &ev) &&
            yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
            emit(&w->emitter, &ev) && mapping_start(&w->emitter, YAML_BLOCK_MAPPING_STYLE) &&
            scalar(&w->emitter, "profiles", WORD) &&
            sequence_start(&w->emitter, YAML_BLOCK_SEQUENCE_STYLE);
  if (!ok) {
    emitter_error(&w->emitter, err, errlen);
    yaml_emitter_delete(&w->emitter);
    free(w);
    return TP_E_IO;
  }
  *writer = w;
  return TP_E_OK;
}

tp_err tp_profile_yaml_add(tp_profile_yaml *w, const tp_profile_spec *spec,
                           const char *description, char *err, size_t errlen) {
  yaml_emitter_t *e = &w->emitter;
  if (w->failed) {
    snprintf(err, errlen, "cannot write YAML: an earlier profile failed");
    return TP_E_IO;
  }
  bool ok = mapping_start(e, YAML_BLOCK_MAPPING_STYLE) && text_field(e, "name", spec->name, TEXT) &&
            text_field(e, "description", description, TEXT) && tls_fields(e, spec) &&
            other_fields(e, spec) && mapping_end(e);
  if (!ok) {
    w->failed = true;
    emitter_error(e, err, errlen);
    return TP_E_IO;
  }
  return TP_E_OK;
}

tp_err tp_profile_yaml_close(tp_profile_yaml *w, char *err, size_t errlen) {
  yaml_emitter_t *e = &w->emitter;
  yaml_event_t ev;
  tp_err rc = TP_E_OK;
  bool ok = !w->failed && sequence_end(e) && mapping_end(e) &&
            yaml_document_end_event_initialize(&ev, 1) && emit(e, &ev) &&
            yaml_stream_end_event_initialize(&ev) && emit(e, &ev) && yaml_emitter_flush(e);
  if (!ok) {
    emitter_error(e, err, errlen);
    rc = TP_E_IO;
  }
  yaml_emitter_delete(e);
  free(w);
  return rc;
}
