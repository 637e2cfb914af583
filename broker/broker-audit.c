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

#include "broker.h"
#include "cleanup.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

/* The newest record, or the anchor when the live chain is empty. */
static int audit_head(sqlite3 *db, int64_t *ret_seq, char ret_hash[AUDIT_HASH_LEN + 1],
                      char *ret_chain, size_t chain_len) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(
                db,
                "SELECT a.chain_id, COALESCE(l.seq, a.seq), COALESCE(l.hash, a.hash)"
                " FROM audit_anchor a LEFT JOIN"
                " (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) l WHERE a.id = 1",
                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return -EIO;
        int r = -EIO;
        if (sqlite3_step(st) == SQLITE_ROW) {
                const char *chain = (const char *) sqlite3_column_text(st, 0);
                const char *hash = (const char *) sqlite3_column_text(st, 2);
                if (chain && hash && strlen(hash) == AUDIT_HASH_LEN) {
                        if (ret_chain)
                                snprintf(ret_chain, chain_len, "%s", chain);
                        *ret_seq = sqlite3_column_int64(st, 1);
                        memcpy(ret_hash, hash, AUDIT_HASH_LEN + 1);
                        r = 0;
                }
        }
        sqlite3_finalize(st);
        return r;
}

int audit_append(BrokerDb *store, JitEvent event, const char *actor, int64_t actor_uid,
                 int64_t request_id, json_object *details) {
        _cleanup_(json_object_putp) json_object *d = details ?: json_object_new_object();
        sqlite3 *db = db_sqlite(store);
        AuditRecord rec = {
                .at = now_usec(CLOCK_REALTIME),
                .event = (char *) jit_event_name(event),
                .actor = (char *) (actor ?: "broker"),
                .actor_uid = actor_uid,
                .request_id = request_id,
        };
        int64_t head_seq;
        int r;

        if (!d)
                return -ENOMEM;
        rec.details = (char *) json_object_to_json_string_ext(
                d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!rec.details)
                return -ENOMEM;
        if ((r = audit_head(db, &head_seq, rec.prev_hash, NULL, 0)) < 0)
                return r;
        rec.seq = head_seq + 1;
        if ((r = audit_record_hash(&rec, rec.hash)) < 0)
                return r;

        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(
                    db,
                    "INSERT INTO audit (seq, at, event, actor, actor_uid, request_id, details, prev_hash, hash)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, rec.seq);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) rec.at);
        sqlite3_bind_text(st, 3, rec.event, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, rec.actor, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, rec.actor_uid);
        sqlite3_bind_int64(st, 6, rec.request_id);
        sqlite3_bind_text(st, 7, rec.details, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, rec.prev_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, rec.hash, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : -EIO;
}

static void add_string(json_object *o, const char *key, const char *value) {
        if (value)
                json_object_object_add(o, key, json_object_new_string(value));
}

json_object *audit_request_details(const Request *r) {
        json_object *o = json_object_new_object();
        char t[RFC3339_BUF_MAX];

        if (!o)
                return NULL;
        add_string(o, "requester", r->requester);
        json_object_object_add(o, "requester_uid", json_object_new_int64(r->requester_uid));
        add_string(o, "service", r->service);
        add_string(o, "state", request_state_to_string(r->state));
        add_string(o, "rule", r->rule);
        json_object_object_add(o, "duration", json_object_new_int64((int64_t) r->duration));
        add_string(o, "reason", r->reason);
        add_string(o, "ticket", r->ticket);
        add_string(o, "policy_version", r->policy_version);
        if (r->expires_at)
                add_string(o, "expires_at", format_rfc3339(r->expires_at, t, sizeof(t)));
        add_string(o, "end_reason", r->end_reason);
        if (r->break_glass)
                json_object_object_add(o, "break_glass", json_object_new_boolean(true));
        return o;
}

void audit_log_head(Broker *b, bool force) {
        char hash[AUDIT_HASH_LEN + 1], chain[64];
        int64_t seq;

        if (audit_head(db_sqlite(b->db), &seq, hash, chain, sizeof(chain)) < 0) {
                log_error("reading the audit log's head failed: %s", db_error(b->db));
                return;
        }
        if (!force && seq == b->audit_logged_seq)
                return;
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
static json_object *record_to_json(sqlite3_stmt *st, bool raw) {
        json_object *o = json_object_new_object();
        char t[RFC3339_BUF_MAX];
        if (!o)
                return NULL;
        int64_t at = sqlite3_column_int64(st, 1), uid = sqlite3_column_int64(st, 4),
                rid = sqlite3_column_int64(st, 5);
        const char *details = (const char *) sqlite3_column_text(st, 6);

        json_object_object_add(o, "seq", json_object_new_int64(sqlite3_column_int64(st, 0)));
        json_object_object_add(
                o, "at",
                raw ? json_object_new_int64(at)
                    : json_object_new_string(format_rfc3339((uint64_t) at, t, sizeof(t))));
        json_object_object_add(o, "event",
                               json_object_new_string((const char *) sqlite3_column_text(st, 2)));
        json_object_object_add(o, "actor",
                               json_object_new_string((const char *) sqlite3_column_text(st, 3)));
        json_object_object_add(o, "actor_uid", raw || uid >= 0 ? json_object_new_int64(uid) : NULL);
        json_object_object_add(o, "request_id", raw || rid > 0 ? json_object_new_int64(rid) : NULL);
        json_object *d = raw ? json_object_new_string(details) : json_tokener_parse(details);
        json_object_object_add(o, "details", d ?: json_object_new_object());
        json_object_object_add(o, "prev_hash",
                               json_object_new_string((const char *) sqlite3_column_text(st, 7)));
        json_object_object_add(o, "hash",
                               json_object_new_string((const char *) sqlite3_column_text(st, 8)));
        return o;
}

int audit_query(Broker *b, uint64_t since, uint64_t until, const char *user, int64_t request_id,
                uid_t uid_only, unsigned limit, json_object **ret) {
        sqlite3 *db = db_sqlite(b->db);
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(
                db,
                /* the newest `limit` matches, shown oldest first */
                "SELECT * FROM (SELECT seq, at, event, actor, actor_uid, request_id, details, prev_hash, hash"
                " FROM audit WHERE (?1 = 0 OR at >= ?1) AND (?2 = 0 OR at <= ?2) AND (?3 = 0 OR request_id = ?3)"
                " AND (?4 IS NULL OR actor = ?4 OR request_id IN (SELECT id FROM requests WHERE requester = ?4))"
                " AND (?5 < 0 OR request_id IN (SELECT id FROM requests WHERE requester_uid = ?5))"
                " ORDER BY seq DESC LIMIT ?6) ORDER BY seq",
                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) since);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) until);
        sqlite3_bind_int64(st, 3, request_id);
        if (user)
                sqlite3_bind_text(st, 4, user, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 4);
        sqlite3_bind_int64(st, 5, uid_only == (uid_t) -1 ? -1 : (sqlite3_int64) uid_only);
        sqlite3_bind_int64(st, 6, limit);

        json_object *arr = json_object_new_array();
        int r = arr ? 0 : -ENOMEM;
        while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_object *o = record_to_json(st, false);
                if (!o) {
                        r = -ENOMEM;
                        break;
                }
                json_object_array_add(arr, o);
        }
        if (r == 0 && rc != SQLITE_DONE)
                r = -EIO;
        sqlite3_finalize(st);
        if (r < 0) {
                json_object_put(arr);
                return r;
        }
        *ret = arr;
        return 0;
}

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

static int write_json_line(int fd, json_object *o) {
        size_t len;
        const char *s = json_object_to_json_string_length(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!s)
                return -ENOMEM;
        int r = write_all(fd, s, len);
        return r < 0 ? r : write_all(fd, "\n", 1);
}

int audit_archive(Broker *b, uint64_t until, const char *dir, const char *actor, int64_t actor_uid,
                  json_object **ret) {
        sqlite3 *db = db_sqlite(b->db);
        _cleanup_(json_object_putp) json_object *info = json_object_new_object();
        _cleanup_free_ char *tmp_path = NULL, *final_path = NULL;
        _cleanup_close_ int fd = -EBADF;
        char chain[64], anchor_hash[AUDIT_HASH_LEN + 1], last_hash[AUDIT_HASH_LEN + 1] = "";
        int64_t anchor_seq, head_seq, first_seq = 0, last_seq = 0, n = 0;
        sqlite3_stmt *st = NULL;
        int r;

        if (!info)
                return -ENOMEM;
        if ((r = db_begin(b->db)) < 0)
                return r;
        /* The anchor, read inside the transaction, is where this archive starts. */
        if ((r = audit_head(db, &head_seq, anchor_hash, chain, sizeof(chain))) < 0)
                goto fail;
        if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM audit_anchor WHERE id = 1", -1, &st,
                               NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
                r = -EIO;
                goto fail;
        }
        anchor_seq = sqlite3_column_int64(st, 0);
        snprintf(anchor_hash, sizeof(anchor_hash), "%s", (const char *) sqlite3_column_text(st, 1));
        sqlite3_finalize(st);
        st = NULL;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                goto fail;
        }
        if (asprintf(&tmp_path, "%s/.audit-%s.tmp", dir, chain) < 0) {
                tmp_path = NULL;
                r = -ENOMEM;
                goto fail;
        }
        (void) unlink(tmp_path);
        fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = -errno;
                goto fail;
        }

        json_object *header = json_object_new_object();
        if (!header) {
                r = -ENOMEM;
                goto fail;
        }
        json_object_object_add(header, "jit_audit_archive", json_object_new_int(1));
        json_object_object_add(header, "chain_id", json_object_new_string(chain));
        json_object_object_add(header, "anchor_seq", json_object_new_int64(anchor_seq));
        json_object_object_add(header, "anchor_hash", json_object_new_string(anchor_hash));
        r = write_json_line(fd, header);
        json_object_put(header);
        if (r < 0)
                goto fail;

        if (sqlite3_prepare_v2(
                    db,
                    "SELECT seq, at, event, actor, actor_uid, request_id, details, prev_hash, hash"
                    /* up to the newest record old enough: a clock stepped back must not
                     * leave a hole in what is archived */
                    " FROM audit WHERE seq <= (SELECT MAX(seq) FROM audit WHERE at <= ?1) ORDER BY seq",
                    -1, &st, NULL) != SQLITE_OK) {
                r = -EIO;
                goto fail;
        }
        sqlite3_bind_int64(st, 1, (sqlite3_int64) until);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_object *o = record_to_json(st, true);
                if (!o) {
                        r = -ENOMEM;
                        goto fail;
                }
                last_seq = sqlite3_column_int64(st, 0);
                if (!first_seq)
                        first_seq = last_seq;
                snprintf(last_hash, sizeof(last_hash), "%s",
                         (const char *) sqlite3_column_text(st, 8));
                r = write_json_line(fd, o);
                json_object_put(o);
                if (r < 0)
                        goto fail;
                n++;
        }
        sqlite3_finalize(st);
        st = NULL;
        if (rc != SQLITE_DONE) {
                r = -EIO;
                goto fail;
        }
        if (n == 0) {
                (void) unlink(tmp_path);
                db_rollback(b->db);
                json_object_object_add(info, "records", json_object_new_int(0));
                *ret = TAKE_PTR(info);
                return 0;
        }

        json_object *seal = json_object_new_object(), *inner = json_object_new_object();
        if (!seal || !inner) {
                json_object_put(seal);
                json_object_put(inner);
                r = -ENOMEM;
                goto fail;
        }
        json_object_object_add(inner, "first_seq", json_object_new_int64(first_seq));
        json_object_object_add(inner, "last_seq", json_object_new_int64(last_seq));
        json_object_object_add(inner, "last_hash", json_object_new_string(last_hash));
        json_object_object_add(inner, "records", json_object_new_int64(n));
        json_object_object_add(seal, "seal", inner);
        r = write_json_line(fd, seal);
        json_object_put(seal);
        if (r < 0 || fsync(fd) < 0) {
                r = r < 0 ? r : -errno;
                goto fail;
        }

        if (asprintf(&final_path, "%s/audit-%s-%08" PRId64 "-%08" PRId64 ".jsonl", dir, chain,
                     first_seq, last_seq) < 0) {
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
        if (sqlite3_prepare_v2(db, "UPDATE audit_anchor SET seq = ?1, hash = ?2 WHERE id = 1", -1,
                               &st, NULL) != SQLITE_OK) {
                r = -EIO;
                goto fail_renamed;
        }
        sqlite3_bind_int64(st, 1, last_seq);
        sqlite3_bind_text(st, 2, last_hash, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        st = NULL;
        if (rc != SQLITE_DONE ||
            sqlite3_exec(db, "DELETE FROM audit WHERE seq <= (SELECT seq FROM audit_anchor)", NULL,
                         NULL, NULL) != SQLITE_OK) {
                r = -EIO;
                goto fail_renamed;
        }
        json_object_object_add(info, "file", json_object_new_string(final_path));
        json_object_object_add(info, "records", json_object_new_int64(n));
        json_object_object_add(info, "first_seq", json_object_new_int64(first_seq));
        json_object_object_add(info, "last_seq", json_object_new_int64(last_seq));
        json_object_object_add(info, "last_hash", json_object_new_string(last_hash));
        json_object_object_add(info, "chain_id", json_object_new_string(chain));
        if ((r = audit_append(b->db, JIT_EVENT_AUDIT_ARCHIVED, actor, actor_uid, 0,
                              json_object_get(info))) < 0 ||
            (r = db_commit(b->db)) < 0)
                goto fail_renamed;

        sd_journal_send("MESSAGE=audit records %" PRId64 "-%" PRId64 " archived to %s", first_seq,
                        last_seq, final_path, "MESSAGE_ID=%s",
                        jit_event_message_id(JIT_EVENT_AUDIT_ARCHIVED), "PRIORITY=%d", LOG_NOTICE,
                        "SYSLOG_IDENTIFIER=jit-brokerd", "JIT_EVENT=audit-archived",
                        "JIT_AUDIT_CHAIN=%s", chain, "JIT_AUDIT_ARCHIVE_FIRST_SEQ=%" PRId64,
                        first_seq, "JIT_AUDIT_ARCHIVE_LAST_SEQ=%" PRId64, last_seq,
                        "JIT_AUDIT_ARCHIVE_HASH=%s", last_hash, "JIT_AUDIT_ARCHIVE_FILE=%s",
                        final_path, NULL);
        audit_log_head(b, true);
        *ret = TAKE_PTR(info);
        return 0;

fail_renamed:
        if (final_path)
                (void) unlink(final_path);
fail:
        if (st)
                sqlite3_finalize(st);
        if (tmp_path && fd >= 0)
                (void) unlink(tmp_path);
        db_rollback(b->db);
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
        if (r < 0) {
                errno = -r;
                log_error("archiving audit records past settings.audit_retention: %m");
        }
}
