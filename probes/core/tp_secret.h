/* tp_secret.h - checks on files that hold secrets (private keys, tokens), shared by
 * both binaries: the collector's key and tokens file, the agent's token and client key. */
#ifndef TP_SECRET_H
#define TP_SECRET_H
#include <stdbool.h>
#include <stddef.h>

/* True when path exists and its group or others have any access; why then says
 * "mode 0644: accessible by group and others". Callers warn, and go on: refusing to
 * start would take a monitor down for a chmod. */
bool tp_secret_file_too_open(const char *path, char *why, size_t len);

#endif
