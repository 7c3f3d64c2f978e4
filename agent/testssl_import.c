/* testssl_import.c - testssl.sh client-simulation data -> tlsprobe profiles.
 *
 * Three steps, one per section: parse the bash-array file as data (never
 * executing it); map one client from its recorded ClientHello (the
 * handshakebytes, parsed by probes/profiles/hello.c) to GnuTLS names in the
 * client's order; and write the profiles through libyaml's emitter with a
 * fidelity_note that says what GnuTLS cannot reproduce -- measured against
 * the real library by comparing the ClientHello GnuTLS writes for the
 * profile with the recorded one.
 *
 * Why the hello and not the file's summary fields (lowest/highest_protocol,
 * ciphers, curves, alpn): the summaries are testssl.sh's inputs for driving
 * `openssl s_client` and are wrong for the question "what does this client
 * offer" -- highest_protocol 0x0304 for clients that only spoke TLS 1.3
 * drafts, lowest_protocol 0x0301 for clients whose supported_versions is
 * {1.3, 1.2}, ALPN lists the hello never carried. */
#include "testssl_import.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "config.h" /* what agent.yaml accepts back */
#include "hello.h"
#include "priority.h"
#include "profile_yaml.h"
#include "tp_buf.h"
#include "tp_limits.h"
#include "tp_mem.h"
#include "tp_text.h"
#include "validate.h" /* tp_utf8_valid */

/* ---- parsing ---------------------------------------------------------- */

#define MAX_LINE 65536
#define MAX_CLIENTS 10000

struct tp_testssl_file {
  tp_testssl_client *clients;
  size_t n, cap;
};

/* The keys we read; everything else (protos, minRsaBits...) is skipped.
 * tls13ciphers is the older spelling of ciphersuites. */
static const struct {
  const char *key;
  size_t offset;
} keys[] = {
    {"short", offsetof(tp_testssl_client, short_name)},
    {"ciphers", offsetof(tp_testssl_client, ciphers)},
    {"ciphersuites", offsetof(tp_testssl_client, ciphersuites)},
    {"tls13ciphers", offsetof(tp_testssl_client, ciphersuites)},
    {"sni", offsetof(tp_testssl_client, sni)},
    {"lowest_protocol", offsetof(tp_testssl_client, lowest_protocol)},
    {"highest_protocol", offsetof(tp_testssl_client, highest_protocol)},
    {"alpn", offsetof(tp_testssl_client, alpn)},
    {"curves", offsetof(tp_testssl_client, curves)},
    {"current", offsetof(tp_testssl_client, current)},
    {"handshakebytes", offsetof(tp_testssl_client, handshakebytes)},
    {"minDhBits", offsetof(tp_testssl_client, min_dh_bits)},
    {"maxDhBits", offsetof(tp_testssl_client, max_dh_bits)},
};

static const char **client_field(tp_testssl_client *c, size_t offset) {
  return (const char **)(void *)((char *)c + offset);
}

/* Splits `KEY+=("text")` or `KEY+=(word)`. Returns NULL on success (key and
 * value are new strings), else what is wrong. */
static const char *parse_line(const char *s, char **key, char **value) {
  const char *k = s;
  if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
    return "expected KEY+=(VALUE)";
  while (*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
         (*s >= '0' && *s <= '9'))
    s++;
  size_t klen = (size_t)(s - k);
  if (strncmp(s, "+=(", 3) != 0)
    return "expected KEY+=(VALUE)";
  s += 3;
  const char *v, *end;
  if (*s == '"') {
    v = ++s;
    while (*s != '\0' && *s != '"') {
      /* Plain data only: anything bash would expand or unescape is refused
       * rather than guessed at ("$SNI" is a plain word and stays literal). */
      if (*s == '\\' || *s == '`' || (*s == '$' && s[1] == '('))
        return "shell escape or substitution inside the quotes (the file is read as data)";
      s++;
    }
    if (*s != '"')
      return "unterminated \"";
    end = s++;
  } else {
    v = s;
    while (*s != '\0' && *s != ')' && *s != ' ' && *s != '\t' && *s != '"' && *s != '\'' &&
           *s != '$' && *s != '`' && *s != ';')
      s++;
    end = s;
  }
  if (*s != ')')
    return "expected ')' after the value";
  s++;
  while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
    s++;
  if (*s != '\0' && *s != '#')
    return "unexpected text after ')'";
  *key = tp_xstrndup(k, klen);
  *value = tp_xstrndup(v, (size_t)(end - v));
  return NULL;
}

static tp_err parse_stream(FILE *fp, const char *path, tp_testssl_file *f, char *err,
                           size_t errlen) {
  char *line = tp_xmalloc(MAX_LINE);
  tp_err rc = TP_E_OK;
  tp_testssl_client *cur = NULL;
  for (unsigned lineno = 1; fgets(line, MAX_LINE, fp) != NULL; lineno++) {
    size_t len = strlen(line);
    if (len == MAX_LINE - 1 && line[len - 1] != '\n') {
      snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, lineno, MAX_LINE - 1);
      rc = TP_E_CONFIG;
      goto out;
    }
    const char *s = line;
    while (*s == ' ' || *s == '\t')
      s++;
    if (*s == '\0' || *s == '\n' || *s == '\r' || *s == '#')
      continue;
    char *key, *value;
    const char *why = parse_line(s, &key, &value);
    if (why != NULL) {
      char *got = tp_text_fit(s, strcspn(s, "\r\n"), 80);
      snprintf(err, errlen, "%s:%u: %s (testssl.sh client-simulation data), got \"%s\"", path,
               lineno, why, got);
      free(got);
      rc = TP_E_CONFIG;
      goto out;
    }
    if (strcmp(key, "names") == 0) {
      if (f->n == MAX_CLIENTS) {
        snprintf(err, errlen, "%s:%u: more than %d clients", path, lineno, MAX_CLIENTS);
        free(key);
        free(value);
        rc = TP_E_CONFIG;
        goto out;
      }
      if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->clients = tp_xrealloc(f->clients, f->cap * sizeof(*f->clients));
      }
      cur = &f->clients[f->n++];
      memset(cur, 0, sizeof(*cur));
      cur->name = value;
      cur->line = lineno;
      free(key);
      continue;
    }
    size_t k = 0;
    while (k < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[k].key, key) != 0)
      k++;
    if (k < sizeof(keys) / sizeof(keys[0]) && cur == NULL) {
      snprintf(err, errlen, "%s:%u: %s+= before the first names+= (every client starts with "
                            "names+=)", path, lineno, key);
      free(key);
      free(value);
      rc = TP_E_CONFIG;
      goto out;
    }
    if (k < sizeof(keys) / sizeof(keys[0])) {
      const char **slot = client_field(cur, keys[k].offset);
      if (*slot != NULL) {
        char *name = tp_text_fit_str(cur->name, 256); /* the file's text, for a terminal */
        snprintf(err, errlen, "%s:%u: second %s+= for client \"%s\" (line %u)", path, lineno,
                 key, name, cur->line);
        free(name);
        free(key);
        free(value);
        rc = TP_E_CONFIG;
        goto out;
      }
      *slot = value;
      value = NULL;
    }
    free(key);
    free(value);
  }
  if (ferror(fp)) {
    snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
    rc = TP_E_IO;
  }
out:
  free(line);
  return rc;
}

tp_err tp_testssl_parse(const char *path, tp_testssl_file **out, char *err, size_t errlen) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return TP_E_IO;
  }
  tp_testssl_file *f = tp_xcalloc(1, sizeof(*f));
  tp_err rc = parse_stream(fp, path, f, err, errlen);
  fclose(fp);
  if (rc == TP_E_OK && f->n == 0) {
    snprintf(err, errlen, "%s: no clients (no names+= line)", path);
    rc = TP_E_CONFIG;
  }
  if (rc != TP_E_OK) {
    tp_testssl_free(f);
    return rc;
  }
  *out = f;
  return TP_E_OK;
}

size_t tp_testssl_count(const tp_testssl_file *file) {
  return file->n;
}

const tp_testssl_client *tp_testssl_client_at(const tp_testssl_file *file, size_t i) {
  return i < file->n ? &file->clients[i] : NULL;
}

void tp_testssl_free(tp_testssl_file *f) {
  if (f == NULL)
    return;
  for (size_t i = 0; i < f->n; i++) {
    free((char *)f->clients[i].name);
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
      const char **slot = client_field(&f->clients[i], keys[k].offset);
      free((char *)*slot);
      *slot = NULL; /* ciphersuites has two keys */
    }
  }
  free(f->clients);
  free(f);
}

/* ---- names ------------------------------------------------------------ */

bool tp_testssl_suite_keywords(uint16_t id, const char **kx, const char **cipher,
                               const char **mac) {
  unsigned char sid[2];
  gnutls_kx_algorithm_t k;
  gnutls_cipher_algorithm_t c;
  gnutls_mac_algorithm_t m;
  gnutls_protocol_t v;
  for (size_t i = 0; gnutls_cipher_suite_info(i, sid, &k, &c, &m, &v) != NULL; i++) {
    if (((unsigned)sid[0] << 8 | sid[1]) != id)
      continue;
    /* tp_priority_canonical accepts only what a certificate-authenticated
     * client can offer, so PSK/SRP/anonymous/GOST fall out here. */
    *kx = k == GNUTLS_KX_UNKNOWN ? NULL : tp_priority_canonical(TP_PRIO_KX, gnutls_kx_get_name(k));
    *cipher = tp_priority_canonical(TP_PRIO_CIPHER, gnutls_cipher_get_name(c));
    *mac = tp_priority_canonical(TP_PRIO_MAC, gnutls_mac_get_name(m));
    return *cipher != NULL && *mac != NULL && (k == GNUTLS_KX_UNKNOWN || *kx != NULL);
  }
  return false;
}

const char *tp_testssl_suite_name(uint16_t id, char *buf, size_t len) {
  /* IANA TLS Cipher Suites registry names (and the two pre-registry ones
   * browsers sent) of suites in recorded hellos that GnuTLS 3.7 lacks. */
  static const struct {
    uint16_t id;
    const char *name;
  } lacking[] = {
      {0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"},
      {0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5"},
      {0x0007, "TLS_RSA_WITH_IDEA_CBC_SHA"},
      {0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA"},
      {0x0009, "TLS_RSA_WITH_DES_CBC_SHA"},
      {0x000c, "TLS_DH_DSS_WITH_DES_CBC_SHA"},
      {0x000d, "TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA"},
      {0x000f, "TLS_DH_RSA_WITH_DES_CBC_SHA"},
      {0x0010, "TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA"},
      {0x0011, "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA"},
      {0x0012, "TLS_DHE_DSS_WITH_DES_CBC_SHA"},
      {0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA"},
      {0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA"},
      {0x0030, "TLS_DH_DSS_WITH_AES_128_CBC_SHA"},
      {0x0031, "TLS_DH_RSA_WITH_AES_128_CBC_SHA"},
      {0x0036, "TLS_DH_DSS_WITH_AES_256_CBC_SHA"},
      {0x0037, "TLS_DH_RSA_WITH_AES_256_CBC_SHA"},
      {0x003e, "TLS_DH_DSS_WITH_AES_128_CBC_SHA256"},
      {0x003f, "TLS_DH_RSA_WITH_AES_128_CBC_SHA256"},
      {0x0042, "TLS_DH_DSS_WITH_CAMELLIA_128_CBC_SHA"},
      {0x0043, "TLS_DH_RSA_WITH_CAMELLIA_128_CBC_SHA"},
      {0x0062, "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA"},
      {0x0063, "TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA"},
      {0x0064, "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA"},
      {0x0068, "TLS_DH_DSS_WITH_AES_256_CBC_SHA256"},
      {0x0069, "TLS_DH_RSA_WITH_AES_256_CBC_SHA256"},
      {0x0081, "TLS_GOSTR341001_WITH_28147_CNT_IMIT"},
      {0x0085, "TLS_DH_DSS_WITH_CAMELLIA_256_CBC_SHA"},
      {0x0086, "TLS_DH_RSA_WITH_CAMELLIA_256_CBC_SHA"},
      {0x0096, "TLS_RSA_WITH_SEED_CBC_SHA"},
      {0x0097, "TLS_DH_DSS_WITH_SEED_CBC_SHA"},
      {0x0098, "TLS_DH_RSA_WITH_SEED_CBC_SHA"},
      {0x0099, "TLS_DHE_DSS_WITH_SEED_CBC_SHA"},
      {0x009a, "TLS_DHE_RSA_WITH_SEED_CBC_SHA"},
      {0x00a0, "TLS_DH_RSA_WITH_AES_128_GCM_SHA256"},
      {0x00a1, "TLS_DH_RSA_WITH_AES_256_GCM_SHA384"},
      {0x00a4, "TLS_DH_DSS_WITH_AES_128_GCM_SHA256"},
      {0x00a5, "TLS_DH_DSS_WITH_AES_256_GCM_SHA384"},
      {0xc001, "TLS_ECDH_ECDSA_WITH_NULL_SHA"},
      {0xc002, "TLS_ECDH_ECDSA_WITH_RC4_128_SHA"},
      {0xc003, "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA"},
      {0xc004, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA"},
      {0xc005, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA"},
      {0xc00b, "TLS_ECDH_RSA_WITH_NULL_SHA"},
      {0xc00c, "TLS_ECDH_RSA_WITH_RC4_128_SHA"},
      {0xc00d, "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA"},
      {0xc00e, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA"},
      {0xc00f, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA"},
      {0xc025, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256"},
      {0xc026, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384"},
      {0xc029, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256"},
      {0xc02a, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384"},
      {0xc02d, "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256"},
      {0xc02e, "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384"},
      {0xc031, "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256"},
      {0xc032, "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384"},
      {0xcc13, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256_OLD"},
      {0xcc14, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256_OLD"},
      {0xcc15, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256_OLD"},
      {0xfeff, "SSL_RSA_FIPS_WITH_3DES_EDE_CBC_SHA"},
      {0xff85, "GOST2012256-GOST89-GOST89"},
  };
  unsigned char sid[2];
  gnutls_kx_algorithm_t k;
  gnutls_cipher_algorithm_t c;
  gnutls_mac_algorithm_t m;
  gnutls_protocol_t v;
  const char *name;
  for (size_t i = 0; (name = gnutls_cipher_suite_info(i, sid, &k, &c, &m, &v)) != NULL; i++)
    if (((unsigned)sid[0] << 8 | sid[1]) == id)
      return name;
  for (size_t i = 0; i < sizeof(lacking) / sizeof(lacking[0]); i++)
    if (lacking[i].id == id)
      return lacking[i].name;
  snprintf(buf, len, "0x%04x", id);
  return buf;
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

/* RFC 8446 §4.2.3 code points -> GnuTLS names. 0x0403/0x0503/0x0603 mean
 * "ECDSA with this hash" up to TLS 1.2 but bind the curve in TLS 1.3;
 * GnuTLS has one name per meaning and writes the code point once, so a
 * profile with TLS 1.3 lists both. */
static const struct {
  uint16_t id;
  const char *const *tls12;
  const char *const *tls13;
} sigalg_table[] = {
    {0x0101, L("RSA-MD5"), NULL},
    {0x0201, L("RSA-SHA1"), NULL},
    {0x0202, L("DSA-SHA1"), NULL},
    {0x0203, L("ECDSA-SHA1"), NULL},
    {0x0301, L("RSA-SHA224"), NULL},
    {0x0302, L("DSA-SHA224"), NULL},
    {0x0303, L("ECDSA-SHA224"), NULL},
    {0x0401, L("RSA-SHA256"), NULL},
    {0x0402, L("DSA-SHA256"), NULL},
    {0x0403, L("ECDSA-SHA256"), L("ECDSA-SECP256R1-SHA256", "ECDSA-SHA256")},
    {0x0501, L("RSA-SHA384"), NULL},
    {0x0502, L("DSA-SHA384"), NULL},
    {0x0503, L("ECDSA-SHA384"), L("ECDSA-SECP384R1-SHA384", "ECDSA-SHA384")},
    {0x0601, L("RSA-SHA512"), NULL},
    {0x0602, L("DSA-SHA512"), NULL},
    {0x0603, L("ECDSA-SHA512"), L("ECDSA-SECP521R1-SHA512", "ECDSA-SHA512")},
    {0x0804, L("RSA-PSS-RSAE-SHA256"), NULL},
    {0x0805, L("RSA-PSS-RSAE-SHA384"), NULL},
    {0x0806, L("RSA-PSS-RSAE-SHA512"), NULL},
    {0x0807, L("EdDSA-Ed25519"), NULL},
    {0x0808, L("EdDSA-Ed448"), NULL},
    {0x0809, L("RSA-PSS-SHA256"), NULL},
    {0x080a, L("RSA-PSS-SHA384"), NULL},
    {0x080b, L("RSA-PSS-SHA512"), NULL},
};

const char *const *tp_testssl_sigalg_keywords(uint16_t scheme, bool tls13) {
  for (size_t i = 0; i < sizeof(sigalg_table) / sizeof(sigalg_table[0]); i++)
    if (sigalg_table[i].id == scheme)
      return tls13 && sigalg_table[i].tls13 != NULL ? sigalg_table[i].tls13
                                                     : sigalg_table[i].tls12;
  return NULL;
}

/* ---- mapping ---------------------------------------------------------- */

#define MAX_ITEMS 256
#define NOTE_NAMES 6 /* names listed per note item: the note rides in every result */

/* A NULL-terminated list of distinct static names, in first-seen order. */
typedef struct {
  const char *items[MAX_ITEMS + 1];
  size_t n;
} name_set;

static void add_name(name_set *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->items[i], name) == 0)
      return;
  if (s->n < MAX_ITEMS)
    s->items[s->n++] = name;
}

static const char **dup_list(const name_set *s) {
  if (s->n == 0)
    return NULL;
  const char **out = tp_xcalloc(s->n + 1, sizeof(char *));
  memcpy(out, s->items, s->n * sizeof(char *));
  return out;
}

/* Code points for a note, without repeats. */
typedef struct {
  uint16_t ids[MAX_ITEMS];
  size_t n;
} id_list;

static bool has_id(const uint16_t *ids, size_t n, uint16_t id) {
  for (size_t i = 0; i < n; i++)
    if (ids[i] == id)
      return true;
  return false;
}

static void add_id(id_list *l, uint16_t id) {
  if (!has_id(l->ids, l->n, id) && l->n < MAX_ITEMS)
    l->ids[l->n++] = id;
}

/* ids[] entries that are not in other[]. */
static void difference(const uint16_t *ids, size_t n, const uint16_t *other, size_t n_other,
                       id_list *out) {
  out->n = 0;
  for (size_t i = 0; i < n; i++)
    if (!has_id(other, n_other, ids[i]))
      add_id(out, ids[i]);
}

typedef const char *(*code_name_fn)(uint16_t id, char *buf, size_t len);

/* "; " between items; a full note (TP_V_MAX_NOTE) keeps its first items. */
static void note_text(tp_buf *note, const char *text) {
  if (note->len > 0)
    (void)tp_buf_append(note, "; ", 2);
  (void)tp_buf_append(note, text, strlen(text));
}

/* "what (n): a, b, ..." with at most NOTE_NAMES names. */
static void note_ids(tp_buf *note, const char *what, const id_list *ids, code_name_fn name) {
  if (ids->n == 0)
    return;
  char text[1024];
  size_t used = (size_t)snprintf(text, sizeof(text), "%s (%zu): ", what, ids->n);
  for (size_t i = 0; i < ids->n && i < NOTE_NAMES && used < sizeof(text); i++) {
    char buf[16];
    used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", i ? ", " : "",
                             name(ids->ids[i], buf, sizeof(buf)));
  }
  if (ids->n > NOTE_NAMES && used < sizeof(text))
    snprintf(text + used, sizeof(text) - used, ", ...");
  note_text(note, text);
}

/* Everything one client's mapping works on; lives on the heap (two offers
 * and five name sets are too big for a stack frame worth having). */
typedef struct {
  const tp_testssl_client *c;
  tp_hello_offer rec;    /* what the real client sent */
  tp_hello_offer gnutls; /* what GnuTLS writes for the profile */
  unsigned versions;
  name_set ciphers, kx, macs, groups, sigalgs;
  id_list no_suite, no_group, no_sigalg; /* GnuTLS lacks them */
  id_list unusable_suites; /* suites of a version the profile does not offer */
  tp_buf note;
} mapping;

struct tp_testssl_profile {
  tp_profile_spec spec;
  char *name, *note;
  const char **ciphers, **kx, **macs, **groups, **sigalgs;
  char **alpn;
};

/* Room unique_name keeps for "-N" (N <= MAX_CLIENTS) within a profile name. */
#define NAME_SUFFIX_ROOM 8

/* Lowercase [a-z0-9._-] name for the profile, short enough for agent.yaml
 * (TP_V_MAX_PROFILE bytes, suffix included) whatever the file says. */
static char *profile_name(const tp_testssl_client *c) {
  const char *src = c->short_name && c->short_name[0] ? c->short_name : c->name;
  if (src[0] == '\0')
    src = "client"; /* names+=("") */
  char *out = tp_xstrndup(src, strnlen(src, TP_V_MAX_PROFILE - NAME_SUFFIX_ROOM));
  for (char *p = out; *p; p++) {
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
    else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
               *p == '_'))
      *p = '_';
  }
  return out;
}

static int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* handshakebytes -> bytes (a new buffer); the line length bounds it. */
static tp_err decode_hex(const char *hex, uint8_t **out, size_t *len, char *why, size_t whylen) {
  size_t n = strlen(hex);
  if (n == 0 || n % 2 != 0) {
    snprintf(why, whylen, "handshakebytes: %s", n ? "odd number of hex digits" : "empty");
    return TP_E_NOTFOUND;
  }
  uint8_t *bytes = tp_xmalloc(n / 2);
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      snprintf(why, whylen, "handshakebytes: not hex at offset %zu", 2 * i);
      free(bytes);
      return TP_E_NOTFOUND;
    }
    bytes[i] = (uint8_t)(hi << 4 | lo);
  }
  *out = bytes;
  *len = n / 2;
  return TP_E_OK;
}

static tp_err read_hello(mapping *m, char *why, size_t whylen) {
  uint8_t *bytes;
  size_t len;
  const char *problem = NULL;
  if (m->c->handshakebytes == NULL) {
    snprintf(why, whylen, "no recorded ClientHello (handshakebytes) in the data");
    return TP_E_NOTFOUND;
  }
  tp_err rc = decode_hex(m->c->handshakebytes, &bytes, &len, why, whylen);
  if (rc != TP_E_OK)
    return rc;
  if (tp_hello_parse_recorded(bytes, len, &m->rec, &problem) != 0) {
    snprintf(why, whylen, "handshakebytes: %s", problem);
    rc = TP_E_NOTFOUND;
  }
  free(bytes);
  return rc;
}

/* "0x0301" (testssl's spelling) -> 0x0301; -1 if absent or malformed. */
static long wire_version(const char *text) {
  if (text == NULL || strncmp(text, "0x", 2) != 0 || strlen(text) != 6)
    return -1;
  char *end;
  unsigned long v = strtoul(text + 2, &end, 16);
  return *end == '\0' ? (long)v : -1;
}

static unsigned versions_from(long lowest) {
  unsigned mask = 0;
  for (long v = TP_WIRE_TLS1_0; v <= TP_WIRE_TLS1_3; v++)
    if (v >= lowest)
      mask |= 1u << (v - TP_WIRE_TLS1_0);
  return mask;
}

/* The versions the hello names, for messages: "SSL3.0, TLS1.3-draft18". */
static void offered_versions_text(const tp_hello_offer *r, char *out, size_t len) {
  char buf[24];
  size_t used = 0;
  out[0] = '\0';
  if (!r->versions_exact) {
    snprintf(out, len, "highest %s%s", tp_hello_version_name(r->legacy_version, buf, sizeof(buf)),
             r->sslv2_format ? " in an SSL 2.0-compatible hello" : "");
    return;
  }
  for (size_t i = 0; i < r->n_supported_versions && used < len; i++)
    used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "",
                             tp_hello_version_name(r->supported_versions[i], buf, sizeof(buf)));
}

/* Why a client with no TLS version GnuTLS has is skipped. */
static tp_err no_versions(const mapping *m, long lowest, char *why, size_t whylen) {
  char offered[160];
  offered_versions_text(&m->rec, offered, sizeof(offered));
  if (!m->rec.versions_exact && m->rec.legacy_version >= TP_WIRE_TLS1_0 && lowest > 0)
    snprintf(why, whylen, "lowest_protocol %s is above the hello's %s: inconsistent data",
             m->c->lowest_protocol, offered);
  else if (!m->rec.versions_exact || m->rec.legacy_version < TP_WIRE_TLS1_0)
    snprintf(why, whylen, "offers only SSL 2.0/3.0 (%s), which GnuTLS does not have", offered);
  else
    snprintf(why, whylen, "offers no final TLS version (supported_versions: %s)", offered);
  return TP_E_NOTFOUND;
}

/* Lists the draft TLS 1.3 versions a hello names (0x7fXX, RFC 8446 §4.2.1
 * is the first that counts as TLS 1.3; drafts are other protocols). */
static void note_drafts(mapping *m) {
  char text[256] = "", buf[24];
  size_t used = 0;
  for (size_t i = 0; i < m->rec.n_supported_versions && used < sizeof(text); i++) {
    uint16_t v = m->rec.supported_versions[i];
    if ((v >> 8) == 0x7f || (v >> 8) == 0xfb)
      used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", used ? ", " : "",
                               tp_hello_version_name(v, buf, sizeof(buf)));
  }
  if (used == 0)
    return;
  char line[400];
  snprintf(line, sizeof(line), "%s: %s", text,
           (m->versions & TP_TLS1_3) ? "draft versions are not offered"
                                     : "TLS 1.3 only as drafts, which GnuTLS does not speak, so "
                                       "this profile has no TLS 1.3");
  note_text(&m->note, line);
}

static bool offers_ssl(const mapping *m, long lowest, bool *ssl2) {
  *ssl2 = m->rec.sslv2_format || (lowest >= 0 && lowest < TP_WIRE_SSL3_0);
  if (m->rec.versions_exact)
    return has_id(m->rec.supported_versions, m->rec.n_supported_versions, TP_WIRE_SSL3_0);
  return *ssl2 || (lowest >= 0 && lowest <= TP_WIRE_SSL3_0);
}

/* RFC 8446 §4.2.1: supported_versions, when sent, is the client's whole
 * list. Without it the hello names only the highest version (RFC 5246
 * Appendix E.1), so the file's lowest_protocol -- testssl.sh's record of
 * the lowest version the client accepted -- is used as the lower bound, and
 * only as that. */
static tp_err pick_versions(mapping *m, char *why, size_t whylen) {
  long lowest = wire_version(m->c->lowest_protocol);
  m->versions = m->rec.versions;
  if (!m->rec.versions_exact && lowest >= 0)
    m->versions &= versions_from(lowest);
  if (m->versions == 0)
    return no_versions(m, lowest, why, whylen);
  if (m->rec.sslv2_format)
    note_text(&m->note, "sends an SSL 2.0-compatible ClientHello (RFC 5246 Appendix E.2); "
                        "GnuTLS sends a TLS one");
  bool ssl2;
  if (offers_ssl(m, lowest, &ssl2))
    note_text(&m->note, ssl2 ? "SSL 2.0 and 3.0 not available in GnuTLS"
                             : "SSL 3.0 not available in GnuTLS");
  if (!m->rec.versions_exact && lowest < 0)
    note_text(&m->note, "no lowest_protocol in the data: every TLS version up to the hello's "
                        "is offered");
  note_drafts(m);
  return TP_E_OK;
}

/* The hello's suites in its order, split into GnuTLS's three dimensions. */
static void map_suites(mapping *m) {
  const unsigned below13 = TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2;
  for (size_t i = 0; i < m->rec.n_cipher_suites; i++) {
    uint16_t id = m->rec.cipher_suites[i];
    const char *kx, *cipher, *mac;
    if (!tp_testssl_suite_keywords(id, &kx, &cipher, &mac)) {
      add_id(&m->no_suite, id);
      continue;
    }
    /* A TLS 1.3 suite (no key exchange) is only usable with TLS 1.3, the
     * others only below it (RFC 8446 §4.1.2, §B.4). */
    if ((kx == NULL && !(m->versions & TP_TLS1_3)) || (kx != NULL && !(m->versions & below13))) {
      add_id(&m->unusable_suites, id);
      continue;
    }
    if (kx != NULL)
      add_name(&m->kx, kx);
    add_name(&m->ciphers, cipher);
    add_name(&m->macs, mac);
  }
}

static void map_groups(mapping *m) {
  for (size_t i = 0; i < m->rec.n_groups; i++) {
    char buf[16];
    const char *canon =
        tp_priority_canonical(TP_PRIO_GROUP, tp_hello_group_name(m->rec.groups[i], buf, sizeof(buf)));
    if (canon != NULL)
      add_name(&m->groups, canon);
    else
      add_id(&m->no_group, m->rec.groups[i]);
  }
}

static void map_sigalgs(mapping *m) {
  for (size_t i = 0; i < m->rec.n_signature_algorithms; i++) {
    uint16_t id = m->rec.signature_algorithms[i];
    const char *const *names = tp_testssl_sigalg_keywords(id, (m->versions & TP_TLS1_3) != 0);
    bool any = false;
    for (size_t k = 0; names != NULL && names[k] != NULL; k++) {
      const char *canon = tp_priority_canonical(TP_PRIO_SIGN, names[k]);
      if (canon != NULL) {
        add_name(&m->sigalgs, canon);
        any = true;
      }
    }
    if (!any)
      add_id(&m->no_sigalg, id);
  }
}

_Static_assert(TP_AGENT_MAX_ALPN == 32, "fill_spec's note says 32");

static bool has_name(char *const *names, size_t n, const char *name, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
      return true;
  return false;
}

/* ALPN names from the hello (RFC 7301 §3.1); the parser checked lengths.
 * Only what agent.yaml can hold back is kept (dropped, and said, otherwise):
 * printable UTF-8 (a NUL byte cannot be in a C string, and other bytes
 * would be written escaped, as another and possibly too long name), each
 * name once, at most TP_AGENT_MAX_ALPN names. */
static char **alpn_names(const tp_hello_offer *r, bool *dropped) {
  size_t n = 0;
  char **out = tp_xcalloc(r->alpn_len / 2 + 1, sizeof(char *));
  *dropped = false;
  for (size_t at = 0; at < r->alpn_len; at += 1 + (size_t)r->alpn[at]) {
    size_t len = r->alpn[at];
    const char *name = (const char *)r->alpn + at + 1;
    if (!tp_text_fits(name, len, 255) || has_name(out, n, name, len) || n == TP_AGENT_MAX_ALPN) {
      *dropped = true;
      continue;
    }
    out[n++] = tp_xstrndup(name, len);
  }
  if (n == 0) {
    free(out);
    return NULL;
  }
  return out;
}

/* minDhBits/maxDhBits: decimal bits, -1 = no limit. */
static tp_err dh_limit(const char *key, const char *text, unsigned *bits, char *why,
                       size_t whylen) {
  *bits = 0;
  if (text == NULL)
    return TP_E_OK;
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || v < -1 || v > 16384) {
    snprintf(why, whylen, "%s \"%s\" is not -1 or a number of bits up to 16384", key, text);
    return TP_E_NOTFOUND;
  }
  *bits = v > 0 ? (unsigned)v : 0;
  return TP_E_OK;
}

static tp_err dh_limits(const mapping *m, tp_profile_spec *spec, char *why, size_t whylen) {
  tp_err rc = dh_limit("minDhBits", m->c->min_dh_bits, &spec->min_dh_bits, why, whylen);
  if (rc == TP_E_OK)
    rc = dh_limit("maxDhBits", m->c->max_dh_bits, &spec->max_dh_bits, why, whylen);
  if (rc == TP_E_OK && spec->min_dh_bits && spec->max_dh_bits &&
      spec->min_dh_bits > spec->max_dh_bits) {
    snprintf(why, whylen, "minDhBits %u is above maxDhBits %u", spec->min_dh_bits,
             spec->max_dh_bits);
    rc = TP_E_NOTFOUND;
  }
  return rc;
}

/* Notes on what GnuTLS cannot offer at all, from the recorded hello. */
static void note_recorded(mapping *m) {
  const tp_hello_offer *r = &m->rec;
  note_ids(&m->note, "suites GnuTLS cannot offer", &m->no_suite, tp_testssl_suite_name);
  note_ids(&m->note,
           (m->versions & TP_TLS1_3) ? "TLS 1.2 suites of a TLS 1.3-only profile"
                                     : "TLS 1.3 suites without TLS 1.3",
           &m->unusable_suites, tp_testssl_suite_name);
  note_ids(&m->note, "groups GnuTLS cannot offer", &m->no_group, tp_hello_group_name);
  if (r->n_sslv2_only_specs > 0)
    note_text(&m->note, "SSL 2.0 cipher kinds not available");
  if (r->compression)
    note_text(&m->note, "offers compression (DEFLATE); GnuTLS offers only null");
  if (r->fallback_scsv)
    note_text(&m->note, "the recorded hello is a fallback retry (TLS_FALLBACK_SCSV, RFC 7507)");
  if (r->grease)
    note_text(&m->note, "GREASE values (RFC 8701) are not sent");
}

/* The suite order the two hellos share, compared: GnuTLS orders key
 * exchange first, then cipher, then MAC (priority.h). */
static bool same_suite_order(const tp_hello_offer *a, const tp_hello_offer *b) {
  size_t j = 0;
  for (size_t i = 0; i < a->n_cipher_suites; i++) {
    if (!has_id(b->cipher_suites, b->n_cipher_suites, a->cipher_suites[i]))
      continue;
    while (j < b->n_cipher_suites && !has_id(a->cipher_suites, a->n_cipher_suites,
                                             b->cipher_suites[j]))
      j++;
    if (j == b->n_cipher_suites || b->cipher_suites[j] != a->cipher_suites[i])
      return false;
    j++;
  }
  return true;
}

static bool same_list(const uint16_t *a, size_t na, const uint16_t *b, size_t nb) {
  return na == nb && memcmp(a, b, na * sizeof(uint16_t)) == 0;
}

/* Notes from comparing the hello GnuTLS writes with the recorded one. */
static void note_measured(mapping *m) {
  const tp_hello_offer *r = &m->rec, *g = &m->gnutls;
  id_list d;
  difference(g->cipher_suites, g->n_cipher_suites, r->cipher_suites, r->n_cipher_suites, &d);
  note_ids(&m->note, "extra suites GnuTLS adds (it offers every combination of the lists)", &d,
           tp_testssl_suite_name);
  if (!same_suite_order(r, g))
    note_text(&m->note, "suite order differs (GnuTLS orders key exchange, then cipher, then MAC)");
  difference(g->groups, g->n_groups, r->groups, r->n_groups, &d);
  note_ids(&m->note,
           r->n_groups ? "groups GnuTLS adds" : "no supported_groups in the hello; GnuTLS sends",
           &d, tp_hello_group_name);
  difference(r->signature_algorithms, r->n_signature_algorithms, g->signature_algorithms,
             g->n_signature_algorithms, &d);
  note_ids(&m->note, "signature algorithms GnuTLS does not send", &d, tp_hello_sigalg_name);
  difference(g->signature_algorithms, g->n_signature_algorithms, r->signature_algorithms,
             r->n_signature_algorithms, &d);
  note_ids(&m->note, "signature algorithms GnuTLS adds", &d, tp_hello_sigalg_name);
  if ((m->versions & TP_TLS1_3) &&
      !same_list(r->key_shares, r->n_key_shares, g->key_shares, g->n_key_shares)) {
    memcpy(d.ids, g->key_shares, g->n_key_shares * sizeof(uint16_t));
    d.n = g->n_key_shares;
    note_ids(&m->note, "key shares differ; GnuTLS sends", &d, tp_hello_group_name);
  }
  note_text(&m->note, "extensions and their order are GnuTLS's");
}

/* Builds the profile's priority string and samples GnuTLS's hello for it. */
static tp_err measure(mapping *m, const tp_profile_spec *spec, char *why, size_t whylen) {
  char err[1024];
  char *prio = tp__priority_build(spec, err, sizeof(err));
  if (prio == NULL) {
    snprintf(why, whylen, "GnuTLS cannot build it: %s", err);
    return TP_E_NOTFOUND;
  }
  tp_err rc = tp_profile_sample_hello(prio, &m->gnutls, err, sizeof(err));
  free(prio);
  if (rc != TP_E_OK) {
    snprintf(why, whylen, "%s", err);
    return TP_E_NOTFOUND;
  }
  return TP_E_OK;
}

/* The recorded offer as the engine will compare with: versions after the
 * lower bound, lists as the client sent them. */
static void record_offer(const mapping *m, tp_profile_spec *spec) {
  spec->has_recorded_offer = true;
  spec->recorded_offer = m->rec;
  spec->recorded_offer.versions = m->versions;
}

static void fill_spec(mapping *m, tp_testssl_profile *p) {
  bool alpn_dropped;
  p->name = profile_name(m->c);
  p->spec.name = p->name;
  p->spec.versions = m->versions;
  p->spec.ciphers = p->ciphers = dup_list(&m->ciphers);
  p->spec.key_exchanges = p->kx = dup_list(&m->kx);
  p->spec.macs = p->macs = dup_list(&m->macs);
  p->spec.groups = p->groups = dup_list(&m->groups);
  p->spec.signature_algorithms = p->sigalgs = dup_list(&m->sigalgs);
  p->alpn = alpn_names(&m->rec, &alpn_dropped);
  p->spec.alpn = (const char *const *)p->alpn;
  if (alpn_dropped)
    note_text(&m->note, "ALPN names that are not printable UTF-8, repeated, or beyond the first "
                        "32 are not offered");
  /* RFC 6066 §3: a client that sends no server_name extension names no
   * server; "$SNI" in the file is the same fact, the hello decides. */
  if (!m->rec.has_server_name)
    p->spec.sni_mode = TP_SNI_OFF;
  record_offer(m, &p->spec);
}

static tp_err map_client(mapping *m, tp_testssl_profile *p, char *why, size_t whylen) {
  tp_err rc = read_hello(m, why, whylen);
  if (rc == TP_E_OK)
    rc = pick_versions(m, why, whylen);
  if (rc == TP_E_OK)
    rc = dh_limits(m, &p->spec, why, whylen);
  if (rc != TP_E_OK)
    return rc;
  map_suites(m);
  map_groups(m);
  map_sigalgs(m);
  if (m->ciphers.n == 0) {
    snprintf(why, whylen, "none of its cipher suites can be offered by GnuTLS");
    return TP_E_NOTFOUND;
  }
  note_recorded(m);
  fill_spec(m, p);
  rc = measure(m, &p->spec, why, whylen);
  if (rc != TP_E_OK)
    return rc;
  note_measured(m);
  p->note = tp_text_fit((const char *)m->note.data, m->note.len, TP_V_MAX_NOTE);
  p->spec.fidelity_note = p->note;
  return TP_E_OK;
}

tp_err tp_testssl_map(const tp_testssl_client *c, tp_testssl_profile **out, char *why,
                      size_t whylen) {
  mapping *m = tp_xcalloc(1, sizeof(*m));
  tp_testssl_profile *p = tp_xcalloc(1, sizeof(*p));
  m->c = c;
  tp_buf_init(&m->note, 16384);
  tp_err rc = map_client(m, p, why, whylen);
  tp_buf_free(&m->note);
  free(m);
  if (rc != TP_E_OK) {
    tp_testssl_profile_free(p);
    return rc;
  }
  *out = p;
  return TP_E_OK;
}

const tp_profile_spec *tp_testssl_profile_spec(const tp_testssl_profile *profile) {
  return &profile->spec;
}

void tp_testssl_profile_free(tp_testssl_profile *p) {
  if (p == NULL)
    return;
  free(p->name);
  free(p->note);
  free(p->ciphers);
  free(p->kx);
  free(p->macs);
  free(p->groups);
  free(p->sigalgs);
  for (size_t i = 0; p->alpn != NULL && p->alpn[i] != NULL; i++)
    free(p->alpn[i]);
  free(p->alpn);
  free(p);
}

/* ---- the command ------------------------------------------------------ */

/* Untrusted text from the file, fitted for a terminal (tp_text.h). */
static void diag_skipped(FILE *diag, const char *path, const tp_testssl_client *c,
                         const char *why) {
  char *name = tp_text_fit_str(c->name, 256);
  char *reason = tp_text_fit_str(why, 1200);
  char *file = tp_text_fit_str(path, 1024);
  fprintf(diag, "import-testssl: skipped \"%s\" (%s:%u): %s\n", name, file, c->line, reason);
  free(name);
  free(reason);
  free(file);
}

/* Profile names must be unique in a config: repeats get -2, -3... */
static char *unique_name(const char *base, char **used, size_t n_used) {
  char *name = tp_xstrdup(base);
  for (unsigned k = 2;; k++) {
    size_t j = 0;
    while (j < n_used && strcmp(used[j], name) != 0)
      j++;
    if (j == n_used)
      return name;
    free(name);
    name = tp_xasprintf("%s-%u", base, k);
  }
}

static bool is_current(const tp_testssl_client *c) {
  return c->current != NULL && strcmp(c->current, "true") == 0;
}

/* The client's name is kept exactly, as data, when the description fits
 * agent.yaml's limit; a longer one, or one that is not UTF-8 (which the
 * writer would escape, growing it), is fitted to the limit instead, so the
 * profile always loads back. Takes ownership of text. */
static char *fit_description(char *text) {
  size_t n = strlen(text);
  if (n <= TP_AGENT_MAX_DESCRIPTION && tp_utf8_valid((const unsigned char *)text, n))
    return text;
  char *fitted = tp_text_fit(text, n, TP_AGENT_MAX_DESCRIPTION);
  free(text);
  return fitted;
}

/* Maps and writes every selected client; counts in *written / *skipped. */
static tp_err write_profiles(const tp_testssl_file *f, const char *path, bool current_only,
                             tp_profile_yaml *w, FILE *diag, size_t *written, size_t *skipped,
                             char *err, size_t errlen) {
  char **used = tp_xcalloc(f->n + 1, sizeof(char *));
  tp_err rc = TP_E_OK;
  for (size_t i = 0; i < f->n && rc == TP_E_OK; i++) {
    const tp_testssl_client *c = &f->clients[i];
    char why[1200];
    tp_testssl_profile *p;
    if (current_only && !is_current(c))
      continue;
    if (tp_testssl_map(c, &p, why, sizeof(why)) != TP_E_OK) {
      diag_skipped(diag, path, c, why);
      (*skipped)++;
      continue;
    }
    char *name = unique_name(p->name, used, *written);
    used[(*written)++] = name;
    p->spec.name = name;
    char *description = tp_xasprintf("%s (testssl.sh client-simulation, %s:%u)%s", c->name, path,
                                     c->line, is_current(c) ? ", a current client" : "");
    description = fit_description(description);
    rc = tp_profile_yaml_add(w, &p->spec, description, err, errlen);
    free(description);
    tp_testssl_profile_free(p);
  }
  for (size_t j = 0; j < *written; j++)
    free(used[j]);
  free(used);
  return rc;
}

tp_err tp_testssl_import(const char *path, bool current_only, FILE *out, FILE *diag, char *err,
                         size_t errlen) {
  tp_testssl_file *f;
  tp_profile_yaml *w;
  size_t written = 0, skipped = 0;
  tp_err rc = tp_testssl_parse(path, &f, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  /* Constant text only: everything taken from the file goes through the
   * emitter, and skipped clients are reported on diag. */
  fputs("# tlsprobe profiles imported by `tlsprobe-agent profiles import-testssl` from\n"
        "# testssl.sh client-simulation data, one per client (see each description);\n"
        "# fidelity_note says what GnuTLS cannot reproduce. Skipped clients: see stderr.\n",
        out);
  rc = tp_profile_yaml_open(out, &w, err, errlen);
  if (rc == TP_E_OK) {
    rc = write_profiles(f, path, current_only, w, diag, &written, &skipped, err, errlen);
    char close_err[256];
    tp_err crc = tp_profile_yaml_close(w, close_err, sizeof(close_err));
    if (rc == TP_E_OK && crc != TP_E_OK) {
      snprintf(err, errlen, "%s", close_err);
      rc = crc;
    }
  }
  if (rc == TP_E_OK)
    fprintf(diag, "import-testssl: %zu profiles written, %zu clients skipped\n", written, skipped);
  tp_testssl_free(f);
  return rc;
}
