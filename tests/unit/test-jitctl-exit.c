/* SPDX-License-Identifier: MIT */
/* jitctl/jitctl-exit.[ch]: jitctl's exit status, an interface scripts rely on (README.md,
 * "jitctl"), and the broker's error codes mapped to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "jitctl-exit.h"
#include "protocol.h"

/* The numbers themselves are the contract: checked when this file compiles, too. */
_Static_assert(JIT_EXIT_OK == 0, "exit status 0: success");
_Static_assert(JIT_EXIT_FAILURE == 1, "exit status 1: failure");
_Static_assert(JIT_EXIT_USAGE == 2, "exit status 2: usage error");
_Static_assert(JIT_EXIT_REFUSED == 3, "exit status 3: refused");
_Static_assert(JIT_EXIT_UNREACHABLE == 4, "exit status 4: broker unreachable");
_Static_assert(JIT_EXIT_NOT_FOUND == 5, "exit status 5: no such request");

static void test_exit_status_constants(void **state) {
        assert_int_equal(JIT_EXIT_OK, 0);
        assert_int_equal(JIT_EXIT_FAILURE, 1);
        assert_int_equal(JIT_EXIT_USAGE, 2);
        assert_int_equal(JIT_EXIT_REFUSED, 3);
        assert_int_equal(JIT_EXIT_UNREACHABLE, 4);
        assert_int_equal(JIT_EXIT_NOT_FOUND, 5);
}

static void test_error_to_exit_status(void **state) {
        static const struct {
                JitError e;
                int exit_status;
        } table[] = {
                { JIT_ERROR_BAD_REQUEST, JIT_EXIT_FAILURE },
                { JIT_ERROR_REFUSED, JIT_EXIT_REFUSED },
                { JIT_ERROR_NOT_FOUND, JIT_EXIT_NOT_FOUND },
                { JIT_ERROR_CONFLICT, JIT_EXIT_FAILURE },
                { JIT_ERROR_INTERNAL, JIT_EXIT_FAILURE },
        };

        /* Every code the protocol has is in the table. */
        assert_int_equal(sizeof(table) / sizeof(table[0]), _JIT_ERROR_MAX);
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                assert_int_equal(jit_error_to_exit_status(table[i].e), table[i].exit_status);
        /* An unknown code from a newer broker is a plain failure for jitctl. */
        assert_int_equal(jit_error_to_exit_status(_JIT_ERROR_INVALID), JIT_EXIT_FAILURE);
        assert_int_equal(jit_error_to_exit_status(_JIT_ERROR_MAX), JIT_EXIT_FAILURE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_exit_status_constants),
                cmocka_unit_test(test_error_to_exit_status),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
