/* SPDX-License-Identifier: MIT */
/* common/request-state.[ch]: the lifecycle table of docs/lifecycle.md, and what an approval
 * means. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "request-state.h"

#define NONE ((RequestState) -2) /* in the table below: the event is refused */

/* The whole lifecycle: pending -> active -> expired | revoked | consumed,
 * pending -> denied | cancelled | timed_out. Every other pair is refused. */
/* clang-format off */
static const RequestState expected[_REQUEST_STATE_MAX][_REQUEST_EVENT_MAX] = {
        /*                     APPROVED        DENY            CANCEL             PENDING_TIMEOUT    EXPIRE           REVOKE           CONSUME */
        [REQUEST_PENDING]   = { REQUEST_ACTIVE, REQUEST_DENIED, REQUEST_CANCELLED, REQUEST_TIMED_OUT, NONE,            NONE,            NONE },
        [REQUEST_ACTIVE]    = { NONE,           NONE,           NONE,              NONE,              REQUEST_EXPIRED, REQUEST_REVOKED, REQUEST_CONSUMED },
        [REQUEST_EXPIRED]   = { NONE, NONE, NONE, NONE, NONE, NONE, NONE },
        [REQUEST_REVOKED]   = { NONE, NONE, NONE, NONE, NONE, NONE, NONE },
        [REQUEST_CONSUMED]  = { NONE, NONE, NONE, NONE, NONE, NONE, NONE },
        [REQUEST_DENIED]    = { NONE, NONE, NONE, NONE, NONE, NONE, NONE },
        [REQUEST_CANCELLED] = { NONE, NONE, NONE, NONE, NONE, NONE, NONE },
        [REQUEST_TIMED_OUT] = { NONE, NONE, NONE, NONE, NONE, NONE, NONE },
};
/* clang-format on */

static void test_state_names(void **state) {
        static const char *const names[_REQUEST_STATE_MAX] = {
                [REQUEST_PENDING] = "pending",     [REQUEST_ACTIVE] = "active",
                [REQUEST_EXPIRED] = "expired",     [REQUEST_REVOKED] = "revoked",
                [REQUEST_CONSUMED] = "consumed",   [REQUEST_DENIED] = "denied",
                [REQUEST_CANCELLED] = "cancelled", [REQUEST_TIMED_OUT] = "timed_out",
        };

        assert_int_equal(_REQUEST_STATE_MAX, 8);
        for (int s = 0; s < _REQUEST_STATE_MAX; s++) {
                assert_string_equal(request_state_to_string((RequestState) s), names[s]);
                assert_int_equal(request_state_from_string(names[s]), s);
        }
        assert_null(request_state_to_string(_REQUEST_STATE_MAX));
        assert_null(request_state_to_string(_REQUEST_STATE_INVALID));
        assert_int_equal(request_state_from_string(NULL), _REQUEST_STATE_INVALID);
        assert_int_equal(request_state_from_string(""), _REQUEST_STATE_INVALID);
        assert_int_equal(request_state_from_string("Pending"), _REQUEST_STATE_INVALID);
        assert_int_equal(request_state_from_string("timed-out"), _REQUEST_STATE_INVALID);
        assert_int_equal(request_state_from_string("active "), _REQUEST_STATE_INVALID);
        assert_int_equal(request_state_from_string("approved"), _REQUEST_STATE_INVALID);
}

static void test_event_names(void **state) {
        static const char *const names[_REQUEST_EVENT_MAX] = {
                [EVENT_APPROVED] = "approved", [EVENT_DENY] = "deny",
                [EVENT_CANCEL] = "cancel",     [EVENT_PENDING_TIMEOUT] = "pending-timeout",
                [EVENT_EXPIRE] = "expire",     [EVENT_REVOKE] = "revoke",
                [EVENT_CONSUME] = "consume",
        };

        assert_int_equal(_REQUEST_EVENT_MAX, 7);
        for (int e = 0; e < _REQUEST_EVENT_MAX; e++) {
                assert_string_equal(request_event_to_string((RequestEvent) e), names[e]);
                assert_int_equal(request_event_from_string(names[e]), e);
        }
        assert_null(request_event_to_string(_REQUEST_EVENT_MAX));
        assert_null(request_event_to_string((RequestEvent) -1));
        assert_null(request_event_to_string((RequestEvent) 1000));
        assert_int_equal(request_event_from_string(NULL), _REQUEST_EVENT_INVALID);
        assert_int_equal(request_event_from_string(""), _REQUEST_EVENT_INVALID);
        assert_int_equal(request_event_from_string("Deny"), _REQUEST_EVENT_INVALID);
        assert_int_equal(request_event_from_string("pending_timeout"), _REQUEST_EVENT_INVALID);
        assert_int_equal(request_event_from_string("pending"), _REQUEST_EVENT_INVALID);
}

static void test_final_states(void **state) {
        assert_false(request_state_is_final(REQUEST_PENDING));
        assert_false(request_state_is_final(REQUEST_ACTIVE));
        assert_true(request_state_is_final(REQUEST_EXPIRED));
        assert_true(request_state_is_final(REQUEST_REVOKED));
        assert_true(request_state_is_final(REQUEST_CONSUMED));
        assert_true(request_state_is_final(REQUEST_DENIED));
        assert_true(request_state_is_final(REQUEST_CANCELLED));
        assert_true(request_state_is_final(REQUEST_TIMED_OUT));
}

static void test_transition_table(void **state) {
        unsigned allowed = 0;

        for (int s = 0; s < _REQUEST_STATE_MAX; s++)
                for (int e = 0; e < _REQUEST_EVENT_MAX; e++) {
                        RequestState to = (RequestState) 77;
                        int r = request_transition((RequestState) s, (RequestEvent) e, &to);

                        if (expected[s][e] == NONE) {
                                if (r != -EBUSY)
                                        fail_msg("%s + %s: %d, expected -EBUSY",
                                                 request_state_to_string(s),
                                                 request_event_to_string(e), r);
                                assert_int_equal(to, 77); /* untouched */
                        } else {
                                if (r != 0 || to != expected[s][e])
                                        fail_msg("%s + %s: r=%d to=%d, expected %s",
                                                 request_state_to_string(s),
                                                 request_event_to_string(e), r, to,
                                                 request_state_to_string(expected[s][e]));
                                allowed++;
                        }
                }
        assert_int_equal(allowed, 7);
}

static void test_final_states_have_no_way_out(void **state) {
        /* Consistency of the two functions: a final state accepts no event at all, and every
         * event a non-final state accepts leads somewhere else. */
        for (int s = 0; s < _REQUEST_STATE_MAX; s++)
                for (int e = 0; e < _REQUEST_EVENT_MAX; e++) {
                        RequestState to;
                        int r = request_transition((RequestState) s, (RequestEvent) e, &to);
                        if (request_state_is_final((RequestState) s))
                                assert_int_equal(r, -EBUSY);
                        else if (r == 0)
                                assert_int_not_equal(to, s);
                }
}

static void test_transition_out_of_range(void **state) {
        RequestState to = REQUEST_PENDING;

        assert_int_equal(request_transition(_REQUEST_STATE_INVALID, EVENT_APPROVED, &to), -EBUSY);
        assert_int_equal(request_transition(_REQUEST_STATE_MAX, EVENT_EXPIRE, &to), -EBUSY);
        assert_int_equal(request_transition(REQUEST_PENDING, _REQUEST_EVENT_MAX, &to), -EBUSY);
        assert_int_equal(request_transition(REQUEST_ACTIVE, (RequestEvent) -1, &to), -EBUSY);
        assert_int_equal(to, REQUEST_PENDING);
}

static void test_lifecycle_walks(void **state) {
        RequestState s = REQUEST_PENDING;

        /* A one-shot grant: approved, used, consumed; then nothing more. */
        assert_int_equal(request_transition(s, EVENT_APPROVED, &s), 0);
        assert_int_equal(s, REQUEST_ACTIVE);
        assert_int_equal(request_transition(s, EVENT_CONSUME, &s), 0);
        assert_int_equal(s, REQUEST_CONSUMED);
        assert_int_equal(request_transition(s, EVENT_EXPIRE, &s), -EBUSY);
        assert_int_equal(request_transition(s, EVENT_REVOKE, &s), -EBUSY);
        assert_int_equal(s, REQUEST_CONSUMED);

        /* Approving twice, or approving after a deny, cannot happen. */
        s = REQUEST_PENDING;
        assert_int_equal(request_transition(s, EVENT_APPROVED, &s), 0);
        assert_int_equal(request_transition(s, EVENT_APPROVED, &s), -EBUSY);
        s = REQUEST_PENDING;
        assert_int_equal(request_transition(s, EVENT_DENY, &s), 0);
        assert_int_equal(request_transition(s, EVENT_APPROVED, &s), -EBUSY);
        assert_int_equal(s, REQUEST_DENIED);
}

/* ---------------------------------------------------------------------------------------
 * approval_decide */

#define REQUESTER 1000
#define APPROVER 2000

static void test_approval_not_pending(void **state) {
        static const uid_t prior[] = { 3000 };

        for (int s = 0; s < _REQUEST_STATE_MAX; s++) {
                if (s == REQUEST_PENDING)
                        continue;
                assert_int_equal(approval_decide((RequestState) s, REQUESTER, APPROVER, true, NULL,
                                                 0, 1, false),
                                 APPROVAL_NOT_PENDING);
                /* Checked first: even the requester or a non-approver just hears "not pending". */
                assert_int_equal(approval_decide((RequestState) s, REQUESTER, REQUESTER, true,
                                                 prior, 1, 2, false),
                                 APPROVAL_NOT_PENDING);
                assert_int_equal(approval_decide((RequestState) s, REQUESTER, APPROVER, false, NULL,
                                                 0, 1, false),
                                 APPROVAL_NOT_PENDING);
        }
}

static void test_approval_self(void **state) {
        /* The requester never approves their own request, even when the rule lists them. */
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, REQUESTER, true, NULL, 0, 1, false),
                APPROVAL_SELF);
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, REQUESTER, false, NULL, 0, 1, false),
                APPROVAL_SELF);
        /* Root is no exception. */
        assert_int_equal(approval_decide(REQUEST_PENDING, 0, 0, true, NULL, 0, 1, false),
                         APPROVAL_SELF);
        /* Nor is the last approval of a 2-of-n. */
        static const uid_t prior[] = { APPROVER };
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, REQUESTER, true, prior, 1, 2, false),
                APPROVAL_SELF);
}

static void test_approval_not_approver(void **state) {
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, APPROVER, false, NULL, 0, 1, false),
                APPROVAL_NOT_APPROVER);
        /* Root is not an approver unless the rule says so. */
        assert_int_equal(approval_decide(REQUEST_PENDING, REQUESTER, 0, false, NULL, 0, 1, false),
                         APPROVAL_NOT_APPROVER);
        static const uid_t prior[] = { 3000 };
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, APPROVER, false, prior, 1, 2, false),
                APPROVAL_NOT_APPROVER);
}

static void test_approval_one_of_n(void **state) {
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, APPROVER, true, NULL, 0, 1, false),
                APPROVAL_COMPLETE);
        assert_int_equal(approval_decide(REQUEST_PENDING, REQUESTER, 0, true, NULL, 0, 1, false),
                         APPROVAL_COMPLETE);
}

static void test_approval_two_of_n(void **state) {
        static const uid_t one[] = { 3000 };

        /* First approval counts, second completes. */
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, APPROVER, true, NULL, 0, 2, false),
                APPROVAL_COUNTED);
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, APPROVER, true, one, 1, 2, false),
                APPROVAL_COMPLETE);
        /* The same approver again is a duplicate, not the second approval. */
        assert_int_equal(approval_decide(REQUEST_PENDING, REQUESTER, 3000, true, one, 1, 2, false),
                         APPROVAL_DUPLICATE);
}

static void test_approval_three_of_n(void **state) {
        static const uid_t prior[] = { 3000, 3001 };

        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, APPROVER, true, prior, 0, 3, false),
                APPROVAL_COUNTED);
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, APPROVER, true, prior, 1, 3, false),
                APPROVAL_COUNTED);
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, APPROVER, true, prior, 2, 3, false),
                APPROVAL_COMPLETE);
        /* Duplicates anywhere in the list, not only the last one. */
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, 3000, true, prior, 2, 3, false),
                APPROVAL_DUPLICATE);
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, 3001, true, prior, 2, 3, false),
                APPROVAL_DUPLICATE);
        /* Only the first n_prior entries count. */
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, 3001, true, prior, 1, 3, false),
                APPROVAL_COUNTED);
}

static void test_approval_order_of_checks(void **state) {
        static const uid_t prior[] = { APPROVER };

        /* A duplicate who is no longer listed (policy reloaded) is "not an approver". */
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, APPROVER, false, prior, 1, 2, false),
                APPROVAL_NOT_APPROVER);
        /* Already enough approvals recorded (the rule was lowered): the next one completes. */
        static const uid_t many[] = { 3000, 3001, 3002 };
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, APPROVER, true, many, 3, 2, false),
                APPROVAL_COMPLETE);
}

static void test_approval_self_allowed_by_rule(void **state) {
        (void) state;
        /* allow_self_approval lets a listed requester approve their own request... */
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, REQUESTER, true, NULL, 0, 1, true),
                APPROVAL_COMPLETE);
        /* ...but never one who is not a listed approver, and never twice. */
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, REQUESTER, false, NULL, 0, 1, true),
                APPROVAL_NOT_APPROVER);
        uid_t prior[] = { REQUESTER };
        assert_int_equal(
                approval_decide(REQUEST_PENDING, REQUESTER, REQUESTER, true, prior, 1, 2, true),
                APPROVAL_DUPLICATE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_state_names),
                cmocka_unit_test(test_event_names),
                cmocka_unit_test(test_final_states),
                cmocka_unit_test(test_transition_table),
                cmocka_unit_test(test_final_states_have_no_way_out),
                cmocka_unit_test(test_transition_out_of_range),
                cmocka_unit_test(test_lifecycle_walks),
                cmocka_unit_test(test_approval_not_pending),
                cmocka_unit_test(test_approval_self),
                cmocka_unit_test(test_approval_not_approver),
                cmocka_unit_test(test_approval_one_of_n),
                cmocka_unit_test(test_approval_two_of_n),
                cmocka_unit_test(test_approval_three_of_n),
                cmocka_unit_test(test_approval_order_of_checks),
                cmocka_unit_test(test_approval_self_allowed_by_rule),
        };
        return cmocka_run_group_tests_name("request-state", tests, NULL, NULL);
}
