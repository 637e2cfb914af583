/* SPDX-License-Identifier: MIT */
/* common/timeutil.[ch]: timestamp_parse(), the one reader of points in time (jitctl
 * --since/--until/--at, the broker's times on the wire), and format_rfc3339(). Runs with
 * TZ=UTC unless a test says otherwise. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "timeutil.h"

#define SENTINEL UINT64_C(0xdeadbeef)
#define SEC(s) (USEC_PER_SEC * (uint64_t) (s))

/* 2026-11-23T13:28:51Z, a Monday. */
#define NOW_SEC 1795440531
#define NOW SEC(NOW_SEC)
/* 2026-11-23T00:00:00Z */
#define MIDNIGHT_SEC 1795392000

static void use_tz(const char *tz) {
        assert_int_equal(setenv("TZ", tz, 1), 0);
        tzset();
}

/* Parses s at now, asserting the return code; on error asserts the output was not touched. */
static void check_at(const char *s, uint64_t now, int expect_r, uint64_t expect_usec) {
        uint64_t usec = SENTINEL;
        int r = timestamp_parse(s, now, &usec);

        if (r != expect_r)
                fail_msg("timestamp_parse(\"%s\") = %d, expected %d", s ? s : "(null)", r,
                         expect_r);
        if (r == 0 && usec != expect_usec)
                fail_msg("timestamp_parse(\"%s\") gave %llu usec, expected %llu", s,
                         (unsigned long long) usec, (unsigned long long) expect_usec);
        if (r < 0 && usec != SENTINEL)
                fail_msg("timestamp_parse(\"%s\") failed but wrote %llu", s,
                         (unsigned long long) usec);
}

static void check(const char *s, int expect_r, uint64_t expect_usec) {
        check_at(s, NOW, expect_r, expect_usec);
}

static int setup_utc(void **state) {
        use_tz("UTC");
        return 0;
}

static void test_words(void **state) {
        check("now", 0, NOW);
        check_at("now", 0, 0, 0);
        check_at("now", SEC(NOW_SEC) + 123456, 0, SEC(NOW_SEC) + 123456);
        check("today", 0, SEC(MIDNIGHT_SEC));
        check("yesterday", 0, SEC(MIDNIGHT_SEC - 86400));
        check("tomorrow", 0, SEC(MIDNIGHT_SEC + 86400));
        /* Just before and at midnight. */
        check_at("today", SEC(MIDNIGHT_SEC) - 1, 0, SEC(MIDNIGHT_SEC - 86400));
        check_at("today", SEC(MIDNIGHT_SEC), 0, SEC(MIDNIGHT_SEC));
        check_at("yesterday", SEC(3600), -ERANGE, 0); /* 1969-12-31 */
}

static void test_relative(void **state) {
        check("-1h", 0, NOW - SEC(3600));
        check("-30m", 0, NOW - SEC(1800));
        check("-1h30m", 0, NOW - SEC(5400));
        check("-1h 30m", 0, NOW - SEC(5400));
        check("-2d", 0, NOW - SEC(2 * 86400));
        check("-1w", 0, NOW - SEC(7 * 86400));
        check("-10min", 0, NOW - SEC(600));
        check("-3hours", 0, NOW - SEC(3 * 3600));
        check("+2h", 0, NOW + SEC(7200));
        check("+1day", 0, NOW + SEC(86400));
        check("-366d", 0, NOW - SEC(366 * 86400));
        check_at("-1h", SEC(3600), 0, 0);
        check_at("-1h", SEC(3599), -ERANGE, 0); /* before 1970 */
        check("-367d", -ERANGE, 0);             /* longer than any duration */
        check("+367d", -ERANGE, 0);

        /* Durations are checked as duration_parse() checks them. */
        static const char *const bad[] = { "-",     "+",    "-0s",  "-1",   "-1 h", "- 1h",
                                           "--1h",  "-+1h", "+-1h", "-1h ", "-1H",  "-1.5h",
                                           "-1m1h", "-1y",  "1h",   "-1h,", "-h",   "1h ago" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                check(bad[i], -EINVAL, 0);
}

static void test_absolute(void **state) {
        /* Without a zone: local time, here UTC. */
        check("2026-11-23", 0, SEC(MIDNIGHT_SEC));
        check("2026-11-23 13:28", 0, SEC(NOW_SEC - 51));
        check("2026-11-23 13:28:51", 0, NOW);
        check("2026-11-23T13:28:51", 0, NOW);
        check("2026-11-23t13:28:51", 0, NOW);
        check("2026-11-23T9:05", 0, SEC(MIDNIGHT_SEC + 9 * 3600 + 300));
        check("2026-11-23 09:05", 0, SEC(MIDNIGHT_SEC + 9 * 3600 + 300));
        /* RFC 3339: in UTC, or at an offset from it. */
        check("2026-11-23T13:28:51Z", 0, NOW);
        check("2026-11-23t13:28:51z", 0, NOW);
        check("2026-11-23 13:28:51Z", 0, NOW);
        check("2026-11-23 13:28:51 UTC", 0, NOW);
        check("2026-11-23T13:28Z", 0, SEC(NOW_SEC - 51));
        check("2026-11-23T15:28:51+02:00", 0, NOW);
        check("2026-11-23T07:58:51-05:30", 0, NOW);
        check("2026-11-23T13:28:51+00:00", 0, NOW);
        check("2026-11-23T13:28:51-00:00", 0, NOW);
        check("2026-11-24T00:28:51+11:00", 0, NOW); /* another day there */
        /* Fractions: microseconds kept, more digits read and dropped. */
        check("2026-11-23T13:28:51.5Z", 0, NOW + 500000);
        check("2026-11-23T13:28:51.000001Z", 0, NOW + 1);
        check("2026-11-23T13:28:51.123456789Z", 0, NOW + 123456);
        check("2026-11-23T13:28:51.25+01:00", 0, NOW - SEC(3600) + 250000);
        check("2026-11-23 13:28:51.75", 0, NOW + 750000);
        /* Calendar edges. */
        check("1970-01-01", 0, 0);
        check("1970-01-01T00:00:00Z", 0, 0);
        check("2024-02-29", 0, SEC(1709164800));
        check("2000-02-29T00:00:00Z", 0, SEC(951782400));
        check("2026-12-31T23:59:59Z", 0, SEC(1798761599));
        check("2016-12-31T23:59:60Z", 0, SEC(1483228800)); /* a leap second: the next second */
        check("2038-01-19T03:14:08Z", 0, SEC(INT64_C(2147483648)));
        check("9999-12-31T23:59:59Z", 0, SEC(INT64_C(253402300799)));
        check("1970-01-01T00:30:00+01:00", -ERANGE, 0);
        check("1970-01-01T00:00:00-00:01", 0, SEC(60));
}

static void test_refused(void **state) {
        static const char *const bad[] = {
                "",
                " ",
                "Now",
                "NOW",
                " now",
                "now ",
                "Today",
                "today ",
                "yesterday\n",
                "noon",
                "10:00",
                "Mon 10:00",
                "Mon 2026-11-23",
                "2026-11-23 ",
                " 2026-11-23",
                "2026-11-23T",
                "2026-11-23T10",
                "2026-11-23T10:0",
                "2026-11-23T10:00:0",
                "2026-11-23T100:00",
                "2026-11-23T10:00:000",
                "2026-11-23T24:00",
                "2026-11-23T10:60",
                "2026-11-23T10:00:61",
                "2026-11-23T10:00:99",
                "2026-11-23  10:00",
                "2026-11-23\t10:00",
                "2026-11-23T 10:00",
                "2026-11-23_10:00",
                "2026-02-29",
                "2026-02-30T10:00",
                "2026-04-31",
                "2026-13-01",
                "2026-00-10",
                "2026-11-00",
                "2026-11-32",
                "26-11-23",
                "2026-1-23",
                "2026-11-3",
                "2026/11/23",
                "20261123",
                "2026-11-23Z",
                "2026-11-23 UTC",
                "2026-11-23+01:00",
                "2026-11-23T10:00:00+0200",
                "2026-11-23T10:00:00+02",
                "2026-11-23T10:00:00+2:00",
                "2026-11-23T10:00:00+24:00",
                "2026-11-23T10:00:00+02:60",
                "2026-11-23T10:00:00 +02:00",
                "2026-11-23T10:00:00 Z",
                "2026-11-23T10:00:00ZZ",
                "2026-11-23T10:00:00Z ",
                "2026-11-23T10:00:00UTC",
                "2026-11-23T10:00:00 utc",
                "2026-11-23T10:00:00 CET",
                "2026-11-23T10:00:00.",
                "2026-11-23T10:00:00.Z",
                "2026-11-23T10:00:00.1234567890",
                "2026-11-23T10:00:00,5",
                "2026-11-23T10:00.5",
                "1969-12-31",
                "1969-12-31T23:59:59Z",
                "0000-01-01",
                "-2026-11-23",
                "+2026-11-23",
                "2026-11-23T10:00:00Z\n",
                "1795440531",
                "@1795440531",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                check(bad[i], -EINVAL, 0);
        check(NULL, -EINVAL, 0);
        /* The string ends at its NUL. */
        check_at("2026-11-23\0T10:00", NOW, 0, SEC(MIDNIGHT_SEC));
}

/* What the broker and jitctl write comes back unchanged. */
static void test_rfc3339_round_trip(void **state) {
        char buf[RFC3339_BUF_MAX];

        assert_string_equal(format_rfc3339(NOW + 999999, buf, sizeof(buf)), "2026-11-23T13:28:51Z");
        for (uint64_t sec = 0; sec < UINT64_C(4102444800); sec += 86399 * 37) { /* to 2100 */
                uint64_t got = 0;
                format_rfc3339(SEC(sec), buf, sizeof(buf));
                if (timestamp_parse(buf, NOW, &got) != 0 || got != SEC(sec))
                        fail_msg("round trip of %llu failed: \"%s\"", (unsigned long long) sec,
                                 buf);
        }
}

static bool have_zone(const char *name) {
        const char *dir = getenv("TZDIR");
        char path[256];

        snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
        return access(path, R_OK) == 0;
}

/* Local forms follow the time zone, with its daylight saving time; zones given do not. */
static void test_europe_berlin(void **state) {
        if (!have_zone("Europe/Berlin"))
                skip(); /* no tzdata */
        use_tz("Europe/Berlin");

        check("2026-11-23 14:28:51", 0, NOW); /* CET, UTC+1 */
        check("2026-11-23", 0, SEC(MIDNIGHT_SEC - 3600));
        check("2026-07-01 10:00", 0, SEC(1782892800)); /* CEST, UTC+2: 08:00Z */
        check("2026-11-23T13:28:51Z", 0, NOW);
        check("2026-11-23T15:28:51+02:00", 0, NOW);
        check("now", 0, NOW);
        check("-1h", 0, NOW - SEC(3600));
        /* 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does not exist. */
        check("2026-03-29 01:59:59", 0, SEC(1774745999));
        check("2026-03-29 02:30", -EINVAL, 0);
        check("2026-03-29 03:00", 0, SEC(1774746000));
        /* Midnight is local midnight: today, yesterday and tomorrow across the change. */
        uint64_t noon = SEC(1774778400);                 /* 2026-03-29T10:00:00Z, 12:00 CEST */
        check_at("today", noon, 0, SEC(1774738800));     /* 2026-03-28T23:00:00Z */
        check_at("yesterday", noon, 0, SEC(1774652400)); /* 2026-03-27T23:00:00Z */
        check_at("tomorrow", noon, 0, SEC(1774821600));  /* 2026-03-29T22:00:00Z */
        /* Midnight of 1970-01-01 there is before the epoch. */
        check("1970-01-01", -ERANGE, 0);
        check("1970-01-01T01:00", 0, 0);

        use_tz("UTC");
}

/* Times for people: local time with its zone; the parser of the broker's UTC takes exactly
 * what format_rfc3339() writes, and only real dates. A POSIX zone needs no tzdata. */
static void test_times_for_people(void **state) {
        char buf[TIME_FOR_PEOPLE_BUF_MAX];
        uint64_t usec = SENTINEL;

        assert_string_equal(format_time_for_people(NOW, buf, sizeof(buf)),
                            "Mon 2026-11-23 13:28:51 UTC");
        use_tz("CET-1CEST,M3.5.0,M10.5.0/3");
        assert_string_equal(format_time_for_people(NOW, buf, sizeof(buf)),
                            "Mon 2026-11-23 14:28:51 CET");
        assert_string_equal(format_time_for_people(SEC(1782892800), buf, sizeof(buf)),
                            "Wed 2026-07-01 10:00:00 CEST");
        use_tz("UTC");

        assert_int_equal(rfc3339_parse("2026-11-23T13:28:51Z", &usec), 0);
        assert_true(usec == NOW);
        char back[RFC3339_BUF_MAX];
        assert_string_equal(format_rfc3339(usec, back, sizeof(back)), "2026-11-23T13:28:51Z");
        static const char *const refused[] = {
                "",
                "2026-11-23T13:28:51",       /* no zone */
                "2026-11-23T13:28:51+00:00", /* not the broker's spelling */
                "2026-11-23 13:28:51Z",
                "2026-11-23T13:28:51Zjunk",
                "2026-02-30T00:00:00Z", /* no such day */
                "2026-11-23T24:00:00Z",
                "2026-13-01T00:00:00Z",
                "1969-12-31T23:59:59Z",
                "20261123T132851Z",
        };
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                usec = SENTINEL;
                if (rfc3339_parse(refused[i], &usec) != -EINVAL || usec != SENTINEL)
                        fail_msg("rfc3339_parse(\"%s\") was not refused cleanly", refused[i]);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_words, setup_utc),
                cmocka_unit_test_setup(test_relative, setup_utc),
                cmocka_unit_test_setup(test_absolute, setup_utc),
                cmocka_unit_test_setup(test_refused, setup_utc),
                cmocka_unit_test_setup(test_rfc3339_round_trip, setup_utc),
                cmocka_unit_test_setup(test_europe_berlin, setup_utc),
                cmocka_unit_test_setup(test_times_for_people, setup_utc),
        };
        return cmocka_run_group_tests_name("timeutil", tests, NULL, NULL);
}
