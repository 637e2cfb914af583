/* SPDX-License-Identifier: MIT */
#include "timeutil.h"

#include <stdio.h>

uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                return 0; /* cannot happen for the clocks we use */
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

char *format_rfc3339(uint64_t realtime_usec, char *buf, size_t len) {
        time_t t = (time_t) (realtime_usec / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, len, "invalid");
        return buf;
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
