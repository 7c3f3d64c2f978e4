/* tp_mem.h - allocation policy. tlsprobe aborts on allocation failure (like
 * redis' zmalloc): a prober that cannot allocate a few hundred bytes cannot do
 * anything useful, and checking every small allocation would hide the real
 * error paths. Large or attacker-sized allocations must not use these: they go
 * through tp_buf with its cap. */
#ifndef TP_MEM_H
#define TP_MEM_H
#include <stddef.h>

void *tp_xmalloc(size_t size);
void *tp_xcalloc(size_t count, size_t size);
void *tp_xrealloc(void *ptr, size_t size);
char *tp_xstrdup(const char *s);
char *tp_xstrdup_or_null(const char *s); /* NULL stays NULL */
char *tp_xstrndup(const char *s, size_t n);
/* Formats into a new string (caller frees). */
char *tp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
