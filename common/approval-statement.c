/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "approval-statement.h"
#include "cleanup.h"
#include "json-strict.h"

/* The fields in their order; the version line comes before them. */
enum Field {
        F_FLEET,
        F_REQUEST,
        F_REQUESTER,
        F_REQUESTER_UID,
        F_SERVICE,
        F_COMMAND,
        F_ARGV_SHA256,
        F_RUN_AS,
        F_CWD,
        F_HOSTS,
        F_DURATION,
        F_NOT_BEFORE,
        F_NOT_AFTER,
        F_REASON_SHA256,
        F_TICKET_SHA256,
        F_APPROVER,
        N_FIELDS,
};

static const char *const field_key[N_FIELDS] = {
        [F_FLEET] = "fleet",
        [F_REQUEST] = "request",
        [F_REQUESTER] = "requester",
        [F_REQUESTER_UID] = "requester-uid",
        [F_SERVICE] = "service",
        [F_COMMAND] = "command",
        [F_ARGV_SHA256] = "argv-sha256",
        [F_RUN_AS] = "run-as",
        [F_CWD] = "cwd",
        [F_HOSTS] = "hosts",
        [F_DURATION] = "duration",
        [F_NOT_BEFORE] = "not-before",
        [F_NOT_AFTER] = "not-after",
        [F_REASON_SHA256] = "reason-sha256",
        [F_TICKET_SHA256] = "ticket-sha256",
        [F_APPROVER] = "approver",
};

/* "-" is an absent value; a value that is "-" itself is written %2D. */
#define ABSENT "-"

static void hex(const unsigned char *d, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[d[i] >> 4];
                out[2 * i + 1] = digits[d[i] & 15];
        }
        out[2 * n] = 0;
}

/* SHA-256 over the strings of v, each with its NUL when with_nul; all zeros if the library
 * fails (a statement with that hash then matches nothing a broker rebuilds). */
static void hash_strings(const char *const *v, size_t n, bool with_nul,
                         char out[APPROVAL_SHA256_HEX_LEN + 1]) {
        unsigned char d[EVP_MAX_MD_SIZE] = {};
        unsigned dlen = 32;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
        for (size_t i = 0; ok && i < n; i++)
                ok = EVP_DigestUpdate(ctx, v[i], strlen(v[i]) + (with_nul ? 1 : 0)) == 1;
        if (!ok || EVP_DigestFinal_ex(ctx, d, &dlen) != 1)
                memset(d, 0, sizeof(d));
        EVP_MD_CTX_free(ctx);
        hex(d, 32, out);
}

void approval_statement_hash_text(const char *text, char out[APPROVAL_SHA256_HEX_LEN + 1]) {
        hash_strings(&text, 1, false, out);
}

void approval_statement_hash_argv(char *const *argv, char out[APPROVAL_SHA256_HEX_LEN + 1]) {
        size_t n = 0;
        while (argv && argv[n])
                n++;
        hash_strings((const char *const *) argv, n, true, out);
}

/* Bytes written as themselves: printable ASCII but space and '%'. */
static bool plain_byte(unsigned char c) {
        return c > 0x20 && c < 0x7f && c != '%';
}

static bool is_hash(const char *s) {
        if (strlen(s) != APPROVAL_SHA256_HEX_LEN)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

typedef struct Out {
        char buf[APPROVAL_STATEMENT_MAX + 1];
        size_t len;
        bool full;
} Out;

static void put(Out *o, const char *s, size_t n) {
        if (o->full || n > APPROVAL_STATEMENT_MAX - o->len) {
                o->full = true;
                return;
        }
        memcpy(o->buf + o->len, s, n);
        o->len += n;
}

/* key SP encoded-value LF; value NULL is ABSENT. */
static int put_field(Out *o, enum Field f, const char *value) {
        const char *key = field_key[f];
        put(o, key, strlen(key));
        put(o, " ", 1);
        if (!value)
                put(o, ABSENT, 1);
        else if (STREQ(value, ABSENT))
                put(o, "%2D", 3);
        else {
                const unsigned char *v = (const unsigned char *) value;
                size_t n = strlen(value), i = 0;
                while (i < n) {
                        size_t start = i;
                        uint32_t cp;
                        if (!utf8_next_strict(v, n, &i, &cp))
                                return -EILSEQ;
                        for (size_t j = start; j < i; j++) {
                                if (plain_byte(v[j]))
                                        put(o, (const char *) v + j, 1);
                                else {
                                        char e[4];
                                        snprintf(e, sizeof(e), "%%%02X", v[j]);
                                        put(o, e, 3);
                                }
                        }
                }
        }
        put(o, "\n", 1);
        return 0;
}

static void format_time(uint64_t t, char out[32]) {
        time_t tt = (time_t) t;
        struct tm tm;
        if (t > (uint64_t) 253402300799ULL || !gmtime_r(&tt, &tm)) /* past 9999-12-31 */
                tt = 0, gmtime_r(&tt, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#define TIME_MAX 253402300799ULL

int approval_statement_format(const ApprovalStatement *s, char **ret, size_t *ret_len,
                              const char **why) {
        const char *missing = NULL;
        if (!s->request || !*s->request)
                missing = "request";
        else if (!s->requester || !*s->requester)
                missing = "requester";
        else if (!s->service || !*s->service)
                missing = "service";
        else if (!s->hosts || !*s->hosts)
                missing = "hosts";
        else if (!s->approver || !*s->approver)
                missing = "approver";
        else if (s->fleet && !*s->fleet)
                missing = "fleet";
        else if (s->command && !*s->command)
                missing = "command";
        if (missing) {
                *why = missing;
                return -EINVAL;
        }
        if (!is_hash(s->reason_sha256)) {
                *why = "reason-sha256";
                return -EINVAL;
        }
        if (*s->ticket_sha256 && !is_hash(s->ticket_sha256)) {
                *why = "ticket-sha256";
                return -EINVAL;
        }
        /* A command grant carries its argv's hash, and only a command grant does. */
        if (s->command ? !is_hash(s->argv_sha256) : *s->argv_sha256 != 0) {
                *why = "argv-sha256";
                return -EINVAL;
        }
        if (!s->command && s->run_as) {
                *why = "run-as";
                return -EINVAL;
        }
        if (s->not_before > s->not_after || s->not_after > TIME_MAX) {
                *why = "not-after";
                return -EINVAL;
        }

        _cleanup_free_ Out *o = calloc(1, sizeof(Out));
        if (!o)
                return -ENOMEM;
        char num[32], nb[32], na[32];
        const char *values[N_FIELDS] = {
                [F_FLEET] = s->fleet,
                [F_REQUEST] = s->request,
                [F_REQUESTER] = s->requester,
                [F_SERVICE] = s->service,
                [F_COMMAND] = s->command,
                [F_ARGV_SHA256] = s->command ? s->argv_sha256 : NULL,
                [F_RUN_AS] = s->run_as,
                [F_CWD] = s->cwd,
                [F_HOSTS] = s->hosts,
                [F_NOT_BEFORE] = nb,
                [F_NOT_AFTER] = na,
                [F_REASON_SHA256] = s->reason_sha256,
                [F_TICKET_SHA256] = *s->ticket_sha256 ? s->ticket_sha256 : NULL,
                [F_APPROVER] = s->approver,
        };
        char uid[16];
        snprintf(uid, sizeof(uid), "%" PRIu32, s->requester_uid);
        values[F_REQUESTER_UID] = uid;
        snprintf(num, sizeof(num), "%" PRIu64, s->duration);
        values[F_DURATION] = num;
        format_time(s->not_before, nb);
        format_time(s->not_after, na);

        put(o, APPROVAL_STATEMENT_VERSION "\n", strlen(APPROVAL_STATEMENT_VERSION) + 1);
        for (int f = 0; f < N_FIELDS; f++) {
                int r = put_field(o, f, values[f]);
                if (r < 0) {
                        *why = field_key[f];
                        return r;
                }
        }
        if (o->full) {
                *why = "the statement";
                return -E2BIG;
        }
        char *text = malloc(o->len + 1);
        if (!text)
                return -ENOMEM;
        memcpy(text, o->buf, o->len);
        text[o->len] = 0;
        *ret = text;
        *ret_len = o->len;
        return 0;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decodes value in place (it only shrinks); NULL for ABSENT. */
static int decode_value(char *v, char **ret) {
        if (STREQ(v, ABSENT)) {
                *ret = NULL;
                return 0;
        }
        char *w = v;
        for (char *p = v; *p;) {
                if (*p == '%') {
                        int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                                return -EBADMSG;
                        *w++ = (char) (hi * 16 + lo);
                        p += 3;
                } else
                        *w++ = *p++;
        }
        *w = 0;
        *ret = v;
        return 0;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *ret) {
        if (!s || !*s || (s[0] == '0' && s[1]) || strlen(s) > 20)
                return false;
        uint64_t v = 0;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        if (v > max)
                return false;
        *ret = v;
        return true;
}

/* YYYY-MM-DDTHH:MM:SSZ, UTC, a real date (the canonical check below refuses 02-30). */
static bool parse_time(const char *s, uint64_t *ret) {
        struct tm tm = {};
        if (!s || strlen(s) != 20)
                return false;
        for (int i = 0; i < 20; i++) {
                bool digit = s[i] >= '0' && s[i] <= '9';
                char want = i == 4 || i == 7     ? '-'
                            : i == 10            ? 'T'
                            : i == 13 || i == 16 ? ':'
                            : i == 19            ? 'Z'
                                                 : 0;
                if (want ? s[i] != want : !digit)
                        return false;
        }
        tm.tm_year = atoi(s) - 1900;
        tm.tm_mon = atoi(s + 5) - 1;
        tm.tm_mday = atoi(s + 8);
        tm.tm_hour = atoi(s + 11);
        tm.tm_min = atoi(s + 14);
        tm.tm_sec = atoi(s + 17);
        time_t t = timegm(&tm);
        if (t < 0)
                return false;
        *ret = (uint64_t) t;
        return true;
}

int approval_statement_parse(const char *text, size_t len, ApprovalStatement *ret,
                             const char **why) {
        if (len > APPROVAL_STATEMENT_MAX) {
                *why = "longer than 16 KiB";
                return -EBADMSG;
        }
        if (memchr(text, 0, len)) {
                *why = "a NUL byte";
                return -EBADMSG;
        }
        _cleanup_free_ char *storage = strndup(text, len);
        if (!storage)
                return -ENOMEM;

        char *p = storage, *line;
        size_t vlen = strlen(APPROVAL_STATEMENT_VERSION);
        if (strncmp(p, APPROVAL_STATEMENT_VERSION "\n", vlen + 1) != 0) {
                *why = "the first line is not " APPROVAL_STATEMENT_VERSION;
                return -EBADMSG;
        }
        p += vlen + 1;

        char *values[N_FIELDS];
        for (int f = 0; f < N_FIELDS; f++) {
                char *nl = strchr(p, '\n');
                if (!nl) {
                        *why = "a line is missing or not ended by a newline";
                        return -EBADMSG;
                }
                *nl = 0;
                line = p;
                p = nl + 1;
                size_t klen = strlen(field_key[f]);
                if (strncmp(line, field_key[f], klen) != 0 || line[klen] != ' ') {
                        *why = "a field is missing or out of order";
                        return -EBADMSG;
                }
                if (decode_value(line + klen + 1, &values[f]) < 0) {
                        *why = "a bad %-escape";
                        return -EBADMSG;
                }
        }
        if (*p) {
                *why = "text after the last field";
                return -EBADMSG;
        }

        ApprovalStatement s = {
                .fleet = values[F_FLEET],
                .request = values[F_REQUEST],
                .requester = values[F_REQUESTER],
                .service = values[F_SERVICE],
                .command = values[F_COMMAND],
                .run_as = values[F_RUN_AS],
                .cwd = values[F_CWD],
                .hosts = values[F_HOSTS],
                .approver = values[F_APPROVER],
        };
        uint64_t uid;
        if (!parse_u64(values[F_REQUESTER_UID], UINT32_MAX, &uid) ||
            !parse_u64(values[F_DURATION], UINT64_MAX, &s.duration) ||
            !parse_time(values[F_NOT_BEFORE], &s.not_before) ||
            !parse_time(values[F_NOT_AFTER], &s.not_after)) {
                *why = "a bad number or time";
                return -EBADMSG;
        }
        s.requester_uid = (uint32_t) uid;
        const char *hashes[3] = { values[F_ARGV_SHA256], values[F_REASON_SHA256],
                                  values[F_TICKET_SHA256] };
        char *dest[3] = { s.argv_sha256, s.reason_sha256, s.ticket_sha256 };
        for (int i = 0; i < 3; i++) {
                if (hashes[i] && strlen(hashes[i]) != APPROVAL_SHA256_HEX_LEN) {
                        *why = "a bad hash";
                        return -EBADMSG;
                }
                strcpy(dest[i], hashes[i] ? hashes[i] : "");
        }

        /* One form only: what was read must format to the very same bytes. */
        _cleanup_free_ char *again = NULL;
        size_t again_len;
        const char *field;
        if (approval_statement_format(&s, &again, &again_len, &field) < 0 || again_len != len ||
            memcmp(again, text, len) != 0) {
                *why = "not in canonical form";
                return -EBADMSG;
        }
        s.parsed_storage_ = TAKE_PTR(storage);
        *ret = s;
        return 0;
}

void approval_statement_done(ApprovalStatement *s) {
        free(s->parsed_storage_);
        s->parsed_storage_ = NULL;
}

static bool str_same(const char *a, const char *b) {
        return a == b || (a && b && STREQ(a, b));
}

const char *approval_statement_diff(const ApprovalStatement *a, const ApprovalStatement *b) {
        if (!str_same(a->fleet, b->fleet))
                return "fleet";
        if (!str_same(a->request, b->request))
                return "request";
        if (!str_same(a->requester, b->requester))
                return "requester";
        if (a->requester_uid != b->requester_uid)
                return "requester-uid";
        if (!str_same(a->service, b->service))
                return "service";
        if (!str_same(a->command, b->command))
                return "command";
        if (!STREQ(a->argv_sha256, b->argv_sha256))
                return "argv-sha256";
        if (!str_same(a->run_as, b->run_as))
                return "run-as";
        if (!str_same(a->cwd, b->cwd))
                return "cwd";
        if (!str_same(a->hosts, b->hosts))
                return "hosts";
        if (a->duration != b->duration)
                return "duration";
        if (a->not_before != b->not_before)
                return "not-before";
        if (a->not_after != b->not_after)
                return "not-after";
        if (!STREQ(a->reason_sha256, b->reason_sha256))
                return "reason-sha256";
        if (!STREQ(a->ticket_sha256, b->ticket_sha256))
                return "ticket-sha256";
        if (!str_same(a->approver, b->approver))
                return "approver";
        return NULL;
}
