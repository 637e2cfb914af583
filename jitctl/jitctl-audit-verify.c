/* SPDX-License-Identifier: MIT */
/* jitctl audit --verify: checks the audit log's hash chain straight from the database and
 * the journal (or an exported archive on its own), trusting neither the broker nor the
 * database. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "config.h"

#include "audit-store.h"
#include "audit-verify.h"
#include "cleanup.h"
#include "jitctl-audit-internal.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"
#include "jitctl-text.h"

/* The heads are kept in memory, the records are not: the broker sends a head at its start
 * and stop and on a timer, so the journal holds few, and rotates them away. */
#define VERIFY_HEADS_MAX 10000000

/* ---- --verify, from the database and the journal ---- */

/* Strings of an archive's records in few allocations: a million records must not mean
 * three million mallocs. */
typedef struct Arena {
        char **blocks;
        size_t n_blocks;
        char *next;
        size_t left;
} Arena;

#define ARENA_BLOCK (1024U * 1024U)

static void arena_done(Arena *ar) {
        for (size_t i = 0; i < ar->n_blocks; i++)
                free(ar->blocks[i]);
        free(ar->blocks);
        *ar = (Arena){};
}

static char *arena_strndup(Arena *ar, const char *s, size_t len) {
        if (len + 1 > ar->left) {
                size_t size = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;
                char **blocks = reallocarray(ar->blocks, ar->n_blocks + 1, sizeof(char *));
                if (!blocks)
                        return NULL;
                ar->blocks = blocks;
                ar->blocks[ar->n_blocks] = malloc(size);
                if (!ar->blocks[ar->n_blocks])
                        return NULL;
                ar->next = ar->blocks[ar->n_blocks++];
                ar->left = size;
        }
        char *p = ar->next;
        memcpy(p, s, len);
        p[len] = '\0';
        ar->next += len + 1;
        ar->left -= len + 1;
        return p;
}

typedef struct AuditLog {
        sqlite3 *db;
        char chain_id[AUDIT_CHAIN_ID_LEN + 1];
        AuditHead anchor;
        AuditRecord *records; /* --archive only: the live log is verified as it is read */
        size_t n;
        Arena strings;
        AuditHead *heads;
        size_t n_heads;
        int n_bad_heads; /* heads of this chain the journal holds in a form we do not know */
} AuditLog;

static void audit_log_done(AuditLog *l) {
        if (l->db)
                sqlite3_close(l->db);
        free(l->records);
        arena_done(&l->strings);
        free(l->heads);
        *l = (AuditLog){};
}

static bool is_lower_hex(const char *s, size_t len, size_t want) {
        return s && len == want && strspn(s, "0123456789abcdef") == want;
}

static int db_fail(const AuditArgs *a, const AuditLog *l, const char *what, int r) {
        return audit_fail(a, JIT_EXIT_FAILURE, "unreadable", "%s: %s: %s", a->db, what,
                          l->db ? sqlite3_errmsg(l->db) : strerror(-r));
}

static int open_db(const AuditArgs *a, AuditLog *l) {
        int r = audit_store_open_readonly(a->db, &l->db);
        if (r == -EBADMSG)
                return audit_fail(a, JIT_EXIT_FAILURE, "unreadable", "%s is not a database file",
                                  a->db);
        if (r < 0)
                return audit_fail(a, JIT_EXIT_FAILURE, "unreadable", "cannot open %s: %s%s", a->db,
                                  strerror(-r),
                                  r == -EACCES || r == -EPERM
                                          ? " (run as root: jitctl audit --verify "
                                            "reads the database itself)"
                                          : "");
        return CONTINUE;
}

/* The chain's id, which names its heads in the journal. It never changes. */
static int read_chain_id(const AuditArgs *a, AuditLog *l) {
        AuditHead anchor;
        int64_t version = 0;
        int rows = 0, r;

        if ((r = audit_store_schema_version(l->db, &version)) < 0)
                return db_fail(a, l, "cannot read the schema version", r);
        if (version < AUDIT_SCHEMA_VERSION)
                return audit_fail(a, JIT_EXIT_FAILURE, "unreadable",
                                  "%s has no audit log yet (schema version %" PRId64
                                  "; the log came with version %d)",
                                  a->db, version, AUDIT_SCHEMA_VERSION);
        if ((r = audit_store_anchor(l->db, l->chain_id, &anchor, &rows)) < 0)
                return db_fail(a, l, "cannot read the audit anchor", r);
        if (rows < 1 || !l->chain_id[0])
                return audit_fail(
                        a, JIT_EXIT_FAILURE, "unreadable",
                        "%s: the audit anchor is missing or has no valid chain id: the log "
                        "cannot be verified",
                        a->db);
        return CONTINUE;
}

/* The anchor the chain starts from, inside the read transaction: one row, of this chain. */
static int read_anchor(const AuditArgs *a, AuditLog *l) {
        char chain_id[AUDIT_CHAIN_ID_LEN + 1] = "";
        int rows = 0, r;

        if ((r = audit_store_anchor(l->db, chain_id, &l->anchor, &rows)) < 0)
                return db_fail(a, l, "cannot read the audit anchor", r);
        if (rows != 1 || !STREQ(chain_id, l->chain_id) || l->anchor.seq < 0)
                return audit_fail(a, JIT_EXIT_FAILURE, "unreadable",
                                  "%s: the audit anchor is missing or malformed (%d rows): the log "
                                  "cannot be verified",
                                  a->db, rows);
        return CONTINUE;
}

/* The live log for audit_verify_stream(), read inside the read transaction: one record
 * at a time, however long the log. A failure of the database is told apart from one of
 * the walk's own (hashing), which reaches here through fn. */
typedef struct DbSource {
        sqlite3 *db;
        AuditRecordFn fn;
        void *userdata;
        int fn_error;
        int error; /* the database's */
} DbSource;

static int db_record(const AuditRecord *rec, void *userdata) {
        DbSource *s = userdata;
        int r = s->fn(rec, s->userdata);
        if (r < 0)
                s->fn_error = r;
        return r;
}

static int db_source(void *source, AuditRecordFn fn, void *userdata) {
        DbSource *s = source;
        s->fn = fn;
        s->userdata = userdata;
        s->fn_error = 0;
        int r = audit_store_foreach_all(s->db, db_record, s);
        if (r < 0 && s->fn_error == 0)
                s->error = r;
        return r;
}

/* "FIELD=value" data of the current entry, NUL-terminated in buf; false when absent or
 * longer than buf. */
static bool journal_field(sd_journal *j, const char *field, char *buf, size_t size) {
        const void *data;
        size_t len, flen = strlen(field);

        if (sd_journal_get_data(j, field, &data, &len) < 0 || len <= flen + 1 ||
            len - flen - 1 >= size)
                return false;
        memcpy(buf, (const char *) data + flen + 1, len - flen - 1);
        buf[len - flen - 1] = '\0';
        return true;
}

/* The heads of this chain that jit-brokerd (as root) sent to the journal. Returns
 * CONTINUE, with *ret_error set when the journal could not be read (then there are no
 * heads, and truncation cannot be checked). */
static int read_heads(const AuditArgs *a, AuditLog *l, int *ret_error) {
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        char match[64];
        size_t allocated = 0;
        int r;

        *ret_error = 0;
        r = sd_journal_open(&j, 0);
        if (r < 0) {
                *ret_error = r;
                return CONTINUE;
        }
        snprintf(match, sizeof(match), "JIT_AUDIT_CHAIN=%s", l->chain_id);
        /* _UID is set by journald, not by the sender: anyone may send an entry with this
         * MESSAGE_ID, only root's count. */
        if ((r = sd_journal_add_match(j, "MESSAGE_ID=" AUDIT_HEAD_MESSAGE_ID, 0)) < 0 ||
            (r = sd_journal_add_match(j, match, 0)) < 0 ||
            (r = sd_journal_add_match(j, "_UID=0", 0)) < 0) {
                *ret_error = r;
                return CONTINUE;
        }

        SD_JOURNAL_FOREACH(j) {
                char seq_text[24] = "", hash[AUDIT_HASH_LEN + 2] = "";
                int64_t seq = 0;

                /* Seq 0 is the head of a log with no record yet. */
                if (!journal_field(j, "JIT_AUDIT_SEQ", seq_text, sizeof(seq_text)) ||
                    !journal_field(j, "JIT_AUDIT_HASH", hash, sizeof(hash)) ||
                    (!STREQ(seq_text, "0") &&
                     audit_parse_positive(seq_text, INT64_MAX, &seq) < 0) ||
                    !is_lower_hex(hash, strlen(hash), AUDIT_HASH_LEN)) {
                        l->n_bad_heads++;
                        continue;
                }
                /* The same head is sent at every start and stop: keep one. */
                if (l->n_heads > 0 && l->heads[l->n_heads - 1].seq == seq &&
                    STREQ(l->heads[l->n_heads - 1].hash, hash))
                        continue;
                if (l->n_heads == VERIFY_HEADS_MAX)
                        return audit_fail(a, JIT_EXIT_FAILURE, "too-large",
                                          "the journal holds more than %d audit heads of chain %s",
                                          VERIFY_HEADS_MAX, l->chain_id);
                if (l->n_heads == allocated) {
                        size_t n = allocated ? allocated * 2 : 64;
                        AuditHead *h = reallocarray(l->heads, n, sizeof(AuditHead));
                        if (!h)
                                return audit_fail_oom(a);
                        l->heads = h;
                        allocated = n;
                }
                l->heads[l->n_heads].seq = seq;
                memcpy(l->heads[l->n_heads].hash, hash, AUDIT_HASH_LEN + 1);
                l->n_heads++;
        }
        return CONTINUE;
}

/* Reads one line of at most max bytes into buf (size max + 2). Returns its length, 0 at
 * the end of the file, or -E2BIG for a longer line (the rest of it is skipped): a file
 * from elsewhere must not make us allocate without bound. */
static ssize_t read_line_bounded(FILE *f, char *buf, size_t max) {
        if (!fgets(buf, (int) max + 2, f))
                return 0;
        size_t len = strlen(buf);
        if (len > max || (len == max + 1 && buf[len - 1] != '\n')) {
                int c;
                while ((c = fgetc(f)) != EOF && c != '\n')
                        ;
                return -E2BIG;
        }
        return (ssize_t) len;
}

#define HEAD_LINE_MAX (64 * 1024)
#define ARCHIVE_LINE_MAX (1024 * 1024)
#define HEADS_FILE_MAX 1000000

/* Heads shipped off the host, as `journalctl -o json MESSAGE_ID=...` wrote them: the
 * evidence that survives an attacker who also wiped this host's journal. */
static int read_heads_file(const AuditArgs *a, AuditLog *l) {
        _cleanup_fclose_ FILE *f = fopen(a->heads, "re");
        _cleanup_free_ char *line = malloc(HEAD_LINE_MAX + 2);
        ssize_t len;
        int r = CONTINUE;

        if (!f)
                return audit_fail(a, JIT_EXIT_FAILURE, "unreadable", "%s: %m", a->heads);
        if (!line)
                return audit_fail_oom(a);
        while ((len = read_line_bounded(f, line, HEAD_LINE_MAX)) != 0) {
                if (len < 0)
                        continue; /* no head is that long */
                if (l->n_heads >= HEADS_FILE_MAX)
                        return audit_fail(a, JIT_EXIT_FAILURE, "too-large",
                                          "%s: more than %d heads", a->heads, HEADS_FILE_MAX);
                _cleanup_(json_object_putp) json_object *o = json_tokener_parse(line);
                const char *chain = o ? json_get_string(o, "JIT_AUDIT_CHAIN") : NULL;
                const char *seq_text = o ? json_get_string(o, "JIT_AUDIT_SEQ") : NULL;
                const char *hash = o ? json_get_string(o, "JIT_AUDIT_HASH") : NULL;
                int64_t seq = 0;
                if (!chain || !STREQ(chain, l->chain_id))
                        continue;
                if (!seq_text || !hash ||
                    (!STREQ(seq_text, "0") &&
                     audit_parse_positive(seq_text, INT64_MAX, &seq) < 0) ||
                    !is_lower_hex(hash, strlen(hash), AUDIT_HASH_LEN)) {
                        l->n_bad_heads++;
                        continue;
                }
                AuditHead *h = reallocarray(l->heads, l->n_heads + 1, sizeof(AuditHead));
                if (!h) {
                        r = audit_fail_oom(a);
                        break;
                }
                l->heads = h;
                l->heads[l->n_heads].seq = seq;
                memcpy(l->heads[l->n_heads].hash, hash, AUDIT_HASH_LEN + 1);
                l->n_heads++;
        }
        return r;
}

/* Whether root's journal holds an "audit-archived" entry of this chain ending exactly at
 * the anchor: the live log may start late only because its start went to an archive. */
static int anchor_archived(const AuditLog *l) {
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        char match[64];
        int r;

        if (l->anchor.seq == 0)
                return 1;
        if ((r = sd_journal_open(&j, 0)) < 0)
                return r;
        snprintf(match, sizeof(match), "JIT_AUDIT_CHAIN=%s", l->chain_id);
        if ((r = sd_journal_add_match(j, "MESSAGE_ID=" AUDIT_ARCHIVED_MESSAGE_ID, 0)) < 0 ||
            (r = sd_journal_add_match(j, match, 0)) < 0 ||
            (r = sd_journal_add_match(j, "_UID=0", 0)) < 0)
                return r;
        SD_JOURNAL_FOREACH(j) {
                char seq_text[24] = "", hash[AUDIT_HASH_LEN + 2] = "";
                int64_t seq;
                if (journal_field(j, "JIT_AUDIT_ARCHIVE_LAST_SEQ", seq_text, sizeof(seq_text)) &&
                    journal_field(j, "JIT_AUDIT_ARCHIVE_HASH", hash, sizeof(hash)) &&
                    audit_parse_positive(seq_text, INT64_MAX, &seq) >= 0 && seq == l->anchor.seq &&
                    STREQ(hash, l->anchor.hash))
                        return 1;
        }
        return 0;
}

/* "3fa2c1d0e4b5…" */
static const char *short_hash(const char *hash, char *buf, size_t size) {
        snprintf(buf, size, "%.12s%s", hash, glyph_ellipsis());
        return buf;
}

static int print_verdict(const AuditArgs *a, const AuditLog *l, const AuditVerdict *v,
                         int journal_error) {
        const char *head = v->n_records > 0 ? v->last_hash : l->anchor.hash;
        bool intact = v->fault == AUDIT_INTACT;
        _cleanup_free_ char *line = NULL, *warning = NULL;
        char buf[32], range[64];

        /* What the journal could vouch for, and what it could not. */
        const char *journal;
        char journal_buf[128];
        if (journal_error < 0) {
                errno = -journal_error;
                if (asprintf(&warning,
                             "cannot read the journal (%m): whether records were cut off the "
                             "end of the log cannot be checked") < 0)
                        return audit_fail_oom(a);
                journal = "the journal could not be read";
        } else if (l->n_heads == 0) {
                if (asprintf(&warning,
                             "the journal holds no audit head of chain %s (MESSAGE_ID=%s from "
                             "root): whether records were cut off the end of the log cannot "
                             "be checked",
                             l->chain_id, AUDIT_HEAD_MESSAGE_ID) < 0)
                        return audit_fail_oom(a);
                journal = "the journal holds no head to check the end against";
        } else if (v->journal_seq < l->anchor.seq) {
                if (asprintf(&warning,
                             "the journal's newest audit head (record %" PRId64
                             ") is older than the anchor (record %" PRId64
                             "): whether records were cut off the end cannot be checked",
                             v->journal_seq, l->anchor.seq) < 0)
                        return audit_fail_oom(a);
                journal = "the journal's heads all predate the anchor";
        } else {
                snprintf(journal_buf, sizeof(journal_buf),
                         "the journal's newest head (seq %" PRId64 ") matches", v->journal_seq);
                journal = journal_buf;
        }

        if (v->n_records > 0)
                snprintf(range, sizeof(range), "%" PRId64 " record%s (%" PRId64 "-%" PRId64 ")",
                         v->n_records, v->n_records == 1 ? "" : "s", v->first_seq, v->last_seq);
        else if (l->anchor.seq > 0)
                snprintf(range, sizeof(range), "no records after record %" PRId64 " (the anchor)",
                         l->anchor.seq);
        else
                snprintf(range, sizeof(range), "no records yet");

        int k = intact ? asprintf(&line, "audit log intact: %s, head %s; %s", range,
                                  short_hash(head, buf, sizeof(buf)), journal)
                       : asprintf(&line, "audit log NOT intact: %s", v->message);
        if (k < 0)
                return audit_fail_oom(a);

        if (warning) {
                fputs("jitctl: warning: ", stderr);
                fputs_escaped(warning, stderr);
                fputc('\n', stderr);
        }
        if (l->n_bad_heads > 0)
                fprintf(stderr,
                        "jitctl: warning: skipped %d journal entr%s of chain %s without a valid "
                        "JIT_AUDIT_SEQ and JIT_AUDIT_HASH\n",
                        l->n_bad_heads, l->n_bad_heads == 1 ? "y" : "ies", l->chain_id);

        if (!a->json) {
                puts(line);
                return intact ? JIT_EXIT_OK : JIT_EXIT_FAILURE;
        }

        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *none = NULL; /* json-c's null */
        if (!o || audit_add(o, "intact", json_object_new_boolean(intact)) < 0 ||
            audit_add(o, "fault", json_object_new_string(audit_fault_to_string(v->fault))) < 0 ||
            json_object_object_add(o, "seq", intact ? none : json_object_new_int64(v->seq)) < 0 ||
            audit_add(o, "message", json_object_new_string(intact ? line : v->message)) < 0 ||
            audit_add(o, "records", json_object_new_int64(v->n_records)) < 0 ||
            json_object_object_add(o, "first_seq",
                                   v->n_records ? json_object_new_int64(v->first_seq) : none) < 0 ||
            json_object_object_add(o, "last_seq",
                                   v->n_records ? json_object_new_int64(v->last_seq) : none) < 0 ||
            json_object_object_add(o, "journal_seq",
                                   l->n_heads ? json_object_new_int64(v->journal_seq) : none) < 0 ||
            audit_add(o, "chain_id", json_object_new_string(l->chain_id)) < 0 ||
            audit_add(o, "anchor_seq", json_object_new_int64(l->anchor.seq)) < 0 ||
            audit_add(o, "head", json_object_new_string(head)) < 0 ||
            json_object_object_add(o, "warning", warning ? json_object_new_string(warning) : none) <
                    0)
                return audit_fail_oom(a);
        if (print_json(o, stdout) < 0)
                return audit_fail_oom(a);
        return intact ? JIT_EXIT_OK : JIT_EXIT_FAILURE;
}

int audit_verify_db(AuditArgs *a) {
        _cleanup_(audit_log_done) AuditLog l = {};
        AuditVerdict v;
        int r, journal_error;

        if (!a->db)
                a->db = JIT_DB_PATH;
        if ((r = open_db(a, &l)) != CONTINUE)
                return r;

        /* The heads first, the records after: the broker sends a head only for records
         * it has committed, so every head read is covered by the snapshot read next. The
         * other way round, a record appended in between would look cut off. */
        if ((r = read_chain_id(a, &l)) != CONTINUE ||
            (r = read_heads(a, &l, &journal_error)) != CONTINUE ||
            (a->heads && (r = read_heads_file(a, &l)) != CONTINUE))
                return r;

        /* One read transaction: the anchor and the records from the same snapshot, even
         * while the broker appends or an export moves the anchor. */
        if ((r = audit_store_read_begin(l.db)) < 0)
                return db_fail(a, &l, "cannot begin a read transaction", r);
        if ((r = read_anchor(a, &l)) != CONTINUE)
                return r;
        /* The records are verified as they are read, none kept: memory does not grow
         * with the log. */
        DbSource src = { .db = l.db };
        r = audit_verify_stream(db_source, &src, &l.anchor, l.heads, l.n_heads, &v);
        if (src.error == -ENOMEM)
                return audit_fail_oom(a);
        if (src.error < 0)
                return db_fail(a, &l, "cannot read the audit log", src.error);
        if (r < 0) {
                errno = -r;
                return audit_fail(a, JIT_EXIT_FAILURE, "internal",
                                  "cannot compute record hashes: %m");
        }
        audit_store_read_end(l.db);
        /* A moved anchor without its archive entry is the start of the log cut off. */
        int archived = v.fault == AUDIT_INTACT && journal_error == 0 ? anchor_archived(&l) : 1;
        if (archived < 0) {
                errno = -archived;
                return audit_fail(a, JIT_EXIT_FAILURE, "unreadable",
                                  "cannot read the journal to check the log's start: %m");
        }
        if (archived == 0) {
                v.fault = AUDIT_DELETED;
                v.seq = 1;
                snprintf(v.message, sizeof(v.message),
                         "records 1-%" PRId64
                         " are missing (deleted): the log starts after record %" PRId64
                         " but the journal has no archive of them",
                         l.anchor.seq, l.anchor.seq);
        }
        return print_verdict(a, &l, &v, journal_error);
}

/* ---- --verify --archive FILE: an exported archive on its own ---- */

/* The last line of an archive: its own head, written after its last record. */
typedef struct ArchiveSeal {
        bool present;
        int64_t first_seq, last_seq, records;
        char last_hash[AUDIT_HASH_LEN + 2]; /* "" when it is not a hash */
} ArchiveSeal;

/* The seq after seq, saturating at INT64_MAX: where a fault is, for messages only. */
static int64_t seq_after(int64_t seq) {
        int64_t next;
        return __builtin_add_overflow(seq, 1, &next) ? INT64_MAX : next;
}

static void archive_fault(AuditVerdict *v, AuditFault fault, int64_t seq, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void archive_fault(AuditVerdict *v, AuditFault fault, int64_t seq, const char *fmt, ...) {
        va_list ap;

        v->fault = fault;
        v->seq = seq;
        va_start(ap, fmt);
        vsnprintf(v->message, sizeof(v->message), fmt, ap);
        va_end(ap);
}

/* An archive the walk found intact (its records chain from the anchor, seqs contiguous)
 * must also be one the broker could have written: at least one record (it writes no empty
 * archive), and a seal that agrees with the anchor and the records in every field. Sets a
 * fault in v when not. All seq arithmetic is checked: the file may hold any numbers. */
static void check_seal(const AuditLog *l, const ArchiveSeal *seal, AuditVerdict *v) {
        if (l->n == 0) {
                archive_fault(v, AUDIT_TRUNCATED, seq_after(l->anchor.seq),
                              "the archive holds no records after its anchor (record %" PRId64
                              "): the broker never writes an empty archive",
                              l->anchor.seq);
                return;
        }

        const AuditRecord *first = &l->records[0], *last = &l->records[l->n - 1];
        int64_t expected_first, span;
        if (!seal->present) {
                archive_fault(v, AUDIT_TRUNCATED, seq_after(last->seq), "%s",
                              "the archive has no seal: it was cut short");
                return;
        }
        if (seal->last_seq > last->seq) {
                archive_fault(v, AUDIT_TRUNCATED, seq_after(last->seq),
                              "the archive was cut short after record %" PRId64
                              ": its seal ends at record %" PRId64,
                              last->seq, seal->last_seq);
                return;
        }
        if (__builtin_add_overflow(l->anchor.seq, 1, &expected_first) ||
            first->seq != expected_first || seal->first_seq != first->seq ||
            seal->last_seq != last->seq || seal->records != (int64_t) l->n ||
            __builtin_sub_overflow(seal->last_seq, seal->first_seq, &span) ||
            span != seal->records - 1 || !STREQ(seal->last_hash, last->hash))
                archive_fault(v, AUDIT_EDITED, last->seq,
                              "the seal does not match the anchor and the records: it says %" PRId64
                              " records (%" PRId64 "-%" PRId64 ") ending at hash %.12s, the file "
                              "holds %zu (%" PRId64 "-%" PRId64 ") after anchor %" PRId64
                              ", ending at hash %.12s",
                              seal->records, seal->first_seq, seal->last_seq,
                              seal->last_hash[0] ? seal->last_hash : "(none)", l->n, first->seq,
                              last->seq, l->anchor.seq, last->hash);
}

int audit_verify_archive(AuditArgs *a) {
        _cleanup_fclose_ FILE *f = fopen(a->archive, "re");
        _cleanup_(audit_log_done) AuditLog l = {};
        size_t allocated = 0;
        _cleanup_free_ char *line = malloc(ARCHIVE_LINE_MAX + 2);
        ssize_t len;
        bool header = false;
        ArchiveSeal seal = {};
        int r = CONTINUE;

        if (!f)
                return audit_fail(a, JIT_EXIT_FAILURE, "unreadable", "%s: %m", a->archive);
        if (!line)
                return audit_fail_oom(a);
        /* Lines are bounded: a record is at most a few KiB; refuse anything absurd. */
        while ((len = read_line_bounded(f, line, ARCHIVE_LINE_MAX)) != 0) {
                if (len < 0) {
                        r = audit_fail(a, JIT_EXIT_FAILURE, "malformed",
                                       "%s: a line longer than 1 MiB", a->archive);
                        break;
                }
                _cleanup_(json_object_putp) json_object *o = json_tokener_parse(line);
                if (!o || !json_object_is_type(o, json_type_object) || seal.present) {
                        r = audit_fail(a, JIT_EXIT_FAILURE, "malformed",
                                       "%s: line %zu is not part of an archive", a->archive,
                                       l.n + 1 + header);
                        break;
                }
                if (!header) {
                        const char *chain = json_get_string(o, "chain_id"),
                                   *ah = json_get_string(o, "anchor_hash");
                        if (json_get_int(o, "jit_audit_archive", 0) != 1 || !chain || !ah ||
                            !is_lower_hex(chain, strlen(chain), AUDIT_CHAIN_ID_LEN) ||
                            !is_lower_hex(ah, strlen(ah), AUDIT_HASH_LEN)) {
                                r = audit_fail(a, JIT_EXIT_FAILURE, "malformed",
                                               "%s: no archive header", a->archive);
                                break;
                        }
                        snprintf(l.chain_id, sizeof(l.chain_id), "%s", chain);
                        /* Seq 0 is the start of the log; any other number, INT64_MAX
                         * included, is verified without overflow. */
                        l.anchor.seq = json_get_int(o, "anchor_seq", -1);
                        if (l.anchor.seq < 0) {
                                r = audit_fail(a, JIT_EXIT_FAILURE, "malformed",
                                               "%s: the header's anchor_seq is not an integer "
                                               "from 0 up",
                                               a->archive);
                                break;
                        }
                        memcpy(l.anchor.hash, ah, AUDIT_HASH_LEN + 1);
                        header = true;
                        continue;
                }
                json_object *s;
                if (json_object_object_get_ex(o, "seal", &s)) {
                        const char *h = json_get_string(s, "last_hash");
                        /* A missing field reads as -1, which no real seal holds. */
                        seal.first_seq = json_get_int(s, "first_seq", -1);
                        seal.last_seq = json_get_int(s, "last_seq", -1);
                        seal.records = json_get_int(s, "records", -1);
                        snprintf(seal.last_hash, sizeof(seal.last_hash), "%s", h ?: "");
                        if (!is_lower_hex(seal.last_hash, strlen(seal.last_hash), AUDIT_HASH_LEN))
                                seal.last_hash[0] = '\0'; /* not a hash: the seal cannot match */
                        seal.present = true;
                        continue;
                }
                if (l.n == allocated) {
                        size_t m = allocated ? allocated * 2 : 256;
                        AuditRecord *rs = reallocarray(l.records, m, sizeof(AuditRecord));
                        if (!rs) {
                                r = audit_fail_oom(a);
                                break;
                        }
                        l.records = rs;
                        allocated = m;
                }
                AuditRecord *rec = &l.records[l.n];
                const char *ev = json_get_string(o, "event"), *actor = json_get_string(o, "actor"),
                           *details = json_get_string(o, "details"),
                           *ph = json_get_string(o, "prev_hash"), *h = json_get_string(o, "hash");
                *rec = (AuditRecord){
                        .seq = json_get_int(o, "seq", -1),
                        .at = (uint64_t) json_get_int(o, "at", 0),
                        .actor_uid = json_get_int(o, "actor_uid", -1),
                        .request_id = json_get_int(o, "request_id", 0),
                        .event = arena_strndup(&l.strings, ev ?: "", strlen(ev ?: "")),
                        .actor = arena_strndup(&l.strings, actor ?: "", strlen(actor ?: "")),
                        .details = arena_strndup(&l.strings, details ?: "", strlen(details ?: "")),
                };
                if (!rec->event || !rec->actor || !rec->details) {
                        r = audit_fail_oom(a);
                        break;
                }
                snprintf(rec->prev_hash, sizeof(rec->prev_hash), "%s", ph ?: "");
                snprintf(rec->hash, sizeof(rec->hash), "%s", h ?: "");
                l.n++;
        }
        if (r != CONTINUE)
                return r;
        if (!header)
                return audit_fail(a, JIT_EXIT_FAILURE, "malformed", "%s: empty, not an archive",
                                  a->archive);

        /* The records first (an edit or a gap is named at its record), then the seal, the
         * archive's own head: a file cut short has lost it, an edited one disagrees. */
        AuditVerdict v;
        r = audit_verify(l.records, l.n, &l.anchor, NULL, 0, &v);
        if (r == -EINVAL)
                return audit_fail(a, JIT_EXIT_FAILURE, "malformed", "%s: not a valid anchor",
                                  a->archive);
        if (r < 0)
                return audit_fail(a, JIT_EXIT_FAILURE, "internal", "cannot compute record hashes");
        if (v.fault == AUDIT_INTACT)
                check_seal(&l, &seal, &v);
        AuditHead seal_head = { .seq = seal.last_seq };
        memcpy(seal_head.hash, seal.last_hash, sizeof(seal_head.hash) - 1);
        /* Anyone can write a self-consistent file; only root's journal entry for this
         * archive, sent when it was made, says it is the one the broker sealed. */
        bool anchored = true;
        if (v.fault == AUDIT_INTACT) {
                AuditLog t = { .anchor = seal_head };
                memcpy(t.chain_id, l.chain_id, sizeof(t.chain_id));
                int k = anchor_archived(&t);
                anchored = k > 0;
                if (!anchored)
                        snprintf(
                                v.message, sizeof(v.message), "%s",
                                k < 0 ? "cannot read the journal to find this archive's entry"
                                      : "no journal entry of root records an archive of this chain "
                                        "ending at this record and hash: the file cannot be vouched for");
        }
        bool good = v.fault == AUDIT_INTACT && anchored;
        if (a->json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                if (!o)
                        return audit_fail_oom(a);
                json_object_object_add(o, "anchored", json_object_new_boolean(anchored));
                json_object_object_add(o, "intact",
                                       json_object_new_boolean(v.fault == AUDIT_INTACT));
                json_object_object_add(o, "fault",
                                       json_object_new_string(audit_fault_to_string(v.fault)));
                json_object_object_add(
                        o, "seq", v.fault == AUDIT_INTACT ? NULL : json_object_new_int64(v.seq));
                json_object_object_add(o, "message", json_object_new_string(v.message));
                json_object_object_add(o, "records", json_object_new_int64((int64_t) l.n));
                json_object_object_add(o, "chain_id", json_object_new_string(l.chain_id));
                json_object_object_add(o, "anchor_seq", json_object_new_int64(l.anchor.seq));
                json_object_object_add(
                        o, "head", l.n ? json_object_new_string(l.records[l.n - 1].hash) : NULL);
                print_json(o, stdout);
        } else if (good)
                printf("archive intact: %zu records (%" PRId64 "-%" PRId64
                       ") of chain %s, sealed at %.12s%s\n",
                       l.n, l.n ? l.records[0].seq : 0, l.n ? l.records[l.n - 1].seq : 0,
                       l.chain_id, seal.last_hash, glyph_ellipsis());
        else {
                fputs(v.fault == AUDIT_INTACT ? "archive NOT anchored: " : "archive NOT intact: ",
                      stdout);
                fputs_escaped(v.message, stdout);
                fputc('\n', stdout);
        }
        return good ? JIT_EXIT_OK : JIT_EXIT_FAILURE;
}
