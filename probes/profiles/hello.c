/* hello.c - ClientHello parser (see hello.h): the record layer and SSL 2.0
 * framing of a recorded hello, the ClientHello fields, and the extensions an
 * offer is made of (server_name, supported_groups, signature_algorithms,
 * ALPN, supported_versions, key_share). Every read goes through a cursor that
 * cannot pass its end. */
#include "hello.h"

#include <stdio.h>
#include <string.h>

#include "tp_buf.h"

/* A read cursor that never passes its end (s2n's stuffer idea, minimal). */
typedef struct {
  const uint8_t *p;
  size_t left;
} cursor;

static int take(cursor *c, size_t n, const uint8_t **out) {
  if (c->left < n)
    return -1;
  if (out != NULL)
    *out = c->p;
  c->p += n;
  c->left -= n;
  return 0;
}

static int u8(cursor *c, size_t *v) {
  const uint8_t *b;
  if (take(c, 1, &b) != 0)
    return -1;
  *v = b[0];
  return 0;
}

static int u16(cursor *c, size_t *v) {
  const uint8_t *b;
  if (take(c, 2, &b) != 0)
    return -1;
  *v = ((size_t)b[0] << 8) | b[1];
  return 0;
}

static int u24(cursor *c, size_t *v) {
  const uint8_t *b;
  if (take(c, 3, &b) != 0)
    return -1;
  *v = ((size_t)b[0] << 16) | ((size_t)b[1] << 8) | b[2];
  return 0;
}

/* A length-prefixed sub-cursor. */
static int vector(cursor *c, int (*len_fn)(cursor *, size_t *), cursor *sub) {
  size_t len;
  if (len_fn(c, &len) != 0 || take(c, len, &sub->p) != 0)
    return -1;
  sub->left = len;
  return 0;
}

/* Appends to a fixed array, remembering when it is full. */
static void keep(uint16_t *list, size_t *n, size_t max, uint16_t v, tp_hello_offer *offer) {
  if (*n < max)
    list[(*n)++] = v;
  else
    offer->truncated = true;
}

#define KEEP(field, v) \
  keep(offer->field, &offer->n_##field, sizeof(offer->field) / sizeof(offer->field[0]), (v), offer)

bool tp_hello_is_grease(uint16_t value) {
  /* RFC 8701 §2: 0x0A0A, 0x1A1A, ... 0xFAFA */
  return (value & 0x0f0f) == 0x0a0a && (value >> 8) == (value & 0xff);
}

/* A u16 list with its own length prefix (lenbytes 1 or 2): RFC 8446 vectors
 * of NamedGroup, SignatureScheme, ProtocolVersion. Odd lengths are errors. */
static int u16_list(cursor ext, int (*len_fn)(cursor *, size_t *), uint16_t *list, size_t *n,
                    size_t max, tp_hello_offer *offer) {
  cursor items;
  if (vector(&ext, len_fn, &items) != 0 || ext.left != 0 || items.left == 0 ||
      items.left % 2 != 0)
    return -1;
  while (items.left > 0) {
    size_t v;
    if (u16(&items, &v) != 0)
      return -1;
    if (tp_hello_is_grease((uint16_t)v))
      offer->grease = true;
    else
      keep(list, n, max, (uint16_t)v, offer);
  }
  return 0;
}

#define U16_LIST(ext, len_fn, field)                                                     \
  u16_list((ext), (len_fn), offer->field, &offer->n_##field,                               \
           sizeof(offer->field) / sizeof(offer->field[0]), offer)

/* KeyShareEntry client_shares<0..2^16-1> (RFC 8446 §4.2.8). */
static int parse_key_shares(cursor ext, tp_hello_offer *offer) {
  cursor list;
  if (vector(&ext, u16, &list) != 0 || ext.left != 0)
    return -1;
  while (list.left > 0) {
    size_t group;
    cursor key;
    if (u16(&list, &group) != 0 || vector(&list, u16, &key) != 0 || key.left == 0)
      return -1;
    if (tp_hello_is_grease((uint16_t)group))
      offer->grease = true;
    else
      KEEP(key_shares, (uint16_t)group);
  }
  return 0;
}

/* ProtocolName protocol_name_list<2..2^16-1>, names <1..2^8-1> (RFC 7301
 * §3.1). Whole names are copied while they fit. */
static int parse_alpn(cursor ext, tp_hello_offer *offer) {
  cursor list;
  if (vector(&ext, u16, &list) != 0 || ext.left != 0 || list.left == 0)
    return -1;
  while (list.left > 0) {
    const uint8_t *start = list.p;
    cursor name;
    if (vector(&list, u8, &name) != 0 || name.left == 0)
      return -1;
    size_t n = name.left + 1;
    if (offer->alpn_len + n <= sizeof(offer->alpn)) {
      memcpy(offer->alpn + offer->alpn_len, start, n);
      offer->alpn_len += n;
    } else {
      offer->truncated = true;
    }
  }
  return 0;
}

enum {
  EXT_SERVER_NAME = 0,
  EXT_SUPPORTED_GROUPS = 10,
  EXT_SIGNATURE_ALGORITHMS = 13,
  EXT_ALPN = 16,
  EXT_SUPPORTED_VERSIONS = 43,
  EXT_KEY_SHARE = 51,
};

/* One extension. Unknown types are skipped (RFC 8446 §4.2: a receiver
 * ignores extensions it does not recognise). */
static int parse_extension(size_t type, cursor ext, tp_hello_offer *offer) {
  switch (type) {
  case EXT_SERVER_NAME:
    offer->has_server_name = true;
    return 0;
  case EXT_SUPPORTED_GROUPS:
    return U16_LIST(ext, u16, groups);
  case EXT_SIGNATURE_ALGORITHMS:
    return U16_LIST(ext, u16, signature_algorithms);
  case EXT_ALPN:
    return parse_alpn(ext, offer);
  case EXT_SUPPORTED_VERSIONS:
    offer->versions_exact = true;
    return U16_LIST(ext, u8, supported_versions);
  case EXT_KEY_SHARE:
    return parse_key_shares(ext, offer);
  default:
    return 0;
  }
}

/* RFC 8446 §4.2: "There MUST NOT be more than one extension of the same
 * type in a given extension block." Checked for the types an offer reads,
 * so a second copy cannot silently replace the first. */
static int parse_extensions(cursor exts, tp_hello_offer *offer) {
  static const size_t tracked[] = {EXT_SERVER_NAME,          EXT_SUPPORTED_GROUPS,
                                   EXT_SIGNATURE_ALGORITHMS, EXT_ALPN,
                                   EXT_SUPPORTED_VERSIONS,   EXT_KEY_SHARE};
  unsigned seen = 0;
  while (exts.left > 0) {
    size_t type;
    cursor ext;
    if (u16(&exts, &type) != 0 || vector(&exts, u16, &ext) != 0)
      return -1;
    for (size_t i = 0; i < sizeof(tracked) / sizeof(tracked[0]); i++) {
      if (tracked[i] == type) {
        if (seen & (1u << i))
          return -1;
        seen |= 1u << i;
      }
    }
    if (parse_extension(type, ext, offer) != 0)
      return -1;
  }
  return 0;
}

enum {
  SUITE_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff, /* RFC 5746 §3.3 */
  SUITE_FALLBACK_SCSV = 0x5600,                 /* RFC 7507 §2 */
};

/* Signalling values ride in the suite list but are not suites: a server can
 * never select them, so they stay out of the list an engine compares with. */
static void add_suite(uint16_t id, tp_hello_offer *offer) {
  if (id == SUITE_EMPTY_RENEGOTIATION_INFO_SCSV)
    offer->renegotiation_scsv = true;
  else if (id == SUITE_FALLBACK_SCSV)
    offer->fallback_scsv = true;
  else if (tp_hello_is_grease(id))
    offer->grease = true;
  else
    KEEP(cipher_suites, id);
}

/* CipherSuite cipher_suites<2..2^16-2> */
static int parse_suites(cursor list, tp_hello_offer *offer) {
  if (list.left == 0 || list.left % 2 != 0)
    return -1;
  while (list.left > 0) {
    size_t id;
    if (u16(&list, &id) != 0)
      return -1;
    add_suite((uint16_t)id, offer);
  }
  return 0;
}

/* opaque legacy_compression_methods<1..2^8-1>; 0 is null (RFC 5246 §6.2.2) */
static int parse_compression(cursor list, tp_hello_offer *offer) {
  if (list.left == 0)
    return -1;
  while (list.left > 0) {
    size_t m;
    if (u8(&list, &m) != 0)
      return -1;
    if (m != 0)
      offer->compression = true;
  }
  return 0;
}

/* TLS versions up to `highest`, from 1.0. */
static unsigned versions_up_to(size_t highest) {
  static const unsigned bits[] = {TP_TLS1_0, TP_TLS1_1, TP_TLS1_2};
  unsigned mask = 0;
  for (size_t v = TP_WIRE_TLS1_0; v <= TP_WIRE_TLS1_2 && v <= highest; v++)
    mask |= bits[v - TP_WIRE_TLS1_0];
  return mask;
}

/* RFC 8446 §4.2.1: with supported_versions, legacy_version is ignored and
 * only final versions count -- drafts (0x7fXX) and SSL 3.0 are not TLS
 * 1.0-1.3. Without it, TLS 1.3 cannot be negotiated at all. */
static void derive_versions(tp_hello_offer *offer) {
  if (!offer->versions_exact) {
    offer->versions = versions_up_to(offer->legacy_version);
    return;
  }
  offer->versions = 0;
  for (size_t i = 0; i < offer->n_supported_versions; i++) {
    uint16_t v = offer->supported_versions[i];
    if (v >= TP_WIRE_TLS1_0 && v <= TP_WIRE_TLS1_3)
      offer->versions |= 1u << (v - TP_WIRE_TLS1_0);
  }
}

int tp_hello_parse_client_hello(const uint8_t *body, size_t len, tp_hello_offer *offer) {
  cursor c = {body, len}, session_id, suites, compression, exts;
  size_t version;
  memset(offer, 0, sizeof(*offer));
  if (u16(&c, &version) != 0 || take(&c, 32, NULL) != 0 || vector(&c, u8, &session_id) != 0 ||
      session_id.left > 32 || vector(&c, u16, &suites) != 0 || vector(&c, u8, &compression) != 0)
    return -1;
  offer->legacy_version = (uint16_t)version;
  if (parse_suites(suites, offer) != 0 || parse_compression(compression, offer) != 0)
    return -1;
  if (c.left > 0) { /* very old clients send no extensions at all */
    if (vector(&c, u16, &exts) != 0 || c.left != 0 || parse_extensions(exts, offer) != 0)
      return -1;
  }
  derive_versions(offer);
  return 0;
}

/* ---- framing of a recorded hello --------------------------------------- */

enum {
  CONTENT_HANDSHAKE = 22,  /* RFC 8446 §5.1 ContentType */
  HANDSHAKE_CLIENT_HELLO = 1,
  MAX_FRAGMENT = 1u << 14, /* TLSPlaintext.length limit, §5.1 */
  MAX_RECORDED = 1u << 16, /* a larger hello is not a recorded client's */
};

/* Joins the fragments of consecutive handshake records into `msg` (one
 * message may span records, §5.1). */
static int join_records(cursor c, tp_buf *msg, const char **why) {
  while (c.left > 0) {
    size_t type, version, len;
    const uint8_t *fragment;
    if (u8(&c, &type) != 0 || u16(&c, &version) != 0 || u16(&c, &len) != 0 ||
        take(&c, len, &fragment) != 0) {
      *why = "truncated TLS record";
      return -1;
    }
    if (type != CONTENT_HANDSHAKE || (version >> 8) != 3 || len == 0 || len > MAX_FRAGMENT) {
      *why = "not a TLS handshake record (RFC 8446 §5.1)";
      return -1;
    }
    if (tp_buf_append(msg, fragment, len) != TP_E_OK) {
      *why = "handshake longer than 64 KiB";
      return -1;
    }
  }
  return 0;
}

static int parse_handshake(cursor m, tp_hello_offer *offer, const char **why) {
  cursor body;
  size_t type;
  if (u8(&m, &type) != 0 || type != HANDSHAKE_CLIENT_HELLO) {
    *why = "the handshake message is not a ClientHello";
    return -1;
  }
  if (vector(&m, u24, &body) != 0 || m.left != 0) {
    *why = "the ClientHello length does not match its records";
    return -1;
  }
  if (tp_hello_parse_client_hello(body.p, body.left, offer) != 0) {
    *why = "malformed ClientHello (RFC 8446 §4.1.2)";
    return -1;
  }
  return 0;
}

static int parse_tls_records(cursor c, tp_hello_offer *offer, const char **why) {
  tp_buf msg;
  tp_buf_init(&msg, MAX_RECORDED);
  int rc = join_records(c, &msg, why);
  if (rc == 0) {
    cursor m = {msg.data, msg.len};
    rc = parse_handshake(m, offer, why);
  }
  tp_buf_free(&msg);
  return rc;
}

/* RFC 5246 Appendix E.2: msg_length (2 bytes, high bit set), msg_type 1,
 * version, three lengths, then cipher_specs (3 bytes each), session_id and
 * challenge. A spec whose first byte is 0 is a TLS cipher suite. */
static int parse_sslv2(cursor c, tp_hello_offer *offer, const char **why) {
  size_t len, type, version, specs_len, sid_len, challenge_len;
  cursor msg, specs;
  memset(offer, 0, sizeof(*offer));
  *why = "malformed SSL 2.0-compatible CLIENT-HELLO (RFC 5246 Appendix E.2)";
  if (u16(&c, &len) != 0 || take(&c, len & 0x7fff, &msg.p) != 0 || c.left != 0)
    return -1;
  msg.left = len & 0x7fff;
  if (u8(&msg, &type) != 0 || type != HANDSHAKE_CLIENT_HELLO || u16(&msg, &version) != 0 ||
      u16(&msg, &specs_len) != 0 || u16(&msg, &sid_len) != 0 || u16(&msg, &challenge_len) != 0)
    return -1;
  /* session_id is 0 or 16 bytes, the challenge 16..32 (E.2) */
  if (specs_len == 0 || specs_len % 3 != 0 || (sid_len != 0 && sid_len != 16) ||
      challenge_len < 16 || challenge_len > 32 || take(&msg, specs_len, &specs.p) != 0 ||
      take(&msg, sid_len + challenge_len, NULL) != 0 || msg.left != 0)
    return -1;
  specs.left = specs_len;
  offer->legacy_version = (uint16_t)version;
  offer->sslv2_format = true;
  while (specs.left > 0) {
    const uint8_t *s;
    if (take(&specs, 3, &s) != 0)
      return -1;
    if (s[0] == 0)
      add_suite((uint16_t)(s[1] << 8 | s[2]), offer);
    else
      offer->n_sslv2_only_specs++;
  }
  derive_versions(offer);
  return 0;
}

int tp_hello_parse_recorded(const uint8_t *bytes, size_t len, tp_hello_offer *offer,
                            const char **why) {
  cursor c = {bytes, len};
  memset(offer, 0, sizeof(*offer));
  if (len == 0) {
    *why = "empty";
    return -1;
  }
  if (bytes[0] & 0x80)
    return parse_sslv2(c, offer, why);
  return parse_tls_records(c, offer, why);
}

/* ---- names -------------------------------------------------------------- */

typedef struct {
  uint16_t id;
  const char *name;
} code_name;

static const char *lookup(const code_name *table, size_t n, uint16_t id, char *buf, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (table[i].id == id)
      return table[i].name;
  snprintf(buf, len, "0x%04x", id);
  return buf;
}

const char *tp_hello_group_name(uint16_t group, char *buf, size_t len) {
  /* RFC 8446 §4.2.7, RFC 7919, RFC 8422 §5.1.1 (deprecated curves, as the
   * registry names them), RFC 7027 (brainpool) */
  static const code_name names[] = {
      {1, "sect163k1"},        {2, "sect163r1"},        {3, "sect163r2"},
      {4, "sect193r1"},        {5, "sect193r2"},        {6, "sect233k1"},
      {7, "sect233r1"},        {8, "sect239k1"},        {9, "sect283k1"},
      {10, "sect283r1"},       {11, "sect409k1"},       {12, "sect409r1"},
      {13, "sect571k1"},       {14, "sect571r1"},       {15, "secp160k1"},
      {16, "secp160r1"},       {17, "secp160r2"},       {18, "secp192k1"},
      {19, "SECP192R1"},       {20, "secp224k1"},       {21, "SECP224R1"},
      {22, "secp256k1"},       {23, "SECP256R1"},       {24, "SECP384R1"},
      {25, "SECP521R1"},       {26, "brainpoolP256r1"}, {27, "brainpoolP384r1"},
      {28, "brainpoolP512r1"}, {29, "X25519"},          {30, "X448"},
      {256, "FFDHE2048"},      {257, "FFDHE3072"},      {258, "FFDHE4096"},
      {259, "FFDHE6144"},      {260, "FFDHE8192"},      {0xff01, "arbitrary_explicit_prime_curves"},
      {0xff02, "arbitrary_explicit_char2_curves"},
  };
  return lookup(names, sizeof(names) / sizeof(names[0]), group, buf, len);
}

const char *tp_hello_sigalg_name(uint16_t scheme, char *buf, size_t len) {
  /* RFC 8446 §4.2.3; the 0x01..0x06 / 0x01..0x03 pairs are RFC 5246
   * §7.4.1.4.1 HashAlgorithm x SignatureAlgorithm, named as the registry
   * names them (legacy ones by their hash and signature). */
  static const code_name names[] = {
      {0x0101, "rsa_md5"},
      {0x0102, "dsa_md5"},
      {0x0103, "ecdsa_md5"},
      {0x0201, "rsa_pkcs1_sha1"},
      {0x0202, "dsa_sha1"},
      {0x0203, "ecdsa_sha1"},
      {0x0301, "rsa_sha224"},
      {0x0302, "dsa_sha224"},
      {0x0303, "ecdsa_sha224"},
      {0x0401, "rsa_pkcs1_sha256"},
      {0x0402, "dsa_sha256"},
      {0x0403, "ecdsa_secp256r1_sha256"},
      {0x0501, "rsa_pkcs1_sha384"},
      {0x0502, "dsa_sha384"},
      {0x0503, "ecdsa_secp384r1_sha384"},
      {0x0601, "rsa_pkcs1_sha512"},
      {0x0602, "dsa_sha512"},
      {0x0603, "ecdsa_secp521r1_sha512"},
      {0x0804, "rsa_pss_rsae_sha256"},
      {0x0805, "rsa_pss_rsae_sha384"},
      {0x0806, "rsa_pss_rsae_sha512"},
      {0x0807, "ed25519"},
      {0x0808, "ed448"},
      {0x0809, "rsa_pss_pss_sha256"},
      {0x080a, "rsa_pss_pss_sha384"},
      {0x080b, "rsa_pss_pss_sha512"},
      {0x081a, "ecdsa_brainpoolP256r1tls13_sha256"},
      {0x081b, "ecdsa_brainpoolP384r1tls13_sha384"},
      {0x081c, "ecdsa_brainpoolP512r1tls13_sha512"},
  };
  return lookup(names, sizeof(names) / sizeof(names[0]), scheme, buf, len);
}

const char *tp_hello_version_name(uint16_t version, char *buf, size_t len) {
  static const code_name names[] = {
      {0x0002, "SSL2.0"}, {0x0200, "SSL2.0"}, {0x0300, "SSL3.0"}, {0x0301, "TLS1.0"},
      {0x0302, "TLS1.1"}, {0x0303, "TLS1.2"}, {0x0304, "TLS1.3"},
  };
  /* draft-ietf-tls-tls13-NN was 0x7f00 | NN */
  if ((version >> 8) == 0x7f) {
    snprintf(buf, len, "TLS1.3-draft%u", version & 0xffu);
    return buf;
  }
  return lookup(names, sizeof(names) / sizeof(names[0]), version, buf, len);
}
