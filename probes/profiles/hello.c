/* hello.c - ClientHello extension walker (supported_groups, key_share). */
#include "hello.h"

#include <stdio.h>

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

/* A length-prefixed sub-cursor. */
static int vector(cursor *c, int (*len_fn)(cursor *, size_t *), cursor *sub) {
  size_t len;
  if (len_fn(c, &len) != 0 || take(c, len, &sub->p) != 0)
    return -1;
  sub->left = len;
  return 0;
}

enum { EXT_SUPPORTED_GROUPS = 10, EXT_KEY_SHARE = 51 };

static int parse_groups(cursor ext, tp_hello_offer *offer) {
  cursor list;
  if (vector(&ext, u16, &list) != 0)
    return -1;
  size_t g;
  while (list.left > 0) {
    if (u16(&list, &g) != 0)
      return -1;
    if (offer->n_groups < sizeof(offer->groups) / sizeof(offer->groups[0]))
      offer->groups[offer->n_groups++] = (uint16_t)g;
  }
  return 0;
}

static int parse_key_shares(cursor ext, tp_hello_offer *offer) {
  cursor list;
  if (vector(&ext, u16, &list) != 0)
    return -1;
  while (list.left > 0) {
    size_t group;
    cursor key;
    if (u16(&list, &group) != 0 || vector(&list, u16, &key) != 0)
      return -1;
    if (offer->n_key_shares < sizeof(offer->key_shares) / sizeof(offer->key_shares[0]))
      offer->key_shares[offer->n_key_shares++] = (uint16_t)group;
  }
  return 0;
}

int tp_hello_parse_client_hello(const uint8_t *body, size_t len, tp_hello_offer *offer) {
  cursor c = {body, len}, skip, exts;
  offer->n_groups = 0;
  offer->n_key_shares = 0;
  /* legacy_version, random, session_id, cipher_suites, compression_methods */
  if (take(&c, 2 + 32, NULL) != 0 || vector(&c, u8, &skip) != 0 || vector(&c, u16, &skip) != 0 ||
      vector(&c, u8, &skip) != 0)
    return -1;
  if (c.left == 0)
    return 0; /* no extensions at all (very old clients) */
  if (vector(&c, u16, &exts) != 0)
    return -1;
  while (exts.left > 0) {
    size_t type;
    cursor ext;
    if (u16(&exts, &type) != 0 || vector(&exts, u16, &ext) != 0)
      return -1;
    if (type == EXT_SUPPORTED_GROUPS && parse_groups(ext, offer) != 0)
      return -1;
    if (type == EXT_KEY_SHARE && parse_key_shares(ext, offer) != 0)
      return -1;
  }
  return 0;
}

const char *tp_hello_group_name(uint16_t group, char *buf, size_t len) {
  /* RFC 8446 §4.2.7, RFC 7919 */
  static const struct {
    uint16_t id;
    const char *name;
  } names[] = {
      {23, "SECP256R1"},   {24, "SECP384R1"},   {25, "SECP521R1"},   {29, "X25519"},
      {30, "X448"},        {256, "FFDHE2048"},  {257, "FFDHE3072"},  {258, "FFDHE4096"},
      {259, "FFDHE6144"},  {260, "FFDHE8192"},
  };
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (names[i].id == group)
      return names[i].name;
  snprintf(buf, len, "0x%04x", group);
  return buf;
}
