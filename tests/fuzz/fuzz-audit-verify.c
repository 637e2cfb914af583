/* SPDX-License-Identifier: MIT */
/* The audit verifier (common/audit-verify.c) and jitctl's archive reader
 * (audit_verify_archive() in jitctl/jitctl-audit-verify.c, with jitctl's files but its main
 * compiled in).
 *
 * Two kinds of input, told apart by the first byte:
 *
 * 1. An archive, as `jitctl audit export` writes it and `jitctl audit --verify --archive
 *    FILE` reads it: JSON lines, a header, records, a seal. Input starting with '{' is
 *    the file, read with text output; "J{..." the same file after the J, with --json.
 *    The file is a memfd, named by /proc/self/fd/N. The journal lookup that vouches for an
 *    intact archive is stubbed (sd_journal_open() below fails, so no host journal is read).
 *
 * 2. Otherwise records, anchor and journal heads for audit_verify(), one per line, fields
 *    split by one space:
 *      A SEQ HASH                                     the anchor (default: 0 and genesis)
 *      R SEQ AT ACTOR_UID REQUEST PREV HASH EVENT ACTOR DETAILS...
 *      H SEQ HASH                                     a head from the journal
 *    Numbers are read by strtoll/strtoull (so out-of-range ones saturate). A hash is
 *    written as
 *      =     for HASH: the record's right hash (audit_record_hash() of its content);
 *            for PREV: the hash of the record stored before it, or the anchor's
 *      @N    the hash record N (0-based, in stored order) ends up with
 *      A     the anchor's hash;  G  the genesis hash (64 zeros)
 *      else  the text itself, cut to 64 characters
 *    so that a chain that verifies, and each way of breaking it, takes a few bytes. A line
 *    of another kind is ignored. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "audit-record.h"
#include "audit-verify.h"
#include "jitctl-audit-internal.h"

/* CHECK reports on the real stderr: jitctl's output goes to /dev/null meanwhile. */
#define CHECK_REPORT report
static FILE *report;
#include "fuzz-check.h"

#define RECORDS_MAX 256
#define HEADS_MAX 64

static FILE *devnull;
static int archive_fd = -1;
static char archive_path[64];

/* No host journal: an archive that verifies is "not anchored", every time, on every host. */
int sd_journal_open(sd_journal **ret, int flags) {
        *ret = NULL;
        return -ENOENT;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        report = stderr;
        devnull = fopen("/dev/null", "we");
        archive_fd = memfd_create("fuzz-archive", MFD_CLOEXEC);
        if (!devnull || archive_fd < 0)
                abort();
        snprintf(archive_path, sizeof(archive_path), "/proc/self/fd/%d", archive_fd);
        return 0;
}

static void fuzz_archive(const uint8_t *data, size_t size, bool json) {
        if (ftruncate(archive_fd, 0) < 0 || pwrite(archive_fd, data, size, 0) != (ssize_t) size)
                abort();

        AuditArgs a = { .json = json, .verify = true, .archive = archive_path };
        FILE *out = stdout, *err = stderr;
        stdout = stderr = devnull;
        int r = audit_verify_archive(&a);
        stdout = out;
        stderr = err;
        CHECK(r == JIT_EXIT_OK || r == JIT_EXIT_FAILURE);
}

/* ---- records ---- */

typedef struct Item {
        AuditRecord rec;
        char prev_token[AUDIT_HASH_LEN + 1];
        char hash_token[AUDIT_HASH_LEN + 1];
        int state; /* 0 unresolved, 1 resolving, 2 resolved */
} Item;

typedef struct Log {
        AuditHead anchor;
        Item items[RECORDS_MAX];
        size_t n;
        AuditHead heads[HEADS_MAX];
        char head_tokens[HEADS_MAX][AUDIT_HASH_LEN + 1];
        size_t n_heads;
} Log;

/* The next field of *line, split at one space; the rest of the line when last. */
static char *field(char **line, bool last) {
        char *s = *line;
        if (!s)
                return NULL;
        if (last) {
                *line = NULL;
                return s;
        }
        char *sp = strchr(s, ' ');
        if (sp) {
                *sp = '\0';
                *line = sp + 1;
        } else
                *line = NULL;
        return s;
}

static void copy_hash(char dst[AUDIT_HASH_LEN + 1], const char *src) {
        snprintf(dst, AUDIT_HASH_LEN + 1, "%s", src ? src : "");
}

static void resolve(Log *l, size_t i);

/* A hash token of anything but "=": the hash it names. */
static void resolve_token(Log *l, const char *token, char out[AUDIT_HASH_LEN + 1]) {
        if (token[0] == '@' && token[1]) {
                char *end;
                unsigned long long k = strtoull(token + 1, &end, 10);
                if (!*end && k < l->n) {
                        resolve(l, (size_t) k);
                        copy_hash(out, l->items[k].rec.hash);
                        return;
                }
        }
        if (strcmp(token, "A") == 0)
                copy_hash(out, l->anchor.hash);
        else if (strcmp(token, "G") == 0)
                copy_hash(out, AUDIT_GENESIS_HASH);
        else
                copy_hash(out, token);
}

/* Fills in record i's prev_hash and hash. A cycle ("@1" in record 0 and "@0" in record 1,
 * both waiting for the other) leaves a hash that matches nothing. */
static void resolve(Log *l, size_t i) {
        Item *it = &l->items[i];

        if (it->state == 2)
                return;
        if (it->state == 1) {
                copy_hash(it->rec.hash, "cycle");
                return;
        }
        it->state = 1;
        if (strcmp(it->prev_token, "=") == 0) {
                if (i == 0)
                        copy_hash(it->rec.prev_hash, l->anchor.hash);
                else {
                        resolve(l, i - 1);
                        copy_hash(it->rec.prev_hash, l->items[i - 1].rec.hash);
                }
        } else
                resolve_token(l, it->prev_token, it->rec.prev_hash);
        if (strcmp(it->hash_token, "=") == 0) {
                if (audit_record_hash(&it->rec, it->rec.hash) < 0)
                        abort(); /* libcrypto failed */
        } else
                resolve_token(l, it->hash_token, it->rec.hash);
        it->state = 2;
}

static void parse_log(Log *l, char *text) {
        *l = (Log){ .anchor = { .seq = 0 } };
        copy_hash(l->anchor.hash, AUDIT_GENESIS_HASH);

        for (char *line = text, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char *rest = line;
                const char *kind = field(&rest, false);

                if (strcmp(kind, "A") == 0) {
                        const char *seq = field(&rest, false), *hash = field(&rest, true);
                        l->anchor.seq = seq ? strtoll(seq, NULL, 10) : 0;
                        if (hash && strcmp(hash, "G") != 0)
                                copy_hash(l->anchor.hash, hash);
                } else if (strcmp(kind, "R") == 0 && l->n < RECORDS_MAX) {
                        Item *it = &l->items[l->n++];
                        const char *seq = field(&rest, false), *at = field(&rest, false),
                                   *uid = field(&rest, false), *req = field(&rest, false),
                                   *prev = field(&rest, false), *hash = field(&rest, false),
                                   *event = field(&rest, false), *actor = field(&rest, false),
                                   *details = field(&rest, true);
                        it->rec = (AuditRecord){
                                .seq = seq ? strtoll(seq, NULL, 10) : 0,
                                .at = at ? strtoull(at, NULL, 10) : 0,
                                .actor_uid = uid ? strtoll(uid, NULL, 10) : -1,
                                .request_id = req ? strtoll(req, NULL, 10) : 0,
                                .event = (char *) (event ?: ""),
                                .actor = (char *) (actor ?: ""),
                                .details = (char *) (details ?: ""),
                        };
                        copy_hash(it->prev_token, prev ?: "=");
                        copy_hash(it->hash_token, hash ?: "=");
                } else if (strcmp(kind, "H") == 0 && l->n_heads < HEADS_MAX) {
                        const char *seq = field(&rest, false), *hash = field(&rest, true);
                        l->heads[l->n_heads].seq = seq ? strtoll(seq, NULL, 10) : 0;
                        copy_hash(l->head_tokens[l->n_heads], hash ?: "");
                        l->n_heads++;
                }
        }

        for (size_t i = 0; i < l->n; i++)
                resolve(l, i);
        for (size_t i = 0; i < l->n_heads; i++)
                resolve_token(l, l->head_tokens[i], l->heads[i].hash);
}

static void fuzz_records(const uint8_t *data, size_t size) {
        static Log l;
        AuditRecord records[RECORDS_MAX];
        AuditVerdict v;

        char *text = strndup((const char *) data, size);
        if (!text)
                return;
        parse_log(&l, text);
        for (size_t i = 0; i < l.n; i++)
                records[i] = l.items[i].rec;

        int r = audit_verify(records, l.n, &l.anchor, l.heads, l.n_heads, &v);
        if (r == -EINVAL) {
                /* The one input that is not a log: an anchor below 0. */
                CHECK(l.anchor.seq < 0);
                free(text);
                return;
        }
        CHECK(r == 0);
        CHECK(v.fault >= 0 && v.fault < _AUDIT_FAULT_MAX);
        CHECK(audit_fault_to_string(v.fault));
        CHECK(audit_fault_from_string(audit_fault_to_string(v.fault)) == v.fault);
        CHECK(memchr(v.message, '\0', sizeof(v.message)));
        CHECK(v.message[0] != '\0');
        CHECK(v.n_records == (int64_t) l.n);
        if (v.fault == AUDIT_INTACT) {
                CHECK(v.seq == 0);
                /* Intact means: contiguous from the anchor, each record's hash its content's,
                 * each chained to the one before, and no head contradicting it. */
                const char *prev = l.anchor.hash;
                for (size_t i = 0; i < l.n; i++) {
                        char hash[AUDIT_HASH_LEN + 1];
                        CHECK((uint64_t) records[i].seq == (uint64_t) l.anchor.seq + 1 + i);
                        CHECK(audit_record_hash(&records[i], hash) == 0);
                        CHECK(strcmp(hash, records[i].hash) == 0);
                        CHECK(strcmp(records[i].prev_hash, prev) == 0);
                        prev = records[i].hash;
                }
                int64_t tail = l.n ? records[l.n - 1].seq : l.anchor.seq;
                for (size_t i = 0; i < l.n_heads; i++)
                        CHECK(l.heads[i].seq <= tail);
        }
        free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 0 && data[0] == '{')
                fuzz_archive(data, size, false);
        else if (size > 1 && data[0] == 'J' && data[1] == '{')
                fuzz_archive(data + 1, size - 1, true);
        else
                fuzz_records(data, size);
        return 0;
}
