/* config_profile.h - the `profiles:` section of agent.yaml (internal to
 * config.c): the libcyaml shape of one profile, and the checks that turn it
 * into a tp_profile_spec -- `base:` merging with the built-in library, name
 * validation against GnuTLS, SNI/ALPN/HTTP/mode/client-certificate rules --
 * each error located at its node (file:line:col). */
#ifndef TP_AGENT_CONFIG_PROFILE_H
#define TP_AGENT_CONFIG_PROFILE_H
#include <cyaml/cyaml.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct {
  char *method, *path, *host;
} tp__doc_http;

/* early_data: the 0-RTT payload of mode early_data when it is not HTTP. */
typedef struct {
  char *data;          /* sent verbatim (YAML escapes such as \r\n allowed) */
  char *expect_reply;  /* "yes" / "no" (default no) */
} tp__doc_early_data;

/* recorded_offer: what the real client's ClientHello offered (importer). */
typedef struct {
  char **versions;
  unsigned versions_count;
  uint16_t *cipher_suites; /* IANA ids, written 0xHHLL */
  unsigned cipher_suites_count;
  uint16_t *groups;
  unsigned groups_count;
  uint16_t *signature_algorithms;
  unsigned signature_algorithms_count;
} tp__doc_recorded_offer;

typedef struct {
  char *name;
  char *description; /* free text, e.g. which real client an import emulates */
  char *base;
  char **versions;
  unsigned versions_count;
  char *trust;
  char *intermediates;
  char *priority;
  char **ciphers;
  unsigned ciphers_count;
  char **key_exchanges;
  unsigned key_exchanges_count;
  char **macs;
  unsigned macs_count;
  char **groups;
  unsigned groups_count;
  char **signature_algorithms;
  unsigned signature_algorithms_count;
  char **alpn;
  unsigned alpn_count;
  char *client_certificate, *client_key;
  char *sni;
  char *ocsp_status_request;
  char *mode;
  tp__doc_http *http;
  tp__doc_early_data *early_data;
  char *aia_fetch; /* on | off */
  unsigned min_dh_bits, max_dh_bits; /* 0 / absent = no limit */
  tp__doc_recorded_offer *recorded_offer;
  char *fidelity_note;
} tp__doc_profile;

/* libcyaml schema of one entry of `profiles:`. */
extern const cyaml_schema_value_t tp__profile_entry_schema;

/* Fills c->profiles from the document's profiles (c->path names the file). */
tp_err tp__config_profiles(tp_agent_config *c, const tp__doc_profile *docs, unsigned n,
                           char *err, size_t errlen);

/* Index in c->profiles of the profile a job calls `name`: a configured one,
 * else the built-in of that name (appended on first use). -1 if neither. */
long tp__config_profile_ref(tp_agent_config *c, const char *name);

/* Frees what tp__config_profiles allocated (c->profiles included). */
void tp__config_profiles_free(tp_agent_config *c);

#endif
