/* aia.h - the evidence step of incomplete_chain (engine-internal): fetch the
 * issuer that the last certificate sent names by AIA caIssuers (RFC 5280
 * §4.2.2.1), over plain HTTP, bounded in size (TP_AIA_MAX_BYTES) and time (the
 * probe's handshake timeout), cached per URL per engine (success for an hour,
 * failure for five minutes), and re-verify the chain with it (chain.c). Only
 * http:// URLs are fetched (RFC 5280: caIssuers is http or ldap; https would
 * be circular). A profile with aia_fetch: off never fetches. */
#ifndef TP_AIA_H
#define TP_AIA_H
#include "probe_internal.h"

#define TP_AIA_MAX_BYTES (64 * 1024) /* an issuer certificate; certs-only CMS included */
#define TP_AIA_CACHE_ENTRIES 32

typedef struct tp_aia_cache tp_aia_cache;
typedef struct tp_aia_fetch tp_aia_fetch;

tp_aia_cache *tp__aia_cache_new(void);
void tp__aia_cache_free(tp_aia_cache *cache);

/* The primary attempt ended unknown_ca with an AIA URL (primary->aia_url):
 * decide from the cache or start a fetch; the probe finishes either way. */
void tp__aia_begin(tp_probe *p, const tp_verdict *primary);
void tp__aia_on_timeout(tp_aia_fetch *f);
void tp__aia_abort(tp_aia_fetch *f); /* the probe ends otherwise; closes quietly */

#endif
