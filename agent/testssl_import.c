/* testssl_import.c - testssl.sh client-simulation data -> tlsprobe profiles.
 *
 * Three steps, one per section: parse the bash-array file as data (never
 * executing it), map one client's OpenSSL-style names to GnuTLS names in the
 * client's order, and write the profiles as YAML with a fidelity_note that
 * says what GnuTLS cannot reproduce -- measured against the real library by
 * comparing the suites the profile offers with the client's list. */
#include "testssl_import.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "priority.h"
#include "profile_yaml.h"
#include "tp_buf.h"
#include "tp_mem.h"

#include <gnutls/gnutls.h>

/* ---- parsing ---------------------------------------------------------- */

#define MAX_LINE 65536
#define MAX_CLIENTS 10000

struct tp_testssl_file {
  tp_testssl_client *clients;
  size_t n, cap;
};

/* The keys we read; everything else (handshakebytes, minDhBits...) is
 * skipped. tls13ciphers is the older spelling of ciphersuites. */
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
      line[strcspn(line, "\r\n")] = '\0';
      snprintf(err, errlen, "%s:%u: %s (testssl.sh client-simulation data), got \"%.60s\"", path,
               lineno, why, s);
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
        snprintf(err, errlen, "%s:%u: second %s+= for client \"%s\" (line %u)", path, lineno,
                 key, cur->name, cur->line);
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

/* ---- OpenSSL names ---------------------------------------------------- */

/* OpenSSL suite names are [KX-]CIPHER-MAC with RSA key exchange when the
 * prefix is absent (openssl-ciphers(1)). Longest prefixes first. */
static const struct {
  const char *prefix, *kx;
} kx_prefixes[] = {
    {"ECDHE-RSA-", "ECDHE-RSA"}, {"ECDHE-ECDSA-", "ECDHE-ECDSA"}, {"ECDHE-PSK-", "ECDHE-PSK"},
    {"ECDH-RSA-", "ECDH-RSA"},   {"ECDH-ECDSA-", "ECDH-ECDSA"},   {"AECDH-", "ANON-ECDH"},
    {"DHE-RSA-", "DHE-RSA"},     {"EDH-RSA-", "DHE-RSA"},         {"DHE-DSS-", "DHE-DSS"},
    {"EDH-DSS-", "DHE-DSS"},     {"DHE-PSK-", "DHE-PSK"},         {"DH-RSA-", "DH-RSA"},
    {"DH-DSS-", "DH-DSS"},       {"ADH-", "ANON-DH"},             {"SRP-RSA-", "SRP-RSA"},
    {"SRP-DSS-", "SRP-DSS"},     {"SRP-", "SRP"},                 {"RSA-PSK-", "RSA-PSK"},
    {"PSK-", "PSK"},
};

static const struct {
  const char *rest, *cipher, *mac;
} cipher_macs[] = {
    {"AES128-GCM-SHA256", "AES-128-GCM", "AEAD"},
    {"AES256-GCM-SHA384", "AES-256-GCM", "AEAD"},
    {"AES128-CCM", "AES-128-CCM", "AEAD"},
    {"AES256-CCM", "AES-256-CCM", "AEAD"},
    {"AES128-CCM8", "AES-128-CCM-8", "AEAD"},
    {"AES256-CCM8", "AES-256-CCM-8", "AEAD"},
    {"CHACHA20-POLY1305", "CHACHA20-POLY1305", "AEAD"},
    {"AES128-SHA", "AES-128-CBC", "SHA1"},
    {"AES256-SHA", "AES-256-CBC", "SHA1"},
    {"AES128-SHA256", "AES-128-CBC", "SHA256"},
    {"AES256-SHA256", "AES-256-CBC", "SHA256"},
    {"AES256-SHA384", "AES-256-CBC", "SHA384"},
    {"AES-128-CBC-SHA", "AES-128-CBC", "SHA1"}, /* SRP suites */
    {"AES-256-CBC-SHA", "AES-256-CBC", "SHA1"},
    {"CAMELLIA128-SHA", "CAMELLIA-128-CBC", "SHA1"},
    {"CAMELLIA256-SHA", "CAMELLIA-256-CBC", "SHA1"},
    {"CAMELLIA128-SHA256", "CAMELLIA-128-CBC", "SHA256"},
    {"CAMELLIA256-SHA256", "CAMELLIA-256-CBC", "SHA256"},
    {"CAMELLIA256-SHA384", "CAMELLIA-256-CBC", "SHA384"},
    {"ARIA128-GCM-SHA256", "ARIA-128-GCM", "AEAD"},
    {"ARIA256-GCM-SHA384", "ARIA-256-GCM", "AEAD"},
    {"DES-CBC3-SHA", "3DES-CBC", "SHA1"},
    {"3DES-EDE-CBC-SHA", "3DES-CBC", "SHA1"},
    {"DES-CBC-SHA", "DES-CBC", "SHA1"},
    {"RC4-SHA", "ARCFOUR-128", "SHA1"},
    {"RC4-MD5", "ARCFOUR-128", "MD5"},
    {"NULL-SHA", "NULL", "SHA1"},
    {"NULL-MD5", "NULL", "MD5"},
    {"NULL-SHA256", "NULL", "SHA256"},
    {"SEED-SHA", "SEED-CBC", "SHA1"},
    {"IDEA-CBC-SHA", "IDEA-CBC", "SHA1"},
};

/* TLS 1.3 suites (RFC 8446 §B.4): the cipher decides everything. */
static const struct {
  const char *iana, *cipher;
} tls13_suites[] = {
    {"TLS_AES_128_GCM_SHA256", "AES-128-GCM"},
    {"TLS_AES_256_GCM_SHA384", "AES-256-GCM"},
    {"TLS_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305"},
    {"TLS_AES_128_CCM_SHA256", "AES-128-CCM"},
    {"TLS_AES_128_CCM_8_SHA256", "AES-128-CCM-8"},
};

static const char *tls13_cipher(const char *name) {
  for (size_t i = 0; i < sizeof(tls13_suites) / sizeof(tls13_suites[0]); i++)
    if (strcmp(tls13_suites[i].iana, name) == 0)
      return tls13_suites[i].cipher;
  return NULL;
}

bool tp_openssl_suite_parse(const char *name, const char **kx, const char **cipher,
                            const char **mac) {
  /* Export (EXP-, EXP1024-), GOST and SSL 2.0-only names (DES-CBC3-MD5...) do
   * not decompose into TLS parts: the cipher_macs lookup rejects them. */
  *kx = "RSA";
  const char *rest = name;
  for (size_t i = 0; i < sizeof(kx_prefixes) / sizeof(kx_prefixes[0]); i++) {
    size_t n = strlen(kx_prefixes[i].prefix);
    if (strncmp(name, kx_prefixes[i].prefix, n) == 0) {
      *kx = kx_prefixes[i].kx;
      rest = name + n;
      break;
    }
  }
  for (size_t i = 0; i < sizeof(cipher_macs) / sizeof(cipher_macs[0]); i++) {
    if (strcmp(rest, cipher_macs[i].rest) == 0) {
      *cipher = cipher_macs[i].cipher;
      *mac = cipher_macs[i].mac;
      return true;
    }
  }
  return false;
}

bool tp_openssl_suite_supported(const char *kx, const char *cipher, const char *mac) {
  if (tp_priority_canonical(TP_PRIO_KX, kx) == NULL ||
      tp_priority_canonical(TP_PRIO_CIPHER, cipher) == NULL ||
      tp_priority_canonical(TP_PRIO_MAC, mac) == NULL)
    return false;
  unsigned char id[2];
  gnutls_kx_algorithm_t k;
  gnutls_cipher_algorithm_t c;
  gnutls_mac_algorithm_t m;
  gnutls_protocol_t v;
  for (size_t i = 0; gnutls_cipher_suite_info(i, id, &k, &c, &m, &v) != NULL; i++) {
    if (k != GNUTLS_KX_UNKNOWN && strcmp(gnutls_kx_get_name(k), kx) == 0 &&
        strcmp(gnutls_cipher_get_name(c), cipher) == 0 && strcmp(gnutls_mac_get_name(m), mac) == 0)
      return true;
  }
  return false;
}

const char *tp_openssl_group(const char *curve) {
  static const struct {
    const char *openssl, *gnutls;
  } aliases[] = {
      {"prime256v1", "SECP256R1"}, {"prime192v1", "SECP192R1"}, {"secp192r1", "SECP192R1"},
      {"secp224r1", "SECP224R1"},  {"secp256r1", "SECP256R1"},  {"secp384r1", "SECP384R1"},
      {"secp521r1", "SECP521R1"},  {"x25519", "X25519"},        {"x448", "X448"},
      {"ffdhe2048", "FFDHE2048"},  {"ffdhe3072", "FFDHE3072"},  {"ffdhe4096", "FFDHE4096"},
      {"ffdhe6144", "FFDHE6144"},  {"ffdhe8192", "FFDHE8192"},
  };
  for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
    if (strcasecmp(aliases[i].openssl, curve) == 0)
      return tp_priority_canonical(TP_PRIO_GROUP, aliases[i].gnutls);
  return NULL;
}

/* ---- mapping ---------------------------------------------------------- */

#define MAX_ITEMS 256

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

/* Note text with a cap on how many names it lists. */
static void add_names(tp_buf *note, const char *what, char **names, size_t n) {
  if (n == 0)
    return;
  char head[128];
  snprintf(head, sizeof(head), "%s%s (%zu): ", note->len ? "; " : "", what, n);
  (void)tp_buf_append(note, head, strlen(head));
  for (size_t i = 0; i < n && i < 8; i++) {
    if (i)
      (void)tp_buf_append(note, ", ", 2);
    (void)tp_buf_append(note, names[i], strlen(names[i]));
  }
  if (n > 8)
    (void)tp_buf_append(note, ", ...", 5);
}

struct tp_testssl_profile {
  tp_profile_spec spec;
  char *name, *note;
  const char **ciphers, **kx, **macs, **groups, **alpn;
  char *alpn_text; /* the alpn strings point into it */
};

static const char **dup_list(const name_set *s) {
  if (s->n == 0)
    return NULL;
  const char **out = tp_xcalloc(s->n + 1, sizeof(char *));
  memcpy(out, s->items, s->n * sizeof(char *));
  return out;
}

/* Lowercase [a-z0-9._-] name for the profile. */
static char *profile_name(const tp_testssl_client *c) {
  const char *src = c->short_name && c->short_name[0] ? c->short_name : c->name;
  char *out = tp_xstrdup(src);
  for (char *p = out; *p; p++) {
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
    else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
               *p == '_'))
      *p = '_';
  }
  return out;
}

static unsigned versions_of(const tp_testssl_client *c, unsigned *lo_out) {
  unsigned long lo = strtoul(c->lowest_protocol, NULL, 16);
  unsigned long hi = strtoul(c->highest_protocol, NULL, 16);
  *lo_out = (unsigned)lo;
  static const unsigned bits[] = {TP_TLS1_0, TP_TLS1_1, TP_TLS1_2, TP_TLS1_3};
  unsigned mask = 0;
  for (unsigned v = 0x0301; v <= 0x0304; v++)
    if (v >= lo && v <= hi)
      mask |= bits[v - 0x0301];
  return mask;
}

/* Splits `list` on `sep` into a new array of new strings (NULL-terminated). */
static char **split(const char *list, char sep, size_t *count) {
  size_t n = 0, cap = 8;
  char **out = tp_xcalloc(cap + 1, sizeof(char *));
  const char *p = list ? list : "";
  while (*p) {
    const char *end = strchr(p, sep);
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 0) {
      if (n == cap) {
        cap *= 2;
        out = tp_xrealloc(out, (cap + 1) * sizeof(char *));
      }
      out[n++] = tp_xstrndup(p, len);
      out[n] = NULL;
    }
    p += len + (end ? 1 : 0);
  }
  *count = n;
  return out;
}

static void free_split(char **v) {
  if (v == NULL)
    return;
  for (size_t i = 0; v[i]; i++)
    free(v[i]);
  free(v);
}

/* The suites the built profile offers vs the client's, as note text. */
static void compare_suites(tp_buf *note, const char *prio, unsigned mask, const unsigned *client,
                           size_t n_client) {
  tp_offered_suite offered[256];
  long n = tp__priority_offered(prio, mask, offered, 256);
  if (n < 0)
    return;
  if (n > 256)
    n = 256;
  char *extra[256];
  size_t n_extra = 0;
  unsigned common_client[256], common_offered[256];
  size_t nc = 0, no = 0;
  for (long i = 0; i < n; i++) {
    size_t j = 0;
    while (j < n_client && client[j] != offered[i].id)
      j++;
    if (j == n_client)
      extra[n_extra++] = (char *)offered[i].name;
    else if (no < 256)
      common_offered[no++] = offered[i].id;
  }
  for (size_t j = 0; j < n_client && nc < 256; j++)
    for (long i = 0; i < n; i++)
      if (offered[i].id == client[j]) {
        common_client[nc++] = client[j];
        break;
      }
  add_names(note, "extra suites GnuTLS adds (it offers every combination of the lists)", extra,
            n_extra);
  if (nc == no && memcmp(common_client, common_offered, nc * sizeof(unsigned)) != 0) {
    const char *t = "; suite order differs (GnuTLS orders key exchange, then cipher, then MAC)";
    (void)tp_buf_append(note, t + (note->len ? 0 : 2), strlen(t + (note->len ? 0 : 2)));
  }
}

/* IANA id of the GnuTLS suite with these parts, 0 if none. */
static unsigned suite_id(const char *kx, const char *cipher, const char *mac) {
  unsigned char id[2];
  gnutls_kx_algorithm_t k;
  gnutls_cipher_algorithm_t c;
  gnutls_mac_algorithm_t m;
  gnutls_protocol_t v;
  for (size_t i = 0; gnutls_cipher_suite_info(i, id, &k, &c, &m, &v) != NULL; i++) {
    bool kx_ok = kx == NULL ? k == GNUTLS_KX_UNKNOWN
                            : (k != GNUTLS_KX_UNKNOWN && strcmp(gnutls_kx_get_name(k), kx) == 0);
    if (kx_ok && strcmp(gnutls_cipher_get_name(c), cipher) == 0 &&
        strcmp(gnutls_mac_get_name(m), mac) == 0)
      return (unsigned)id[0] << 8 | id[1];
  }
  return 0;
}

tp_err tp_testssl_map(const tp_testssl_client *c, tp_testssl_profile **out, char *why,
                      size_t whylen) {
  if (c->lowest_protocol == NULL || c->highest_protocol == NULL) {
    snprintf(why, whylen, "no lowest_protocol/highest_protocol in the data");
    return TP_E_NOTFOUND;
  }
  unsigned lo;
  unsigned mask = versions_of(c, &lo);
  if (mask == 0) {
    snprintf(why, whylen, "offers only SSL 2.0/3.0 (%s..%s), which GnuTLS does not have",
             c->lowest_protocol, c->highest_protocol);
    return TP_E_NOTFOUND;
  }
  tp_testssl_profile *p = tp_xcalloc(1, sizeof(*p));
  name_set ciphers = {.n = 0}, kx = {.n = 0}, macs = {.n = 0}, groups = {.n = 0};
  char *unsupported[MAX_ITEMS], *bad_curves[MAX_ITEMS];
  size_t n_unsupported = 0, n_bad_curves = 0;
  unsigned client_ids[MAX_ITEMS];
  size_t n_ids = 0;
  tp_buf note;
  tp_buf_init(&note, 4096);
  tp_err rc = TP_E_NOTFOUND;

  /* TLS 1.3 suites first: they share the cipher list, and the client lists
   * them first. Some clients put them in ciphers[] too. */
  size_t n13, n12;
  char **s13 = split(c->ciphersuites, ':', &n13);
  char **s12 = split(c->ciphers, ':', &n12);
  for (int pass = 0; pass < 2; pass++) {
    char **names = pass == 0 ? s13 : s12;
    for (size_t i = 0; names[i] != NULL; i++) {
      const char *cipher = tls13_cipher(names[i]);
      if (cipher != NULL) {
        if (!(mask & TP_TLS1_3))
          continue;
        unsigned id = suite_id(NULL, cipher, "AEAD");
        if (id == 0 || tp_priority_canonical(TP_PRIO_CIPHER, cipher) == NULL) {
          if (n_unsupported < MAX_ITEMS)
            unsupported[n_unsupported++] = names[i];
          continue;
        }
        add_name(&ciphers, tp_priority_canonical(TP_PRIO_CIPHER, cipher));
        add_name(&macs, "AEAD");
        if (n_ids < MAX_ITEMS)
          client_ids[n_ids++] = id;
        continue;
      }
      const char *k, *ci, *m;
      if (pass == 0 || !(mask & (TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2)) ||
          !tp_openssl_suite_parse(names[i], &k, &ci, &m) || !tp_openssl_suite_supported(k, ci, m)) {
        if (pass == 1 && !(mask & (TP_TLS1_0 | TP_TLS1_1 | TP_TLS1_2)))
          continue; /* a TLS 1.3-only client never sends these */
        if (n_unsupported < MAX_ITEMS)
          unsupported[n_unsupported++] = names[i];
        continue;
      }
      add_name(&kx, tp_priority_canonical(TP_PRIO_KX, k));
      add_name(&ciphers, tp_priority_canonical(TP_PRIO_CIPHER, ci));
      add_name(&macs, tp_priority_canonical(TP_PRIO_MAC, m));
      if (n_ids < MAX_ITEMS)
        client_ids[n_ids++] = suite_id(k, ci, m);
    }
  }
  size_t n_curves;
  char **curves = split(c->curves, ':', &n_curves);
  for (size_t i = 0; i < n_curves; i++) {
    const char *g = tp_openssl_group(curves[i]);
    if (g != NULL)
      add_name(&groups, g);
    else if (n_bad_curves < MAX_ITEMS)
      bad_curves[n_bad_curves++] = curves[i];
  }

  p->name = profile_name(c);
  p->spec.name = p->name;
  p->spec.versions = mask;
  p->spec.ciphers = p->ciphers = dup_list(&ciphers);
  p->spec.key_exchanges = p->kx = dup_list(&kx);
  p->spec.macs = p->macs = dup_list(&macs);
  p->spec.groups = p->groups = dup_list(&groups);
  if (c->alpn != NULL && c->alpn[0] != '\0') {
    size_t n;
    char **a = split(c->alpn, ',', &n);
    p->alpn = tp_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
      p->alpn[i] = a[i]; /* ownership moves to p->alpn */
    free(a);
    p->spec.alpn = p->alpn;
  }
  /* An empty sni means the client sends none; "$SNI" is testssl's
   * placeholder for "the target's name". */
  if (c->sni != NULL && c->sni[0] == '\0')
    p->spec.sni_mode = TP_SNI_OFF;

  if (ciphers.n == 0) {
    snprintf(why, whylen, "none of its cipher suites exists in GnuTLS");
    goto out;
  }
  if (lo < 0x0301) {
    const char *t = lo < 0x0300 ? "SSL 2.0 and 3.0 not available in GnuTLS"
                                : "SSL 3.0 not available in GnuTLS";
    (void)tp_buf_append(&note, t, strlen(t));
  }
  add_names(&note, "suites GnuTLS cannot offer", unsupported, n_unsupported);
  add_names(&note, "curves GnuTLS cannot offer", bad_curves, n_bad_curves);
  if (n_curves == 0 && kx.n > 0) {
    const char *t = "; no curves in the data: GnuTLS's default groups are offered";
    (void)tp_buf_append(&note, t + (note.len ? 0 : 2), strlen(t + (note.len ? 0 : 2)));
  }
  char err[1024];
  char *prio = tp__priority_build(&p->spec, err, sizeof(err));
  if (prio == NULL) {
    snprintf(why, whylen, "GnuTLS cannot build it: %s", err);
    goto out;
  }
  compare_suites(&note, prio, mask, client_ids, n_ids);
  free(prio);
  const char *t = "; signature algorithms, extensions and their order are GnuTLS's";
  (void)tp_buf_append(&note, t + (note.len ? 0 : 2), strlen(t + (note.len ? 0 : 2)));
  p->note = tp_xstrndup((const char *)note.data, note.len);
  p->spec.fidelity_note = p->note;
  *out = p;
  p = NULL;
  rc = TP_E_OK;
out:
  tp_buf_free(&note);
  free_split(s13);
  free_split(s12);
  free_split(curves);
  tp_testssl_profile_free(p);
  return rc;
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
  if (p->alpn != NULL)
    for (size_t i = 0; p->alpn[i] != NULL; i++)
      free((char *)p->alpn[i]);
  free(p->alpn);
  free(p);
}

/* ---- the command ------------------------------------------------------ */

tp_err tp_testssl_import(const char *path, bool current_only, FILE *out, FILE *diag, char *err,
                         size_t errlen) {
  tp_testssl_file *f;
  tp_err rc = tp_testssl_parse(path, &f, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  size_t written = 0, skipped = 0;
  char **used = tp_xcalloc(f->n, sizeof(char *));
  fprintf(out, "# tlsprobe profiles imported from %s by `tlsprobe-agent profiles "
               "import-testssl`.\n# One profile per client; fidelity_note says what GnuTLS "
               "cannot reproduce.\nprofiles:\n",
          path);
  for (size_t i = 0; i < f->n; i++) {
    const tp_testssl_client *c = &f->clients[i];
    if (current_only && (c->current == NULL || strcmp(c->current, "true") != 0))
      continue;
    char why[1200];
    tp_testssl_profile *p;
    if (tp_testssl_map(c, &p, why, sizeof(why)) != TP_E_OK) {
      fprintf(out, "  # skipped \"%s\" (%s:%u): ", c->name, path, c->line);
      for (const char *w = why; *w; w++)
        fputc((unsigned char)*w < 0x20 ? ' ' : *w, out);
      fputc('\n', out);
      fprintf(diag, "import-testssl: skipped \"%s\" (%s:%u): %s\n", c->name, path, c->line, why);
      skipped++;
      continue;
    }
    /* Profile names must be unique in a config: suffix repeats. */
    char *name = tp_xstrdup(p->name);
    for (unsigned k = 2;; k++) {
      size_t j = 0;
      while (j < written && strcmp(used[j], name) != 0)
        j++;
      if (j == written)
        break;
      free(name);
      name = tp_xasprintf("%s-%u", p->name, k);
    }
    used[written++] = name;
    p->spec.name = name;
    char comment[512];
    snprintf(comment, sizeof(comment), "%s (testssl.sh client-simulation, %s:%u)%s", c->name,
             path, c->line,
             c->current && strcmp(c->current, "true") == 0 ? ", a current client" : "");
    tp_profile_yaml_write(out, &p->spec, comment);
    tp_testssl_profile_free(p);
  }
  fprintf(diag, "import-testssl: %zu profiles written, %zu clients skipped\n", written, skipped);
  for (size_t j = 0; j < written; j++)
    free(used[j]);
  free(used);
  tp_testssl_free(f);
  return TP_E_OK;
}
