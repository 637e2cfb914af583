/* SPDX-License-Identifier: MIT */
/* Known bugs in the code under test. Each case asserts what the contract promises
 * (common/PROTOCOL.md, README.md, docs/, the headers), selected by name on the command line:
 *
 *     test-known-bugs parse_accepts_depth_8
 *
 * An open bug fails today and tests/unit/meson.build registers it with should_fail. When
 * a fix makes it pass, meson reports an unexpected pass: the case then moves into the
 * regression list there (as every case below has: none is open at the moment). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"
#include "protocol.h"

/* The result of parsing s; the object, if any, is released so a failing case leaks nothing. */
static int parse_rc(const char *s) {
        json_object *o = NULL;
        int r = jit_message_parse(s, strlen(s), &o);
        json_object_put(o);
        return r;
}

/* PROTOCOL.md: "nesting depth at most 8". common/protocol.c passes JIT_JSON_DEPTH_MAX to
 * json_tokener_new_ex(), but json-c counts the innermost value as a level too, so only 7
 * nested containers get through. Fix: json_tokener_new_ex(JIT_JSON_DEPTH_MAX + 1). */
static void parse_accepts_depth_8(void **state) {
        /* The top-level object plus 7 arrays: 8 levels of nesting. */
        static const char depth8[] = "{\"version\":1,\"a\":[[[[[[[1]]]]]]]}";
        static const char depth9[] = "{\"version\":1,\"a\":[[[[[[[[1]]]]]]]]}";

        assert_int_equal(parse_rc(depth8), 0);
        assert_int_equal(parse_rc(depth9), -EBADMSG);
}

/* PROTOCOL.md: "strict JSON, valid UTF-8". json-c 0.16's JSON_TOKENER_VALIDATE_UTF8 only
 * checks the shape of sequences: overlong forms and UTF-8-encoded surrogates pass, and
 * JSON_TOKENER_STRICT still lets NaN/Infinity, single-quoted keys and raw control
 * characters inside strings through; it also takes duplicate member names (the last one
 * wins: {"user":"alice","user":"root"} read as root) and turns lone surrogate escapes into
 * U+FFFD. Text fields are re-checked by jit_message_get_string, but the parser did not
 * hold the promise by itself. Fixed: jit_message_parse() first runs the strict RFC 8259
 * check of common/json-strict.c (UTF-8, controls, grammar, duplicate names, surrogate
 * escapes, depth), and only what passes reaches json-c. */
static void parse_refuses_overlong_utf8(void **state) {
        assert_int_equal(parse_rc("{\"version\":1,\"a\":\"\xc0\xaf\"}"),
                         -EBADMSG); /* overlong '/' */
        assert_int_equal(parse_rc("{\"version\":1,\"a\":\"\xe0\x80\xaf\"}"),
                         -EBADMSG); /* overlong '/' */
        assert_int_equal(parse_rc("{\"version\":1,\"a\":\"\xed\xa0\x80\"}"),
                         -EBADMSG);                                             /* surrogate */
        assert_int_equal(parse_rc("{\"version\":1,\"\xc0\xaf\":1}"), -EBADMSG); /* in a key */
}

static void parse_refuses_raw_control_bytes(void **state) {
        assert_int_equal(parse_rc("{\"version\":1,\"a\":\"\x1b[2J\"}"),
                         -EBADMSG); /* raw ESC in a string */
        assert_int_equal(parse_rc("{\"version\":1,\"a\":\"\x07\"}"), -EBADMSG); /* raw BEL */
        assert_int_equal(parse_rc("{\"version\":1,\"\x01\":1}"), -EBADMSG);     /* in a key */
}

static void parse_is_strict_json(void **state) {
        assert_int_equal(parse_rc("{\"version\":1,\"a\":NaN}"), -EBADMSG);
        assert_int_equal(parse_rc("{\"version\":1,\"a\":Infinity}"), -EBADMSG);
        assert_int_equal(parse_rc("{\"version\":1,\"a\":-Infinity}"), -EBADMSG);
        assert_int_equal(parse_rc("{'version':1}"), -EBADMSG);
        assert_int_equal(parse_rc("{\"version\":1,\"a\":\"x\ty\"}"),
                         -EBADMSG); /* raw tab in a string */
        assert_int_equal(parse_rc("{\"version\":1,\"a\":\"x\ny\"}"), -EBADMSG); /* raw newline */
        assert_int_equal(parse_rc("{\"version\":1,\"user\":\"alice\",\"user\":\"root\"}"),
                         -EBADMSG); /* duplicate name */
        assert_int_equal(parse_rc("{\"version\":1,\"a\":\"\\ud800\"}"),
                         -EBADMSG);                                       /* lone surrogate */
        assert_int_equal(parse_rc("{\"version\":1,\"a\":00}"), -EBADMSG); /* leading zero */
}

/* PROTOCOL.md: "id: a positive 63-bit integer". json-c clamps integers that do not fit in
 * int64 to INT64_MAX (INT64_MIN below) without an error, so {"id": 99999999999999999999}
 * reads as id 9223372036854775807 instead of being refused as bad-request.
 * Fix in jit_message_get_int, after json_object_get_int64():
 *     if (n == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX) return -EINVAL;
 * (json-c keeps larger positive values as uint64; negative overflow clamps to INT64_MIN,
 * which a min above INT64_MIN already refuses). */
static void get_int_refuses_overflowing_integer(void **state) {
        static const char msg[] =
                "{\"version\":1,\"a\":9223372036854775808,\"b\":99999999999999999999}";
        json_object *o = NULL;
        int64_t n = -1;
        int ra, rb;

        assert_int_equal(jit_message_parse(msg, sizeof(msg) - 1, &o), 0);
        ra = jit_message_get_int(o, "a", 1, INT64_MAX, true, &n, NULL);
        rb = jit_message_get_int(o, "b", 1, INT64_MAX, true, &n, NULL);
        json_object_put(o);
        assert_int_equal(ra, -EINVAL);
        assert_int_equal(rb, -EINVAL);
        assert_int_equal(n, -1);
}

/* common/policy.h: policy_parse(text, len, ...) takes a length, but policy.c hands text to
 * config_read_string() and scans it for "@include" up to its NUL, so it reads past len:
 * a caller passing a buffer that is not NUL-terminated at len gets an out-of-bounds read,
 * and one passing a prefix gets the whole string parsed. Fix: parse a copy,
 * `_cleanup_free_ char *copy = strndup(text, len);` (after the NUL check) and use copy
 * for the @include scan and config_read_string(). */
static void policy_parse_reads_only_len_bytes(void **state) {
        static const char text[] = "rules = ();\nthis is not a policy";
        Policy *p = NULL;
        char *err = NULL;
        int r = policy_parse(text, strlen("rules = ();\n"), "t.conf", &p, &err);

        policy_free(p);
        if (err)
                print_error("policy_parse read past len: %s\n", err);
        free(err);
        assert_int_equal(r, 0);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(parse_accepts_depth_8),
                cmocka_unit_test(parse_refuses_overlong_utf8),
                cmocka_unit_test(parse_refuses_raw_control_bytes),
                cmocka_unit_test(parse_is_strict_json),
                cmocka_unit_test(get_int_refuses_overflowing_integer),
                cmocka_unit_test(policy_parse_reads_only_len_bytes),
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s CASE\n", argv[0]);
                return 2;
        }
        cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests_name("known-bugs", tests, NULL, NULL);
}
