/* outcome.c - lookups over TP_OUTCOME_MAP. */
#include "outcome.h"

#include <stddef.h>
#include <string.h>

static const struct {
  tp_outcome value;
  const char *name;
  tp_outcome_category category;
} outcomes[] = {
#define TP_OUTCOME_ROW(e, name, value, cat) {TP_OUTCOME_##e, name, cat},
    TP_OUTCOME_MAP(TP_OUTCOME_ROW)
#undef TP_OUTCOME_ROW
};

#define N_OUTCOMES (sizeof(outcomes) / sizeof(outcomes[0]))

const char *tp_outcome_name(int outcome) {
  for (size_t i = 0; i < N_OUTCOMES; i++)
    if ((int)outcomes[i].value == outcome)
      return outcomes[i].name;
  return NULL;
}

bool tp_outcome_from_name(const char *name, tp_outcome *out) {
  for (size_t i = 0; i < N_OUTCOMES; i++) {
    if (strcmp(outcomes[i].name, name) == 0) {
      *out = outcomes[i].value;
      return true;
    }
  }
  return false;
}

bool tp_outcome_is_valid(int outcome) {
  return tp_outcome_name(outcome) != NULL;
}

tp_outcome_category tp_outcome_category_of(tp_outcome outcome) {
  for (size_t i = 0; i < N_OUTCOMES; i++)
    if (outcomes[i].value == outcome)
      return outcomes[i].category;
  return TP_CAT_INTERNAL;
}

const char *tp_outcome_category_name(tp_outcome_category category) {
  switch (category) {
  case TP_CAT_NONE:
    return "none";
  case TP_CAT_NETWORK:
    return "network";
  case TP_CAT_SERVER:
    return "server";
  case TP_CAT_CLIENT:
    return "client";
  case TP_CAT_POLICY:
    return "policy";
  case TP_CAT_INTERNAL:
    return "internal";
  }
  return "internal";
}
