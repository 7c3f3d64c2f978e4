/* outcome.h - the probe outcome taxonomy: one class per probe, with a stable
 * snake_case name (what users see in reports and alerts), the protobuf enum
 * value it travels as, a category and who usually has to act.
 * One X-macro list; tests/unit/test_outcome.c checks that names are unique and
 * agree with the protobuf enum. docs/errors.md explains every row. */
#ifndef TP_OUTCOME_H
#define TP_OUTCOME_H
#include <stdbool.h>

typedef enum {
  TP_CAT_NONE,     /* success */
  TP_CAT_NETWORK,  /* path between agent and server */
  TP_CAT_SERVER,   /* server configuration: the server owner acts */
  TP_CAT_CLIENT,   /* client population / trust store: the client owner acts */
  TP_CAT_POLICY,   /* client and server policies do not overlap: decide who moves */
  TP_CAT_INTERNAL, /* the prober itself or an unclassified error */
} tp_outcome_category;

/* X(ENUM, snake_name, proto_value, category) */
#define TP_OUTCOME_MAP(X)                                          \
  X(OK, "ok", 1, TP_CAT_NONE)                                      \
  X(DNS_FAILURE, "dns_failure", 2, TP_CAT_NETWORK)                 \
  X(CONNECTION_REFUSED, "connection_refused", 3, TP_CAT_SERVER)    \
  X(CONNECT_TIMEOUT, "connect_timeout", 4, TP_CAT_NETWORK)         \
  X(CONNECTION_RESET, "connection_reset", 5, TP_CAT_NETWORK)       \
  X(HANDSHAKE_TIMEOUT, "handshake_timeout", 6, TP_CAT_SERVER)      \
  X(UNEXPECTED_EOF, "unexpected_eof", 7, TP_CAT_SERVER)            \
  X(PROTOCOL_VERSION, "protocol_version", 8, TP_CAT_POLICY)        \
  X(NO_SHARED_CIPHER, "no_shared_cipher", 9, TP_CAT_POLICY)        \
  X(NO_SHARED_GROUP, "no_shared_group", 10, TP_CAT_POLICY)         \
  X(NOT_TLS, "not_tls", 11, TP_CAT_SERVER)                         \
  X(UNKNOWN_CA, "unknown_ca", 12, TP_CAT_CLIENT)                   \
  X(INCOMPLETE_CHAIN, "incomplete_chain", 13, TP_CAT_SERVER)       \
  X(EXPIRED, "expired", 14, TP_CAT_SERVER)                         \
  X(NOT_YET_VALID, "not_yet_valid", 15, TP_CAT_SERVER)             \
  X(HOSTNAME_MISMATCH, "hostname_mismatch", 16, TP_CAT_SERVER)     \
  X(REVOKED, "revoked", 17, TP_CAT_SERVER)                         \
  X(INSECURE_ALGORITHM, "insecure_algorithm", 18, TP_CAT_SERVER)   \
  X(CLIENT_CERT_REQUIRED, "client_cert_required", 19, TP_CAT_CLIENT) \
  X(CLIENT_CERT_REJECTED, "client_cert_rejected", 20, TP_CAT_CLIENT) \
  X(ALERT, "alert", 21, TP_CAT_SERVER)                             \
  X(HTTP_STATUS, "http_status", 22, TP_CAT_SERVER)                 \
  X(NETWORK_UNREACHABLE, "network_unreachable", 23, TP_CAT_NETWORK) \
  X(OTHER, "other", 24, TP_CAT_INTERNAL)

typedef enum {
#define TP_OUTCOME_ENUM(e, name, value, cat) TP_OUTCOME_##e = value,
  TP_OUTCOME_MAP(TP_OUTCOME_ENUM)
#undef TP_OUTCOME_ENUM
} tp_outcome;

/* Stable snake_case name, or NULL for a value outside the taxonomy. */
const char *tp_outcome_name(int outcome);
/* Reverse of tp_outcome_name; returns false if unknown. */
bool tp_outcome_from_name(const char *name, tp_outcome *out);
bool tp_outcome_is_valid(int outcome);
tp_outcome_category tp_outcome_category_of(tp_outcome outcome);
/* "network", "server", "client", "policy", "internal", "none". */
const char *tp_outcome_category_name(tp_outcome_category category);

#endif
