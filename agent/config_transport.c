/* config_transport.c - see config_transport.h. */
#include "config_transport.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tp_mem.h"
#include "tp_yaml.h"

/* A file the agent will read later (at every connection, or on SIGHUP): fail now,
 * with the reason, rather than at the first push hours later. */
static tp_err readable(const tp_agent_config *c, const char *node, const char *path, char *err,
                       size_t errlen) {
  char why[128];
  if (access(path, R_OK) == 0)
    return TP_E_OK;
  tp_yaml_error_at(err, errlen, c->path, node, "%s: cannot read \"%s\": %s", node, path,
                   tp_errno_text(errno, why, sizeof(why)));
  return TP_E_CONFIG;
}

tp_err tp__config_transport(tp_agent_config *c, const char *url, const char *ca_file,
                            const char *client_cert_file, const char *client_key_file,
                            const char *token_file, bool insecure_plaintext, char *err,
                            size_t errlen) {
  bool plaintext = strncasecmp(url, "http://", 7) == 0;
  if (plaintext && !insecure_plaintext) {
    tp_yaml_error_at(err, errlen, c->path, "collector.url",
                     "collector.url: \"http://\" sends results (and any token) unencrypted and "
                     "unauthenticated; use https://, or set collector.insecure_plaintext: true "
                     "to allow it explicitly");
    return TP_E_CONFIG;
  }
  if ((client_cert_file == NULL) != (client_key_file == NULL)) {
    tp_yaml_error_at(err, errlen, c->path,
                     client_cert_file ? "collector.client_cert_file" : "collector.client_key_file",
                     "collector: client_cert_file and client_key_file go together (mTLS needs "
                     "both)");
    return TP_E_CONFIG;
  }
  if (plaintext && client_cert_file != NULL) {
    tp_yaml_error_at(err, errlen, c->path, "collector.client_cert_file",
                     "collector.client_cert_file: a client certificate needs an https:// URL");
    return TP_E_CONFIG;
  }
  const struct {
    const char *node, *path;
  } files[] = {{"collector.ca_file", ca_file},
               {"collector.client_cert_file", client_cert_file},
               {"collector.client_key_file", client_key_file},
               {"collector.token_file", token_file}};
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    if (files[i].path != NULL && readable(c, files[i].node, files[i].path, err, errlen) != TP_E_OK)
      return TP_E_CONFIG;
  }
  c->ca_file = ca_file;
  c->client_cert_file = client_cert_file;
  c->client_key_file = client_key_file;
  c->token_file = token_file;
  c->insecure_plaintext = plaintext;
  return TP_E_OK;
}

tp_err tp__config_default_spool_path(tp_agent_config *c, char *err, size_t errlen) {
  static const char *const suffixes[] = {".yaml", ".yml"};
  size_t len = strlen(c->path);
  (void)err;
  (void)errlen;
  for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
    size_t n = strlen(suffixes[i]);
    if (len > n && strcmp(c->path + len - n, suffixes[i]) == 0) {
      len -= n;
      break;
    }
  }
  c->spool_path = tp_xmalloc(len + sizeof(".spool"));
  memcpy(c->spool_path, c->path, len);
  memcpy(c->spool_path + len, ".spool", sizeof(".spool"));
  return TP_E_OK;
}
