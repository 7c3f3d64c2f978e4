/* report_impl.h - the tp_report struct, shared by report.c (aggregation) and
 * report_format.c (output) only. */
#ifndef TP_REPORT_IMPL_H
#define TP_REPORT_IMPL_H
#include "report.h"

struct tp_report {
  tp_report_query query; /* strings not owned: the caller's argv */
  tp_report_series *series;
  size_t n_series;
  size_t alloc_series;
  uint64_t total_probes;
  tp_report_warning *warnings;
  size_t n_warnings;
  size_t alloc_warnings;
};

#endif
