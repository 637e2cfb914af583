/* SPDX-License-Identifier: MIT */
#include "check-cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "protocol.h"

/* A host has few users with grants; a table this size holds them all, and a full one is
 * emptied (only costs reads). */
#define CHECK_CACHE_ENTRIES 256

typedef struct Entry {
        bool used;
        uid_t uid;
        char service[JIT_SERVICE_MAX + 1];
        CheckAnswer answer;
} Entry;

struct CheckCache {
        const volatile uint8_t *header;        /* sqlite's mapping, NULL when there is none */
        uint8_t stamp[CHECK_CACHE_STAMP_SIZE]; /* what the entries were read under */
        Entry entries[CHECK_CACHE_ENTRIES];
        unsigned n;
};

int check_cache_new(const volatile void *wal_index, CheckCache **ret) {
        CheckCache *c = calloc(1, sizeof(CheckCache));
        if (!c)
                return -ENOMEM;
        c->header = wal_index;
        *ret = c;
        return 0;
}

void check_cache_free(CheckCache *c) {
        free(c);
}

bool check_cache_stamp(CheckCache *c, uint8_t stamp[CHECK_CACHE_STAMP_SIZE]) {
        if (!c->header)
                return false;
        /* Ordered after whatever this thread saw before (a commit it was told of). */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        for (size_t i = 0; i < CHECK_CACHE_STAMP_SIZE; i++)
                stamp[i] = c->header[i];
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        return true;
}

static Entry *find(CheckCache *c, uid_t uid, const char *service) {
        for (unsigned i = 0; i < c->n; i++)
                if (c->entries[i].uid == uid && STREQ(c->entries[i].service, service))
                        return &c->entries[i];
        return NULL;
}

bool check_cache_get(CheckCache *c, const uint8_t stamp[CHECK_CACHE_STAMP_SIZE], uid_t uid,
                     const char *service, CheckAnswer *ret) {
        if (c->n == 0 || memcmp(stamp, c->stamp, CHECK_CACHE_STAMP_SIZE) != 0)
                return false;
        Entry *e = find(c, uid, service);
        if (!e)
                return false;
        *ret = e->answer;
        return true;
}

void check_cache_put(CheckCache *c, const uint8_t stamp[CHECK_CACHE_STAMP_SIZE], uid_t uid,
                     const char *service, const CheckAnswer *a) {
        if (strlen(service) > JIT_SERVICE_MAX)
                return;
        if (memcmp(stamp, c->stamp, CHECK_CACHE_STAMP_SIZE) != 0) {
                /* The database changed: every answer kept is of an older one. */
                c->n = 0;
                memcpy(c->stamp, stamp, CHECK_CACHE_STAMP_SIZE);
        }
        Entry *e = find(c, uid, service);
        if (!e) {
                if (c->n == CHECK_CACHE_ENTRIES)
                        c->n = 0;
                e = &c->entries[c->n++];
                e->uid = uid;
                strcpy(e->service, service);
        }
        e->answer = *a;
}
