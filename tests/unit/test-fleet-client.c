/* SPDX-License-Identifier: MIT */
/* The fleet client's pure parts: the reconnection backoff, the poll's jitter, the cursor
 * rule (broker/fleet-poll.c) and the credentials file's format (broker/fleet-credentials.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fleet-credentials.h"
#include "fleet-poll.h"

static void backoff_doubles_to_30s(void **state) {
        (void) state;
        uint64_t expected[] = { 1, 2, 4, 8, 16, 30, 30 };
        uint64_t b = 0;
        for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
                b = fleet_backoff_next(b);
                assert_int_equal(b, expected[i] * 1000000ULL);
        }
        /* Reset after a success: 0 again starts at 1 s. */
        assert_int_equal(fleet_backoff_next(0), 1000000ULL);
        assert_int_equal(fleet_backoff_next(UINT64_MAX), 30000000ULL);
}

static void poll_delay_stays_near_2s(void **state) {
        (void) state;
        assert_int_equal(fleet_poll_delay(0), 1800000ULL);
        assert_int_equal(fleet_poll_delay(UINT32_MAX), 2200000ULL);
        uint64_t mid = fleet_poll_delay(UINT32_MAX / 2);
        assert_in_range(mid, 1999999ULL, 2000001ULL);
}

static void cursor_passes_settled_rows(void **state) {
        (void) state;
        FleetChangeRow rows[] = { { 5, true }, { 6, true }, { 9, true } };
        int64_t cursor = 4;
        uint64_t seen = 10;
        assert_int_equal(fleet_cursor_advance(&cursor, rows, 3, &seen), 3);
        assert_int_equal(cursor, 9);
        assert_int_equal(seen, 13);
}

static void cursor_stops_before_a_row_still_being_written(void **state) {
        (void) state;
        /* Row 6's transaction may still be running, so a lower seq could yet appear
         * before 7: 7 is not passed though settled. */
        FleetChangeRow rows[] = { { 5, true }, { 6, false }, { 7, true } };
        int64_t cursor = 0;
        uint64_t seen = 0;
        assert_int_equal(fleet_cursor_advance(&cursor, rows, 3, &seen), 1);
        assert_int_equal(cursor, 5);
        assert_int_equal(seen, 1);

        FleetChangeRow first[] = { { 6, false }, { 7, true } };
        assert_int_equal(fleet_cursor_advance(&cursor, first, 2, &seen), 0);
        assert_int_equal(cursor, 5);
        assert_int_equal(seen, 1);

        assert_int_equal(fleet_cursor_advance(&cursor, NULL, 0, &seen), 0);
        assert_int_equal(cursor, 5);
}

static void cursor_refuses_rows_out_of_order(void **state) {
        (void) state;
        FleetChangeRow behind[] = { { 5, true } };
        FleetChangeRow unordered[] = { { 8, true }, { 7, true } };
        int64_t cursor = 5;
        uint64_t seen = 0;
        assert_int_equal(fleet_cursor_advance(&cursor, behind, 1, &seen), -EINVAL);
        assert_int_equal(fleet_cursor_advance(&cursor, unordered, 2, &seen), -EINVAL);
        assert_int_equal(cursor, 5);
        assert_int_equal(seen, 0);
}

static int parse(const char *text, FleetCredentials *c, char **error) {
        return fleet_credentials_parse(text, strlen(text), c, error);
}

static void credentials_as_add_host_prints_them(void **state) {
        (void) state;
        FleetCredentials c = {};
        char *error = NULL;
        assert_int_equal(parse("# the fleet\n\n*:*:jit:jit_host_db-7:6c0f9a\n", &c, &error), 0);
        assert_null(error);
        assert_string_equal(c.role, "jit_host_db-7");
        assert_string_equal(c.password, "6c0f9a");
        fleet_credentials_done(&c);
        assert_null(c.role);

        /* libpq's escapes; only the first entry counts. */
        assert_int_equal(parse("db\\:1:5432:jit:r\\\\x:p\\:w\r\n*:*:*:other:x\n", &c, &error), 0);
        assert_string_equal(c.role, "r\\x");
        assert_string_equal(c.password, "p:w");
        fleet_credentials_done(&c);
}

static void credentials_refused(void **state) {
        (void) state;
        static const struct {
                const char *text, *error;
        } cases[] = {
                { "", "no entry (expected the line jitctl fleet add-host prints)" },
                { "# only a comment\n",
                  "no entry (expected the line jitctl fleet add-host prints)" },
                { "*:*:jit:role\n", "line 1: expected host:port:database:role:password" },
                { "\n*:*:jit::pw\n", "line 2: the role must be a name of 1 to 63 bytes" },
                { "*:*:jit:*:pw\n", "line 1: the role must be a name of 1 to 63 bytes" },
                { "*:*:jit:role:\n", "line 1: the password must have 1 to 1024 bytes" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                FleetCredentials c = {};
                char *error = NULL;
                assert_int_equal(parse(cases[i].text, &c, &error), -EINVAL);
                assert_non_null(error);
                assert_string_equal(error, cases[i].error);
                assert_null(c.role);
                free(error);
        }
        FleetCredentials c = {};
        char *error = NULL;
        assert_int_equal(fleet_credentials_parse("*:*:jit:r:p\0x", 13, &c, &error), -EINVAL);
        assert_string_equal(error, "holds a NUL byte");
        free(error);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(backoff_doubles_to_30s),
                cmocka_unit_test(poll_delay_stays_near_2s),
                cmocka_unit_test(cursor_passes_settled_rows),
                cmocka_unit_test(cursor_stops_before_a_row_still_being_written),
                cmocka_unit_test(cursor_refuses_rows_out_of_order),
                cmocka_unit_test(credentials_as_add_host_prints_them),
                cmocka_unit_test(credentials_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
