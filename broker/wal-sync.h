/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

/* The fdatasync() that makes commits made with synchronous=NORMAL durable (session records),
 * on a thread of its own: the main loop answers the next sudo while the disk works. */
typedef struct WalSync WalSync;

/* Starts the thread for the write-ahead log at path (the database's path + "-wal"). */
int wal_sync_start(const char *path, WalSync **ret);
/* Asks for a sync that covers every commit made so far; returns at once. Several requests
 * before the thread gets to them share one sync. */
void wal_sync_request(WalSync *w);
/* Whether every request so far has been synced, and whether a sync has failed: read
 * together, so that a sync failing in between cannot pass for done. */
void wal_sync_state(WalSync *w, bool *ret_idle, bool *ret_failed);
/* A sync now, on the caller's thread: 0, or -EIO when it or any earlier one failed (the
 * kernel may have dropped what it could not write). */
int wal_sync_now(WalSync *w);
/* Whether a sync has failed since the start. Any thread. */
bool wal_sync_failed(WalSync *w);
/* Lets the thread finish what was asked of it, then ends it. NULL is fine. */
void wal_sync_stop(WalSync *w);
