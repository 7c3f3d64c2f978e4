/* config_transport.h - config.c's checks of how the agent reaches the collector
 * (TLS files, token, plaintext opt-in) and where it spools. Internal to config. */
#ifndef TP_AGENT_CONFIG_TRANSPORT_H
#define TP_AGENT_CONFIG_TRANSPORT_H
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Validates and stores the collector's transport settings in c. */
tp_err tp__config_transport(tp_agent_config *c, const char *url, const char *ca_file,
                            const char *client_cert_file, const char *client_key_file,
                            const char *token_file, bool insecure_plaintext, char *err,
                            size_t errlen);
/* c->spool_path = the configuration's path with its .yaml/.yml suffix replaced
 * by .spool (agent.yaml -> agent.spool). */
tp_err tp__config_default_spool_path(tp_agent_config *c, char *err, size_t errlen);

#endif
