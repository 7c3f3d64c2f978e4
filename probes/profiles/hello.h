/* hello.h - reads our own ClientHello (RFC 8446 §4.1.2) as GnuTLS sent it and
 * extracts the groups and key shares offered: evidence of what a profile
 * really emulated. Bytes come from GnuTLS's handshake hook; they are parsed
 * with bounds checks anyway, like any wire data. */
#ifndef TP_HELLO_H
#define TP_HELLO_H
#include <stddef.h>
#include <stdint.h>

typedef struct tp_hello_offer {
  uint16_t groups[64];
  size_t n_groups;
  uint16_t key_shares[16];
  size_t n_key_shares;
} tp_hello_offer;

/* Parses a ClientHello body (without the 4-byte handshake header).
 * Returns 0, or -1 if the message is malformed (offer is then partial). */
int tp_hello_parse_client_hello(const uint8_t *body, size_t len, tp_hello_offer *offer);

/* IANA NamedGroup code point -> "X25519", "SECP256R1", "FFDHE2048"...;
 * writes "0x%04x" into buf for unknown ones and returns buf. */
const char *tp_hello_group_name(uint16_t group, char *buf, size_t len);

#endif
