/* test_outcome.c - the taxonomy's names are unique, snake_case, and agree with
 * the protobuf ErrorClass enum (same values, matching names). */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "outcome.h"
#include "tlsprobe.pb-c.h"

static void test_names_unique_and_snake_case(void **state) {
  (void)state;
  const ProtobufCEnumDescriptor *d = &tlsprobe__v1__error_class__descriptor;
  int seen = 0;
  for (int v = 1; v < 64; v++) {
    const char *name = tp_outcome_name(v);
    if (name == NULL)
      continue;
    seen++;
    for (const char *c = name; *c; c++)
      assert_true(islower((unsigned char)*c) || *c == '_');
    for (int w = v + 1; w < 64; w++) {
      const char *other = tp_outcome_name(w);
      if (other != NULL)
        assert_string_not_equal(name, other);
    }
  }
  /* every non-zero protobuf value is in the taxonomy, and nothing else is */
  assert_int_equal(seen, (int)d->n_values - 1);
}

static void test_names_match_protobuf_enum(void **state) {
  (void)state;
  const ProtobufCEnumDescriptor *d = &tlsprobe__v1__error_class__descriptor;
  for (unsigned i = 0; i < d->n_values; i++) {
    const ProtobufCEnumValue *ev = &d->values[i];
    if (ev->value == 0) {
      assert_null(tp_outcome_name(0));
      continue;
    }
    const char *name = tp_outcome_name(ev->value);
    assert_non_null(name);
    /* "ERROR_CLASS_UNKNOWN_CA" <-> "unknown_ca" */
    const char *suffix = ev->name + strlen("ERROR_CLASS_");
    assert_int_equal(strlen(suffix), strlen(name));
    for (size_t k = 0; name[k]; k++)
      assert_int_equal(tolower((unsigned char)suffix[k]), name[k]);
  }
}

static void test_round_trip_and_categories(void **state) {
  (void)state;
  tp_outcome o;
  assert_true(tp_outcome_from_name("hostname_mismatch", &o));
  assert_int_equal(o, TP_OUTCOME_HOSTNAME_MISMATCH);
  assert_false(tp_outcome_from_name("nope", &o));
  assert_false(tp_outcome_is_valid(0));
  assert_false(tp_outcome_is_valid(999));
  assert_int_equal(tp_outcome_category_of(TP_OUTCOME_UNKNOWN_CA), TP_CAT_CLIENT);
  assert_int_equal(tp_outcome_category_of(TP_OUTCOME_EXPIRED), TP_CAT_SERVER);
  assert_string_equal(tp_outcome_category_name(TP_CAT_NETWORK), "network");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_unique_and_snake_case),
      cmocka_unit_test(test_names_match_protobuf_enum),
      cmocka_unit_test(test_round_trip_and_categories),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
