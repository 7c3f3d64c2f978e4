/* config_profile.c - agent.yaml `profiles:` -> tp_profile_spec.
 *
 * Rules (README "Client profiles"):
 *  - `base: NAME` starts from a built-in profile; every field given here
 *    replaces the built-in's (lists are replaced, not merged).
 *  - A configured profile may reuse a built-in's name: it shadows the
 *    built-in (the file is explicit, and built-ins added later must never
 *    break an existing config). `base:` always means the built-in.
 *  - `priority:` is a complete GnuTLS string, so it excludes every structured
 *    TLS field and `base:`.
 * Every message names the file, line and column of the offending node. */
#include "config_profile.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "priority.h"
#include "profile_library.h"
#include "tp_mem.h"
#include "tp_yaml.h"

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)

static const cyaml_schema_value_t name_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 255),
};

static const cyaml_schema_field_t http_fields[] = {
    CYAML_FIELD_STRING_PTR("method", CYAML_FLAG_POINTER, tp__doc_http, method, 1, 16),
    CYAML_FIELD_STRING_PTR("path", OPT, tp__doc_http, path, 1, 2048),
    CYAML_FIELD_STRING_PTR("host", OPT, tp__doc_http, host, 1, 255),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t early_data_fields[] = {
    CYAML_FIELD_STRING_PTR("data", CYAML_FLAG_POINTER, tp__doc_early_data, data, 1, 16384),
    CYAML_FIELD_STRING_PTR("expect_reply", OPT, tp__doc_early_data, expect_reply, 1, 8),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t code_point_entry = {
    CYAML_VALUE_UINT(CYAML_FLAG_DEFAULT, uint16_t),
};

#define CODE_POINTS(key, max) \
  CYAML_FIELD_SEQUENCE(#key, OPT, tp__doc_recorded_offer, key, &code_point_entry, 0, max)

static const cyaml_schema_field_t recorded_offer_fields[] = {
    CYAML_FIELD_SEQUENCE("versions", OPT, tp__doc_recorded_offer, versions, &name_entry, 0, 4),
    CODE_POINTS(cipher_suites, TP_HELLO_MAX_SUITES),
    CODE_POINTS(groups, TP_HELLO_MAX_GROUPS),
    CODE_POINTS(signature_algorithms, TP_HELLO_MAX_SIGALGS),
    CYAML_FIELD_END,
};

#define LIST_FIELD(key, max) \
  CYAML_FIELD_SEQUENCE(#key, OPT, tp__doc_profile, key, &name_entry, 1, max)

static const cyaml_schema_field_t profile_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, tp__doc_profile, name, 1, 128),
    CYAML_FIELD_STRING_PTR("description", OPT, tp__doc_profile, description, 1,
                           TP_AGENT_MAX_DESCRIPTION),
    CYAML_FIELD_STRING_PTR("base", OPT, tp__doc_profile, base, 1, 128),
    LIST_FIELD(versions, 4),
    CYAML_FIELD_STRING_PTR("trust", OPT, tp__doc_profile, trust, 1, 4096),
    CYAML_FIELD_STRING_PTR("intermediates", OPT, tp__doc_profile, intermediates, 1, 4096),
    CYAML_FIELD_STRING_PTR("priority", OPT, tp__doc_profile, priority, 1, 4096),
    LIST_FIELD(ciphers, 64),
    LIST_FIELD(key_exchanges, 16),
    LIST_FIELD(macs, 16),
    LIST_FIELD(groups, 32),
    LIST_FIELD(signature_algorithms, 64),
    LIST_FIELD(alpn, TP_AGENT_MAX_ALPN),
    CYAML_FIELD_STRING_PTR("client_certificate", OPT, tp__doc_profile, client_certificate, 1,
                           4096),
    CYAML_FIELD_STRING_PTR("client_key", OPT, tp__doc_profile, client_key, 1, 4096),
    CYAML_FIELD_STRING_PTR("sni", OPT, tp__doc_profile, sni, 1, 255),
    CYAML_FIELD_STRING_PTR("ocsp_status_request", OPT, tp__doc_profile, ocsp_status_request, 1,
                           8),
    CYAML_FIELD_STRING_PTR("mode", OPT, tp__doc_profile, mode, 1, 32),
    CYAML_FIELD_MAPPING_PTR("http", OPT, tp__doc_profile, http, http_fields),
    CYAML_FIELD_MAPPING_PTR("early_data", OPT, tp__doc_profile, early_data, early_data_fields),
    CYAML_FIELD_STRING_PTR("aia_fetch", OPT, tp__doc_profile, aia_fetch, 1, 8),
    CYAML_FIELD_UINT("min_dh_bits", CYAML_FLAG_OPTIONAL, tp__doc_profile, min_dh_bits),
    CYAML_FIELD_UINT("max_dh_bits", CYAML_FLAG_OPTIONAL, tp__doc_profile, max_dh_bits),
    CYAML_FIELD_MAPPING_PTR("recorded_offer", OPT, tp__doc_profile, recorded_offer,
                            recorded_offer_fields),
    CYAML_FIELD_STRING_PTR("fidelity_note", OPT, tp__doc_profile, fidelity_note, 1, 4096),
    CYAML_FIELD_END,
};

const cyaml_schema_value_t tp__profile_entry_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, tp__doc_profile, profile_fields),
};

/* Everything a check needs to report where it is. */
typedef struct {
  tp_agent_config *c;
  size_t index; /* into profiles[] of the document */
  const tp__doc_profile *doc;
  char *err;
  size_t errlen;
} ctx;

#define FAIL_AT(x, field, ...)                                                             \
  do {                                                                                     \
    char node_[96];                                                                        \
    snprintf(node_, sizeof(node_), "profiles[%zu].%s", (x)->index, (field));               \
    char msg_[768];                                                                        \
    snprintf(msg_, sizeof(msg_), __VA_ARGS__);                                             \
    tp_yaml_error_at((x)->err, (x)->errlen, (x)->c->path, node_, "profile \"%s\": %s",     \
                     (x)->doc->name, msg_);                                                \
    return TP_E_CONFIG;                                                                    \
  } while (0)

static bool has_ctl_or_space(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || *s == 0x7f)
      return true;
  return false;
}

/* A validated, canonical, NULL-terminated copy of one name list. */
static tp_err name_list(ctx *x, tp_agent_profile_config *pc, const char *key, tp_priority_dim dim,
                        char **items, unsigned n, const char *const **out) {
  if (items == NULL)
    return TP_E_OK;
  const char **list = tp_xcalloc(n + 1, sizeof(char *));
  size_t slot = 0;
  while (pc->lists[slot] != NULL)
    slot++;
  pc->lists[slot] = list;
  for (unsigned i = 0; i < n; i++) {
    char field[64];
    snprintf(field, sizeof(field), "%s[%u]", key, i);
    const char *canon = tp_priority_canonical(dim, items[i]);
    if (canon == NULL) {
      char known[640];
      tp_priority_known(dim, known, sizeof(known));
      FAIL_AT(x, field, "unknown %s \"%s\" (known: %s)", tp_priority_dim_name(dim), items[i],
              known);
    }
    for (unsigned j = 0; j < i; j++)
      if (strcmp(list[j], canon) == 0)
        FAIL_AT(x, field, "%s \"%s\" is listed twice", tp_priority_dim_name(dim), items[i]);
    list[i] = canon;
  }
  *out = list;
  return TP_E_OK;
}

static tp_err check_versions(ctx *x, tp_profile_spec *spec) {
  const tp__doc_profile *d = x->doc;
  if (d->versions == NULL)
    return TP_E_OK;
  spec->versions = 0;
  for (unsigned v = 0; v < d->versions_count; v++) {
    char field[32];
    snprintf(field, sizeof(field), "versions[%u]", v);
    unsigned bit = tp_tls_version_from_name(d->versions[v]);
    if (bit == 0)
      FAIL_AT(x, field,
              "unknown TLS version \"%s\" (known: %s; SSL 3.0 is not available in GnuTLS)",
              d->versions[v], tp_tls_version_names());
    spec->versions |= bit;
  }
  return TP_E_OK;
}

/* `priority:` decides versions and algorithms itself; mixing it with the
 * structured fields would silently drop one of the two. */
static tp_err check_priority_exclusive(ctx *x) {
  const tp__doc_profile *d = x->doc;
  if (d->priority == NULL)
    return TP_E_OK;
  static const char *const names[] = {"versions", "ciphers", "key_exchanges", "macs",
                                      "groups", "signature_algorithms", "base"};
  const void *given[] = {d->versions, d->ciphers, d->key_exchanges, d->macs,
                         d->groups, d->signature_algorithms, d->base};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (given[i] != NULL)
      FAIL_AT(x, "priority",
              "\"priority\" (a raw GnuTLS string) cannot be combined with \"%s\"; express %s "
              "inside the priority string, or drop \"priority\" and use the structured fields",
              names[i], i == 6 ? "the built-in's settings" : "it");
  }
  return TP_E_OK;
}

static tp_err check_sni(ctx *x, tp_profile_spec *spec) {
  const char *sni = x->doc->sni;
  if (sni == NULL)
    return TP_E_OK;
  if (strcmp(sni, "on") == 0) {
    spec->sni_mode = TP_SNI_HOST;
    spec->sni_name = NULL;
    return TP_E_OK;
  }
  if (strcmp(sni, "off") == 0) {
    spec->sni_mode = TP_SNI_OFF;
    spec->sni_name = NULL;
    return TP_E_OK;
  }
  unsigned char addr[16];
  /* RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted". */
  if (inet_pton(AF_INET, sni, addr) == 1 || inet_pton(AF_INET6, sni, addr) == 1)
    FAIL_AT(x, "sni", "\"%s\" is an IP address; SNI carries DNS names only (RFC 6066 §3); use "
                      "on, off or a host name", sni);
  if (has_ctl_or_space(sni) || strlen(sni) > 253)
    FAIL_AT(x, "sni", "\"%s\" is not a host name (use on, off or a DNS name)", sni);
  spec->sni_mode = TP_SNI_OVERRIDE;
  spec->sni_name = sni;
  return TP_E_OK;
}

static tp_err check_ocsp(ctx *x) {
  const char *v = x->doc->ocsp_status_request;
  if (v == NULL)
    return TP_E_OK;
  if (strcasecmp(v, "on") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0)
    return TP_E_OK;
  if (strcasecmp(v, "off") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0)
    FAIL_AT(x, "ocsp_status_request",
            "cannot be turned off: GnuTLS 3.7.9 always sends the status_request extension "
            "(it has no GNUTLS_NO_STATUS_REQUEST flag; 3.8 added one); remove the key");
  FAIL_AT(x, "ocsp_status_request", "\"%s\" is not on/off", v);
}

static tp_err check_mode(ctx *x, tp_profile_spec *spec) {
  static const struct {
    const char *name;
    tp_probe_mode mode;
  } modes[] = {{"handshake", TP_MODE_HANDSHAKE},
               {"resumption", TP_MODE_RESUMPTION},
               {"early_data", TP_MODE_EARLY_DATA}};
  const char *m = x->doc->mode;
  if (m == NULL)
    return TP_E_OK;
  for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
    if (strcmp(modes[i].name, m) == 0) {
      spec->mode = modes[i].mode;
      return TP_E_OK;
    }
  }
  FAIL_AT(x, "mode", "unknown mode \"%s\" (known: handshake, resumption, early_data)", m);
}

static tp_err check_http(ctx *x, tp_profile_spec *spec) {
  static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                        "PATCH"};
  const tp__doc_http *h = x->doc->http;
  if (h == NULL)
    return TP_E_OK;
  size_t i = 0;
  while (i < sizeof(methods) / sizeof(methods[0]) && strcmp(methods[i], h->method) != 0)
    i++;
  if (i == sizeof(methods) / sizeof(methods[0]))
    FAIL_AT(x, "http.method",
            "unknown HTTP method \"%s\" (known: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)",
            h->method);
  /* The fields go verbatim into the request head: no CR/LF, no spaces. */
  if (h->path != NULL && (h->path[0] != '/' || has_ctl_or_space(h->path)))
    FAIL_AT(x, "http.path",
            "\"%s\" must start with '/' and contain no spaces or control characters "
            "(percent-encode them)",
            h->path);
  if (h->host != NULL && has_ctl_or_space(h->host))
    FAIL_AT(x, "http.host", "\"%s\" contains spaces or control characters", h->host);
  spec->http.method = h->method;
  spec->http.path = h->path ? h->path : "/";
  spec->http.host = h->host;
  return TP_E_OK;
}

/* early_data: raw 0-RTT bytes for a service that is not HTTP. Only with mode
 * early_data, and not together with http: (which is the HTTP payload). */
static tp_err check_early_data(ctx *x, tp_profile_spec *spec) {
  const tp__doc_early_data *e = x->doc->early_data;
  if (e == NULL)
    return TP_E_OK;
  if (spec->mode != TP_MODE_EARLY_DATA)
    FAIL_AT(x, "early_data", "early_data: needs mode: early_data");
  if (x->doc->http != NULL)
    FAIL_AT(x, "early_data",
            "early_data: and http: exclude each other (http: is the HTTP 0-RTT payload)");
  int expect = 0;
  if (e->expect_reply != NULL) {
    if (strcmp(e->expect_reply, "yes") == 0)
      expect = 1;
    else if (strcmp(e->expect_reply, "no") != 0)
      FAIL_AT(x, "early_data.expect_reply", "\"%s\" is not yes/no", e->expect_reply);
  }
  spec->early_data.raw = (const unsigned char *)e->data;
  spec->early_data.raw_len = strlen(e->data);
  spec->early_data.expect_reply = expect;
  return TP_E_OK;
}

/* aia_fetch: on (default) fetches a missing issuer named by AIA caIssuers as
 * evidence for incomplete_chain; off never leaves the target's address. */
static tp_err check_aia_fetch(ctx *x, tp_profile_spec *spec) {
  const char *v = x->doc->aia_fetch;
  if (v == NULL)
    return TP_E_OK;
  if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
    spec->aia_fetch_off = strcmp(v, "off") == 0;
    return TP_E_OK;
  }
  FAIL_AT(x, "aia_fetch", "\"%s\" is not on/off", v);
}

/* Bits of the server's DH prime the emulated client accepts. Above 16384
 * no real group exists (RFC 7919 stops at 8192). */
static tp_err check_dh_bits(ctx *x, tp_profile_spec *spec) {
  const tp__doc_profile *d = x->doc;
  const unsigned limit = 16384;
  if (d->min_dh_bits > limit)
    FAIL_AT(x, "min_dh_bits", "%u bits: at most %u (0 = no limit)", d->min_dh_bits, limit);
  if (d->max_dh_bits > limit)
    FAIL_AT(x, "max_dh_bits", "%u bits: at most %u (0 = no limit)", d->max_dh_bits, limit);
  if (d->min_dh_bits != 0 && d->max_dh_bits != 0 && d->min_dh_bits > d->max_dh_bits)
    FAIL_AT(x, "max_dh_bits", "max_dh_bits %u is below min_dh_bits %u: no DH prime would do",
            d->max_dh_bits, d->min_dh_bits);
  if (d->min_dh_bits != 0)
    spec->min_dh_bits = d->min_dh_bits;
  if (d->max_dh_bits != 0)
    spec->max_dh_bits = d->max_dh_bits;
  return TP_E_OK;
}

/* libcyaml leaves an empty sequence NULL; the schema's maximum is the
 * destination array's size. */
static size_t copy_code_points(uint16_t *dst, const uint16_t *src, unsigned n) {
  if (n > 0)
    memcpy(dst, src, n * sizeof(uint16_t));
  return n;
}

/* The offer's versions are names like versions:, its lists IANA code
 * points; the schema bounds their counts by tp_hello_offer's arrays. */
static tp_err check_recorded_offer(ctx *x, tp_profile_spec *spec) {
  const tp__doc_recorded_offer *r = x->doc->recorded_offer;
  if (r == NULL)
    return TP_E_OK;
  tp_hello_offer *o = &spec->recorded_offer;
  memset(o, 0, sizeof(*o));
  for (unsigned v = 0; v < r->versions_count; v++) {
    char field[48];
    snprintf(field, sizeof(field), "recorded_offer.versions[%u]", v);
    unsigned bit = tp_tls_version_from_name(r->versions[v]);
    if (bit == 0)
      FAIL_AT(x, field, "unknown TLS version \"%s\" (known: %s)", r->versions[v],
              tp_tls_version_names());
    o->versions |= bit;
  }
  o->n_cipher_suites = copy_code_points(o->cipher_suites, r->cipher_suites,
                                        r->cipher_suites_count);
  o->n_groups = copy_code_points(o->groups, r->groups, r->groups_count);
  o->n_signature_algorithms = copy_code_points(o->signature_algorithms, r->signature_algorithms,
                                               r->signature_algorithms_count);
  spec->has_recorded_offer = true;
  return TP_E_OK;
}

static tp_err check_client_certificate(ctx *x, tp_profile_spec *spec) {
  const tp__doc_profile *d = x->doc;
  if ((d->client_certificate == NULL) != (d->client_key == NULL))
    FAIL_AT(x, d->client_certificate ? "client_certificate" : "client_key",
            "client_certificate and client_key must be given together (PEM files)");
  if (d->client_certificate == NULL)
    return TP_E_OK;
  if (access(d->client_certificate, R_OK) != 0)
    FAIL_AT(x, "client_certificate", "cannot read \"%s\"", d->client_certificate);
  if (access(d->client_key, R_OK) != 0)
    FAIL_AT(x, "client_key", "cannot read \"%s\"", d->client_key);
  spec->client_certificate = d->client_certificate;
  spec->client_key = d->client_key;
  return TP_E_OK;
}

static tp_err check_alpn(ctx *x, tp_agent_profile_config *pc) {
  const tp__doc_profile *d = x->doc;
  if (d->alpn == NULL)
    return TP_E_OK;
  for (unsigned i = 0; i < d->alpn_count; i++) {
    for (unsigned j = 0; j < i; j++) {
      if (strcmp(d->alpn[i], d->alpn[j]) == 0) {
        char field[32];
        snprintf(field, sizeof(field), "alpn[%u]", i);
        FAIL_AT(x, field, "ALPN protocol \"%s\" is listed twice", d->alpn[i]);
      }
    }
  }
  const char **list = tp_xcalloc(d->alpn_count + 1, sizeof(char *));
  size_t slot = 0;
  while (pc->lists[slot] != NULL)
    slot++;
  pc->lists[slot] = list;
  for (unsigned i = 0; i < d->alpn_count; i++)
    list[i] = d->alpn[i];
  pc->spec.alpn = list;
  return TP_E_OK;
}

static tp_err check_one(ctx *x, tp_agent_profile_config *pc) {
  const tp__doc_profile *d = x->doc;
  tp_profile_spec *spec = &pc->spec;
  pc->defined = 1;
  tp_err rc = check_priority_exclusive(x);
  if (rc != TP_E_OK)
    return rc;
  if (d->base != NULL) {
    const tp_builtin_profile *b = tp_profile_library_find(d->base);
    if (b == NULL) {
      char known[512];
      tp_profile_library_names(known, sizeof(known));
      FAIL_AT(x, "base", "unknown built-in profile \"%s\" (built-in: %s)", d->base, known);
    }
    *spec = b->spec;
    pc->description = b->description;
  }
  spec->name = d->name;
  if (d->trust != NULL)
    spec->trust = d->trust;
  if (d->intermediates != NULL)
    spec->intermediates = d->intermediates;
  spec->priority = d->priority;
  if (d->fidelity_note != NULL)
    spec->fidelity_note = d->fidelity_note;
  if (d->description != NULL)
    pc->description = d->description;
  if ((rc = check_versions(x, spec)) != TP_E_OK ||
      (rc = name_list(x, pc, "ciphers", TP_PRIO_CIPHER, d->ciphers, d->ciphers_count,
                      &spec->ciphers)) != TP_E_OK ||
      (rc = name_list(x, pc, "key_exchanges", TP_PRIO_KX, d->key_exchanges,
                      d->key_exchanges_count, &spec->key_exchanges)) != TP_E_OK ||
      (rc = name_list(x, pc, "macs", TP_PRIO_MAC, d->macs, d->macs_count, &spec->macs)) !=
          TP_E_OK ||
      (rc = name_list(x, pc, "groups", TP_PRIO_GROUP, d->groups, d->groups_count,
                      &spec->groups)) != TP_E_OK ||
      (rc = name_list(x, pc, "signature_algorithms", TP_PRIO_SIGN, d->signature_algorithms,
                      d->signature_algorithms_count, &spec->signature_algorithms)) != TP_E_OK ||
      (rc = check_alpn(x, pc)) != TP_E_OK || (rc = check_sni(x, spec)) != TP_E_OK ||
      (rc = check_ocsp(x)) != TP_E_OK || (rc = check_mode(x, spec)) != TP_E_OK ||
      (rc = check_http(x, spec)) != TP_E_OK || (rc = check_early_data(x, spec)) != TP_E_OK ||
      (rc = check_aia_fetch(x, spec)) != TP_E_OK ||
      (rc = check_client_certificate(x, spec)) != TP_E_OK ||
      (rc = check_dh_bits(x, spec)) != TP_E_OK || (rc = check_recorded_offer(x, spec)) != TP_E_OK)
    return rc;
  return TP_E_OK;
}

tp_err tp__config_profiles(tp_agent_config *c, const tp__doc_profile *docs, unsigned n,
                           char *err, size_t errlen) {
  /* Room for every configured profile plus every built-in a job may name. */
  c->profiles = tp_xcalloc(n + tp_profile_library_count(), sizeof(*c->profiles));
  c->n_profiles = 0;
  for (unsigned i = 0; i < n; i++) {
    ctx x = {.c = c, .index = i, .doc = &docs[i], .err = err, .errlen = errlen};
    for (unsigned j = 0; j < i; j++) {
      if (strcmp(docs[j].name, docs[i].name) == 0) {
        char node[64];
        snprintf(node, sizeof(node), "profiles[%u].name", i);
        tp_yaml_error_at(err, errlen, c->path, node, "duplicate profile name \"%s\"",
                         docs[i].name);
        return TP_E_CONFIG;
      }
    }
    c->n_profiles++;
    tp_err rc = check_one(&x, &c->profiles[i]);
    if (rc != TP_E_OK)
      return rc;
  }
  return TP_E_OK;
}

long tp__config_profile_ref(tp_agent_config *c, const char *name) {
  for (size_t i = 0; i < c->n_profiles; i++)
    if (strcmp(c->profiles[i].spec.name, name) == 0)
      return (long)i;
  const tp_builtin_profile *b = tp_profile_library_find(name);
  if (b == NULL)
    return -1;
  tp_agent_profile_config *pc = &c->profiles[c->n_profiles];
  pc->spec = b->spec;
  pc->description = b->description;
  pc->defined = 0;
  return (long)c->n_profiles++;
}

void tp__config_profiles_free(tp_agent_config *c) {
  for (size_t i = 0; i < c->n_profiles; i++)
    for (size_t j = 0; j < sizeof(c->profiles[i].lists) / sizeof(c->profiles[i].lists[0]); j++)
      free(c->profiles[i].lists[j]);
  free(c->profiles);
  c->profiles = NULL;
  c->n_profiles = 0;
}
