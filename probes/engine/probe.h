/* probe.h - the probe engine: runs TLS probes on one libuv loop.
 *
 * A probe resolves its target, then makes a sequence of connection attempts
 * (primary, resume, diagnostics; probes/engine/probe_internal.h). Nothing
 * blocks the loop: DNS runs on it through c-ares (probes/resolve, one deadline
 * per query, so a silent name only delays its own probes), sockets are
 * non-blocking under uv_poll_t and GnuTLS is driven with
 * gnutls_record_get_direction(). main() calls tp_resolve_global_init().
 *
 * The engine bounds the probes in flight (max_in_flight) and queues the rest
 * (up to max_pending): a probe's clock starts only when it really starts, and
 * the loop is never asked to do more crypto at once than it can stamp
 * honestly. Time a probe's events wait behind other callbacks on the loop is
 * measured (loop lag) and subtracted from its durations; see
 * docs/architecture.md "Timing honesty". */
#ifndef TP_PROBE_H
#define TP_PROBE_H
#include <stdint.h>
#include <uv.h>

#include "profile.h"
#include "result.h"
#include "tp_error.h"
#include "tp_log.h"

typedef enum { TP_FAMILY_ANY = 0, TP_FAMILY_IPV4, TP_FAMILY_IPV6 } tp_family;

/* Where to probe. Strings are borrowed: they must outlive the probe. */
typedef struct tp_target {
  const char *name;
  const char *host; /* name or IP literal */
  uint16_t port;
  /* Server name to send and to verify the certificate against; NULL = host,
   * unless host is an IP literal (then no SNI is sent and the certificate is
   * verified against the address). */
  const char *sni;
  /* Which addresses of host to try: any (IPv6 and IPv4 interleaved, RFC 8305
   * §4), or one family only. A target configured `family: both` is submitted
   * twice, once per family, and its results are labelled (address_family). */
  tp_family family;
} tp_target;

typedef struct tp_probe_timeouts {
  uint64_t connect_ms;   /* DNS + TCP connect */
  uint64_t handshake_ms; /* TLS handshake + verification */
} tp_probe_timeouts;

typedef struct tp_probe_engine_options {
  unsigned max_in_flight; /* probes running at once; 0 = 64 */
  unsigned max_pending;   /* probes waiting for a slot; 0 = 16 * max_in_flight */
  /* DNS servers ("127.0.0.1:5353,[::1]:53", c-ares CSV form); NULL = the
   * system's /etc/resolv.conf. Names resolve on the engine's own loop. */
  const char *dns_servers;
  /* The engine's caches (docs/internals/engine-caches.md), each bounded and
   * least recently used out first: chains whose verification succeeded, and
   * the facts of certificates already parsed, both keyed by digests of the
   * bytes the server sent. 0 = default (TP_PROBE_VERIFY_CACHE_DEFAULT,
   * TP_PROBE_FACTS_CACHE_DEFAULT); TP_PROBE_CACHE_OFF = no cache. */
  unsigned verify_cache_entries;
  unsigned facts_cache_entries;
  /* How long a cached verification stands before GnuTLS verifies the chain
   * again even though nothing seen changed (what the cache cannot see: a
   * second trust anchor of the same name coming into force); 0 = default
   * TP_PROBE_VERIFY_MAX_AGE_S. */
  unsigned verify_cache_max_age_s;
} tp_probe_engine_options;

#define TP_PROBE_CACHE_OFF UINT32_MAX
/* Size a cache above what one loop probes in a cycle (distinct (profile,
 * name, chain) per loop; distinct certificates per loop): series come round
 * in a fixed order, and a least-recently-used cache smaller than the cycle
 * never hits. An entry costs ~90 bytes (chains) / ~0.5 KiB (facts), and only
 * entries in use are resident. */
#define TP_PROBE_VERIFY_CACHE_DEFAULT 16384
#define TP_PROBE_FACTS_CACHE_DEFAULT 4096
#define TP_PROBE_VERIFY_MAX_AGE_S 3600

/* What the caches did since the engine started. A chain is verified from the
 * cache (hit), by GnuTLS because it was not cached (miss), or by GnuTLS
 * although cached (recheck: its validity window no longer holds, a staple
 * came with it, or the entry is older than the maximum age). */
typedef struct tp_probe_cache_stats {
  uint64_t verify_hits, verify_misses, verify_rechecks;
  uint64_t facts_hits, facts_misses;
  size_t verify_entries, facts_entries; /* held now */
} tp_probe_cache_stats;

typedef struct tp_probe_engine tp_probe_engine;

/* Called exactly once per submitted probe, on the loop thread. Ownership of
 * `result` passes to the callback; result is NULL when the probe was queued
 * and then cancelled (tp_probe_engine_cancel_pending) before it started. */
typedef void (*tp_probe_done_cb)(tp_result *result, void *data);

tp_err tp_probe_engine_new(uv_loop_t *loop, const tp_probe_engine_options *options,
                           const tp_log *log, tp_probe_engine **out);

/* Starts a probe now or queues it. TP_E_FULL when the pending queue is full
 * (the caller counts it as skipped: no result will be produced). */
tp_err tp_probe_engine_submit(tp_probe_engine *engine, const tp_target *target,
                              const tp_profile *profile, const tp_probe_timeouts *timeouts,
                              tp_probe_done_cb cb, void *data);

/* Changes how many probes may run at once (1..65536; the pending bound stays as
 * created). Lowering it lets running probes finish; raising it starts queued ones
 * now. The agent lowers it while its own loop is saturated (agent/saturation.h). */
tp_err tp_probe_engine_set_max_in_flight(tp_probe_engine *engine, unsigned max_in_flight);
unsigned tp_probe_engine_max_in_flight(const tp_probe_engine *engine);

void tp_probe_engine_cache_stats(const tp_probe_engine *engine, tp_probe_cache_stats *out);

unsigned tp_probe_engine_in_flight(const tp_probe_engine *engine);
unsigned tp_probe_engine_pending(const tp_probe_engine *engine);

/* Drops queued (not yet started) probes, calling their callbacks with a NULL
 * result, and returns how many were dropped. Probes in flight run to completion (each is
 * bounded by its timeouts). */
unsigned tp_probe_engine_cancel_pending(tp_probe_engine *engine);

/* Closes the engine's own handles; call when no probe is in flight. The
 * engine is freed in the last close callback; on_closed (may be NULL) is
 * called after that. */
void tp_probe_engine_close(tp_probe_engine *engine, void (*on_closed)(void *data), void *data);

#endif
