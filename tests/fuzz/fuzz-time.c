/* SPDX-License-Identifier: MIT */
/* Points in time (common/timeutil.c, common/policy-when.c): the input is the text of a
 * time as `jitctl audit --since`, `policy explain --at`, case files and the protocol's
 * "since"/"until"/"at" carry it, and of a `when` window.
 *
 * - timestamp_parse() against a few clocks ("now"): what it accepts, format_rfc3339()
 *   writes back and timestamp_parse() reads as the same second;
 * - policy_time_parse() (the reference week "Mon 10:00", or a timestamp);
 * - policy_window_parse() ("Mon-Fri 08:00-20:00"), and policy_window_contains().
 * Local time is Europe/Berlin (TZ): days of 23 and 25 hours, times that do not exist. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"
#include "timeutil.h"

#include "fuzz-check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        setenv("TZ", "Europe/Berlin", 1);
        tzset();
        return 0;
}

/* 2026-03-29 00:30 UTC (the night summer time starts), 2026-10-25 00:30 UTC (it ends),
 * 1970-01-01 00:00:00.5 UTC (the start of the clock) and a quiet day in 2024. */
static const uint64_t clocks[] = {
        1774744200ULL * USEC_PER_SEC,
        1792888200ULL * USEC_PER_SEC,
        500000ULL,
        1718366400ULL * USEC_PER_SEC + 123456,
};

/* The year 9999 ends here: format_rfc3339() writes four-digit years. */
#define YEAR_10000_SEC 253402300800ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = strndup((const char *) data, size);
        if (!s)
                return 0;

        for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
                uint64_t usec = 0, again = 0;
                int r = timestamp_parse(s, clocks[i], &usec);
                if (r < 0) {
                        CHECK(r == -EINVAL || r == -ERANGE);
                        continue;
                }
                if (usec / USEC_PER_SEC >= YEAR_10000_SEC)
                        continue;
                char buf[RFC3339_BUF_MAX];
                format_rfc3339(usec, buf, sizeof(buf));
                r = timestamp_parse(buf, clocks[i], &again);
                if (r != 0 || again != usec / USEC_PER_SEC * USEC_PER_SEC)
                        fprintf(stderr, "\"%s\" = %llu, formatted \"%s\", read back %d %llu\n", s,
                                (unsigned long long) usec, buf, r, (unsigned long long) again);
                CHECK(r == 0 && again == usec / USEC_PER_SEC * USEC_PER_SEC);
        }

        time_t t = 0;
        int r = policy_time_parse(s, (time_t) (clocks[0] / USEC_PER_SEC), &t);
        if (r == 0)
                CHECK(t >= 0);
        else
                CHECK(r == -EINVAL || r == -ERANGE);

        PolicyWindow w;
        char *error = NULL;
        r = policy_window_parse(s, &w, &error);
        if (r == 0) {
                CHECK(!error);
                CHECK(w.days != 0 && w.days < (1 << 7));
                CHECK(w.start <= 1439 && w.end <= 1440 && w.start != w.end);
                for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++)
                        (void) policy_window_contains(&w, (time_t) (clocks[i] / USEC_PER_SEC));
        } else {
                CHECK(r == -EINVAL || r == -ENOMEM);
                free(error);
        }

        free(s);
        return 0;
}
