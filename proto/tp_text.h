/* tp_text.h - untrusted text made to fit the wire contract at its source.
 *
 * Certificate fields, server-sent strings and error details come from peers
 * we do not control. Before they enter a result they go through
 * tp_text_fit(): the output is always valid UTF-8, contains no control
 * characters (C0, DEL, C1: they forge log and report lines and drive
 * terminals) and is at most `max` bytes. What was changed stays visible:
 * a control character or an invalid byte becomes "\xNN" (C1 code points
 * "\u00NN"), and a cut string ends in TP_TEXT_CUT_MARK, cut on a UTF-8
 * character boundary. redis's sdscatrepr is the model. */
#ifndef TP_TEXT_H
#define TP_TEXT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TP_TEXT_CUT_MARK "...[cut]"

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF) with its code point in *cp, or 0 when
 * s[0] does not start one. n > 0. */
size_t tp_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp);

/* A newly allocated (tp_xmalloc), NUL-terminated copy of the n bytes at s, fitted
 * to max bytes (max >= sizeof(TP_TEXT_CUT_MARK)). s may contain NUL bytes (a
 * certificate's DER string can), which are escaped like any control character. */
char *tp_text_fit(const char *s, size_t n, size_t max);
/* Same for a NUL-terminated string; NULL stays NULL. */
char *tp_text_fit_str(const char *s, size_t max);
/* Fits a NUL-terminated string in place (it can only shrink by cutting; a
 * string that needs escaping is replaced). Returns the (possibly new) string. */
char *tp_text_refit(char *s, size_t max);
/* True if s already satisfies tp_text_fit's guarantees for max. */
bool tp_text_fits(const char *s, size_t n, size_t max);

#endif
