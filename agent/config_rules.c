/* config_rules.c - value rules of agent.yaml (see config_rules.h). Strict on
 * purpose: libcurl and getaddrinfo accept more (curl reads "http:/host" and
 * "http:///x" as URLs), and a configuration that passes --check must mean the
 * same thing to every component that later reads it. */
#include "config_rules.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define URL_FORM "allowed: http(s)://host[:port]/path, e.g. http://collector:8470/v1/results"
#define HOST_FORM "allowed: a DNS name of letters, digits, '-', '_' and dots, or an IP address"
#define MAX_DNS_NAME 253 /* RFC 1035 §2.3.4, without the trailing dot */
#define MAX_LABEL 63

static int fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
  return -1;
}

static bool is_ip_literal(const char *s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool label_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

/* The first byte that no host name may hold, or NULL. */
static const char *bad_name_char(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!label_char((unsigned char)s[i]) && s[i] != '.')
      return s + i;
  return NULL;
}

static int explain_bad_char(const char *name, const char *at, char *why, size_t len) {
  unsigned char c = (unsigned char)*at;
  size_t col = (size_t)(at - name) + 1;
  if (c == ' ' || c == '\t')
    return fail(why, len, "contains a space at character %zu (%s)", col, HOST_FORM);
  if (c >= 0x80)
    return fail(why, len,
                "contains a non-ASCII byte at character %zu (write an internationalised name in "
                "its xn-- form; %s)",
                col, HOST_FORM);
  if (c < 0x20 || c == 0x7f)
    return fail(why, len, "contains a control character at character %zu (%s)", col, HOST_FORM);
  return fail(why, len, "contains '%c' at character %zu (%s)", c, col, HOST_FORM);
}

/* name[0..n) as a DNS name (no trailing dot here). */
static int check_dns_name(const char *name, size_t n, char *why, size_t len) {
  if (n == 0)
    return fail(why, len, "is empty (%s)", HOST_FORM);
  if (n > MAX_DNS_NAME)
    return fail(why, len, "is %zu bytes long (allowed: at most %d)", n, MAX_DNS_NAME);
  const char *bad = bad_name_char(name, n);
  if (bad != NULL)
    return explain_bad_char(name, bad, why, len);
  bool all_digits = true;
  for (size_t start = 0; start <= n;) {
    size_t end = start;
    while (end < n && name[end] != '.')
      end++;
    size_t label = end - start;
    if (label == 0)
      return fail(why, len, "has an empty label (\"..\" or a leading dot; %s)", HOST_FORM);
    if (label > MAX_LABEL)
      return fail(why, len, "has a label of %zu characters (allowed: 1..%d per label)", label,
                  MAX_LABEL);
    if (name[start] == '-' || name[end - 1] == '-')
      return fail(why, len, "has a label starting or ending with '-' (%s)", HOST_FORM);
    all_digits = true;
    for (size_t i = start; i < end; i++)
      all_digits = all_digits && name[i] >= '0' && name[i] <= '9';
    start = end + 1;
  }
  /* RFC 1123 §2.1: a top-level label is never all-numeric, so this was
   * meant as an IPv4 address (300.1.1.1) and must not go to DNS. */
  if (all_digits)
    return fail(why, len, "is neither a valid IPv4 address nor a DNS name (%s)", HOST_FORM);
  return 0;
}

int tp__rule_host(const char *host, char *why, size_t len) {
  if (is_ip_literal(host))
    return 0;
  size_t n = strlen(host);
  if (n > 1 && host[n - 1] == '.')
    n--; /* a fully qualified name: resolvers accept the root label */
  return check_dns_name(host, n, why, len);
}

int tp__rule_sni(const char *sni, char *why, size_t len) {
  if (is_ip_literal(sni))
    return 0;
  size_t n = strlen(sni);
  if (n > 0 && sni[n - 1] == '.')
    return fail(why, len,
                "ends with a dot (RFC 6066 §3: a server name is sent without the trailing dot)");
  return check_dns_name(sni, n, why, len);
}

int tp__rule_display_name(const char *name, char *why, size_t len) {
  for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
    if (*p < 0x20 || *p == 0x7f)
      return fail(why, len,
                  "contains a control character at byte %zu (allowed: printable text)",
                  (size_t)(p - (const unsigned char *)name) + 1);
  return 0;
}

/* ---- collector URL ------------------------------------------------------- */

/* "[v6]" or a host name / IPv4 literal, n bytes at s. */
static int check_url_host(const char *s, size_t n, char *why, size_t len) {
  char host[256];
  if (n == 0)
    return fail(why, len, "has no host (%s)", URL_FORM);
  if (n >= sizeof(host))
    return fail(why, len, "has a host of %zu bytes (allowed: at most %d)", n, MAX_DNS_NAME);
  memcpy(host, s, n);
  host[n] = '\0';
  if (host[0] == '[') {
    unsigned char buf[sizeof(struct in6_addr)];
    if (host[n - 1] != ']' || n < 3)
      return fail(why, len, "has an unterminated IPv6 literal (%s)", URL_FORM);
    host[n - 1] = '\0';
    if (inet_pton(AF_INET6, host + 1, buf) != 1)
      return fail(why, len, "has \"%s\" in brackets, which is not an IPv6 address (%s)", host + 1,
                  URL_FORM);
    return 0;
  }
  char inner[200];
  if (tp__rule_host(host, inner, sizeof(inner)) != 0)
    return fail(why, len, "has host \"%s\" that %s", host, inner);
  return 0;
}

/* ":NNNNN" after the host; s points after the ':', n digits expected. */
static int check_url_port(const char *s, size_t n, char *why, size_t len) {
  unsigned long port = 0;
  if (n == 0)
    return fail(why, len, "has ':' but no port (%s, port 1..65535)", URL_FORM);
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return fail(why, len, "has port \"%.*s\" that is not a number (%s, port 1..65535)", (int)n,
                  s, URL_FORM);
    if (port <= 65535)
      port = port * 10 + (unsigned long)(s[i] - '0');
  }
  if (port < 1 || port > 65535)
    return fail(why, len, "has port %.*s%s, out of range (%s, port 1..65535)",
                (int)(n > 10 ? 10 : n), s, n > 10 ? "..." : "", URL_FORM);
  return 0;
}

/* host[:port] between "//" and the path; userinfo ("user:pass@") is skipped. */
static int check_authority(const char *s, size_t n, char *why, size_t len) {
  const char *at = memchr(s, '@', n);
  while (at != NULL) { /* the last '@' ends the userinfo */
    n -= (size_t)(at + 1 - s);
    s = at + 1;
    at = memchr(s, '@', n);
  }
  size_t host_len = n;
  if (n > 0 && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    host_len = close != NULL ? (size_t)(close - s) + 1 : n;
  } else {
    const char *colon = memchr(s, ':', n);
    if (colon != NULL)
      host_len = (size_t)(colon - s);
  }
  if (check_url_host(s, host_len, why, len) != 0)
    return -1;
  if (host_len == n)
    return 0;
  if (s[host_len] != ':')
    return fail(why, len, "has \"%.*s\" after the host (%s)", (int)(n - host_len), s + host_len,
                URL_FORM);
  return check_url_port(s + host_len + 1, n - host_len - 1, why, len);
}

/* libcurl must read it too (the pusher's CURLOPT_URL); a mismatch with the
 * rules above would be a bug here, so its words are passed on as they are. */
static int check_with_curl(const char *url, char *why, size_t len) {
  CURLU *h = curl_url();
  if (h == NULL)
    return fail(why, len, "cannot be checked: out of memory");
  CURLUcode rc = curl_url_set(h, CURLUPART_URL, url, 0);
  curl_url_cleanup(h);
  if (rc != CURLUE_OK)
    return fail(why, len, "is refused by libcurl: %s (%s)", curl_url_strerror(rc), URL_FORM);
  return 0;
}

int tp__rule_collector_url(const char *url, char *why, size_t len) {
  for (const unsigned char *p = (const unsigned char *)url; *p != '\0'; p++)
    if (*p <= 0x20 || *p >= 0x7f)
      return fail(why, len,
                  "contains a space, control or non-ASCII character at character %zu "
                  "(percent-encode it; %s)",
                  (size_t)(p - (const unsigned char *)url) + 1, URL_FORM);
  size_t scheme;
  if (strncasecmp(url, "http://", 7) == 0)
    scheme = 7;
  else if (strncasecmp(url, "https://", 8) == 0)
    scheme = 8;
  else
    return fail(why, len, "is not an http:// or https:// URL (%s)", URL_FORM);
  const char *authority = url + scheme;
  size_t n = strcspn(authority, "/?#");
  if (check_authority(authority, n, why, len) != 0)
    return -1;
  const char *path = authority + n;
  size_t path_len = strcspn(path, "?#");
  if (path[0] != '/' || path_len <= 1)
    return fail(why, len, "has no path (the collector takes results at /v1/results; %s)",
                URL_FORM);
  return check_with_curl(url, why, len);
}
