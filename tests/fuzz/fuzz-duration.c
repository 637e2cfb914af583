/* SPDX-License-Identifier: MIT */
/* Durations (common/duration.c): the input is the text of a duration as a person writes it
 * (jitctl --for, the policy's durations, the protocol's "for" field after the broker's own
 * checks). What duration_parse() accepts lies in 1..JIT_DURATION_MAX_SEC, and
 * duration_format() writes it back in a form duration_parse() reads as the same number of
 * seconds. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char buf[DURATION_BUF_MAX];
        uint64_t sec = 0, again = 0;

        /* A C string, as every caller has it: the bytes up to a NUL. */
        char *s = strndup((const char *) data, size);
        if (!s)
                return 0;
        int r = duration_parse(s, &sec);
        if (r == 0) {
                CHECK(sec >= 1 && sec <= JIT_DURATION_MAX_SEC);
                duration_format(sec, buf, sizeof(buf));
                CHECK(strlen(buf) < sizeof(buf));
                r = duration_parse(buf, &again);
                if (r != 0 || again != sec)
                        fprintf(stderr, "\"%s\" = %llus, formatted \"%s\", read back %d %llus\n", s,
                                (unsigned long long) sec, buf, r, (unsigned long long) again);
                CHECK(r == 0 && again == sec);
        } else
                CHECK(r == -EINVAL || r == -ERANGE);

        /* Any number of seconds formats within the buffer, also past the maximum. */
        uint64_t n = 0;
        memcpy(&n, data, size < sizeof(n) ? size : sizeof(n));
        duration_format(n, buf, sizeof(buf));
        CHECK(strlen(buf) < sizeof(buf));
        duration_format(n, buf, 1 + n % sizeof(buf));
        free(s);
        return 0;
}
