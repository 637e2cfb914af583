/* SPDX-License-Identifier: MIT */
#include "broker-audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "audit-store.h"
#include "broker-sessions.h"
#include "broker.h"
#include "cleanup.h"
#include "json-lines.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

void audit_log_head(Broker *b, bool force) {
        char chain[AUDIT_CHAIN_ID_LEN + 1];
        AuditHead head;

        int r = audit_store_head(db_sqlite(b->db), &head, chain);
        if (r < 0) {
                log_error_errno(r, "reading the audit log's head failed: %m (%s)", db_error(b->db));
                return;
        }
        int64_t seq = head.seq;
        const char *hash = head.hash;
        if (!force && seq == b->audit_logged_seq)
                return;
        /* The journal must not vouch for a record a power loss or a failed disk can still
         * take back: a later broker would write another record under its number, and the log
         * would look edited. */
        if ((r = sessions_sync_records(b)) < 0) {
                log_error_errno(r,
                                "not sending the audit log's head (record %" PRId64
                                "): session records since the last sync are not on disk",
                                seq);
                return;
        }
        sd_journal_send("MESSAGE=audit log head: record %" PRId64 ", hash %s", seq, hash,
                        "MESSAGE_ID=" AUDIT_HEAD_MESSAGE_ID, "PRIORITY=%d", LOG_INFO,
                        "SYSLOG_IDENTIFIER=jit-brokerd", "JIT_EVENT=audit-head",
                        "JIT_AUDIT_CHAIN=%s", chain, "JIT_AUDIT_SEQ=%" PRId64, seq,
                        "JIT_AUDIT_HASH=%s", hash, NULL);
        b->audit_logged_seq = seq;
}

/* One audit row (seq, at, event, actor, actor_uid, request_id, details, prev_hash, hash) as
 * JSON. For people and SIEMs: times in RFC 3339, details as an object, null for no uid or
 * request. Raw (archives): the stored fields exactly, details as the hashed string, so the
 * chain re-verifies from the file. */
json_object *audit_record_to_json(const AuditRecord *r, bool raw) {
        json_object *o = json_object_new_object();
        char t[RFC3339_BUF_MAX];
        if (!o)
                return NULL;
        json_object_object_add(o, "seq", json_object_new_int64(r->seq));
        json_object_object_add(o, "at",
                               raw ? json_object_new_int64((int64_t) r->at)
                                   : json_object_new_string(format_rfc3339(r->at, t, sizeof(t))));
        json_object_object_add(o, "event", json_object_new_string(r->event));
        json_object_object_add(o, "actor", json_object_new_string(r->actor));
        json_object_object_add(o, "actor_uid",
                               raw || r->actor_uid >= 0 ? json_object_new_int64(r->actor_uid)
                                                        : NULL);
        json_object_object_add(o, "request_id",
                               raw || r->request_id > 0 ? json_object_new_int64(r->request_id)
                                                        : NULL);
        json_object *d = raw ? json_object_new_string(r->details) : json_tokener_parse(r->details);
        json_object_object_add(o, "details", d ?: json_object_new_object());
        json_object_object_add(o, "prev_hash", json_object_new_string(r->prev_hash));
        json_object_object_add(o, "hash", json_object_new_string(r->hash));
        return o;
}

static int add_record(const AuditRecord *r, void *userdata) {
        json_object *o = audit_record_to_json(r, false);
        if (!o)
                return -ENOMEM;
        return json_object_array_add(userdata, o) < 0 ? (json_object_put(o), -ENOMEM) : 0;
}

int audit_query(Broker *b, uint64_t since, uint64_t until, const char *user, int64_t request_id,
                uid_t uid_only, unsigned limit, json_object **ret) {
        AuditFilter f = {
                .since = since,
                .until = until,
                .user = user,
                .request_id = request_id,
                .uid_only = uid_only == (uid_t) -1 ? -1 : (int64_t) uid_only,
                .limit = limit,
        };
        json_object *arr = json_object_new_array();
        if (!arr)
                return -ENOMEM;
        int r = audit_store_foreach(db_sqlite(b->db), &f, add_record, arr);
        if (r < 0) {
                json_object_put(arr);
                return r;
        }
        *ret = arr;
        return 0;
}

/* The records going into an archive file, one JSON line each. */
typedef struct ArchiveWriter {
        int fd;
        int64_t first_seq, last_seq, n;
        char last_hash[AUDIT_HASH_LEN + 1];
} ArchiveWriter;

static int archive_record(const AuditRecord *r, void *userdata) {
        ArchiveWriter *w = userdata;
        _cleanup_(json_object_putp) json_object *o = audit_record_to_json(r, true);
        if (!o)
                return -ENOMEM;
        if (!w->first_seq)
                w->first_seq = r->seq;
        w->last_seq = r->seq;
        memcpy(w->last_hash, r->hash, sizeof(w->last_hash));
        w->n++;
        return json_line_write(w->fd, o);
}

int audit_archive(Broker *b, uint64_t until, const char *dir, const char *actor, int64_t actor_uid,
                  json_object **ret) {
        sqlite3 *db = db_sqlite(b->db);
        _cleanup_(json_object_putp) json_object *info = json_object_new_object();
        _cleanup_free_ char *tmp_path = NULL, *final_path = NULL;
        _cleanup_(store_tx_release) StoreTx tx = {};
        char chain[AUDIT_CHAIN_ID_LEN + 1];
        ArchiveWriter w = { .fd = -EBADF };
        AuditHead anchor;
        int r, rows;

        if (!info)
                return -ENOMEM;
        if ((r = db_begin(b->db)) < 0)
                return r;
        tx.db = b->db;
        /* The anchor, read inside the transaction, is where this archive starts. */
        if ((r = audit_store_anchor(db, chain, &anchor, &rows)) < 0)
                return r;
        if (rows != 1 || !chain[0])
                return -EBADMSG;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (asprintf(&tmp_path, "%s/.audit-%s.tmp", dir, chain) < 0) {
                tmp_path = NULL;
                return -ENOMEM;
        }
        (void) unlink(tmp_path);
        w.fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (w.fd < 0)
                return -errno;
        _cleanup_close_ int fd = w.fd;

        json_object *header = json_object_new_object();
        if (!header) {
                r = -ENOMEM;
                goto fail;
        }
        json_object_object_add(header, "jit_audit_archive", json_object_new_int(1));
        json_object_object_add(header, "chain_id", json_object_new_string(chain));
        json_object_object_add(header, "anchor_seq", json_object_new_int64(anchor.seq));
        json_object_object_add(header, "anchor_hash", json_object_new_string(anchor.hash));
        r = json_line_write(fd, header);
        json_object_put(header);
        if (r < 0)
                goto fail;

        AuditFilter f = { .uid_only = -1, .upto_at = until };
        /* (Nothing is at or before the epoch, and upto_at 0 would mean no bound.) */
        if (until > 0 && (r = audit_store_foreach(db, &f, archive_record, &w)) < 0)
                goto fail;
        if (w.n == 0) {
                (void) unlink(tmp_path);
                json_object_object_add(info, "records", json_object_new_int(0));
                *ret = TAKE_PTR(info);
                return 0; /* the guard rolls the read transaction back */
        }

        json_object *seal = json_object_new_object(), *inner = json_object_new_object();
        if (!seal || !inner) {
                json_object_put(seal);
                json_object_put(inner);
                r = -ENOMEM;
                goto fail;
        }
        json_object_object_add(inner, "first_seq", json_object_new_int64(w.first_seq));
        json_object_object_add(inner, "last_seq", json_object_new_int64(w.last_seq));
        json_object_object_add(inner, "last_hash", json_object_new_string(w.last_hash));
        json_object_object_add(inner, "records", json_object_new_int64(w.n));
        json_object_object_add(seal, "seal", inner);
        r = json_line_write(fd, seal);
        json_object_put(seal);
        if (r < 0 || fsync(fd) < 0) {
                r = r < 0 ? r : -errno;
                goto fail;
        }

        if (asprintf(&final_path, "%s/audit-%s-%08" PRId64 "-%08" PRId64 ".jsonl", dir, chain,
                     w.first_seq, w.last_seq) < 0) {
                final_path = NULL;
                r = -ENOMEM;
                goto fail;
        }
        if (rename(tmp_path, final_path) < 0) {
                r = -errno;
                goto fail;
        }
        /* The rename must be on disk before the records leave the database. */
        {
                _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0 || fsync(dfd) < 0) {
                        r = -errno;
                        goto fail_renamed;
                }
        }

        /* Only now, with the archive on disk, do the records leave the live log. */
        if ((r = audit_store_advance_anchor(db, w.last_seq, w.last_hash)) < 0)
                goto fail_renamed;
        json_object_object_add(info, "file", json_object_new_string(final_path));
        json_object_object_add(info, "records", json_object_new_int64(w.n));
        json_object_object_add(info, "first_seq", json_object_new_int64(w.first_seq));
        json_object_object_add(info, "last_seq", json_object_new_int64(w.last_seq));
        json_object_object_add(info, "last_hash", json_object_new_string(w.last_hash));
        json_object_object_add(info, "chain_id", json_object_new_string(chain));
        if ((r = audit_append(b->db, JIT_EVENT_AUDIT_ARCHIVED, actor, actor_uid, 0,
                              json_object_get(info))) < 0 ||
            (r = db_commit(b->db)) < 0)
                goto fail_renamed;
        tx.db = NULL;

        sd_journal_send("MESSAGE=audit records %" PRId64 "-%" PRId64 " archived to %s", w.first_seq,
                        w.last_seq, final_path, "MESSAGE_ID=%s",
                        jit_event_message_id(JIT_EVENT_AUDIT_ARCHIVED), "PRIORITY=%d", LOG_NOTICE,
                        "SYSLOG_IDENTIFIER=jit-brokerd", "JIT_EVENT=audit-archived",
                        "JIT_AUDIT_CHAIN=%s", chain, "JIT_AUDIT_ARCHIVE_FIRST_SEQ=%" PRId64,
                        w.first_seq, "JIT_AUDIT_ARCHIVE_LAST_SEQ=%" PRId64, w.last_seq,
                        "JIT_AUDIT_ARCHIVE_HASH=%s", w.last_hash, "JIT_AUDIT_ARCHIVE_FILE=%s",
                        final_path, NULL);
        audit_log_head(b, true);
        *ret = TAKE_PTR(info);
        return 0;

fail_renamed:
        if (final_path)
                (void) unlink(final_path);
fail:
        if (tmp_path)
                (void) unlink(tmp_path);
        return r;
}

char *audit_archive_dir(const char *db_path) {
        char *dir = NULL;
        const char *slash = strrchr(db_path, '/');
        if (asprintf(&dir, "%.*s/archive", (int) (slash ? slash - db_path : 1),
                     slash ? db_path : ".") < 0)
                return NULL;
        return dir;
}

void audit_apply_retention(Broker *b) {
        uint64_t retention = b->policy->audit_retention * USEC_PER_SEC,
                 now = now_usec(CLOCK_REALTIME);
        _cleanup_free_ char *dir = NULL;
        _cleanup_(json_object_putp) json_object *info = NULL;

        if (retention == 0 || retention >= now)
                return;
        dir = audit_archive_dir(b->db_path);
        int r = dir ? audit_archive(b, now - retention, dir, "broker", -1, &info) : -ENOMEM;
        if (r < 0)
                log_error_errno(r, "archiving audit records past settings.audit_retention: %m");
}
