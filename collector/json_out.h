/* json_out.h - the few JSON-writing primitives the collector needs (chain_json
 * column, report --format json), appended to a tp_buf. Strings must already be
 * valid UTF-8 (ingest validates every stored string); escaping follows RFC 8259 §7:
 * '"', '\\' and every control character below 0x20 are escaped. */
#ifndef TP_JSON_OUT_H
#define TP_JSON_OUT_H
#include "tp_buf.h"

/* Appends s as a quoted, escaped JSON string. */
tp_err tp_json_str(tp_buf *out, const char *s);
/* Appends the n strings as a JSON array of strings ("[]" when n == 0). */
tp_err tp_json_str_array(tp_buf *out, char *const *items, size_t n);
/* Appends printf-formatted raw text (numbers, punctuation, keys known to be safe). */
tp_err tp_json_raw(tp_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
