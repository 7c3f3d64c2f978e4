/* tp_yaml.c - libcyaml loading with positioned errors, and a libyaml path locator. */
#include "tp_yaml.h"

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
} cyaml_capture;

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
    /* The first frame is the innermost node: keep it. */
    if (!cap->have_position) {
      cap->have_position = true;
      cap->line = line;
      cap->column = column;
      snprintf(cap->location, sizeof(cap->location), "%.*s", (int)(pos - text), text);
      size_t n = strlen(cap->location);
      while (n > 0 && cap->location[n - 1] == ' ')
        cap->location[--n] = '\0';
    }
    return;
  }
  if (cap->problem[0] == '\0')
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

tp_err tp_yaml_load(const char *path, const cyaml_schema_value_t *schema, void **out, char *err,
                    size_t errlen) {
  cyaml_capture cap;
  memset(&cap, 0, sizeof(cap));
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
  cyaml_err_t rc = cyaml_load_file(path, &config, schema, (cyaml_data_t **)out, NULL);
  if (rc == CYAML_OK)
    return TP_E_OK;
  *out = NULL;
  const char *problem = cap.problem[0] ? cap.problem : cyaml_strerror(rc);
  static const char unexpected_key[] = "Unexpected key: ";
  if (cap.have_position && strncmp(problem, unexpected_key, sizeof(unexpected_key) - 1) == 0)
    refine_to_scalar(path, problem + sizeof(unexpected_key) - 1, &cap.line, &cap.column);
  if (cap.have_position)
    snprintf(err, errlen, "%s:%u:%u: %s (%s)", path, cap.line, cap.column, problem, cap.location);
  else
    snprintf(err, errlen, "%s: %s", path, problem);
  return TP_E_CONFIG;
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
  int n = snprintf(err, errlen, "%s:%u:%u: ", file, line, column);
  if (n < 0 || (size_t)n >= errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
  va_end(ap);
}
