/* SPDX-License-Identifier: MIT */
#include "timeutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "duration.h"

uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                return 0; /* cannot happen for the clocks we use */
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* realtime_usec in RFC 3339 UTC, or for people in local time with its zone; "invalid"
 * when it cannot. */
static char *format_time(uint64_t realtime_usec, bool utc, char *buf, size_t len) {
        time_t t = (time_t) (realtime_usec / USEC_PER_SEC);
        struct tm tm;
        size_t n = 0;

        if (utc ? gmtime_r(&t, &tm) != NULL : localtime_r(&t, &tm) != NULL)
                n = utc ? strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm)
                        : strftime(buf, len, "%a %Y-%m-%d %H:%M:%S %Z", &tm);
        if (n == 0)
                snprintf(buf, len, "invalid");
        return buf;
}

char *format_rfc3339(uint64_t realtime_usec, char *buf, size_t len) {
        return format_time(realtime_usec, true, buf, len);
}

char *format_time_for_people(uint64_t realtime_usec, char *buf, size_t len) {
        return format_time(realtime_usec, false, buf, len);
}

int rfc3339_parse(const char *s, uint64_t *ret_usec) {
        struct tm tm = {};
        int year, mon, day, hour, min, sec;

        if (!take_digits(&s, 4, &year) || *s++ != '-' || !take_digits(&s, 2, &mon) || *s++ != '-' ||
            !take_digits(&s, 2, &day) || *s++ != 'T' || !take_digits(&s, 2, &hour) || *s++ != ':' ||
            !take_digits(&s, 2, &min) || *s++ != ':' || !take_digits(&s, 2, &sec) || *s++ != 'Z' ||
            *s)
                return -EINVAL;
        tm.tm_year = year - 1900;
        tm.tm_mon = mon - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = min;
        tm.tm_sec = sec;
        time_t t = timegm(&tm);
        /* timegm() normalizes: "02-30" would become March; only a real date round-trips. */
        if (t == (time_t) -1 || t < 0 || tm.tm_year != year - 1900 || tm.tm_mon != mon - 1 ||
            tm.tm_mday != day || tm.tm_hour != hour || tm.tm_min != min || tm.tm_sec != sec)
                return -EINVAL;
        *ret_usec = (uint64_t) t * USEC_PER_SEC;
        return 0;
}

char *format_time_left(uint64_t usec, char *buf, size_t len) {
        uint64_t s = usec / USEC_PER_SEC;

        if (s >= 86400)
                snprintf(buf, len, "%llud %lluh", (unsigned long long) (s / 86400),
                         (unsigned long long) (s % 86400 / 3600));
        else if (s >= 3600)
                snprintf(buf, len, "%lluh %llum", (unsigned long long) (s / 3600),
                         (unsigned long long) (s % 3600 / 60));
        else if (s >= 60)
                snprintf(buf, len, "%llum %llus", (unsigned long long) (s / 60),
                         (unsigned long long) (s % 60));
        else
                snprintf(buf, len, "%llus", (unsigned long long) s);
        return buf;
}

bool take_digits(const char **s, int n, int *ret) {
        int v = 0;

        for (int i = 0; i < n; i++) {
                if ((*s)[i] < '0' || (*s)[i] > '9')
                        return false;
                v = v * 10 + ((*s)[i] - '0');
        }
        *s += n;
        *ret = v;
        return true;
}

static bool take_char(const char **s, char c) {
        if (**s != c)
                return false;
        (*s)++;
        return true;
}

/* Local midnight days_from_today days from now's day. */
static int local_midnight(uint64_t now, int days_from_today, uint64_t *ret) {
        time_t t = (time_t) (now / USEC_PER_SEC);
        struct tm tm;

        if (!localtime_r(&t, &tm))
                return -EINVAL;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mday += days_from_today;
        tm.tm_isdst = -1;
        t = mktime(&tm);
        if (t == (time_t) -1 || t < 0)
                return -ERANGE;
        *ret = (uint64_t) t * USEC_PER_SEC;
        return 0;
}

int timestamp_parse(const char *s, uint64_t now, uint64_t *ret_usec) {
        int y, mon, mday, h = 0, min = 0, sec = 0, r;
        uint64_t usec = 0, d;
        const char *p = s;

        if (!s)
                return -EINVAL;
        if (STREQ(s, "now")) {
                *ret_usec = now;
                return 0;
        }
        if (STREQ(s, "yesterday"))
                return local_midnight(now, -1, ret_usec);
        if (STREQ(s, "today"))
                return local_midnight(now, 0, ret_usec);
        if (STREQ(s, "tomorrow"))
                return local_midnight(now, 1, ret_usec);
        if (*s == '-' || *s == '+') {
                if ((r = duration_parse(s + 1, &d)) < 0)
                        return r;
                d *= USEC_PER_SEC;
                if (*s == '-' && now < d)
                        return -ERANGE;
                *ret_usec = *s == '-' ? now - d : now + d;
                return 0;
        }

        if (!take_digits(&p, 4, &y) || !take_char(&p, '-') || !take_digits(&p, 2, &mon) ||
            !take_char(&p, '-') || !take_digits(&p, 2, &mday))
                return -EINVAL;
        bool has_time = take_char(&p, 'T') || take_char(&p, 't') || take_char(&p, ' ');
        if (has_time) {
                if (!(take_digits(&p, 2, &h) || take_digits(&p, 1, &h)) || !take_char(&p, ':') ||
                    !take_digits(&p, 2, &min))
                        return -EINVAL;
                if (take_char(&p, ':')) {
                        if (!take_digits(&p, 2, &sec))
                                return -EINVAL;
                        if (take_char(&p, '.')) {
                                /* A fraction: microseconds are kept, further digits read. */
                                int digits = 0;
                                for (; *p >= '0' && *p <= '9'; p++)
                                        if (++digits <= 6)
                                                usec = usec * 10 + (uint64_t) (*p - '0');
                                if (digits == 0 || digits > 9)
                                        return -EINVAL;
                                for (; digits < 6; digits++)
                                        usec *= 10;
                        }
                }
        }

        long offset = 0; /* seconds east of UTC */
        bool utc = false;
        if (has_time && (take_char(&p, 'Z') || take_char(&p, 'z')))
                utc = true;
        else if (has_time && STREQ(p, " UTC")) {
                utc = true;
                p += 4;
        } else if (has_time && (*p == '+' || *p == '-')) {
                int sign = *p++ == '+' ? 1 : -1, oh, om;
                if (!take_digits(&p, 2, &oh) || !take_char(&p, ':') || !take_digits(&p, 2, &om) ||
                    oh > 23 || om > 59)
                        return -EINVAL;
                offset = sign * (oh * 3600L + om * 60L);
                utc = true;
        }
        if (*p || y < 1970 || mon < 1 || mon > 12 || mday < 1 || mday > 31 || h > 23 || min > 59 ||
            sec > 60)
                return -EINVAL;

        /* A leap second (:60) is read as the second after :59. */
        struct tm tm = { .tm_year = y - 1900,
                         .tm_mon = mon - 1,
                         .tm_mday = mday,
                         .tm_hour = h,
                         .tm_min = min,
                         .tm_sec = sec == 60 ? 59 : sec,
                         .tm_isdst = utc ? 0 : -1 };
        struct tm want = tm, check;
        time_t t = utc ? timegm(&tm) : mktime(&tm);
        if (t == (time_t) -1 || !(utc ? gmtime_r(&t, &check) : localtime_r(&t, &check)))
                return -EINVAL;
        /* mktime and timegm normalise: 2026-02-30, or a local time that a change to
         * daylight saving time skips, would come back as another time. It does not exist. */
        if (check.tm_year != want.tm_year || check.tm_mon != want.tm_mon ||
            check.tm_mday != want.tm_mday || check.tm_hour != want.tm_hour ||
            check.tm_min != want.tm_min || check.tm_sec != want.tm_sec)
                return -EINVAL;
        t += (sec == 60) - offset;
        if (t < 0)
                return -ERANGE;
        *ret_usec = (uint64_t) t * USEC_PER_SEC + usec;
        return 0;
}
