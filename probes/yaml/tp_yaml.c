/* tp_yaml.c - libcyaml loading with positioned errors, and a libyaml path locator. */
#include "tp_yaml.h"

const cyaml_strval_t tp_yaml_bool_strings[TP_YAML_BOOL_STRINGS] = {
    {"true", 1}, {"false", 0}, {"True", 1}, {"False", 0}, {"TRUE", 1}, {"FALSE", 0},
    {"yes", 1},  {"no", 0},    {"on", 1},   {"off", 0},   {"Yes", 1},  {"No", 0},
};

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Collects libcyaml's log lines for one load. */
typedef struct {
  char problem[256];  /* first error line without the "Load: " prefix */
  char location[256]; /* innermost backtrace frame: "in mapping field 'port'" */
  unsigned line, column;
  bool have_position;
  /* The next frame out: for a missing key, the mapping that lacks it (the
   * innermost frame is then merely the last key libcyaml read). */
  char outer_location[256];
  unsigned outer_line, outer_column;
  bool have_outer;
} cyaml_capture;

/* Copies a backtrace frame's text without the position and trailing blanks. */
static void frame_text(char *dst, size_t len, const char *text, const char *pos) {
  snprintf(dst, len, "%.*s", (int)(pos - text), text);
  size_t n = strlen(dst);
  while (n > 0 && dst[n - 1] == ' ')
    dst[--n] = '\0';
}

/* The format comes from libcyaml, which declares its log calls printf-like. */
__attribute__((format(printf, 3, 0))) static void capture_log(cyaml_log_t level, void *ctx,
                                                              const char *fmt, va_list args) {
  cyaml_capture *cap = ctx;
  char msg[512];
  if (level < CYAML_LOG_ERROR)
    return;
  vsnprintf(msg, sizeof(msg), fmt, args);
  msg[strcspn(msg, "\n")] = '\0';
  const char *text = msg;
  if (strncmp(text, "Load: ", 6) == 0)
    text += 6;
  while (*text == ' ')
    text++;
  if (strcmp(text, "Backtrace:") == 0)
    return;
  unsigned line, column;
  const char *pos = strstr(text, "(line: ");
  if (pos != NULL && sscanf(pos, "(line: %u, column: %u)", &line, &column) == 2) {
    /* The first frame is the innermost node: keep it, and the one around it. */
    if (!cap->have_position) {
      cap->have_position = true;
      cap->line = line;
      cap->column = column;
      frame_text(cap->location, sizeof(cap->location), text, pos);
    } else if (!cap->have_outer) {
      cap->have_outer = true;
      cap->outer_line = line;
      cap->outer_column = column;
      frame_text(cap->outer_location, sizeof(cap->outer_location), text, pos);
    }
    return;
  }
  /* The only enums our schemas have are strict booleans (TP_YAML_FIELD_BOOL_PTR). */
  static const char ENUM[] = "Invalid ENUM value: ";
  if (cap->problem[0] == '\0' && strncmp(text, ENUM, strlen(ENUM)) == 0)
    snprintf(cap->problem, sizeof(cap->problem), "\"%.200s\" is not true or false",
             text + strlen(ENUM));
  else if (cap->problem[0] == '\0')
    snprintf(cap->problem, sizeof(cap->problem), "%.255s", text);
}

/* Finds the first scalar equal to `text` at or after line:column (1-based)
 * and moves line:column to it. libcyaml reports an unexpected key at its
 * mapping's position; users want the key's own line. */
static void refine_to_scalar(const char *file, const char *text, unsigned *line, unsigned *column) {
  FILE *fp = fopen(file, "rb");
  if (fp == NULL)
    return;
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) {
    fclose(fp);
    return;
  }
  yaml_parser_set_input_file(&parser, fp);
  for (bool done = false; !done;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev))
      break;
    unsigned l = (unsigned)ev.start_mark.line + 1, c = (unsigned)ev.start_mark.column + 1;
    bool after = l > *line || (l == *line && c >= *column);
    if (ev.type == YAML_SCALAR_EVENT && after && strcmp((char *)ev.data.scalar.value, text) == 0) {
      *line = l;
      *column = c;
      done = true;
    }
    if (ev.type == YAML_STREAM_END_EVENT)
      done = true;
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&parser);
  fclose(fp);
}

/* ---- what libcyaml cannot say precisely --------------------------------
 * libcyaml reports a libyaml syntax error at the enclosing mapping's position
 * (a tab on line 4 comes out as "3:1"), loads an empty or comment-only file as
 * a NULL document with CYAML_OK, reports a non-mapping top level without any
 * position, and ignores every document after the first. These helpers re-read
 * the file with libyaml itself, which knows where the problem is. */

/* Lists the schema's top-level keys: "agent, collector; optional: limits". */
static void describe_keys(const cyaml_schema_value_t *schema, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  if (schema->type != CYAML_MAPPING)
    return;
  for (int optional = 0; optional <= 1; optional++) {
    bool first = true;
    for (const cyaml_schema_field_t *f = schema->mapping.fields; f->key != NULL; f++) {
      if (((f->value.flags & CYAML_FLAG_OPTIONAL) != 0) != optional || used >= len)
        continue;
      int n = snprintf(buf + used, len - used, "%s%s%s",
                       first && optional ? (used ? "; optional: " : "optional: ") : "",
                       first ? "" : ", ", f->key);
      if (n < 0)
        return;
      used += (size_t)n;
      first = false;
    }
  }
}

static tp_err empty_error(const char *path, const cyaml_schema_value_t *schema, char *err,
                          size_t errlen) {
  char keys[512];
  describe_keys(schema, keys, sizeof(keys));
  snprintf(err, errlen,
           "%s:1:1: no configuration: the file is empty or holds only comments (expected a "
           "mapping with the keys %s)",
           path, keys);
  return TP_E_CONFIG;
}

/* Where and what libyaml's first error is. */
typedef struct yaml_problem {
  bool found;
  unsigned line, column; /* 1-based */
  char what[256];
} yaml_problem;

/* 1-based line and column of byte `offset` (libyaml's reader errors have only
 * an offset: invalid UTF-8, a NUL or control byte). */
static void offset_position(const char *path, size_t offset, unsigned *line, unsigned *column) {
  *line = 1;
  *column = 1;
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return;
  for (size_t i = 0; i < offset; i++) {
    int ch = fgetc(fp);
    if (ch == EOF)
      break;
    if (ch == '\n') {
      (*line)++;
      *column = 1;
    } else {
      (*column)++;
    }
  }
  fclose(fp);
}

static void record_problem(const char *path, const yaml_parser_t *parser, yaml_problem *out) {
  out->found = true;
  if (parser->error == YAML_READER_ERROR) {
    offset_position(path, parser->problem_offset, &out->line, &out->column);
    snprintf(out->what, sizeof(out->what), "%s (byte 0x%02x; the file must be UTF-8 text)",
             parser->problem ? parser->problem : "unreadable input",
             (unsigned)(parser->problem_value & 0xff));
    return;
  }
  out->line = (unsigned)parser->problem_mark.line + 1;
  out->column = (unsigned)parser->problem_mark.column + 1;
  if (parser->context != NULL)
    snprintf(out->what, sizeof(out->what), "%s (%s at line %u, column %u)",
             parser->problem ? parser->problem : "syntax error", parser->context,
             (unsigned)parser->context_mark.line + 1, (unsigned)parser->context_mark.column + 1);
  else
    snprintf(out->what, sizeof(out->what), "%s", parser->problem ? parser->problem : "syntax error");
}

/* The file's shape as libyaml sees it: its first error, the top-level node's
 * kind and position, and where a second document starts. */
typedef struct yaml_outline {
  yaml_problem problem;
  yaml_event_type_t root; /* YAML_NO_EVENT: no document at all */
  bool root_is_null;      /* an empty plain scalar, "~" or "null" */
  unsigned root_line, root_column;
  unsigned second_line, second_column; /* 0: one document */
} yaml_outline;

static bool is_null_scalar(const yaml_event_t *ev) {
  const char *v = (const char *)ev->data.scalar.value;
  return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
         (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
          strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

static void outline_event(yaml_outline *o, const yaml_event_t *ev, unsigned *depth,
                          unsigned *documents) {
  switch (ev->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (++*documents == 2) {
      o->second_line = (unsigned)ev->start_mark.line + 1;
      o->second_column = (unsigned)ev->start_mark.column + 1;
    }
    break;
  case YAML_SCALAR_EVENT:
  case YAML_ALIAS_EVENT:
  case YAML_MAPPING_START_EVENT:
  case YAML_SEQUENCE_START_EVENT:
    if (*depth == 0 && *documents == 1) {
      o->root = ev->type;
      o->root_is_null = ev->type == YAML_SCALAR_EVENT && is_null_scalar(ev);
      o->root_line = (unsigned)ev->start_mark.line + 1;
      o->root_column = (unsigned)ev->start_mark.column + 1;
    }
    if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT)
      ++*depth;
    break;
  case YAML_MAPPING_END_EVENT:
  case YAML_SEQUENCE_END_EVENT:
    --*depth;
    break;
  default:
    break;
  }
}

/* Returns -1 if the file cannot be read (the caller keeps libcyaml's words). */
static int read_outline(const char *path, yaml_outline *o) {
  memset(o, 0, sizeof(*o));
  o->root = YAML_NO_EVENT;
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return -1;
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) {
    fclose(fp);
    return -1;
  }
  yaml_parser_set_input_file(&parser, fp);
  unsigned depth = 0, documents = 0;
  for (bool done = false; !done;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      record_problem(path, &parser, &o->problem);
      break;
    }
    outline_event(o, &ev, &depth, &documents);
    done = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&parser);
  fclose(fp);
  return 0;
}

/* If the indentation of line `line` (1-based) holds a tab, stores the tab's
 * column. YAML forbids tabs in indentation (YAML 1.2 §6.1); libyaml's own
 * words for it ("found character that cannot start any token") do not say so. */
static bool tab_in_indentation(const char *path, unsigned line, unsigned *column) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return false;
  char *text = NULL;
  size_t cap = 0;
  bool found = false;
  for (unsigned l = 1; l <= line; l++) {
    if (getline(&text, &cap, fp) < 0)
      goto out;
  }
  for (size_t i = 0; text[i] == ' ' || text[i] == '\t' || text[i] == '-'; i++) {
    if (text[i] == '\t') {
      *column = (unsigned)i + 1;
      found = true;
      break;
    }
  }
out:
  free(text);
  fclose(fp);
  return found;
}

/* A libyaml syntax error, at libyaml's own position. */
static tp_err syntax_error(const char *path, const yaml_problem *p, char *err, size_t errlen) {
  unsigned tab_column;
  if (tab_in_indentation(path, p->line, &tab_column)) {
    snprintf(err, errlen,
             "%s:%u:%u: tab character in indentation (YAML indents with spaces only: "
             "replace the tab with spaces)",
             path, p->line, tab_column);
  } else {
    snprintf(err, errlen, "%s:%u:%u: %s", path, p->line, p->column, p->what);
  }
  return TP_E_CONFIG;
}

static const char *node_kind(yaml_event_type_t type) {
  switch (type) {
  case YAML_SEQUENCE_START_EVENT:
    return "a list";
  case YAML_ALIAS_EVENT:
    return "an alias";
  default:
    return "a single value";
  }
}

/* libcyaml failed: put libyaml's position on what libcyaml could not place. */
static bool explain_failure(const char *path, const cyaml_schema_value_t *schema,
                            const cyaml_capture *cap, const char *problem, char *err,
                            size_t errlen) {
  yaml_outline o;
  bool syntax = strncmp(problem, "libyaml:", 8) == 0;
  if ((!syntax && cap->have_position) || read_outline(path, &o) != 0)
    return false;
  if (o.problem.found && (syntax || o.root == YAML_NO_EVENT)) {
    (void)syntax_error(path, &o.problem, err, errlen);
    return true;
  }
  if (syntax)
    return false;
  if (o.root == YAML_NO_EVENT || o.root_is_null) {
    (void)empty_error(path, schema, err, errlen);
    return true;
  }
  if (o.root != YAML_MAPPING_START_EVENT && schema->type == CYAML_MAPPING) {
    char keys[512];
    describe_keys(schema, keys, sizeof(keys));
    snprintf(err, errlen, "%s:%u:%u: the top level is %s (expected a mapping with the keys %s)",
             path, o.root_line, o.root_column, node_kind(o.root), keys);
    return true;
  }
  return false;
}

/* libcyaml succeeded: refuse what it silently dropped or could not load. */
static tp_err check_loaded(const char *path, const cyaml_schema_value_t *schema, void *data,
                           char *err, size_t errlen) {
  if (data == NULL)
    return empty_error(path, schema, err, errlen);
  yaml_outline o;
  if (read_outline(path, &o) == 0 && o.second_line != 0) {
    snprintf(err, errlen,
             "%s:%u:%u: a second YAML document starts here (a configuration is one document: "
             "remove the \"---\" and merge what follows)",
             path, o.second_line, o.second_column);
    return TP_E_CONFIG;
  }
  return TP_E_OK;
}

/* Messages quote the file's values, and YAML escapes ("\e[2J") put any
 * control character in a value: printed on the operator's terminal, they
 * would drive it. Every message leaves this file with them as '?' (what
 * agent/config.c's quoted() does to the values it shows). */
static void scrub_controls(char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      *s = '?';
}

static tp_err load_file(const char *path, const cyaml_schema_value_t *schema, void **out,
                        char *err, size_t errlen) {
  cyaml_capture cap;
  memset(&cap, 0, sizeof(cap));
  *out = NULL;
  FILE *probe = fopen(path, "r");
  if (probe == NULL) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return TP_E_IO;
  }
  fclose(probe);

  const cyaml_config_t config = {
      .log_fn = capture_log,
      .log_ctx = &cap,
      .mem_fn = cyaml_mem,
      .log_level = CYAML_LOG_ERROR,
      .flags = CYAML_CFG_DEFAULT,
  };
  void *data = NULL;
  cyaml_err_t rc = cyaml_load_file(path, &config, schema, (cyaml_data_t **)&data, NULL);
  if (rc == CYAML_OK) {
    tp_err checked = check_loaded(path, schema, data, err, errlen);
    if (checked != TP_E_OK) {
      tp_yaml_free(schema, data);
      return checked;
    }
    *out = data;
    return TP_E_OK;
  }
  const char *problem = cap.problem[0] ? cap.problem : cyaml_strerror(rc);
  if (explain_failure(path, schema, &cap, problem, err, errlen))
    return TP_E_CONFIG;
  static const char unexpected_key[] = "Unexpected key: ";
  static const char missing_key[] = "Missing required mapping field: ";
  if (cap.have_position && strncmp(problem, unexpected_key, sizeof(unexpected_key) - 1) == 0)
    refine_to_scalar(path, problem + sizeof(unexpected_key) - 1, &cap.line, &cap.column);
  if (cap.have_outer && strncmp(problem, missing_key, sizeof(missing_key) - 1) == 0) {
    cap.line = cap.outer_line;
    cap.column = cap.outer_column;
    memcpy(cap.location, cap.outer_location, sizeof(cap.location));
  }
  if (cap.have_position)
    snprintf(err, errlen, "%s:%u:%u: %s (%s)", path, cap.line, cap.column, problem, cap.location);
  else
    snprintf(err, errlen, "%s:1:1: %s", path, problem);
  return TP_E_CONFIG;
}

tp_err tp_yaml_load(const char *path, const cyaml_schema_value_t *schema, void **out, char *err,
                    size_t errlen) {
  tp_err rc = load_file(path, schema, out, err, errlen);
  if (rc != TP_E_OK && errlen > 0)
    scrub_controls(err);
  return rc;
}

void tp_yaml_free(const cyaml_schema_value_t *schema, void *data) {
  const cyaml_config_t config = {.mem_fn = cyaml_mem, .log_level = CYAML_LOG_ERROR};
  if (data != NULL)
    cyaml_free(&config, schema, data, 0);
}

/* ---- locator ---------------------------------------------------------- */

/* One step of a node path: a mapping key or a sequence index. */
typedef struct {
  char key[128];
  long index; /* >= 0 for "[i]", -1 for a key */
} path_step;

static int parse_path(const char *path, path_step *steps, int max_steps) {
  int n = 0;
  const char *p = path;
  while (*p != '\0' && n < max_steps) {
    if (*p == '.') {
      p++;
      continue;
    }
    path_step *s = &steps[n++];
    s->key[0] = '\0';
    s->index = -1;
    if (*p == '[') {
      char *end;
      s->index = strtol(p + 1, &end, 10);
      if (*end != ']' || s->index < 0)
        return -1;
      p = end + 1;
    } else {
      size_t len = strcspn(p, ".[");
      if (len >= sizeof(s->key))
        return -1;
      memcpy(s->key, p, len);
      s->key[len] = '\0';
      p += len;
    }
  }
  return n;
}

/* Skips the node whose start event was just consumed (ev). */
static int skip_node(yaml_parser_t *parser, const yaml_event_t *start) {
  if (start->type != YAML_MAPPING_START_EVENT && start->type != YAML_SEQUENCE_START_EVENT)
    return 0;
  int depth = 1;
  while (depth > 0) {
    yaml_event_t ev;
    if (!yaml_parser_parse(parser, &ev))
      return -1;
    if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)
      depth++;
    else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT)
      depth--;
    else if (ev.type == YAML_STREAM_END_EVENT)
      depth = 0;
    yaml_event_delete(&ev);
  }
  return 0;
}

/* Walks into the node whose start event is `node` following steps[0..n). */
static int descend(yaml_parser_t *parser, const yaml_event_t *node, const path_step *steps, int n,
                   unsigned *line, unsigned *column) {
  *line = (unsigned)node->start_mark.line + 1;
  *column = (unsigned)node->start_mark.column + 1;
  if (n == 0)
    return 0;
  bool mapping = node->type == YAML_MAPPING_START_EVENT;
  if (!mapping && node->type != YAML_SEQUENCE_START_EVENT)
    return -1;
  if (mapping != (steps[0].index < 0))
    return -1;
  for (long i = 0;; i++) {
    yaml_event_t ev;
    if (!yaml_parser_parse(parser, &ev))
      return -1;
    if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT ||
        ev.type == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&ev);
      return -1;
    }
    bool match;
    if (mapping) {
      /* ev is the key; a matching key points at the key itself when it is the
       * last step (the position users expect for "this key is wrong"). */
      match = ev.type == YAML_SCALAR_EVENT && strcmp((char *)ev.data.scalar.value, steps[0].key) == 0;
      unsigned key_line = (unsigned)ev.start_mark.line + 1, key_col = (unsigned)ev.start_mark.column + 1;
      yaml_event_delete(&ev);
      if (!yaml_parser_parse(parser, &ev))
        return -1;
      if (match) {
        int rc = descend(parser, &ev, steps + 1, n - 1, line, column);
        if (n == 1 && (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)) {
          *line = key_line;
          *column = key_col;
        }
        yaml_event_delete(&ev);
        return rc;
      }
    } else {
      match = i == steps[0].index;
      if (match) {
        int rc = descend(parser, &ev, steps + 1, n - 1, line, column);
        yaml_event_delete(&ev);
        return rc;
      }
    }
    int rc = skip_node(parser, &ev);
    yaml_event_delete(&ev);
    if (rc != 0)
      return -1;
  }
}

int tp_yaml_locate(const char *file, const char *node_path, unsigned *line, unsigned *column) {
  path_step steps[16];
  *line = 1;
  *column = 1;
  int n = parse_path(node_path, steps, 16);
  if (n < 0)
    return -1;
  FILE *fp = fopen(file, "rb");
  if (fp == NULL)
    return -1;
  yaml_parser_t parser;
  int rc = -1;
  if (!yaml_parser_initialize(&parser)) {
    fclose(fp);
    return -1;
  }
  yaml_parser_set_input_file(&parser, fp);
  yaml_event_t ev;
  /* Stream start, document start, then the root node. */
  for (;;) {
    if (!yaml_parser_parse(&parser, &ev))
      goto out;
    if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
        ev.type == YAML_SCALAR_EVENT)
      break;
    bool end = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (end)
      goto out;
  }
  rc = descend(&parser, &ev, steps, n, line, column);
  yaml_event_delete(&ev);
out:
  yaml_parser_delete(&parser);
  fclose(fp);
  return rc;
}

void tp_yaml_error_at(char *err, size_t errlen, const char *file, const char *node_path,
                      const char *fmt, ...) {
  unsigned line, column;
  (void)tp_yaml_locate(file, node_path, &line, &column);
  if (errlen == 0)
    return;
  int n = snprintf(err, errlen, "%s:%u:%u: ", file, line, column);
  if (n < 0)
    err[0] = '\0';
  if (n >= 0 && (size_t)n < errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  scrub_controls(err);
}
