/* SPDX-License-Identifier: MIT */
#include "duration.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"

/* What duration_format writes, largest first. */
static const struct {
        char unit;
        uint64_t sec;
} units[] = {
        { 'd', 86400 },
        { 'h', 3600 },
        { 'm', 60 },
        { 's', 1 },
};

/* What duration_parse reads, largest first: the systemd.time(7) names of these units.
 * Months and years (not a whole number of days) and units below a second are not here. */
static const struct {
        const char *const names[5];
        uint64_t sec;
} parse_units[] = {
        { { "w", "week", "weeks" }, 7 * 86400 },    { { "d", "day", "days" }, 86400 },
        { { "h", "hr", "hour", "hours" }, 3600 },   { { "m", "min", "minute", "minutes" }, 60 },
        { { "s", "sec", "second", "seconds" }, 1 },
};

/* The unit named by the n letters at s, searched from index first on; ELEMENTSOF when none. */
static size_t parse_unit(const char *s, size_t n, size_t first) {
        size_t i;

        for (i = first; i < ELEMENTSOF(parse_units); i++)
                for (size_t k = 0; k < ELEMENTSOF(parse_units[i].names) && parse_units[i].names[k];
                     k++)
                        if (strlen(parse_units[i].names[k]) == n &&
                            memcmp(parse_units[i].names[k], s, n) == 0)
                                return i;
        return i;
}

int duration_parse(const char *s, uint64_t *ret_sec) {
        uint64_t total = 0;
        size_t next_unit = 0; /* units must come largest first, each at most once */

        if (!s || !*s)
                return -EINVAL;

        while (*s) {
                uint64_t n = 0;
                size_t digits = 0;

                while (*s >= '0' && *s <= '9') {
                        if (++digits > 9) /* 10^9 of anything is already out of range */
                                return -ERANGE;
                        n = n * 10 + (uint64_t) (*s - '0');
                        s++;
                }
                if (digits == 0)
                        return -EINVAL;

                size_t letters = 0;
                while ((s[letters] >= 'a' && s[letters] <= 'z') ||
                       (s[letters] >= 'A' && s[letters] <= 'Z'))
                        letters++;
                size_t i = parse_unit(s, letters, next_unit);
                if (letters == 0 || i == ELEMENTSOF(parse_units))
                        return -EINVAL; /* missing, unknown, repeated or out-of-order unit */
                s += letters;
                next_unit = i + 1;

                total += n * parse_units[i].sec;
                if (total > JIT_DURATION_MAX_SEC)
                        return -ERANGE;

                /* Spaces may separate two parts ("1h 30m"), never end the text. */
                if (*s == ' ') {
                        s += strspn(s, " ");
                        if (!*s)
                                return -EINVAL;
                }
        }

        if (total == 0)
                return -EINVAL;
        *ret_sec = total;
        return 0;
}

char *duration_format(uint64_t sec, char *buf, size_t len) {
        size_t off = 0;

        if (len == 0)
                return buf;
        buf[0] = '\0';
        if (sec == 0) {
                snprintf(buf, len, "0s");
                return buf;
        }
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && off < len; i++) {
                uint64_t n = sec / units[i].sec;
                if (n == 0)
                        continue;
                sec -= n * units[i].sec;
                int r = snprintf(buf + off, len - off, "%llu%c", (unsigned long long) n,
                                 units[i].unit);
                if (r < 0)
                        break;
                off += (size_t) r;
        }
        return buf;
}
