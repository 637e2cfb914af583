/* SPDX-License-Identifier: MIT */
#include "names.h"

#include <stddef.h>

#include "protocol.h"

bool jit_service_name_is_valid(const char *s) {
        size_t n = 0;

        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (++n > JIT_SERVICE_MAX ||
                    !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
                        return false;
        return true;
}

bool valid_account_name(const char *s) {
        size_t n = 0;

        if (!s || !*s || *s == '-')
                return false;
        for (; *s; s++, n++) {
                if (n >= 256)
                        return false;
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.' ||
                      (*s == '$' && s[1] == '\0')))
                        return false;
        }
        return true;
}
