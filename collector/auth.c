/* auth.c - the token table in force, swapped whole on reload. */
#include "auth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "auth_tokens.h"
#include "tp_mem.h"
#include "tp_secret.h"

struct tp_auth {
  pthread_mutex_t mu; /* guards tokens */
  tp_token_table *tokens;
  char *tokens_file; /* owned; NULL = no tokens */
  bool allow_unauthenticated;
  const tp_log *log;
};

static tp_err load(tp_auth *auth, tp_token_table **out, char *err, size_t errlen) {
  char why[128];
  tp_err rc = tp_token_table_load(auth->tokens_file, false, out, err, errlen);
  if (rc == TP_E_OK && tp_secret_file_too_open(auth->tokens_file, why, sizeof(why)))
    tp_log_warn(auth->log, "tokens file is not private",
                "file=\"%s\" problem=\"%s\" fix=\"chmod 600\"", auth->tokens_file, why);
  return rc;
}

tp_err tp_auth_new(const char *tokens_file, bool allow_unauthenticated, const tp_log *log,
                   tp_auth **out, char *err, size_t errlen) {
  tp_auth *auth = tp_xcalloc(1, sizeof(*auth));
  *out = NULL;
  auth->tokens_file = tp_xstrdup_or_null(tokens_file);
  auth->allow_unauthenticated = allow_unauthenticated;
  auth->log = log;
  if (pthread_mutex_init(&auth->mu, NULL) != 0) {
    free(auth->tokens_file);
    free(auth);
    snprintf(err, errlen, "cannot create a mutex");
    return TP_E_NOMEM;
  }
  if (auth->tokens_file != NULL) {
    tp_err rc = load(auth, &auth->tokens, err, errlen);
    if (rc != TP_E_OK) {
      tp_auth_free(auth);
      return rc;
    }
  }
  *out = auth;
  return TP_E_OK;
}

void tp_auth_free(tp_auth *auth) {
  if (auth == NULL)
    return;
  pthread_mutex_destroy(&auth->mu);
  tp_token_table_free(auth->tokens);
  free(auth->tokens_file);
  free(auth);
}

tp_err tp_auth_reload(tp_auth *auth, char *err, size_t errlen) {
  tp_token_table *fresh = NULL, *old;
  if (auth->tokens_file == NULL)
    return TP_E_OK;
  tp_err rc = load(auth, &fresh, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  pthread_mutex_lock(&auth->mu);
  old = auth->tokens;
  auth->tokens = fresh;
  pthread_mutex_unlock(&auth->mu);
  tp_token_table_free(old); /* nobody can hold it: lookups copy the owner under the lock */
  return TP_E_OK;
}

bool tp_auth_uses_tokens(const tp_auth *auth) { return auth->tokens_file != NULL; }
bool tp_auth_allows_anyone(const tp_auth *auth) { return auth->allow_unauthenticated; }

size_t tp_auth_token_count(tp_auth *auth) {
  pthread_mutex_lock(&auth->mu);
  size_t n = auth->tokens ? tp_token_table_count(auth->tokens) : 0;
  pthread_mutex_unlock(&auth->mu);
  return n;
}

bool tp_auth_token_owner(tp_auth *auth, const char *token, size_t len, char *owner,
                         size_t owner_len) {
  pthread_mutex_lock(&auth->mu);
  const char *name = tp_token_table_lookup(auth->tokens, token, len);
  if (name != NULL)
    snprintf(owner, owner_len, "%s", name);
  pthread_mutex_unlock(&auth->mu);
  return name != NULL;
}
