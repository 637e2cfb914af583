/* SPDX-License-Identifier: MIT */
/* Known bugs in the code under test. Each case asserts what the contract promises
 * (PROTOCOL.md, DESIGN.md, the headers) and fails today; meson registers each one with
 * should_fail, selected by name on the command line:
 *
 *     test-known-bugs parse_accepts_depth_8
 *
 * When a fix makes a case pass, meson reports it as an unexpected pass: move the case to
 * the test file it belongs to and drop it from tests/unit/meson.build. */
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

static int parse(const char *s, json_object **ret) {
        *ret = NULL;
        return jit_message_parse(s, strlen(s), ret);
}

/* PROTOCOL.md: "nesting depth at most 8". common/protocol.c passes JIT_JSON_DEPTH_MAX to
 * json_tokener_new_ex(), but json-c counts the innermost value as a level too, so only 7
 * nested containers get through. Fix: json_tokener_new_ex(JIT_JSON_DEPTH_MAX + 1). */
static void parse_accepts_depth_8(void **state) {
        /* The top-level object plus 7 arrays: 8 levels of nesting. */
        static const char depth8[] = "{\"version\":1,\"a\":[[[[[[[1]]]]]]]}";
        static const char depth9[] = "{\"version\":1,\"a\":[[[[[[[[1]]]]]]]]}";
        json_object *o;

        assert_int_equal(parse(depth8, &o), 0);
        json_object_put(o);
        assert_int_equal(parse(depth9, &o), -EBADMSG);
}

/* PROTOCOL.md: "strict JSON, valid UTF-8". json-c 0.16's JSON_TOKENER_VALIDATE_UTF8 only
 * checks the shape of sequences: overlong forms and UTF-8-encoded surrogates pass, and
 * JSON_TOKENER_STRICT still lets NaN/Infinity, single-quoted keys and raw control
 * characters inside strings through. Text fields are re-checked by jit_message_get_string
 * (so the reachable impact is small: keys and fields no accessor reads), but the parser
 * does not hold the promise by itself. Fix: validate buf before tokenizing (well-formed,
 * shortest-form UTF-8 without surrogates, and no byte < 0x20 other than \t \n \r), which
 * covers all but NaN/Infinity and single quotes; those need a check of the token stream
 * or a json-c with a stricter STRICT. */
static void parse_refuses_overlong_utf8(void **state) {
        json_object *o;

        assert_int_equal(parse("{\"version\":1,\"a\":\"\xc0\xaf\"}", &o), -EBADMSG);       /* overlong '/' */
        assert_int_equal(parse("{\"version\":1,\"a\":\"\xe0\x80\xaf\"}", &o), -EBADMSG);   /* overlong '/' */
        assert_int_equal(parse("{\"version\":1,\"a\":\"\xed\xa0\x80\"}", &o), -EBADMSG);   /* surrogate */
        assert_int_equal(parse("{\"version\":1,\"\xc0\xaf\":1}", &o), -EBADMSG);           /* in a key */
}

static void parse_refuses_non_json(void **state) {
        json_object *o;

        assert_int_equal(parse("{\"version\":1,\"a\":NaN}", &o), -EBADMSG);
        assert_int_equal(parse("{\"version\":1,\"a\":Infinity}", &o), -EBADMSG);
        assert_int_equal(parse("{\"version\":1,\"a\":-Infinity}", &o), -EBADMSG);
        assert_int_equal(parse("{'version':1}", &o), -EBADMSG);
        assert_int_equal(parse("{\"version\":1,\"a\":\"x\ty\"}", &o), -EBADMSG); /* raw tab in a string */
        assert_int_equal(parse("{\"version\":1,\"a\":\"x\ny\"}", &o), -EBADMSG); /* raw newline */
}

/* PROTOCOL.md: "id: a positive 63-bit integer". json-c clamps integers that do not fit in
 * int64 to INT64_MAX (INT64_MIN below) without an error, so {"id": 99999999999999999999}
 * reads as id 9223372036854775807 instead of being refused as bad-request.
 * Fix in jit_message_get_int, after json_object_get_int64():
 *     if (n == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX) return -EINVAL;
 * (json-c keeps larger positive values as uint64; negative overflow clamps to INT64_MIN,
 * which a min above INT64_MIN already refuses). */
static void get_int_refuses_overflowing_integer(void **state) {
        json_object *o;
        int64_t n = -1;

        assert_int_equal(parse("{\"version\":1,\"a\":9223372036854775808,\"b\":99999999999999999999}", &o), 0);
        assert_int_equal(jit_message_get_int(o, "a", 1, INT64_MAX, true, &n, NULL), -EINVAL);
        assert_int_equal(jit_message_get_int(o, "b", 1, INT64_MAX, true, &n, NULL), -EINVAL);
        assert_int_equal(n, -1);
        json_object_put(o);
}

/* broker/policy.h: policy_parse(text, len, ...) takes a length, but policy.c hands text to
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

        if (r != 0)
                fail_msg("policy_parse read past len: %s", err ? err : "(no message)");
        policy_free(p);
        free(err);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(parse_accepts_depth_8),
                cmocka_unit_test(parse_refuses_overlong_utf8),
                cmocka_unit_test(parse_refuses_non_json),
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
