/* SPDX-License-Identifier: MIT */
/* common/duration.[ch]: "90s", "1h30m", "1d" <-> seconds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "duration.h"

#define SENTINEL UINT64_C(0xdeadbeef)

/* Parses s, asserting the return code; on error asserts the output was not touched. */
static void check_parse(const char *s, int expect_r, uint64_t expect_sec) {
        uint64_t sec = SENTINEL;
        int r = duration_parse(s, &sec);

        if (r != expect_r)
                fail_msg("duration_parse(\"%s\") = %d, expected %d", s ? s : "(null)", r, expect_r);
        if (r == 0 && sec != expect_sec)
                fail_msg("duration_parse(\"%s\") gave %llu s, expected %llu s", s,
                         (unsigned long long) sec, (unsigned long long) expect_sec);
        if (r < 0 && sec != SENTINEL)
                fail_msg("duration_parse(\"%s\") failed but wrote %llu", s,
                         (unsigned long long) sec);
}

static void check_format(uint64_t sec, const char *expect) {
        char buf[DURATION_BUF_MAX];

        assert_ptr_equal(duration_format(sec, buf, sizeof(buf)), buf);
        if (strcmp(buf, expect) != 0)
                fail_msg("duration_format(%llu) = \"%s\", expected \"%s\"",
                         (unsigned long long) sec, buf, expect);
}

static void test_parse_single_units(void **state) {
        check_parse("90s", 0, 90);
        check_parse("1s", 0, 1);
        check_parse("30m", 0, 1800);
        check_parse("2h", 0, 7200);
        check_parse("1d", 0, 86400);
        check_parse("2d", 0, 172800);
        check_parse("59s", 0, 59);
        check_parse("60s", 0, 60); /* not required to be canonical */
        check_parse("120m", 0, 7200);
        check_parse("48h", 0, 172800);
}

static void test_parse_combined_units(void **state) {
        check_parse("1h30m", 0, 5400);
        check_parse("1d1h1m1s", 0, 90061);
        check_parse("1d12h", 0, 129600);
        check_parse("2h15s", 0, 7215);
        check_parse("1d30s", 0, 86430);
        check_parse("0h30m", 0, 1800); /* a zero component is fine when the total is not zero */
        check_parse("1h0m", 0, 3600);
        check_parse("000000001s", 0, 1); /* nine digits, leading zeros */
}

/* The systemd.time(7) spellings and spaces between parts. */
static void test_parse_systemd_spans(void **state) {
        check_parse("1h 30m", 0, 5400);
        check_parse("1h  30m", 0, 5400);
        check_parse("1d 1h 1m 1s", 0, 90061);
        check_parse("1d1h 1m1s", 0, 90061);
        check_parse("1w", 0, 7 * 86400);
        check_parse("2weeks", 0, 14 * 86400);
        check_parse("1week 2days", 0, 9 * 86400);
        check_parse("1w1d", 0, 8 * 86400);
        check_parse("52w", 0, 364 * 86400);
        check_parse("1day", 0, 86400);
        check_parse("3days", 0, 3 * 86400);
        check_parse("1hour", 0, 3600);
        check_parse("2hours", 0, 7200);
        check_parse("2hr", 0, 7200);
        check_parse("1hours 30min", 0, 5400);
        check_parse("1hour30minutes", 0, 5400);
        check_parse("45min", 0, 2700);
        check_parse("1minute", 0, 60);
        check_parse("5minutes", 0, 300);
        check_parse("10sec", 0, 10);
        check_parse("1second", 0, 1);
        check_parse("30seconds", 0, 30);
        check_parse("1min 30sec", 0, 90);
        check_parse("1w 1d 1h 1m 1s", 0, 8 * 86400 + 3661);
        check_parse("0w 1s", 0, 1);
        check_parse("0w 0days", -EINVAL, 0);
}

static void test_parse_zero_refused(void **state) {
        check_parse("0s", -EINVAL, 0);
        check_parse("0m", -EINVAL, 0);
        check_parse("0h", -EINVAL, 0);
        check_parse("0d", -EINVAL, 0);
        check_parse("0d0h0m0s", -EINVAL, 0);
        check_parse("00s", -EINVAL, 0);
}

static void test_parse_malformed(void **state) {
        static const char *const bad[] = {
                "",     "h",    "s",    "1x",    "1",     "90",   "1h30",    "1m1h",
                "1s1d", "1h1h", "1d1d", "1s1s",  "1hh",   " 1h",  "1h ",     "1 h",
                "-1h",  "+1h",  "1H",   "1D",    "1.5h",  "1,5h", "1y",      "1ms",
                "h1",   "1h\n", "\t1h", "1h-1m", "0x10s", "1e3s", "1h30m\n", "1d-",
        };
        /* systemd reads some of these; jit does not (see duration.h). */
        static const char *const not_jit[] = {
                "1M",      "1month",  "1months", "1year",         "1years",       "1usec",
                "1us",     "1msec",   "1W",      "1Hour",         "1HOURS",       "1 hour",
                "1h\t30m", "1h\n30m", "1h  ",    " 1h 30m",       "1h 30m ",      "1h 30",
                "1h 30 m", "1h  h",   "1min 1m", "1minute1s1sec", "1hours1hr",    "30m 1h",
                "1s 1m",   "1 ",      "1hourss", "1mins",         "1secs",        "1 d",
                "1d,1h",   "1d, 1h",  "1d_1h",   "1w1w",          "1week1d1days", "1m1minutes",
                "1μs",     "1 w",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                check_parse(bad[i], -EINVAL, 0);
        for (size_t i = 0; i < sizeof(not_jit) / sizeof(not_jit[0]); i++)
                check_parse(not_jit[i], -EINVAL, 0);
        check_parse(NULL, -EINVAL, 0);
}

static void test_parse_range(void **state) {
        assert_int_equal(JIT_DURATION_MAX_SEC, 366ULL * 86400);
        check_parse("366d", 0, 366ULL * 86400);
        check_parse("365d24h", 0, 366ULL * 86400);
        check_parse("8784h", 0, 366ULL * 86400);
        check_parse("527040m", 0, 366ULL * 86400);
        check_parse("31622400s", 0, 366ULL * 86400);
        check_parse("31622401s", -ERANGE, 0);
        check_parse("366d1s", -ERANGE, 0);
        check_parse("367d", -ERANGE, 0);
        check_parse("365d25h", -ERANGE, 0);
        check_parse("999999999d", -ERANGE, 0);
        check_parse("999999999s", -ERANGE, 0);
        check_parse("1000000000s", -ERANGE, 0);
        check_parse("18446744073709551616s", -ERANGE, 0); /* 2^64: must not wrap to 0 */
        check_parse("18446744073709551617s", -ERANGE, 0); /* 2^64+1: must not wrap to 1 */
        check_parse("99999999999999999999999999999999999999d", -ERANGE, 0);
        check_parse("52w2d", 0, 366ULL * 86400);
        check_parse("52weeks 2days", 0, 366ULL * 86400);
        check_parse("53w", -ERANGE, 0);
        check_parse("52w 2d 1s", -ERANGE, 0);
        check_parse("999999999weeks", -ERANGE, 0);
}

static void test_format_exact(void **state) {
        check_format(0, "0s");
        check_format(1, "1s");
        check_format(59, "59s");
        check_format(60, "1m");
        check_format(90, "1m30s");
        check_format(1800, "30m");
        check_format(3600, "1h");
        check_format(5400, "1h30m");
        check_format(7200, "2h");
        check_format(7215, "2h15s");
        check_format(86399, "23h59m59s");
        check_format(86400, "1d");
        check_format(86430, "1d30s");
        check_format(90061, "1d1h1m1s");
        check_format(172800, "2d");
        check_format(JIT_DURATION_MAX_SEC, "366d");
        /* Values nothing accepts still format without overflowing the buffer. */
        check_format(UINT64_MAX, "213503982334601d7h15s");
}

static void test_format_small_buffer(void **state) {
        char buf[DURATION_BUF_MAX];

        /* len 0: nothing written at all. */
        memset(buf, 'X', sizeof(buf));
        assert_ptr_equal(duration_format(5400, buf, 0), buf);
        assert_int_equal(buf[0], 'X');

        /* A short buffer is truncated but always terminated, and nothing past len is written. */
        for (size_t len = 1; len < 10; len++) {
                memset(buf, 'X', sizeof(buf));
                duration_format(90061, buf, len);
                assert_true(strnlen(buf, len) < len);
                for (size_t i = len; i < sizeof(buf); i++)
                        assert_int_equal(buf[i], 'X');
                assert_memory_equal(buf, "1d1h1m1s", strlen(buf));
        }
}

static void test_format_parse_round_trip(void **state) {
        char buf[DURATION_BUF_MAX];
        uint64_t n = 0;

        /* Every second of the first two days, then a spread up to the maximum. */
        for (uint64_t sec = 1; sec <= 2 * 86400; sec++) {
                uint64_t got = 0;
                duration_format(sec, buf, sizeof(buf));
                assert_int_equal(duration_parse(buf, &got), 0);
                assert_int_equal(got, sec);
                n++;
        }
        for (uint64_t sec = 2 * 86400; sec <= JIT_DURATION_MAX_SEC; sec += 7919) {
                uint64_t got = 0;
                duration_format(sec, buf, sizeof(buf));
                if (duration_parse(buf, &got) != 0 || got != sec)
                        fail_msg("round trip of %llu failed: \"%s\"", (unsigned long long) sec,
                                 buf);
                n++;
        }
        /* And the canonical text of what a person writes comes back unchanged. */
        static const char *const canon[] = { "1m30s", "30m",      "1h30m", "2h",
                                             "1d",    "1d1h1m1s", "366d",  "12h5s" };
        for (size_t i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
                uint64_t sec;
                assert_int_equal(duration_parse(canon[i], &sec), 0);
                assert_string_equal(duration_format(sec, buf, sizeof(buf)), canon[i]);
        }
        assert_true(n > 170000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_single_units),
                cmocka_unit_test(test_parse_combined_units),
                cmocka_unit_test(test_parse_systemd_spans),
                cmocka_unit_test(test_parse_zero_refused),
                cmocka_unit_test(test_parse_malformed),
                cmocka_unit_test(test_parse_range),
                cmocka_unit_test(test_format_exact),
                cmocka_unit_test(test_format_small_buffer),
                cmocka_unit_test(test_format_parse_round_trip),
        };
        return cmocka_run_group_tests_name("duration", tests, NULL, NULL);
}
