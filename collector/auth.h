/* auth.h - who may push results: the running collector's view of agent credentials.
 * Bearer tokens come from the tokens file (auth_tokens.h), re-read on SIGHUP; client
 * certificates are verified by tls_server.h. This object holds the token table behind a
 * mutex (the HTTP thread looks tokens up while the main thread reloads) and the policy
 * for requests that carry no credentials. */
#ifndef TP_AUTH_H
#define TP_AUTH_H
#include <stdbool.h>
#include <stddef.h>

#include "tp_error.h"
#include "tp_log.h"

typedef struct tp_auth tp_auth;

/* tokens_file NULL = no bearer tokens. The file must exist (TP_E_NOTFOUND says how
 * to create it). Logs a warning if it is readable by group or others. */
tp_err tp_auth_new(const char *tokens_file, bool allow_unauthenticated, const tp_log *log,
                   tp_auth **out, char *err, size_t errlen);
void tp_auth_free(tp_auth *auth);
/* Re-reads the tokens file; on failure the previous table stays in force. */
tp_err tp_auth_reload(tp_auth *auth, char *err, size_t errlen);

bool tp_auth_uses_tokens(const tp_auth *auth);
bool tp_auth_allows_anyone(const tp_auth *auth);
/* Tokens in force (0 without a tokens file). */
size_t tp_auth_token_count(tp_auth *auth);
/* Copies the agent the token belongs to into owner (NUL-terminated) and returns
 * true; false for an unknown or revoked token. */
bool tp_auth_token_owner(tp_auth *auth, const char *token, size_t len, char *owner,
                         size_t owner_len);

#endif
