/* SPDX-License-Identifier: MIT */
#include "access-log.h"

bool access_log_use(AccessLog *l, int64_t grant, uint64_t now, uint64_t *ret_uses) {
        unsigned i, oldest = 0;

        for (i = 0; i < l->n; i++) {
                if (l->entries[i].grant == grant)
                        break;
                if (l->entries[i].logged_at < l->entries[oldest].logged_at)
                        oldest = i;
        }
        if (i == l->n) {
                /* First use (as far as the table knows): logged. */
                if (l->n < ACCESS_LOG_GRANTS_MAX)
                        i = l->n++;
                else
                        i = oldest;
                l->entries[i].grant = grant;
                l->entries[i].logged_at = now;
                l->entries[i].uses = 0;
                *ret_uses = 1;
                return true;
        }
        l->entries[i].uses++;
        if (now - l->entries[i].logged_at < ACCESS_LOG_INTERVAL_USEC)
                return false;
        *ret_uses = l->entries[i].uses;
        l->entries[i].logged_at = now;
        l->entries[i].uses = 0;
        return true;
}
