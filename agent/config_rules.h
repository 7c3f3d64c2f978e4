/* config_rules.h - the rules for agent.yaml's values that need no YAML: the
 * collector URL, host and SNI names, and names shown in logs and reports.
 * config.c applies them and puts "file:line:col: field" in front of `why`.
 *
 * Each returns 0, or -1 with what is wrong and what is allowed in `why`
 * ("port 99999 is out of range (allowed: http(s)://host[:port]/path, port
 * 1..65535)"). The identity fields every result repeats are also checked
 * against the wire contract (tp_wire_check_*, proto/validate.h) by config.c. */
#ifndef TP_AGENT_CONFIG_RULES_H
#define TP_AGENT_CONFIG_RULES_H
#include <stddef.h>

/* http(s)://host[:port]/path as the pusher hands it to libcurl: host a DNS
 * name, an IPv4 literal or a bracketed IPv6 literal, optional userinfo, port
 * 1..65535, a path other than "/" (the collector answers POST /v1/results),
 * no spaces or control characters, and accepted by libcurl's own parser. */
int tp__rule_collector_url(const char *url, char *why, size_t len);

/* A target's host: an IPv4 or IPv6 literal, or a DNS name (labels of 1..63
 * letters, digits, '-' and '_', not starting or ending with '-', at most 253
 * bytes, one trailing dot allowed). */
int tp__rule_host(const char *host, char *why, size_t len);

/* A target's sni: a DNS name as for tp__rule_host but without a trailing dot
 * (RFC 6066 §3), or an IP literal (then no SNI is sent and the certificate is
 * verified against the address). */
int tp__rule_sni(const char *sni, char *why, size_t len);

/* A name shown in logs and reports (target, job, region): no control
 * characters. The byte limits are the wire's (tp_wire_check_*). */
int tp__rule_display_name(const char *name, char *why, size_t len);

#endif
