/* SPDX-License-Identifier: MIT */
#include "wal-sync.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker-journal.h"
#include "cleanup.h"

struct WalSync {
        char *path;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        uint64_t requested, done; /* generations: done == requested when all is synced */
        bool failed, stop;
};

static int sync_path(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno; /* no WAL: checkpointed into the database */
        return fdatasync(fd) < 0 ? -errno : 0;
}

static void *sync_thread(void *userdata) {
        WalSync *w = userdata;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (w->requested == w->done && !w->stop)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (w->requested == w->done)
                        break; /* stopping, nothing left */
                uint64_t target = w->requested;
                pthread_mutex_unlock(&w->lock);
                int r = sync_path(w->path);
                if (r < 0)
                        log_error_errno(r, "syncing session records to disk: %m; those since the "
                                           "last sync may not survive a power loss");
                pthread_mutex_lock(&w->lock);
                if (r < 0)
                        w->failed = true;
                if (w->done < target) /* wal_sync_now() may have covered more meanwhile */
                        w->done = target;
                pthread_cond_broadcast(&w->cond);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

int wal_sync_start(const char *path, WalSync **ret) {
        WalSync *w = calloc(1, sizeof(WalSync));
        if (!w)
                return -ENOMEM;
        w->path = strdup(path);
        if (!w->path) {
                free(w);
                return -ENOMEM;
        }
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        int r = -pthread_create(&w->thread, NULL, sync_thread, w);
        if (r < 0) {
                pthread_cond_destroy(&w->cond);
                pthread_mutex_destroy(&w->lock);
                free(w->path);
                free(w);
                return r;
        }
        *ret = w;
        return 0;
}

void wal_sync_request(WalSync *w) {
        pthread_mutex_lock(&w->lock);
        w->requested++;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

void wal_sync_state(WalSync *w, bool *ret_idle, bool *ret_failed) {
        pthread_mutex_lock(&w->lock);
        *ret_idle = w->requested == w->done;
        *ret_failed = w->failed;
        pthread_mutex_unlock(&w->lock);
}

bool wal_sync_failed(WalSync *w) {
        pthread_mutex_lock(&w->lock);
        bool failed = w->failed;
        pthread_mutex_unlock(&w->lock);
        return failed;
}

int wal_sync_now(WalSync *w) {
        pthread_mutex_lock(&w->lock);
        uint64_t target = w->requested;
        pthread_mutex_unlock(&w->lock);
        int r = sync_path(w->path);
        pthread_mutex_lock(&w->lock);
        if (r < 0)
                w->failed = true;
        else if (w->done < target)
                w->done = target; /* covered; the thread may still sync once more */
        bool failed = w->failed;
        pthread_mutex_unlock(&w->lock);
        if (r < 0)
                log_error_errno(r, "syncing session records to disk: %m");
        return failed ? -EIO : 0;
}

void wal_sync_stop(WalSync *w) {
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w->path);
        free(w);
}
