/* SPDX-License-Identifier: MIT */
/* What keeps the database bounded (store-retention.c): how many requests a user filed
 * lately, how much room the database's file system has left, why a write failed, and the
 * ended requests that leave the live tables for an archive. */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

/* Requests uid filed at or after since (realtime usec), break-glass grants left out,
 * counted up to limit: *ret is min(count, limit). The scan walks the rowid back from the
 * newest request to the first one filed before since, so it costs the filings of the last
 * window (all users), not the table. */
int db_count_filings(BrokerDb *db, uid_t uid, uint64_t since, unsigned limit, unsigned *ret);

/* Bytes available (to unprivileged writers: the conservative figure) and the size of the
 * file system that holds the database. */
int db_disk_space(BrokerDb *db, uint64_t *ret_available, uint64_t *ret_total);

/* A failed write of the store as the errno that says why, read from sqlite before the
 * transaction is rolled back: -ENOSPC (disk full), -EROFS (read-only: the file system, or
 * sqlite's own read-only states), -EBUSY (locked by another connection past the busy
 * timeout), or error itself when nothing more is known. */
int db_failure_errno(BrokerDb *db, int error);

/* Ended requests (a final state, ended before `before`, realtime usec) with no session
 * still open, oldest first, at most limit. Each is a JSON object of its stored columns
 * (times as usec integers) with "approvals" and "sessions" arrays of their rows. */
int db_ended_requests(BrokerDb *db, uint64_t before, unsigned limit, json_object **ret_requests,
                      int64_t **ret_ids, size_t *ret_n);
/* Deletes the requests and their approvals and sessions; inside the caller's transaction. */
int db_delete_requests(BrokerDb *db, const int64_t *ids, size_t n);
