/* report_table.c - see report_table.h. */
#include "report_table.h"

#include <stdlib.h>
#include <string.h>

#include "tp_mem.h"

typedef struct column {
  char *name;
  bool right;
  bool hidden;
} column;

struct tp_table {
  column *cols;
  size_t n_cols;
  char **cells; /* row-major, n_rows * n_cols */
  size_t n_rows, alloc_rows;
};

tp_table *tp_table_new(void) { return tp_xcalloc(1, sizeof(tp_table)); }

void tp_table_column(tp_table *t, const char *name, bool right_aligned) {
  t->cols = tp_xrealloc(t->cols, (t->n_cols + 1) * sizeof(t->cols[0]));
  t->cols[t->n_cols++] = (column){.name = tp_xstrdup(name), .right = right_aligned};
}

void tp_table_row(tp_table *t, char **cells) {
  if (t->n_rows == t->alloc_rows) {
    t->alloc_rows = t->alloc_rows ? 2 * t->alloc_rows : 16;
    t->cells = tp_xrealloc(t->cells, t->alloc_rows * t->n_cols * sizeof(t->cells[0]));
  }
  memcpy(&t->cells[t->n_rows * t->n_cols], cells, t->n_cols * sizeof(cells[0]));
  t->n_rows++;
}

size_t tp_table_columns(const tp_table *t) { return t->n_cols; }

size_t tp_table_rows(const tp_table *t) { return t->n_rows; }

void tp_table_hide_if_empty(tp_table *t, size_t col) {
  for (size_t r = 0; r < t->n_rows; r++) {
    const char *c = t->cells[r * t->n_cols + col];
    if (strcmp(c, "0") != 0 && strcmp(c, "-") != 0)
      return;
  }
  t->cols[col].hidden = true;
}

static tp_err spaces(tp_buf *out, size_t n) {
  static const char blanks[] = "                                ";
  tp_err rc = TP_E_OK;
  while (rc == TP_E_OK && n > 0) {
    size_t k = n < sizeof(blanks) - 1 ? n : sizeof(blanks) - 1;
    rc = tp_buf_append(out, blanks, k);
    n -= k;
  }
  return rc;
}

static size_t last_shown(const tp_table *t) {
  size_t last = 0;
  for (size_t c = 0; c < t->n_cols; c++)
    if (!t->cols[c].hidden)
      last = c;
  return last;
}

static tp_err render_line(const tp_table *t, char *const *cells, const size_t *width, tp_buf *out) {
  size_t last = last_shown(t);
  tp_err rc = TP_E_OK;
  bool first = true;
  for (size_t c = 0; rc == TP_E_OK && c < t->n_cols; c++) {
    if (t->cols[c].hidden)
      continue;
    size_t len = strlen(cells[c]);
    size_t pad = width[c] - len;
    if (!first)
      rc = spaces(out, 2);
    first = false;
    if (rc == TP_E_OK && t->cols[c].right)
      rc = spaces(out, pad);
    if (rc == TP_E_OK)
      rc = tp_buf_append(out, cells[c], len);
    if (rc == TP_E_OK && !t->cols[c].right && c != last)
      rc = spaces(out, pad);
  }
  return rc == TP_E_OK ? tp_buf_append(out, "\n", 1) : rc;
}

tp_err tp_table_render(const tp_table *t, tp_buf *out) {
  size_t *width = tp_xcalloc(t->n_cols + 1, sizeof(*width));
  char **names = tp_xcalloc(t->n_cols + 1, sizeof(*names));
  for (size_t c = 0; c < t->n_cols; c++) {
    names[c] = t->cols[c].name;
    width[c] = strlen(names[c]);
    for (size_t r = 0; r < t->n_rows; r++) {
      size_t len = strlen(t->cells[r * t->n_cols + c]);
      width[c] = len > width[c] ? len : width[c];
    }
  }
  tp_err rc = render_line(t, names, width, out);
  for (size_t r = 0; rc == TP_E_OK && r < t->n_rows; r++)
    rc = render_line(t, &t->cells[r * t->n_cols], width, out);
  free(names);
  free(width);
  return rc;
}

void tp_table_free(tp_table *t) {
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
    free(t->cells[i]);
  for (size_t c = 0; c < t->n_cols; c++)
    free(t->cols[c].name);
  free(t->cells);
  free(t->cols);
  free(t);
}
