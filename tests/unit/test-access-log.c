/* SPDX-License-Identifier: MIT */
/* Which allowed checks get a journald entry (broker/access-log.c): the first use of every
 * grant, then one per grant and interval that counts the uses it stands for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "access-log.h"

#define MIN ACCESS_LOG_INTERVAL_USEC

static void first_use_then_one_per_interval(void **state) {
        AccessLog *l = calloc(1, sizeof(AccessLog));
        uint64_t uses = 0;
        assert_true(access_log_use(l, 7, 1000, &uses));
        assert_int_equal(uses, 1);
        for (int i = 1; i <= 5; i++)
                assert_false(access_log_use(l, 7, 1000 + (uint64_t) i, &uses));
        /* Another grant's first use is its own. */
        assert_true(access_log_use(l, 8, 2000, &uses));
        assert_int_equal(uses, 1);
        /* A minute after grant 7's entry: this use and the five before it. */
        assert_false(access_log_use(l, 7, 1000 + MIN - 1, &uses));
        assert_true(access_log_use(l, 7, 1000 + MIN, &uses));
        assert_int_equal(uses, 7);
        assert_false(access_log_use(l, 7, 1000 + MIN + 1, &uses));
        assert_true(access_log_use(l, 7, 1000 + 3 * MIN, &uses));
        assert_int_equal(uses, 2);
        free(l);
}

static void a_full_table_logs_more_never_less(void **state) {
        AccessLog *l = calloc(1, sizeof(AccessLog));
        uint64_t uses;
        for (int64_t g = 1; g <= ACCESS_LOG_GRANTS_MAX; g++)
                assert_true(access_log_use(l, g, (uint64_t) g, &uses));
        /* One more grant pushes out grant 1, logged longest ago... */
        assert_true(access_log_use(l, ACCESS_LOG_GRANTS_MAX + 1, 5000, &uses));
        assert_int_equal(l->n, ACCESS_LOG_GRANTS_MAX);
        /* ...whose next use is logged again as a first one. */
        assert_true(access_log_use(l, 1, 5001, &uses));
        assert_int_equal(uses, 1);
        /* The others are still held. */
        assert_false(access_log_use(l, ACCESS_LOG_GRANTS_MAX, 5002, &uses));
        free(l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(first_use_then_one_per_interval),
                cmocka_unit_test(a_full_table_logs_more_never_less),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
