/* SPDX-License-Identifier: MIT */
#include "duration.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
        char unit;
        uint64_t sec;
} units[] = {
        { 'd', 86400 },
        { 'h', 3600 },
        { 'm', 60 },
        { 's', 1 },
};

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

                size_t i;
                for (i = next_unit; i < sizeof(units) / sizeof(units[0]); i++)
                        if (*s == units[i].unit)
                                break;
                if (i == sizeof(units) / sizeof(units[0]))
                        return -EINVAL; /* missing, unknown, repeated or out-of-order unit */
                s++;
                next_unit = i + 1;

                total += n * units[i].sec;
                if (total > JIT_DURATION_MAX_SEC)
                        return -ERANGE;
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
