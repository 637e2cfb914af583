/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The answers of the PAM check, kept while the database has not changed since they were
 * read: a check that finds its answer here reads no table and takes no lock. "Not changed"
 * is the header of sqlite's WAL index (the database's -shm file, which every commit of any
 * connection or process rewrites: its change counter, frame count, checksums and salts;
 * sqlite's file format documents it), read where the front thread's own connection maps it
 * (db_wal_index()). What the answer depends on besides the database is checked at every
 * use: the deadlines against the clocks, and the ends the core holds in memory
 * (broker-ops.c). Owned by one thread. */
typedef struct CheckCache CheckCache;

/* The size of the stamp: both copies of the WAL-index header. */
#define CHECK_CACHE_STAMP_SIZE 96

typedef struct CheckAnswer {
        int64_t id; /* 0: no grant */
        uint64_t expires_at, deadline_boot;
} CheckAnswer;

/* For the WAL index mapped at wal_index (NULL: a cache that answers nothing, every check
 * reads the database), which must stay mapped while the cache is used. */
int check_cache_new(const volatile void *wal_index, CheckCache **ret);
void check_cache_free(CheckCache *c);

/* The database's stamp now, into stamp; false when there is none to read. */
bool check_cache_stamp(CheckCache *c, uint8_t stamp[CHECK_CACHE_STAMP_SIZE]);
/* The answer kept for (uid, service), if the database is as stamp says and as it was when
 * the answer was read. */
bool check_cache_get(CheckCache *c, const uint8_t stamp[CHECK_CACHE_STAMP_SIZE], uid_t uid,
                     const char *service, CheckAnswer *ret);
/* Keeps an answer read from the database after stamp was taken (the stamp, not the
 * answer's read, dates it: a change in between only makes it older than it is). */
void check_cache_put(CheckCache *c, const uint8_t stamp[CHECK_CACHE_STAMP_SIZE], uid_t uid,
                     const char *service, const CheckAnswer *a);
