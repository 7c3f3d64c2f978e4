/* addrs.c - answers into the order a client connects in: IP literals
 * (tp_resolve_numeric), c-ares answers (tp__resolve_fill), families and
 * statuses by name. Pure functions: no loop, no I/O but if_nametoindex() for
 * an IPv6 literal's "%ifname" scope. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "resolve_internal.h"

/* ---- names -------------------------------------------------------------- */

const char *tp_resolve_status_name(tp_resolve_status status) {
  static const char *const names[] = {
#define TP_RESOLVE_STATUS_NAME(name, text) text,
      TP_RESOLVE_STATUS_MAP(TP_RESOLVE_STATUS_NAME)
#undef TP_RESOLVE_STATUS_NAME
  };
  return (unsigned)status < TP_RESOLVE__STATUS_COUNT ? names[status] : "?";
}

const char *tp_resolve_family_name(tp_resolve_family family) {
  switch (family) {
  case TP_RESOLVE_ANY:
    return "both";
  case TP_RESOLVE_V4:
    return "ipv4";
  case TP_RESOLVE_V6:
    return "ipv6";
  }
  return "?";
}

bool tp_resolve_family_parse(const char *text, tp_resolve_family *out) {
  static const tp_resolve_family all[] = {TP_RESOLVE_ANY, TP_RESOLVE_V4, TP_RESOLVE_V6};
  if (text == NULL)
    return false;
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    if (strcmp(text, tp_resolve_family_name(all[i])) == 0) {
      *out = all[i];
      return true;
    }
  }
  return false;
}

static bool family_wanted(tp_resolve_family family, int af) {
  if (af == AF_INET)
    return family != TP_RESOLVE_V6;
  if (af == AF_INET6)
    return family != TP_RESOLVE_V4;
  return false;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port) {
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons(port);
  else if (ss->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static void set_failure(tp_resolve_result *res, tp_resolve_status status, const char *message) {
  res->status = status;
  res->message = message;
  res->count = 0;
  res->truncated = false;
}

/* ---- IP literals ---------------------------------------------------------- */

/* "%scope" of an IPv6 literal (RFC 4007 §11): a number or an interface name.
 * 0 when there is none we know. */
static uint32_t parse_scope(const char *scope) {
  if (scope[0] >= '0' && scope[0] <= '9') {
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(scope, &end, 10);
    if (errno != 0 || end == scope || *end != '\0' || v == 0 || v > UINT32_MAX)
      return 0;
    return (uint32_t)v;
  }
  return if_nametoindex(scope);
}

bool tp_resolve_numeric(const char *host, uint16_t port, tp_resolve_family family,
                        tp_resolve_result *out) {
  if (host == NULL || out == NULL)
    return false;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t len;
  const char *scope_error = NULL;

  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    len = sizeof(*sin);
  } else {
    char text[INET6_ADDRSTRLEN];
    const char *pct = strchr(host, '%');
    size_t n = pct != NULL ? (size_t)(pct - host) : strlen(host);
    if (n == 0 || n >= sizeof(text))
      return false;
    memcpy(text, host, n);
    text[n] = '\0';
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
      return false;
    sin6->sin6_family = AF_INET6;
    len = sizeof(*sin6);
    if (pct != NULL) {
      sin6->sin6_scope_id = pct[1] != '\0' ? parse_scope(pct + 1) : 0;
      if (sin6->sin6_scope_id == 0)
        scope_error = "IPv6 literal with an unknown scope (no such interface)";
    }
  }

  memset(out, 0, sizeof(*out));
  if (scope_error != NULL) {
    set_failure(out, TP_RESOLVE_ERROR, scope_error);
    return true;
  }
  if (!family_wanted(family, ss.ss_family)) {
    set_failure(out, TP_RESOLVE_NONAME,
                ss.ss_family == AF_INET ? "IPv4 literal, but only IPv6 addresses were requested"
                                        : "IPv6 literal, but only IPv4 addresses were requested");
    return true;
  }
  set_port(&ss, port);
  out->status = TP_RESOLVE_OK;
  out->message = "IP literal";
  out->addrs[0].addr = ss;
  out->addrs[0].len = len;
  out->count = 1;
  return true;
}

/* ---- c-ares answers -------------------------------------------------------- */

static tp_resolve_status status_from_ares(int status) {
  switch (status) {
  case ARES_SUCCESS:
    return TP_RESOLVE_OK;
  case ARES_ENOTFOUND: /* NXDOMAIN (after every search domain) */
  case ARES_ENODATA:   /* the name exists, but has no A/AAAA */
    return TP_RESOLVE_NONAME;
  case ARES_ETIMEOUT:
    return TP_RESOLVE_TIMEOUT;
  case ARES_ECANCELLED:
  case ARES_EDESTRUCTION:
    return TP_RESOLVE_CANCELLED;
  default:
    return TP_RESOLVE_ERROR;
  }
}

static bool same_address(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return false;
  if (a->sa_family == AF_INET)
    return memcmp(&((const struct sockaddr_in *)(const void *)a)->sin_addr,
                  &((const struct sockaddr_in *)(const void *)b)->sin_addr, sizeof(struct in_addr)) == 0;
  const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)(const void *)a;
  const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)(const void *)b;
  return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
         x->sin6_scope_id == y->sin6_scope_id;
}

/* Appends node to list (at most TP_RESOLVE_MAX_ADDRS) unless it is there
 * already; *overflow when it did not fit. */
static void collect(const struct ares_addrinfo_node **list, size_t *n, bool *overflow,
                    const struct ares_addrinfo_node *node) {
  for (size_t i = 0; i < *n; i++)
    if (same_address(list[i]->ai_addr, node->ai_addr))
      return;
  if (*n == TP_RESOLVE_MAX_ADDRS) {
    *overflow = true;
    return;
  }
  list[(*n)++] = node;
}

void tp__resolve_fill(tp_resolve_result *res, int ares_status, const struct ares_addrinfo *ai,
                      tp_resolve_family family, uint16_t port) {
  memset(res, 0, sizeof(*res));
  if (ares_status != ARES_SUCCESS || ai == NULL) {
    set_failure(res, status_from_ares(ares_status), ares_strerror(ares_status));
    return;
  }
  /* c-ares has sorted the nodes by RFC 6724 (destination address selection)
   * already; we keep that order within each family. */
  const struct ares_addrinfo_node *v6[TP_RESOLVE_MAX_ADDRS], *v4[TP_RESOLVE_MAX_ADDRS];
  size_t n6 = 0, n4 = 0;
  bool overflow = false;
  for (const struct ares_addrinfo_node *node = ai->nodes; node != NULL; node = node->ai_next) {
    if (node->ai_addr == NULL || !family_wanted(family, node->ai_family) ||
        node->ai_addr->sa_family != node->ai_family ||
        (size_t)node->ai_addrlen > sizeof(struct sockaddr_storage))
      continue;
    if (node->ai_family == AF_INET6)
      collect(v6, &n6, &overflow, node);
    else
      collect(v4, &n4, &overflow, node);
  }
  /* RFC 8305 §4: interleave the families, the preferred one (IPv6) first,
   * First Address Family Count 1: v6, v4, v6, v4, ..., then the rest of
   * whichever family is longer. */
  size_t i6 = 0, i4 = 0;
  bool v6_turn = true;
  while (res->count < TP_RESOLVE_MAX_ADDRS && (i6 < n6 || i4 < n4)) {
    bool take_v6 = i6 < n6 && (v6_turn || i4 >= n4);
    const struct ares_addrinfo_node *node = take_v6 ? v6[i6++] : v4[i4++];
    v6_turn = !take_v6;
    tp_resolve_addr *a = &res->addrs[res->count++];
    memcpy(&a->addr, node->ai_addr, (size_t)node->ai_addrlen);
    a->len = (socklen_t)node->ai_addrlen;
    set_port(&a->addr, port);
  }
  res->truncated = overflow || i6 < n6 || i4 < n4;
  if (res->count == 0) {
    set_failure(res, TP_RESOLVE_NONAME, "no address of the requested family in the answer");
    return;
  }
  res->status = TP_RESOLVE_OK;
  res->message = ares_strerror(ARES_SUCCESS);
}
