/* auth_tokens.c - the tokens file and the token arithmetic: mint (gnutls_rnd), hash
 * (gnutls_hash_fast SHA-256), constant-time lookup, YAML in (tp_yaml/libcyaml) and out
 * (libyaml's emitter: every value is an emitter scalar, never text pasted together). */
#include "auth_tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "tp_mem.h"
#include "tp_yaml.h"
#include "validate.h"

typedef struct token_entry {
  char *name;
  uint8_t hash[32];
  char *created;
} token_entry;

struct tp_token_table {
  token_entry *entries;
  size_t n, cap;
};

/* ---- arithmetic ------------------------------------------------------------------ */

void tp_token_hash(const char *token, size_t len, uint8_t out[32]) {
  /* SHA-256 over memory cannot fail short of a broken library: then no token matches. */
  if (gnutls_hash_fast(GNUTLS_DIG_SHA256, token, len, out) != 0)
    memset(out, 0, 32);
}

bool tp_ct_equal(const void *a, const void *b, size_t n) {
  const volatile uint8_t *x = a, *y = b;
  uint8_t diff = 0;
  for (size_t i = 0; i < n; i++)
    diff |= x[i] ^ y[i];
  return diff == 0;
}

static void to_hex(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Exactly 64 lowercase hex digits -> 32 bytes. */
static bool from_hex(const char *s, uint8_t out[32]) {
  if (strlen(s) != 64)
    return false;
  for (size_t i = 0; i < 32; i++) {
    int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return true;
}

tp_err tp_token_mint(char token[TP_TOKEN_HEX + 1], uint8_t hash[32]) {
  uint8_t raw[32];
  if (gnutls_rnd(GNUTLS_RND_KEY, raw, sizeof(raw)) != 0)
    return TP_E_TLS;
  to_hex(raw, sizeof(raw), token);
  gnutls_memset(raw, 0, sizeof(raw));
  tp_token_hash(token, TP_TOKEN_HEX, hash);
  return TP_E_OK;
}

/* ---- the table ------------------------------------------------------------------- */

tp_token_table *tp_token_table_new(void) { return tp_xcalloc(1, sizeof(tp_token_table)); }

void tp_token_table_free(tp_token_table *table) {
  if (table == NULL)
    return;
  for (size_t i = 0; i < table->n; i++) {
    free(table->entries[i].name);
    free(table->entries[i].created);
  }
  free(table->entries);
  free(table);
}

size_t tp_token_table_count(const tp_token_table *table) { return table->n; }
const char *tp_token_table_name(const tp_token_table *table, size_t i) {
  return table->entries[i].name;
}
const char *tp_token_table_created(const tp_token_table *table, size_t i) {
  return table->entries[i].created;
}
void tp_token_table_id(const tp_token_table *table, size_t i, char id[TP_TOKEN_ID_HEX + 1]) {
  char hex[65];
  to_hex(table->entries[i].hash, 32, hex);
  memcpy(id, hex, TP_TOKEN_ID_HEX);
  id[TP_TOKEN_ID_HEX] = '\0';
}

const char *tp_token_table_lookup(const tp_token_table *table, const char *token, size_t len) {
  uint8_t hash[32];
  const char *owner = NULL;
  if (table == NULL || len == 0 || len > TP_TOKEN_MAX)
    return NULL;
  tp_token_hash(token, len, hash);
  for (size_t i = 0; i < table->n; i++) {
    bool match = tp_ct_equal(hash, table->entries[i].hash, 32);
    if (match && owner == NULL)
      owner = table->entries[i].name;
  }
  return owner;
}

static tp_err add_entry(tp_token_table *table, const char *name, const uint8_t hash[32],
                        const char *created) {
  if (table->n >= TP_TOKEN_MAX_ENTRIES)
    return TP_E_FULL;
  if (table->n == table->cap) {
    table->cap = table->cap ? table->cap * 2 : 8;
    table->entries = tp_xrealloc(table->entries, table->cap * sizeof(*table->entries));
  }
  token_entry *e = &table->entries[table->n++];
  e->name = tp_xstrdup(name);
  memcpy(e->hash, hash, 32);
  e->created = tp_xstrdup(created);
  return TP_E_OK;
}

tp_err tp_token_table_add(tp_token_table *table, const char *name, const uint8_t hash[32],
                          int64_t created_unix) {
  char created[32] = "?";
  time_t t = (time_t)created_unix;
  struct tm tm;
  if (gmtime_r(&t, &tm) != NULL)
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return add_entry(table, name, hash, created);
}

void tp_token_table_revoke(tp_token_table *table, const char *name, const char *token_id,
                           size_t *removed) {
  size_t kept = 0;
  *removed = 0;
  for (size_t i = 0; i < table->n; i++) {
    token_entry *e = &table->entries[i];
    char id[TP_TOKEN_ID_HEX + 1];
    tp_token_table_id(table, i, id);
    if (strcmp(e->name, name) == 0 && (token_id == NULL || strcmp(id, token_id) == 0)) {
      free(e->name);
      free(e->created);
      (*removed)++;
      continue;
    }
    table->entries[kept++] = *e;
  }
  table->n = kept;
}

/* ---- reading --------------------------------------------------------------------- */

typedef struct raw_entry {
  char *name, *sha256, *created;
} raw_entry;

typedef struct raw_tokens {
  raw_entry *agents;
  unsigned agents_count;
} raw_tokens;

static const cyaml_schema_field_t entry_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, raw_entry, name, 1, 1024),
    CYAML_FIELD_STRING_PTR("sha256", CYAML_FLAG_POINTER, raw_entry, sha256, 1, 1024),
    CYAML_FIELD_STRING_PTR("created", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, raw_entry,
                           created, 0, 64),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t entry_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, raw_entry, entry_fields),
};

static const cyaml_schema_field_t tokens_fields[] = {
    CYAML_FIELD_SEQUENCE("agents", CYAML_FLAG_POINTER, raw_tokens, agents, &entry_schema, 0,
                         TP_TOKEN_MAX_ENTRIES),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t tokens_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, raw_tokens, tokens_fields),
};

static tp_err convert_tokens(const char *path, const raw_tokens *raw, tp_token_table *table,
                             char *err, size_t errlen) {
  for (unsigned i = 0; i < raw->agents_count; i++) {
    const raw_entry *r = &raw->agents[i];
    char node[64], why[160];
    uint8_t hash[32];
    snprintf(node, sizeof(node), "agents[%u].name", i);
    if (tp_wire_check_agent_id(r->name, why, sizeof(why)) != TP_E_OK) {
      tp_yaml_error_at(err, errlen, path, node, "agents[%u].name: %s", i, why);
      return TP_E_CONFIG;
    }
    snprintf(node, sizeof(node), "agents[%u].sha256", i);
    if (!from_hex(r->sha256, hash)) {
      tp_yaml_error_at(err, errlen, path, node,
                       "agents[%u].sha256: not 64 lowercase hex digits (a SHA-256)", i);
      return TP_E_CONFIG;
    }
    for (size_t j = 0; j < table->n; j++) {
      if (tp_ct_equal(hash, table->entries[j].hash, 32)) {
        tp_yaml_error_at(err, errlen, path, node,
                         "agents[%u].sha256: the same token hash as agents[%zu] (one token "
                         "cannot name two agents)",
                         i, j);
        return TP_E_CONFIG;
      }
    }
    if (add_entry(table, r->name, hash, r->created ? r->created : "") != TP_E_OK) {
      tp_yaml_error_at(err, errlen, path, node, "too many tokens (limit %d)", TP_TOKEN_MAX_ENTRIES);
      return TP_E_CONFIG;
    }
  }
  return TP_E_OK;
}

tp_err tp_token_table_load(const char *path, bool missing_ok, tp_token_table **out, char *err,
                           size_t errlen) {
  raw_tokens *raw = NULL;
  struct stat st;
  *out = NULL;
  if (stat(path, &st) != 0 && errno == ENOENT) {
    if (missing_ok) {
      *out = tp_token_table_new();
      return TP_E_OK;
    }
    snprintf(err, errlen,
             "%s: no such tokens file (create it with: tlsprobe-collector agents add NAME "
             "--config FILE)",
             path);
    return TP_E_NOTFOUND;
  }
  tp_err rc = tp_yaml_load(path, &tokens_schema, (void **)&raw, err, errlen);
  if (rc != TP_E_OK)
    return rc;
  tp_token_table *table = tp_token_table_new();
  rc = convert_tokens(path, raw, table, err, errlen);
  tp_yaml_free(&tokens_schema, raw);
  if (rc != TP_E_OK) {
    tp_token_table_free(table);
    return rc;
  }
  *out = table;
  return TP_E_OK;
}

/* ---- writing --------------------------------------------------------------------- */

static bool emit(yaml_emitter_t *em, yaml_event_t *ev, int initialized) {
  return initialized && yaml_emitter_emit(em, ev);
}

static bool emit_scalar(yaml_emitter_t *em, const char *value, yaml_scalar_style_t style) {
  yaml_event_t ev;
  return emit(em, &ev,
              yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)value,
                                           (int)strlen(value), 1, 1, style));
}

static bool emit_pair(yaml_emitter_t *em, const char *key, const char *value) {
  return emit_scalar(em, key, YAML_PLAIN_SCALAR_STYLE) &&
         emit_scalar(em, value, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
}

static bool emit_entry(yaml_emitter_t *em, const token_entry *e) {
  yaml_event_t ev;
  char hex[65];
  to_hex(e->hash, 32, hex);
  return emit(em, &ev,
              yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)) &&
         emit_pair(em, "name", e->name) && emit_pair(em, "sha256", hex) &&
         emit_pair(em, "created", e->created) &&
         emit(em, &ev, yaml_mapping_end_event_initialize(&ev));
}

static bool emit_table(yaml_emitter_t *em, const tp_token_table *table) {
  yaml_event_t ev;
  bool ok = emit(em, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) &&
            emit(em, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) &&
            emit(em, &ev,
                 yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                     YAML_BLOCK_MAPPING_STYLE)) &&
            emit_scalar(em, "agents", YAML_PLAIN_SCALAR_STYLE) &&
            /* flow style for an empty list: "agents: []" */
            emit(em, &ev,
                 yaml_sequence_start_event_initialize(
                     &ev, NULL, NULL, 1,
                     table->n ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE));
  for (size_t i = 0; ok && i < table->n; i++)
    ok = emit_entry(em, &table->entries[i]);
  return ok && emit(em, &ev, yaml_sequence_end_event_initialize(&ev)) &&
         emit(em, &ev, yaml_mapping_end_event_initialize(&ev)) &&
         emit(em, &ev, yaml_document_end_event_initialize(&ev, 1)) &&
         emit(em, &ev, yaml_stream_end_event_initialize(&ev)) && yaml_emitter_flush(em);
}

static const char HEADER[] =
    "# tlsprobe-collector agent tokens: SHA-256 hashes only, never tokens.\n"
    "# Written by `tlsprobe-collector agents add|revoke`; see docs/security.md.\n";

/* fsync of the directory, so the rename itself survives a crash. */
static tp_err sync_dir(const char *path) {
  char *dir = tp_xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (slash == NULL)
    snprintf(dir, strlen(dir) + 1, ".");
  else
    slash[slash == dir ? 1 : 0] = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(dir);
  if (fd < 0)
    return TP_E_IO;
  tp_err rc = fsync(fd) == 0 ? TP_E_OK : TP_E_IO;
  close(fd);
  return rc;
}

tp_err tp_token_table_save(const tp_token_table *table, const char *path, char *err,
                           size_t errlen) {
  yaml_emitter_t em;
  bool em_ready = false;
  FILE *fp = NULL;
  const char *what = "create a temporary file";
  char *tmp = tp_xasprintf("%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp); /* 0600 */
  tp_err rc = TP_E_IO;
  if (fd < 0)
    goto out;
  what = "write";
  if (fchmod(fd, 0600) != 0 || (fp = fdopen(fd, "w")) == NULL)
    goto out;
  fd = -1; /* owned by fp */
  if (fputs(HEADER, fp) == EOF || !yaml_emitter_initialize(&em))
    goto out;
  em_ready = true;
  yaml_emitter_set_output_file(&em, fp);
  yaml_emitter_set_unicode(&em, 1);
  if (!emit_table(&em, table) || fflush(fp) != 0)
    goto out;
  what = "fsync";
  if (fsync(fileno(fp)) != 0)
    goto out;
  what = "close";
  int closed = fclose(fp);
  fp = NULL;
  if (closed != 0)
    goto out;
  what = "rename the temporary file over";
  if (rename(tmp, path) != 0)
    goto out;
  what = "fsync the directory of";
  rc = sync_dir(path);
  if (rc == TP_E_OK) {
    free(tmp);
    tmp = NULL;
  }
out:
  if (rc != TP_E_OK)
    snprintf(err, errlen, "%s: cannot %s it: %s", path, what,
             em_ready && em.error != YAML_NO_ERROR && em.problem ? em.problem : strerror(errno));
  if (em_ready)
    yaml_emitter_delete(&em);
  if (fp != NULL)
    fclose(fp);
  if (fd >= 0)
    close(fd);
  if (tmp != NULL) {
    unlink(tmp);
    free(tmp);
  }
  return rc;
}
