/* SPDX-License-Identifier: MIT */
/* jitctl audit: reads the audit log through the broker, or verifies it straight from the
 * database and the journal (--verify), trusting neither the broker nor the database. */
#include "jitctl-audit.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

#include "audit-verify.h"
#include "cleanup.h"
#include "client.h"
#include "duration.h"
#include "jitctl-format.h"
#include "jitctl-text.h"
#include "protocol.h"
#include "timeutil.h"
#include "users.h"

/* Returned by argument parsers when the command should go on. */
#define CONTINUE (-1)

/* The broker's own cap on one answer (AUDIT_QUERY_MAX in broker-ops.c). */
#define AUDIT_LIMIT_MAX 10000
/* Width of the DETAILS column: enough to recognise an event, one line on a terminal. */
#define DETAILS_COLUMNS 60
/* --verify loads the whole log: about 200 bytes of bookkeeping per record plus its text,
 * so 10 million records is a few GiB. Beyond that, archive first. */
#define VERIFY_RECORDS_MAX 10000000
#define VERIFY_HEADS_MAX 10000000
/* The schema version of jit.db that brought the audit log. */
#define AUDIT_SCHEMA_VERSION 3
#define CHAIN_ID_LEN 32

/* clang-format off */
const char jitctl_audit_help[] =
        "Usage: jitctl audit [--since TIME] [--until TIME] [--user U] [--request ID]\n"
        "                    [--limit N] [--json]\n"
        "       jitctl audit --verify [--db PATH | --archive FILE] [--json]\n"
        "       jitctl audit export --until TIME FILE [--json]\n"
        "\n"
        "Shows the audit log (the newest records, oldest first): every request, approval, grant, denial, end of a\n"
        "grant, policy load and broker start and stop, with who caused it. Root and the\n"
        "audit group (jit-auditors, or the policy's audit_group) see every record, others\n"
        "the records of their own requests.\n"
        "\n"
        "--verify checks, without the broker, that the log is intact: it reads the database\n"
        "(root only), recomputes each record's hash and its link to the one before, and\n"
        "compares the end of the log with the heads jit-brokerd sends to the journal, which\n"
        "is what shows that records were cut off the end. It prints one line and exits 0\n"
        "when the log is intact, 1 when a record was edited, deleted, reordered or the log\n"
        "was truncated (or the database cannot be read). With --archive it checks an\n"
        "exported archive file on its own: its chain, and its seal.\n"
        "\n"
        "export (root) seals the records up to TIME into an archive, copies it to FILE\n"
        "(which must not exist; the broker keeps its own copy beside its database), and\n"
        "takes them out of the live log, which goes on from the archive's last record.\n"
        "settings.audit_retention does the same automatically for older records.\n"
        "\n"
        "Options:\n"
        "  --since TIME    Records at or after TIME\n"
        "  --until TIME    Records at or before TIME\n"
        "  --user U        Records U caused or that concern U's requests\n"
        "  --request ID    Records of one request\n"
        "  --limit N       At most N records (default: the broker's, 1000; at most 10000)\n"
        "  --verify        Check the hash chain instead of listing\n"
        "  --db PATH       The database to verify (default " JIT_DB_PATH ")\n"
        "  --archive FILE  Verify an exported archive instead of the database\n"
        "  --heads FILE    Also compare with heads shipped off the host (journalctl -o json)\n"
        "  --json          Listing: JSON lines, one record per line (for a SIEM);\n"
        "                  --verify: one JSON object {\"intact\", \"fault\", \"seq\", \"message\",\n"
        "                  \"records\", \"first_seq\", \"last_seq\", \"journal_seq\", ...}\n"
        "  -h, --help      Show this help\n"
        "\n"
        "TIME is 2026-11-23T10:00:00Z (or with an offset such as +02:00; without one, local\n"
        "time), 2026-11-23 (local midnight), -30m, -1h, -2d (that long ago) or now.\n";
/* clang-format on */

enum {
        ARG_JSON = 0x100,
        ARG_SINCE,
        ARG_UNTIL,
        ARG_USER,
        ARG_REQUEST,
        ARG_LIMIT,
        ARG_VERIFY,
        ARG_DB,
        ARG_ARCHIVE,
        ARG_HEADS,
};

typedef struct AuditArgs {
        const char *socket_path;
        unsigned timeout_ms;
        bool json;
        bool verify;
        const char *db;
        const char *archive;                 /* --verify --archive FILE */
        const char *heads;                   /* --verify --heads FILE: heads shipped off the host */
        const char *since_text, *until_text; /* as typed, for messages */
        time_t since, until;
        const char *user;
        int64_t request;
        int64_t limit;
} AuditArgs;

/* ---- output ---- */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        fputs("jitctl: audit: ", stderr);
        fputs_escaped(msg ?: "invalid usage", stderr);
        fputs("\nTry 'jitctl audit --help'.\n", stderr);
        return JIT_EXIT_USAGE;
}

/* One JSON value on one line. Like print_json(), characters a terminal would act on (DEL,
 * C1, bidi overrides, zero-width marks) are written as \u escapes, which leaves the value
 * unchanged. json-c already escapes C0. */
static int print_json_line(json_object *o, FILE *f) {
        size_t len;
        const char *s = json_object_to_json_string_length(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!s)
                return -ENOMEM;

        const unsigned char *p = (const unsigned char *) s;
        for (size_t i = 0; i < len;) {
                uint32_t cp = p[i];
                size_t n = 1;

                if (p[i] >= 0xc0 && p[i] < 0xf8) {
                        n = p[i] >= 0xf0 ? 4 : p[i] >= 0xe0 ? 3 : 2;
                        cp = p[i] & (0x7f >> n);
                        for (size_t k = 1; k < n; k++) {
                                if (i + k >= len || (p[i + k] & 0xc0) != 0x80) {
                                        n = 0; /* not UTF-8: cannot come from json-c */
                                        break;
                                }
                                cp = (cp << 6) | (p[i + k] & 0x3f);
                        }
                } else if (p[i] >= 0x80)
                        n = 0;
                if (n == 0) {
                        fputs("\\ufffd", f);
                        n = 1;
                } else if (cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c ||
                           cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
                           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) ||
                           cp == 0xfeff)
                        fprintf(f, "\\u%04x", (unsigned) cp);
                else
                        fwrite(p + i, 1, n, f);
                i += n;
        }
        fputc('\n', f);
        return 0;
}

/* A failure after the command line was accepted: on stderr, and with --json as a JSON
 * document on stdout (one line while listing, where stdout is JSON lines). */
static int fail(const AuditArgs *a, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail(const AuditArgs *a, int status, const char *code, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);

        fputs("jitctl: ", stderr);
        fputs_escaped(msg ?: "out of memory", stderr);
        fputc('\n', stderr);
        if (a->json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "error", json_object_new_string(code));
                        json_object_object_add(o, "message",
                                               json_object_new_string(msg ?: "out of memory"));
                        (void) (a->verify ? print_json(o, stdout) : print_json_line(o, stdout));
                }
        }
        return status;
}

static int fail_oom(const AuditArgs *a) {
        return fail(a, JIT_EXIT_FAILURE, "internal", "out of memory");
}

static int fail_bad_reply(const AuditArgs *a) {
        return fail(a, JIT_EXIT_FAILURE, "bad-reply", "unexpected reply from the broker at %s",
                    a->socket_path);
}

/* ---- arguments ---- */

/* Exactly n decimal digits. */
static bool take_digits(const char **p, int n, int *ret) {
        int v = 0;

        for (int i = 0; i < n; i++, (*p)++) {
                if (**p < '0' || **p > '9')
                        return false;
                v = v * 10 + (**p - '0');
        }
        *ret = v;
        return true;
}

static bool take_char(const char **p, char c) {
        if (**p != c)
                return false;
        (*p)++;
        return true;
}

int audit_time_parse(const char *s, time_t now, time_t *ret) {
        struct tm tm = {}, check;
        int year, mon, mday, hour = 0, min = 0, sec = 0;
        const char *p = s;
        time_t t;

        if (!s)
                return -EINVAL;
        if (STREQ(s, "now")) {
                *ret = now;
                return 0;
        }
        if (*s == '-') {
                uint64_t d;
                if (duration_parse(s + 1, &d) < 0 || (uint64_t) now < d)
                        return -EINVAL;
                *ret = now - (time_t) d;
                return 0;
        }

        if (!take_digits(&p, 4, &year) || !take_char(&p, '-') || !take_digits(&p, 2, &mon) ||
            !take_char(&p, '-') || !take_digits(&p, 2, &mday))
                return -EINVAL;
        bool has_time = take_char(&p, 'T') || take_char(&p, 't');
        if (has_time) {
                if (!take_digits(&p, 2, &hour) || !take_char(&p, ':') || !take_digits(&p, 2, &min))
                        return -EINVAL;
                if (take_char(&p, ':') && !take_digits(&p, 2, &sec))
                        return -EINVAL;
                if (take_char(&p, '.')) /* fractions: the log is searched by the second */
                        for (int digits = 0; *p >= '0' && *p <= '9'; p++)
                                if (++digits > 9)
                                        return -EINVAL;
        }
        tm = (struct tm){ .tm_year = year - 1900,
                          .tm_mon = mon - 1,
                          .tm_mday = mday,
                          .tm_hour = hour,
                          .tm_min = min,
                          .tm_sec = sec,
                          .tm_isdst = -1 };

        long offset = 0; /* seconds east of UTC */
        bool utc = false;
        if (has_time && (take_char(&p, 'Z') || take_char(&p, 'z')))
                utc = true;
        else if (has_time && (*p == '+' || *p == '-')) {
                int sign = *p++ == '+' ? 1 : -1, oh, om;
                if (!take_digits(&p, 2, &oh) || !take_char(&p, ':') || !take_digits(&p, 2, &om) ||
                    oh > 23 || om > 59)
                        return -EINVAL;
                offset = sign * (oh * 3600L + om * 60L);
                utc = true;
        }
        if (*p != '\0' || mon < 1 || mon > 12 || mday < 1 || mday > 31 || hour > 23 || min > 59 ||
            sec > 60)
                return -EINVAL;

        check = tm;
        t = utc ? timegm(&tm) : mktime(&tm);
        /* mktime and timegm normalise: 2026-02-30 would become March 2nd. */
        if (t == (time_t) -1 || tm.tm_mday != check.tm_mday || tm.tm_mon != check.tm_mon)
                return -EINVAL;
        t -= offset;
        if (t < 0)
                return -EINVAL;
        *ret = t;
        return 0;
}

static int parse_positive(const char *s, int64_t max, int64_t *ret) {
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > (unsigned long long) max)
                return -EINVAL;
        *ret = (int64_t) v;
        return 0;
}

static int parse_args(AuditArgs *a, int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, ARG_JSON },
                { "since", required_argument, NULL, ARG_SINCE },
                { "until", required_argument, NULL, ARG_UNTIL },
                { "user", required_argument, NULL, ARG_USER },
                { "request", required_argument, NULL, ARG_REQUEST },
                { "limit", required_argument, NULL, ARG_LIMIT },
                { "verify", no_argument, NULL, ARG_VERIFY },
                { "db", required_argument, NULL, ARG_DB },
                { "archive", required_argument, NULL, ARG_ARCHIVE },
                { "heads", required_argument, NULL, ARG_HEADS },
                {},
        };
        const char *listing_only = NULL; /* the first option only the listing takes */
        time_t now = time(NULL);
        int opt;

        optind = 0; /* fully reinitialise getopt for a new argument vector */
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        fputs(jitctl_audit_help, stdout);
                        return JIT_EXIT_OK;
                case ARG_JSON:
                        a->json = true;
                        continue;
                case ARG_SINCE:
                case ARG_UNTIL:
                        if (audit_time_parse(optarg, now,
                                             opt == ARG_SINCE ? &a->since : &a->until) < 0)
                                return usage_error("invalid time '%s' (write 2026-11-23T10:00:00Z, "
                                                   "2026-11-23, -1h, -30m or -2d)",
                                                   optarg);
                        *(opt == ARG_SINCE ? &a->since_text : &a->until_text) = optarg;
                        break;
                case ARG_USER:
                        if (!valid_account_name(optarg))
                                return usage_error("--user: '%s' is not a user name", optarg);
                        a->user = optarg;
                        break;
                case ARG_REQUEST:
                        if (parse_positive(optarg, INT64_MAX, &a->request) < 0)
                                return usage_error("invalid request id '%s' (a positive integer)",
                                                   optarg);
                        break;
                case ARG_LIMIT:
                        if (parse_positive(optarg, AUDIT_LIMIT_MAX, &a->limit) < 0)
                                return usage_error("invalid limit '%s' (1 to %d)", optarg,
                                                   AUDIT_LIMIT_MAX);
                        break;
                case ARG_VERIFY:
                        a->verify = true;
                        continue;
                case ARG_HEADS:
                        if (!*optarg)
                                return usage_error("--heads needs a file");
                        a->heads = optarg;
                        continue;
                case ARG_ARCHIVE:
                        if (!*optarg)
                                return usage_error("--archive needs a file");
                        a->archive = optarg;
                        continue;
                case ARG_DB:
                        if (!*optarg)
                                return usage_error("--db needs a path");
                        a->db = optarg;
                        continue;
                default:
                        /* getopt_long has said what was wrong. */
                        fputs("Try 'jitctl audit --help'.\n", stderr);
                        return JIT_EXIT_USAGE;
                }
                for (size_t i = 0; !listing_only && options[i].name; i++)
                        if (options[i].val == opt)
                                listing_only = options[i].name;
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'", argv[optind]);
        if (a->verify && listing_only)
                return usage_error("--verify checks the whole log: it takes no --%s", listing_only);
        if (a->heads && (!a->verify || a->archive))
                return usage_error("--heads goes with --verify of the database");
        if (!a->verify && a->archive)
                return usage_error("--archive goes with --verify");
        if (a->db && a->archive)
                return usage_error(
                        "--verify checks either the database (--db) or an archive (--archive)");
        if (!a->verify && a->db)
                return usage_error("--db goes with --verify (the listing asks the broker)");
        if (a->since_text && a->until_text && a->since > a->until)
                return usage_error("--since %s is after --until %s", a->since_text, a->until_text);
        return CONTINUE;
}

/* ---- the listing, from the broker ---- */

static int report_client_error(const AuditArgs *a, int r) {
        switch (r) {
        case -EBADMSG:
                return fail(a, JIT_EXIT_FAILURE, "bad-reply", "garbage reply from the broker at %s",
                            a->socket_path);
        case -ENOMEM:
                return fail_oom(a);
        case -EPERM:
                return fail(
                        a, JIT_EXIT_UNREACHABLE, "unreachable",
                        "cannot trust the broker at %s: the socket is not owned by a root process",
                        a->socket_path);
        case -ETIMEDOUT:
                return fail(a, JIT_EXIT_UNREACHABLE, "unreachable",
                            "no answer from the broker at %s within %u s (see --timeout)",
                            a->socket_path, a->timeout_ms / 1000);
        default:
                errno = -r;
                return fail(a, JIT_EXIT_UNREACHABLE, "unreachable",
                            "cannot reach the broker at %s: %m", a->socket_path);
        }
}

/* One exchange: JIT_EXIT_OK with the reply, or the failure reported and its status. */
static int broker_call(const AuditArgs *a, json_object *request, json_object **ret_reply,
                       json_object **ret_result) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *ok, *result = NULL;

        int r = jit_client_call(a->socket_path, a->timeout_ms, request, &reply);
        if (r < 0)
                return report_client_error(a, r);
        if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_get_boolean(ok)) {
                const char *code = json_get_string(reply, "error");
                const char *message = json_get_string(reply, "message");
                JitError e = jit_error_from_string(code);
                if (!code)
                        return fail_bad_reply(a);
                return fail(
                        a, e == _JIT_ERROR_INVALID ? JIT_EXIT_FAILURE : jit_error_to_exit_status(e),
                        code, "%s", message ?: code);
        }
        (void) json_object_object_get_ex(reply, "result", &result);
        *ret_result = result;
        *ret_reply = TAKE_PTR(reply);
        return JIT_EXIT_OK;
}

static int add(json_object *o, const char *key, json_object *v) {
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static json_object *build_request(const AuditArgs *a) {
        _cleanup_(json_object_putp) json_object *o = jit_request_new("audit");
        char t[RFC3339_BUF_MAX];

        /* Times go out as UTC, whatever the local zone was in what was typed. */
        if (!o ||
            (a->since_text &&
             add(o, "since",
                 json_object_new_string(
                         format_rfc3339((uint64_t) a->since * USEC_PER_SEC, t, sizeof(t)))) < 0) ||
            (a->until_text &&
             add(o, "until",
                 json_object_new_string(
                         format_rfc3339((uint64_t) a->until * USEC_PER_SEC, t, sizeof(t)))) < 0) ||
            (a->user && add(o, "user", json_object_new_string(a->user)) < 0) ||
            (a->request > 0 && add(o, "request", json_object_new_int64(a->request)) < 0) ||
            (a->limit > 0 && add(o, "limit", json_object_new_int64(a->limit)) < 0))
                return NULL;
        return TAKE_PTR(o);
}

/* A details value as key=value text: strings bare unless they need quotes, anything else
 * as compact JSON. */
static void condense_value(json_object *v, FILE *f) {
        if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                size_t len = (size_t) json_object_get_string_len(v);
                bool quote = len == 0 || strcspn(s, " \"=\\") < len;
                if (quote)
                        fputc('"', f);
                for (size_t i = 0; i < len; i++) {
                        if (quote && (s[i] == '"' || s[i] == '\\'))
                                fputc('\\', f);
                        fputc(s[i], f);
                }
                if (quote)
                        fputc('"', f);
                return;
        }
        fputs(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE)
                      ?: "?",
              f);
}

static const char *const details_first[] = {
        "reason", "comment", "end_reason", "ticket", "service", "duration", "requester", "state",
};

/* "reason=\"disk full\" service=sudo duration=3600", escaped for the terminal and cut to
 * DETAILS_COLUMNS. Returns a malloc'd string or NULL (ENOMEM). */
static char *condense_details(json_object *details) {
        _cleanup_free_ char *raw = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&raw, &len);
        if (!f)
                return NULL;

        if (json_object_is_type(details, json_type_object)) {
                bool first = true;
                /* What people typed first: the column is cut at DETAILS_COLUMNS. */
                for (size_t i = 0; i < ELEMENTSOF(details_first); i++) {
                        json_object *v;
                        if (!json_object_object_get_ex(details, details_first[i], &v))
                                continue;
                        fprintf(f, "%s%s=", first ? "" : " ", details_first[i]);
                        condense_value(v, f);
                        first = false;
                }
                json_object_object_foreach (details, key, v) {
                        bool shown = false;
                        for (size_t i = 0; i < ELEMENTSOF(details_first) && !shown; i++)
                                shown = STREQ(key, details_first[i]);
                        if (shown)
                                continue;
                        fprintf(f, "%s%s=", first ? "" : " ", key);
                        condense_value(v, f);
                        first = false;
                }
        } else if (details && !json_object_is_type(details, json_type_null))
                condense_value(details, f);
        if (fclose(f) != 0)
                return NULL;
        /* Escaped after condensing, so that cutting never splits an escape. */
        return escape_text_len(raw, len, DETAILS_COLUMNS, NULL);
}

typedef struct Row {
        char *cell[6];
        size_t width[6];
} Row;

static void rows_free(Row *rows, size_t n) {
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < ELEMENTSOF(rows[i].cell); k++)
                        free(rows[i].cell[k]);
        free(rows);
}

/* Fills a row from one record; -EBADMSG when it is not one. */
static int row_fill(Row *row, json_object *rec) {
        char buf[32];
        json_object *details = NULL;
        int64_t seq = json_get_int(rec, "seq", -1), rid = json_get_int(rec, "request_id", 0);
        const char *at = json_get_string(rec, "at"), *event = json_get_string(rec, "event");
        const char *actor = json_get_string(rec, "actor");

        if (!json_object_is_type(rec, json_type_object) || seq <= 0 || !at || !event || !actor)
                return -EBADMSG;
        (void) json_object_object_get_ex(rec, "details", &details);

        snprintf(buf, sizeof(buf), "%" PRId64, seq);
        row->cell[0] = strdup(buf);
        row->cell[1] = escape_text(at, 0, NULL);
        row->cell[2] = escape_text(event, 0, NULL);
        row->cell[3] = escape_text(actor, 0, NULL);
        if (rid > 0)
                snprintf(buf, sizeof(buf), "%" PRId64, rid);
        row->cell[4] = strdup(rid > 0 ? buf : "-");
        row->cell[5] = condense_details(details);
        for (size_t k = 0; k < ELEMENTSOF(row->cell); k++) {
                if (!row->cell[k])
                        return -ENOMEM;
                row->width[k] = text_width(row->cell[k]);
        }
        return 0;
}

/* The table; built whole before anything is printed, so a bad reply prints nothing. */
static int print_records_table(json_object *result, FILE *f) {
        static const char *const headers[] = {
                "SEQ", "TIME", "EVENT", "ACTOR", "REQUEST", "DETAILS"
        };
        size_t widths[ELEMENTSOF(headers)], n = json_object_array_length(result);
        Row *rows = calloc(n ?: 1, sizeof(Row));
        int r = 0;

        if (!rows)
                return -ENOMEM;
        for (size_t i = 0; i < n && r == 0; i++)
                r = row_fill(&rows[i], json_object_array_get_idx(result, i));
        if (r < 0) {
                rows_free(rows, n);
                return r;
        }
        if (n == 0) {
                fputs("No audit records.\n", f);
                rows_free(rows, n);
                return 0;
        }

        for (size_t k = 0; k < ELEMENTSOF(headers); k++) {
                widths[k] = strlen(headers[k]);
                for (size_t i = 0; i < n; i++)
                        if (rows[i].width[k] > widths[k])
                                widths[k] = rows[i].width[k];
        }
        for (size_t k = 0; k < ELEMENTSOF(headers); k++)
                if (k + 1 < ELEMENTSOF(headers))
                        fprintf(f, "%-*s  ", (int) widths[k], headers[k]);
                else
                        fprintf(f, "%s\n", headers[k]);
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < ELEMENTSOF(headers); k++) {
                        fputs(rows[i].cell[k], f);
                        if (k + 1 == ELEMENTSOF(headers))
                                fputc('\n', f);
                        else /* no trailing blanks after the last column */
                                fprintf(f, "%*s", (int) (widths[k] - rows[i].width[k] + 2), "");
                }
        rows_free(rows, n);
        return 0;
}

static int audit_list(const AuditArgs *a) {
        _cleanup_(json_object_putp) json_object *request = NULL, *reply = NULL;
        json_object *result = NULL;
        int r;

        request = build_request(a);
        if (!request)
                return fail_oom(a);
        r = broker_call(a, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (!json_object_is_type(result, json_type_array))
                return fail_bad_reply(a);

        if (a->json) {
                /* JSON lines: a SIEM reads one record per line, and a listing cut short
                 * still holds whole records. Checked first so that nothing half-valid is
                 * printed. */
                size_t n = json_object_array_length(result);
                for (size_t i = 0; i < n; i++)
                        if (!json_object_is_type(json_object_array_get_idx(result, i),
                                                 json_type_object))
                                return fail_bad_reply(a);
                for (size_t i = 0; i < n; i++)
                        if (print_json_line(json_object_array_get_idx(result, i), stdout) < 0)
                                return fail_oom(a);
                return JIT_EXIT_OK;
        }
        r = print_records_table(result, stdout);
        if (r == -ENOMEM)
                return fail_oom(a);
        if (r < 0)
                return fail_bad_reply(a);
        return JIT_EXIT_OK;
}

/* ---- --verify, from the database and the journal ---- */

/* Strings of all records in few allocations: a million records must not mean three
 * million mallocs. */
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
        char chain_id[CHAIN_ID_LEN + 1];
        AuditHead anchor;
        AuditRecord *records;
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

/* A stored hash as it must look; anything else becomes a marker that equals nothing the
 * walk computes or compares with (the two markers differ from each other too). */
static void copy_hash(char dst[AUDIT_HASH_LEN + 1], const unsigned char *s, int len,
                      const char *marker) {
        if (is_lower_hex((const char *) s, len < 0 ? 0 : (size_t) len, AUDIT_HASH_LEN))
                memcpy(dst, s, AUDIT_HASH_LEN + 1);
        else
                snprintf(dst, AUDIT_HASH_LEN + 1, "%s", marker);
}

/* The text of column i; an embedded NUL or NULL (the schema forbids it, a tamperer need
 * not) clears *ok: the hash covers the text only up to the first NUL. */
static const char *column_text(sqlite3_stmt *st, int i, size_t *ret_len, bool *ok) {
        const char *s = (const char *) sqlite3_column_text(st, i);
        int len = sqlite3_column_bytes(st, i);

        if (!s) {
                *ok = false;
                *ret_len = 0;
                return "";
        }
        if (strlen(s) != (size_t) len)
                *ok = false;
        *ret_len = strlen(s);
        return s;
}

static int db_fail(const AuditArgs *a, const AuditLog *l, const char *what) {
        return fail(a, JIT_EXIT_FAILURE, "unreadable", "%s: %s: %s", a->db, what,
                    sqlite3_errmsg(l->db));
}

static int query_int(sqlite3 *db, const char *sql, int64_t *ret) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int64(st, 0);
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        return rc;
}

static int open_db(const AuditArgs *a, AuditLog *l) {
        /* Opened by hand first for an errno worth showing: sqlite says only "unable to open
         * database file". The directory is root's alone (0700). */
        /* O_NONBLOCK: a FIFO in its place must not hang us. */
        _cleanup_close_ int fd = open(a->db, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        struct stat st;
        if (fd < 0) {
                int e = errno;
                return fail(a, JIT_EXIT_FAILURE, "unreadable", "cannot open %s: %s%s", a->db,
                            strerror(e),
                            e == EACCES || e == EPERM ? " (run as root: jitctl audit --verify "
                                                        "reads the database itself)"
                                                      : "");
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return fail(a, JIT_EXIT_FAILURE, "unreadable", "%s is not a database file", a->db);

        int rc = sqlite3_open_v2(a->db, &l->db, SQLITE_OPEN_READONLY, NULL);
        if (rc != SQLITE_OK)
                return db_fail(a, l, "cannot open the database");
        sqlite3_extended_result_codes(l->db, 1);
        sqlite3_busy_timeout(l->db, 5000);
        /* Whoever could edit the log could edit the schema: run none of its code. */
        sqlite3_db_config(l->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
        sqlite3_db_config(l->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        return CONTINUE;
}

/* The chain's id, which names its heads in the journal. It never changes. */
static int read_chain_id(const AuditArgs *a, AuditLog *l) {
        sqlite3_stmt *st;
        int64_t version = 0;

        if (query_int(l->db, "PRAGMA user_version", &version) != SQLITE_OK)
                return db_fail(a, l, "cannot read the schema version");
        if (version < AUDIT_SCHEMA_VERSION)
                return fail(a, JIT_EXIT_FAILURE, "unreadable",
                            "%s has no audit log yet (schema version %" PRId64
                            "; the log came with version %d)",
                            a->db, version, AUDIT_SCHEMA_VERSION);
        if (sqlite3_prepare_v2(l->db, "SELECT chain_id FROM audit_anchor WHERE id = 1", -1, &st,
                               NULL) != SQLITE_OK)
                return db_fail(a, l, "cannot read the audit anchor");
        if (sqlite3_step(st) == SQLITE_ROW) {
                const char *chain = (const char *) sqlite3_column_text(st, 0);
                if (is_lower_hex(chain, chain ? strlen(chain) : 0, CHAIN_ID_LEN))
                        memcpy(l->chain_id, chain, CHAIN_ID_LEN + 1);
        }
        sqlite3_finalize(st);
        if (!l->chain_id[0])
                return fail(a, JIT_EXIT_FAILURE, "unreadable",
                            "%s: the audit anchor is missing or has no valid chain id: the log "
                            "cannot be verified",
                            a->db);
        return CONTINUE;
}

static int read_anchor(const AuditArgs *a, AuditLog *l) {
        char chain_id[CHAIN_ID_LEN + 2] = "";
        sqlite3_stmt *st;

        if (sqlite3_prepare_v2(l->db, "SELECT chain_id, seq, hash FROM audit_anchor", -1, &st,
                               NULL) != SQLITE_OK)
                return db_fail(a, l, "cannot read the audit anchor");
        int rows = 0, rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && ++rows == 1) {
                const char *chain = (const char *) sqlite3_column_text(st, 0);
                snprintf(chain_id, sizeof(chain_id), "%s", chain ?: "");
                l->anchor.seq = sqlite3_column_int64(st, 1);
                copy_hash(l->anchor.hash, sqlite3_column_text(st, 2), sqlite3_column_bytes(st, 2),
                          "malformed-anchor-hash");
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                return db_fail(a, l, "cannot read the audit anchor");
        /* Without its one anchor row the chain cannot be placed, nor its heads found. */
        if (rows != 1 || !STREQ(chain_id, l->chain_id) || l->anchor.seq < 0)
                return fail(a, JIT_EXIT_FAILURE, "unreadable",
                            "%s: the audit anchor is missing or malformed (%d rows): the log "
                            "cannot be verified",
                            a->db, rows);
        return CONTINUE;
}

static int read_records(const AuditArgs *a, AuditLog *l) {
        sqlite3_stmt *st;
        int64_t count = 0;
        int rc;

        if (query_int(l->db, "SELECT count(*) FROM audit", &count) != SQLITE_OK)
                return db_fail(a, l, "cannot count the audit records");
        if (count > VERIFY_RECORDS_MAX)
                return fail(a, JIT_EXIT_FAILURE, "too-large",
                            "%s holds %" PRId64 " audit records; --verify reads at most %d", a->db,
                            count, VERIFY_RECORDS_MAX);
        l->records = calloc(count > 0 ? (size_t) count : 1, sizeof(AuditRecord));
        if (!l->records)
                return fail_oom(a);

        rc = sqlite3_prepare_v2(l->db,
                                "SELECT seq, at, event, actor, actor_uid, request_id, details, "
                                "prev_hash, hash FROM audit ORDER BY seq",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return db_fail(a, l, "cannot read the audit log");
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                /* Within one read transaction the count cannot change; be safe anyway. */
                if (l->n == (size_t) count) {
                        sqlite3_finalize(st);
                        return fail(a, JIT_EXIT_FAILURE, "unreadable",
                                    "%s: the audit log grew while it was read", a->db);
                }
                AuditRecord *r = &l->records[l->n];
                bool ok = true;
                size_t len;
                const char *s;

                r->seq = sqlite3_column_int64(st, 0);
                r->at = (uint64_t) sqlite3_column_int64(st, 1);
                r->actor_uid = sqlite3_column_int64(st, 4);
                r->request_id = sqlite3_column_int64(st, 5);
                s = column_text(st, 2, &len, &ok);
                r->event = arena_strndup(&l->strings, s, len);
                s = column_text(st, 3, &len, &ok);
                r->actor = arena_strndup(&l->strings, s, len);
                s = column_text(st, 6, &len, &ok);
                r->details = arena_strndup(&l->strings, s, len);
                if (!r->event || !r->actor || !r->details) {
                        sqlite3_finalize(st);
                        return fail_oom(a);
                }
                copy_hash(r->prev_hash, sqlite3_column_text(st, 7), sqlite3_column_bytes(st, 7),
                          "malformed-prev-hash");
                copy_hash(r->hash, sqlite3_column_text(st, 8), sqlite3_column_bytes(st, 8),
                          "malformed-hash");
                if (!ok) /* text the hash does not cover: the record is not what was written */
                        snprintf(r->hash, sizeof(r->hash), "text-with-nul-or-null");
                l->n++;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return db_fail(a, l, "cannot read the audit log");
        return CONTINUE;
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
                    (!STREQ(seq_text, "0") && parse_positive(seq_text, INT64_MAX, &seq) < 0) ||
                    !is_lower_hex(hash, strlen(hash), AUDIT_HASH_LEN)) {
                        l->n_bad_heads++;
                        continue;
                }
                /* The same head is sent at every start and stop: keep one. */
                if (l->n_heads > 0 && l->heads[l->n_heads - 1].seq == seq &&
                    STREQ(l->heads[l->n_heads - 1].hash, hash))
                        continue;
                if (l->n_heads == VERIFY_HEADS_MAX)
                        return fail(a, JIT_EXIT_FAILURE, "too-large",
                                    "the journal holds more than %d audit heads of chain %s",
                                    VERIFY_HEADS_MAX, l->chain_id);
                if (l->n_heads == allocated) {
                        size_t n = allocated ? allocated * 2 : 64;
                        AuditHead *h = reallocarray(l->heads, n, sizeof(AuditHead));
                        if (!h)
                                return fail_oom(a);
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
                return fail(a, JIT_EXIT_FAILURE, "unreadable", "%s: %m", a->heads);
        if (!line)
                return fail_oom(a);
        while ((len = read_line_bounded(f, line, HEAD_LINE_MAX)) != 0) {
                if (len < 0)
                        continue; /* no head is that long */
                if (l->n_heads >= HEADS_FILE_MAX)
                        return fail(a, JIT_EXIT_FAILURE, "too-large", "%s: more than %d heads",
                                    a->heads, HEADS_FILE_MAX);
                _cleanup_(json_object_putp) json_object *o = json_tokener_parse(line);
                const char *chain = o ? json_get_string(o, "JIT_AUDIT_CHAIN") : NULL;
                const char *seq_text = o ? json_get_string(o, "JIT_AUDIT_SEQ") : NULL;
                const char *hash = o ? json_get_string(o, "JIT_AUDIT_HASH") : NULL;
                int64_t seq = 0;
                if (!chain || !STREQ(chain, l->chain_id))
                        continue;
                if (!seq_text || !hash ||
                    (!STREQ(seq_text, "0") && parse_positive(seq_text, INT64_MAX, &seq) < 0) ||
                    !is_lower_hex(hash, strlen(hash), AUDIT_HASH_LEN)) {
                        l->n_bad_heads++;
                        continue;
                }
                AuditHead *h = reallocarray(l->heads, l->n_heads + 1, sizeof(AuditHead));
                if (!h) {
                        r = fail_oom(a);
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
                    parse_positive(seq_text, INT64_MAX, &seq) >= 0 && seq == l->anchor.seq &&
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
        const char *head = l->n > 0 ? l->records[l->n - 1].hash : l->anchor.hash;
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
                        return fail_oom(a);
                journal = "the journal could not be read";
        } else if (l->n_heads == 0) {
                if (asprintf(&warning,
                             "the journal holds no audit head of chain %s (MESSAGE_ID=%s from "
                             "root): whether records were cut off the end of the log cannot "
                             "be checked",
                             l->chain_id, AUDIT_HEAD_MESSAGE_ID) < 0)
                        return fail_oom(a);
                journal = "the journal holds no head to check the end against";
        } else if (v->journal_seq < l->anchor.seq) {
                if (asprintf(&warning,
                             "the journal's newest audit head (record %" PRId64
                             ") is older than the anchor (record %" PRId64
                             "): whether records were cut off the end cannot be checked",
                             v->journal_seq, l->anchor.seq) < 0)
                        return fail_oom(a);
                journal = "the journal's heads all predate the anchor";
        } else {
                snprintf(journal_buf, sizeof(journal_buf),
                         "the journal's newest head (seq %" PRId64 ") matches", v->journal_seq);
                journal = journal_buf;
        }

        if (l->n > 0)
                snprintf(range, sizeof(range), "%zu record%s (%" PRId64 "-%" PRId64 ")", l->n,
                         l->n == 1 ? "" : "s", v->first_seq, v->last_seq);
        else if (l->anchor.seq > 0)
                snprintf(range, sizeof(range), "no records after record %" PRId64 " (the anchor)",
                         l->anchor.seq);
        else
                snprintf(range, sizeof(range), "no records yet");

        int k = intact ? asprintf(&line, "audit log intact: %s, head %s; %s", range,
                                  short_hash(head, buf, sizeof(buf)), journal)
                       : asprintf(&line, "audit log NOT intact: %s", v->message);
        if (k < 0)
                return fail_oom(a);

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
        if (!o || add(o, "intact", json_object_new_boolean(intact)) < 0 ||
            add(o, "fault", json_object_new_string(audit_fault_to_string(v->fault))) < 0 ||
            json_object_object_add(o, "seq", intact ? none : json_object_new_int64(v->seq)) < 0 ||
            add(o, "message", json_object_new_string(intact ? line : v->message)) < 0 ||
            add(o, "records", json_object_new_int64(v->n_records)) < 0 ||
            json_object_object_add(o, "first_seq",
                                   l->n ? json_object_new_int64(v->first_seq) : none) < 0 ||
            json_object_object_add(o, "last_seq",
                                   l->n ? json_object_new_int64(v->last_seq) : none) < 0 ||
            json_object_object_add(o, "journal_seq",
                                   l->n_heads ? json_object_new_int64(v->journal_seq) : none) < 0 ||
            add(o, "chain_id", json_object_new_string(l->chain_id)) < 0 ||
            add(o, "anchor_seq", json_object_new_int64(l->anchor.seq)) < 0 ||
            add(o, "head", json_object_new_string(head)) < 0 ||
            json_object_object_add(o, "warning", warning ? json_object_new_string(warning) : none) <
                    0)
                return fail_oom(a);
        if (print_json(o, stdout) < 0)
                return fail_oom(a);
        return intact ? JIT_EXIT_OK : JIT_EXIT_FAILURE;
}

static int audit_verify_db(AuditArgs *a) {
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
        if (sqlite3_exec(l.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
                return db_fail(a, &l, "cannot begin a read transaction");
        if ((r = read_anchor(a, &l)) != CONTINUE || (r = read_records(a, &l)) != CONTINUE)
                return r;
        (void) sqlite3_exec(l.db, "COMMIT", NULL, NULL, NULL);

        r = audit_verify(l.records, l.n, &l.anchor, l.heads, l.n_heads, &v);
        if (r < 0) {
                errno = -r;
                return fail(a, JIT_EXIT_FAILURE, "internal", "cannot compute record hashes: %m");
        }
        /* A moved anchor without its archive entry is the start of the log cut off. */
        int archived = v.fault == AUDIT_INTACT && journal_error == 0 ? anchor_archived(&l) : 1;
        if (archived < 0) {
                errno = -archived;
                return fail(a, JIT_EXIT_FAILURE, "unreadable",
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

/* ---- export: seal old records into an archive and take them out of the live log ---- */

static int copy_file(const char *from, int out) {
        _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char buf[65536];

        if (in < 0)
                return -errno;
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t) (n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                return -errno;
                        off += w;
                }
        }
        return fsync(out) < 0 ? -errno : 0;
}

static int audit_export(AuditArgs *a, int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, ARG_JSON },
                { "until", required_argument, NULL, ARG_UNTIL },
                {},
        };
        const char *until_text = NULL;
        time_t until = 0;
        int opt;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        fputs(jitctl_audit_help, stdout);
                        return JIT_EXIT_OK;
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_UNTIL:
                        if (audit_time_parse(optarg, time(NULL), &until) < 0)
                                return usage_error("invalid time '%s' for --until", optarg);
                        until_text = optarg;
                        break;
                default:
                        fputs("Try 'jitctl audit --help'.\n", stderr);
                        return JIT_EXIT_USAGE;
                }
        if (!until_text)
                return usage_error(
                        "export: missing --until TIME (records up to then are archived)");
        if (optind >= argc)
                return usage_error("export: missing FILE to write the archive to");
        if (optind + 1 < argc)
                return usage_error("unexpected argument '%s'", argv[optind + 1]);
        const char *file = argv[optind];

        /* O_EXCL, before anything changes: never follow or overwrite what is there. */
        _cleanup_close_ int out =
                open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return fail(a, JIT_EXIT_FAILURE, "write-failed", "cannot create %s: %m", file);

        char until_rfc[RFC3339_BUF_MAX];
        _cleanup_(json_object_putp) json_object *request = jit_request_new("audit-archive"),
                                                *reply = NULL;
        json_object *result;
        if (!request ||
            add(request, "until",
                json_object_new_string(format_rfc3339((uint64_t) until * USEC_PER_SEC, until_rfc,
                                                      sizeof(until_rfc)))) < 0)
                return fail_oom(a);
        int r = broker_call(a, request, &reply, &result);
        if (r != JIT_EXIT_OK) {
                (void) unlink(file);
                return r;
        }
        int64_t n = json_get_int(result, "records", 0);
        const char *archive = json_get_string(result, "file");
        if (n > 0) {
                if (!archive) {
                        (void) unlink(file);
                        return fail_bad_reply(a);
                }
                r = copy_file(archive, out);
                if (r < 0) {
                        errno = -r;
                        return fail(
                                a, JIT_EXIT_FAILURE, "write-failed",
                                "the records were archived to %s, but copying it to %s failed: %m",
                                archive, file);
                }
        }
        if (n == 0)
                (void) unlink(file);
        if (a->json)
                return print_json(result, stdout) < 0 ? fail_oom(a) : JIT_EXIT_OK;
        if (n == 0)
                printf("No audit records up to %s: nothing archived.\n", until_rfc);
        else
                printf("Archived records %" PRId64 "-%" PRId64 " (%" PRId64
                       ") to %s (kept in %s); the live log "
                       "goes on from record %" PRId64 ".\n",
                       json_get_int(result, "first_seq", 0), json_get_int(result, "last_seq", 0), n,
                       file, archive, json_get_int(result, "last_seq", 0));
        return JIT_EXIT_OK;
}

/* ---- --verify --archive FILE: an exported archive on its own ---- */

static int audit_verify_archive(AuditArgs *a) {
        _cleanup_fclose_ FILE *f = fopen(a->archive, "re");
        _cleanup_(audit_log_done) AuditLog l = {};
        size_t allocated = 0;
        _cleanup_free_ char *line = malloc(ARCHIVE_LINE_MAX + 2);
        ssize_t len;
        bool sealed = false, header = false;
        int64_t seal_last = 0, seal_n = -1;
        char seal_hash[AUDIT_HASH_LEN + 2] = "";
        int r = CONTINUE;

        if (!f)
                return fail(a, JIT_EXIT_FAILURE, "unreadable", "%s: %m", a->archive);
        if (!line)
                return fail_oom(a);
        /* Lines are bounded: a record is at most a few KiB; refuse anything absurd. */
        while ((len = read_line_bounded(f, line, ARCHIVE_LINE_MAX)) != 0) {
                if (len < 0) {
                        r = fail(a, JIT_EXIT_FAILURE, "malformed", "%s: a line longer than 1 MiB",
                                 a->archive);
                        break;
                }
                _cleanup_(json_object_putp) json_object *o = json_tokener_parse(line);
                json_object *seal;
                if (!o || !json_object_is_type(o, json_type_object) || sealed) {
                        r = fail(a, JIT_EXIT_FAILURE, "malformed",
                                 "%s: line %zu is not part of an archive", a->archive,
                                 l.n + 1 + header);
                        break;
                }
                if (!header) {
                        const char *chain = json_get_string(o, "chain_id"),
                                   *ah = json_get_string(o, "anchor_hash");
                        if (json_get_int(o, "jit_audit_archive", 0) != 1 || !chain || !ah ||
                            !is_lower_hex(chain, strlen(chain), CHAIN_ID_LEN) ||
                            !is_lower_hex(ah, strlen(ah), AUDIT_HASH_LEN)) {
                                r = fail(a, JIT_EXIT_FAILURE, "malformed", "%s: no archive header",
                                         a->archive);
                                break;
                        }
                        snprintf(l.chain_id, sizeof(l.chain_id), "%s", chain);
                        l.anchor.seq = json_get_int(o, "anchor_seq", -1);
                        memcpy(l.anchor.hash, ah, AUDIT_HASH_LEN + 1);
                        header = true;
                        continue;
                }
                if (json_object_object_get_ex(o, "seal", &seal)) {
                        const char *h = json_get_string(seal, "last_hash");
                        seal_last = json_get_int(seal, "last_seq", 0);
                        seal_n = json_get_int(seal, "records", -1);
                        snprintf(seal_hash, sizeof(seal_hash), "%s", h ?: "");
                        if (!is_lower_hex(seal_hash, strlen(seal_hash), AUDIT_HASH_LEN))
                                seal_hash[0] = '\0'; /* not a hash: the seal cannot match */
                        sealed = true;
                        continue;
                }
                if (l.n == allocated) {
                        size_t m = allocated ? allocated * 2 : 256;
                        AuditRecord *rs = reallocarray(l.records, m, sizeof(AuditRecord));
                        if (!rs) {
                                r = fail_oom(a);
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
                        r = fail_oom(a);
                        break;
                }
                snprintf(rec->prev_hash, sizeof(rec->prev_hash), "%s", ph ?: "");
                snprintf(rec->hash, sizeof(rec->hash), "%s", h ?: "");
                l.n++;
        }
        if (r != CONTINUE)
                return r;
        if (!header)
                return fail(a, JIT_EXIT_FAILURE, "malformed", "%s: empty, not an archive",
                            a->archive);

        /* The seal is the archive's own head: a file cut short has lost it. */
        AuditHead seal_head = { .seq = seal_last };
        memcpy(seal_head.hash, seal_hash, sizeof(seal_head.hash) - 1);
        AuditVerdict v;
        r = audit_verify(l.records, l.n, &l.anchor, sealed ? &seal_head : NULL, sealed ? 1 : 0, &v);
        if (r < 0)
                return fail(a, JIT_EXIT_FAILURE, "internal", "cannot compute record hashes");
        if (v.fault == AUDIT_INTACT && (!sealed || seal_n != (int64_t) l.n ||
                                        (l.n > 0 && l.records[l.n - 1].seq != seal_last))) {
                v.fault = AUDIT_TRUNCATED;
                v.seq = l.n > 0 ? l.records[l.n - 1].seq + 1 : l.anchor.seq + 1;
                snprintf(v.message, sizeof(v.message), "%s",
                         sealed ? "the seal does not match the records"
                                : "the archive has no seal: it was cut short");
        }
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
                        return fail_oom(a);
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
                       l.chain_id, seal_hash, glyph_ellipsis());
        else {
                fputs(v.fault == AUDIT_INTACT ? "archive NOT anchored: " : "archive NOT intact: ",
                      stdout);
                fputs_escaped(v.message, stdout);
                fputc('\n', stdout);
        }
        return good ? JIT_EXIT_OK : JIT_EXIT_FAILURE;
}

int jitctl_audit(const char *socket_path, unsigned timeout_ms, bool json, int argc, char *argv[]) {
        AuditArgs a = { .socket_path = socket_path, .timeout_ms = timeout_ms, .json = json };

        if (argc > 1 && STREQ(argv[1], "export"))
                return audit_export(&a, argc - 1, argv + 1);

        int r = parse_args(&a, argc, argv);
        if (r != CONTINUE)
                return r;
        if (a.verify && a.archive)
                return audit_verify_archive(&a);
        return a.verify ? audit_verify_db(&a) : audit_list(&a);
}
