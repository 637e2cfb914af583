/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <unistd.h>

#include "json-lines.h"

static int write_all(int fd, const char *s, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, s, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                s += n;
                len -= (size_t) n;
        }
        return 0;
}

int json_line_write(int fd, json_object *o) {
        size_t len;
        const char *s = json_object_to_json_string_length(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!s)
                return -ENOMEM;
        int r = write_all(fd, s, len);
        return r < 0 ? r : write_all(fd, "\n", 1);
}
