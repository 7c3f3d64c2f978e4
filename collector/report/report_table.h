/* report_table.h - an aligned text table for the report's views: named columns,
 * numbers right-aligned, names left-aligned, two spaces between columns, no
 * trailing blanks. Cells are terminal-safe text (the caller escapes). */
#ifndef TP_REPORT_TABLE_H
#define TP_REPORT_TABLE_H
#include <stdbool.h>
#include <stddef.h>

#include "tp_buf.h"

typedef struct tp_table tp_table;

tp_table *tp_table_new(void);
/* Adds a column (before the first row). */
void tp_table_column(tp_table *t, const char *name, bool right_aligned);
/* Adds a row of as many cells as columns; the table takes ownership of them. */
void tp_table_row(tp_table *t, char **cells);
size_t tp_table_columns(const tp_table *t);
size_t tp_table_rows(const tp_table *t);
/* A column whose cells are all "0" or "-" can be left out (DIVERGENT). */
void tp_table_hide_if_empty(tp_table *t, size_t col);
tp_err tp_table_render(const tp_table *t, tp_buf *out);
void tp_table_free(tp_table *t);

#endif
