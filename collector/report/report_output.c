/* report_output.c - view names and the one entry point that renders a report in
 * memory and writes it out whole. */
#include <string.h>

#include "report_impl.h"
#include "report_output.h"

static const char *const view_names[] = {"summary", "errors", "versions", "expiry",
                                         "clients", "target", "agents"};

const char *tp_report_view_name(tp_report_view view) {
  return (size_t)view < sizeof(view_names) / sizeof(view_names[0]) ? view_names[view] : "?";
}

bool tp_report_view_from_name(const char *name, tp_report_view *out) {
  for (size_t i = 0; i < sizeof(view_names) / sizeof(view_names[0]); i++)
    if (strcmp(name, view_names[i]) == 0) {
      *out = (tp_report_view)i;
      return true;
    }
  return false;
}

#define OUT_CAP ((size_t)1 << 40) /* report output is ours, not network input */

tp_err tp_report_write(const tp_report *r, const tp_report_output *o, FILE *out) {
  tp_buf buf;
  tp_buf_init(&buf, OUT_CAP);
  tp_err rc = TP_E_INVAL;
  switch (o->format) {
  case TP_FORMAT_TEXT:
    rc = tp__report_text(r, o, &buf);
    break;
  case TP_FORMAT_JSON:
    rc = tp__report_json(r, o, &buf);
    break;
  case TP_FORMAT_CSV:
    rc = tp__report_csv(r, o, &buf);
    break;
  case TP_FORMAT_HTML:
    rc = tp__report_html(r, o, &buf);
    break;
  }
  if (rc == TP_E_OK && buf.len > 0 && fwrite(buf.data, 1, buf.len, out) != buf.len)
    rc = TP_E_IO;
  if (rc == TP_E_OK && fflush(out) != 0)
    rc = TP_E_IO;
  tp_buf_free(&buf);
  return rc;
}
