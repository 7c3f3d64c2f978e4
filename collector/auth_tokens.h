/* auth_tokens.h - agents' bearer tokens: minting, hashing, the tokens file.
 *
 * A token is 256 random bits (gnutls_rnd, GNUTLS_RND_KEY) written as 64 lowercase hex
 * characters; the collector keeps only SHA-256(token) in hex, so the tokens file
 * cannot be replayed, and its leak reveals nothing an attacker can send. With that
 * much entropy no salt or slow hash is needed: there is nothing to guess.
 *
 * The tokens file (YAML, written only through `tlsprobe-collector agents ...`):
 *
 *   agents:
 *     - name: "edge-eu-1"          # the agent id this token authenticates
 *       sha256: "<64 hex>"         # SHA-256 of the token
 *       created: "2026-11-23T08:30:01Z"
 *
 * One agent may hold several tokens (rotation: add the new one, switch the agent,
 * revoke the old one by its id = the first 12 hex digits of its hash). */
#ifndef TP_AUTH_TOKENS_H
#define TP_AUTH_TOKENS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tp_error.h"

#define TP_TOKEN_HEX 64        /* a minted token's length */
#define TP_TOKEN_MAX 256       /* longest token accepted in a request */
#define TP_TOKEN_ID_HEX 12     /* a token's public id: this many hex digits of its hash */
#define TP_TOKEN_MAX_ENTRIES 100000

typedef struct tp_token_table tp_token_table;

/* SHA-256 of the token's bytes. */
void tp_token_hash(const char *token, size_t len, uint8_t out[32]);
/* n bytes equal, in time independent of where they differ. */
bool tp_ct_equal(const void *a, const void *b, size_t n);
/* A new token (NUL-terminated hex) and its hash. TP_E_TLS if the RNG fails. */
tp_err tp_token_mint(char token[TP_TOKEN_HEX + 1], uint8_t hash[32]);

tp_token_table *tp_token_table_new(void);
/* Reads path; a missing file is TP_E_NOTFOUND when missing_ok is false (else an empty
 * table). Errors are "file:line:col: what" in err (TP_E_CONFIG) or TP_E_IO. */
tp_err tp_token_table_load(const char *path, bool missing_ok, tp_token_table **out, char *err,
                           size_t errlen);
void tp_token_table_free(tp_token_table *table);

size_t tp_token_table_count(const tp_token_table *table);
/* Entry i's agent name, token id (12 hex) and creation time text. */
const char *tp_token_table_name(const tp_token_table *table, size_t i);
void tp_token_table_id(const tp_token_table *table, size_t i, char id[TP_TOKEN_ID_HEX + 1]);
const char *tp_token_table_created(const tp_token_table *table, size_t i);

/* The agent the token belongs to, or NULL. Every entry is compared, in constant time
 * per entry, so timing says nothing about the token. */
const char *tp_token_table_lookup(const tp_token_table *table, const char *token, size_t len);

/* Adds a token hash for name (an agent id) created at created_unix (seconds). */
tp_err tp_token_table_add(tp_token_table *table, const char *name, const uint8_t hash[32],
                          int64_t created_unix);
/* Removes name's tokens (all of them, or the one whose id is token_id); *removed
 * says how many. */
void tp_token_table_revoke(tp_token_table *table, const char *name, const char *token_id,
                           size_t *removed);

/* Writes the table to path atomically (a 0600 temporary file in the same directory,
 * fsync, rename, fsync of the directory) through libyaml's emitter. */
tp_err tp_token_table_save(const tp_token_table *table, const char *path, char *err,
                           size_t errlen);

#endif
