/* SPDX-License-Identifier: MIT */
/* Time in the policy: a rule's `when` windows ("Mon-Fri 08:00-20:00"), parsed and matched
 * in local time, and the points in time that explain --at and case files write. */
#include "policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cleanup.h"
#include "policy-internal.h"
#include "timeutil.h"

/* Day names as `when` and --at write them; index 0 is Monday. */
static const char *const day_names[7] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };

/* Reads a day name at *s (any case), advancing past it. -1 when there is none ("Monday"
 * is none: only the three-letter names). */
static int parse_day(const char **s) {
        for (int i = 0; i < 7; i++)
                if (strncasecmp(*s, day_names[i], 3) == 0 &&
                    !(((*s)[3] | 0x20) >= 'a' && ((*s)[3] | 0x20) <= 'z')) {
                        *s += 3;
                        return i;
                }
        return -1;
}

/* H:MM or HH:MM at *s, advancing past it. Hours up to max_hour; 24 only as 24:00. */
static int parse_hhmm(const char **s, unsigned max_hour, unsigned *ret_minutes) {
        const char *p = *s;
        unsigned h = 0, m;
        int digits = 0;

        while (*p >= '0' && *p <= '9' && digits < 2) {
                h = h * 10 + (unsigned) (*p++ - '0');
                digits++;
        }
        if (digits == 0 || *p != ':' || !(p[1] >= '0' && p[1] <= '5') ||
            !(p[2] >= '0' && p[2] <= '9'))
                return -EINVAL;
        m = (unsigned) (p[1] - '0') * 10 + (unsigned) (p[2] - '0');
        if (h > max_hour || (h == 24 && m != 0))
                return -EINVAL;
        *s = p + 3;
        *ret_minutes = h * 60 + m;
        return 0;
}

static int window_error(char **ret_error, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static int window_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EINVAL;
}

#define UNKNOWN_DAY "unknown day \"%.*s\" (expected Mon, Tue, Wed, Thu, Fri, Sat or Sun)"

int policy_window_parse(const char *s, PolicyWindow *ret, char **ret_error) {
        static const char example[] =
                "expected days and a time range such as \"Mon-Fri 08:00-20:00\", "
                "\"Sat,Sun 10:00-12:00\" or \"Mon 22:00-06:00\"";
        const char *p = s;
        PolicyWindow w = {};
        unsigned start, end;

        if (ret_error)
                *ret_error = NULL;
        if (!*p)
                return window_error(ret_error, "%s", example);
        if (*p >= '0' && *p <= '9')
                w.days = 0x7f; /* no days: every day */
        else
                for (;;) {
                        const char *name = p;
                        int first = parse_day(&p), last = first;

                        if (first < 0 && strcspn(name, ",- \t") == 0)
                                return window_error(ret_error, "%s", example);
                        if (first < 0)
                                return window_error(ret_error, UNKNOWN_DAY,
                                                    (int) strcspn(name, ",- \t"), name);
                        if (*p == '-') {
                                name = ++p;
                                last = parse_day(&p);
                                if (last < 0 && strcspn(name, ",- \t") == 0)
                                        return window_error(ret_error, "%s", example);
                                if (last < 0)
                                        return window_error(ret_error, UNKNOWN_DAY,
                                                            (int) strcspn(name, ",- \t"), name);
                        }
                        /* A range may wrap around the week: Fri-Mon is Fri, Sat, Sun, Mon. */
                        for (int d = first;; d = (d + 1) % 7) {
                                if (w.days & (1U << d))
                                        return window_error(ret_error, "%s is named twice",
                                                            day_names[d]);
                                w.days |= (uint8_t) (1U << d);
                                if (d == last)
                                        break;
                        }
                        if (*p != ',')
                                break;
                        p++;
                }
        if (p != s) {
                if (*p != ' ' && *p != '\t')
                        return window_error(ret_error, "%s", example);
                p += strspn(p, " \t");
        }

        const char *t = p;
        if (parse_hhmm(&p, 23, &start) < 0 || *p != '-' || (p++, parse_hhmm(&p, 24, &end) < 0)) {
                if (!(*t >= '0' && *t <= '9'))
                        return window_error(ret_error, "%s", example);
                return window_error(ret_error,
                                    "\"%s\" is not a time range (expected HH:MM-HH:MM, from "
                                    "00:00 to 23:59, or 24:00 as the end)",
                                    t);
        }
        if (*p != '\0')
                return window_error(ret_error, "unexpected \"%s\" after the time range", p);
        if (start == end)
                return window_error(ret_error, "the window is empty (it starts and ends at %s)",
                                    t + strcspn(t, "-") + 1);
        w.start = (uint16_t) start;
        w.end = (uint16_t) end;
        *ret = w;
        return 0;
}

static bool window_contains_tm(const PolicyWindow *w, const struct tm *tm) {
        unsigned day = (unsigned) (tm->tm_wday + 6) % 7, prev = (day + 6) % 7;
        unsigned m = (unsigned) (tm->tm_hour * 60 + tm->tm_min);

        if (w->start < w->end)
                return (w->days & (1U << day)) && m >= w->start && m < w->end;
        /* Past midnight: the evening of a listed day, or the morning after one. */
        return ((w->days & (1U << day)) && m >= w->start) ||
               ((w->days & (1U << prev)) && m < w->end);
}

bool policy_window_contains(const PolicyWindow *w, time_t at) {
        struct tm tm;

        if (!localtime_r(&at, &tm))
                return false;
        return window_contains_tm(w, &tm);
}

bool rule_in_window_tm(const PolicyRule *r, const struct tm *tm) {
        if (r->when.n == 0)
                return true;
        for (size_t i = 0; i < r->when.n; i++)
                if (window_contains_tm(&r->windows[i], tm))
                        return true;
        return false;
}

bool policy_rule_in_window(const PolicyRule *r, time_t at) {
        struct tm tm;

        if (r->when.n == 0)
                return true;
        if (!localtime_r(&at, &tm))
                return false; /* a time that cannot be placed is in no window */
        return rule_in_window_tm(r, &tm);
}

/* Times for explain and case files */

/* [H]H:MM[:SS] at *s into tm, advancing past it. */
static bool parse_clock(const char **s, struct tm *tm) {
        const char *p = *s;
        int h, m, sec = 0;

        if (!(take_digits(&p, 2, &h) || take_digits(&p, 1, &h)) || *p++ != ':' ||
            !take_digits(&p, 2, &m))
                return false;
        if (*p == ':' && (p++, !take_digits(&p, 2, &sec)))
                return false;
        if (h > 23 || m > 59 || sec > 59)
                return false;
        tm->tm_hour = h;
        tm->tm_min = m;
        tm->tm_sec = sec;
        *s = p;
        return true;
}

int policy_time_parse(const char *s, time_t now, time_t *ret) {
        struct tm tm = { .tm_isdst = -1 }, check;
        const char *p = s;
        uint64_t usec;
        int r;

        if (!s)
                return -EINVAL;
        int day = parse_day(&p);
        if (day < 0) {
                /* Not in the reference week: a timestamp as timeutil.h reads them. */
                r = timestamp_parse(s, now > 0 ? (uint64_t) now * USEC_PER_SEC : 0, &usec);
                if (r < 0)
                        return r;
                *ret = (time_t) (usec / USEC_PER_SEC);
                return 0;
        }

        /* The reference week: Monday 2024-01-01 to Sunday 2024-01-07. */
        if (*p != ' ' && *p != '\t')
                return -EINVAL;
        p += strspn(p, " \t");
        if (!parse_clock(&p, &tm) || *p)
                return -EINVAL;
        tm.tm_year = 2024 - 1900;
        tm.tm_mon = 0;
        tm.tm_mday = 1 + day;

        struct tm want = tm;
        time_t t = mktime(&tm);
        if (t == (time_t) -1 || !localtime_r(&t, &check))
                return -EINVAL;
        /* mktime normalises: a time skipped by a DST change would come back as another
         * time. Such a time does not exist. */
        if (check.tm_mday != want.tm_mday || check.tm_hour != want.tm_hour ||
            check.tm_min != want.tm_min || check.tm_sec != want.tm_sec)
                return -EINVAL;
        *ret = t;
        return 0;
}
