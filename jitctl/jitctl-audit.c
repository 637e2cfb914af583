/* SPDX-License-Identifier: MIT */
/* jitctl audit: its command line, and the listing of the audit log through the broker (a
 * table, or JSON lines). --verify is jitctl-audit-verify.c, export jitctl-audit-export.c. */
#include "jitctl-audit.h"
#include "jitctl-pager.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "cleanup.h"
#include "client.h"
#include "jitctl-audit-internal.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"
#include "jitctl-text.h"
#include "protocol.h"
#include "timeutil.h"
#include "users.h"

/* For the protocol's limits (JIT_AUDIT_LIMIT_*) in the help text. */
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
/* Width of the DETAILS column: enough to recognise an event, one line on a terminal. */
#define DETAILS_COLUMNS 60

/* clang-format off */
const char jitctl_audit_help[] =
        "Usage: jitctl audit [--since TIME] [--until TIME] [--user U] [--request ID]\n"
        "                    [--limit N] [--json]\n"
        "       jitctl audit --verify [--db PATH | --archive FILE] [--json]\n"
        "       jitctl audit --verify --fleet [--database URI | --policy PATH] [--json]\n"
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
        "With --fleet it checks the fleet's audit chains in PostgreSQL instead, one per\n"
        "origin host: one line per host, exit 0 when every chain is intact, 1 when one is\n"
        "not, 4 when the database cannot be reached. --database is the administrator's\n"
        "URI (every chain); without it, the policy's fleet section and this host's\n"
        "credentials are used, and only what this host's role may read (its own chain) is\n"
        "verified.\n"
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
        "  --limit N       At most N records (default: the broker's, "
                STRINGIFY(JIT_AUDIT_LIMIT_DEFAULT) "; at most " STRINGIFY(JIT_AUDIT_LIMIT_MAX) ")\n"
        "  --verify        Check the hash chain instead of listing\n"
        "  --db PATH       The database to verify (default " JIT_DB_PATH ")\n"
        "  --archive FILE  Verify an exported archive instead of the database\n"
        "  --heads FILE    Also compare with heads shipped off the host (journalctl -o json)\n"
        "  --fleet         With --verify: the fleet's audit chains in PostgreSQL\n"
        "  --database URI  With --fleet: the fleet database, postgresql://...\n"
        "  --policy PATH   With --fleet: the policy whose fleet section to use (default\n"
        "                  " JIT_POLICY_PATH ")\n"
        "  --json          Listing: JSON lines, one record per line (for a SIEM);\n"
        "                  --verify: one JSON object {\"intact\", \"fault\", \"seq\", \"message\",\n"
        "                  \"records\", \"first_seq\", \"last_seq\", \"journal_seq\", ...}\n"
        "  --no-pager      Listing: do not send it through a pager ($JIT_PAGER, $PAGER, less)\n"
        "  --no-legend     Listing: leave out the header line (and \"No audit records.\")\n"
        "  -h, --help      Show this help\n"
        "\n"
        "TIME is 2026-11-23T10:00:00Z (or with an offset such as +02:00; without one, local\n"
        "time; a space may replace the T, seconds may be left out), 2026-11-23 (local\n"
        "midnight), today, yesterday, -30m, -1h, -2d, -1h 30m (that long ago), +1h (that\n"
        "far ahead) or now, with durations as jitctl request --for reads them.\n";
/* clang-format on */

/* ---- output ---- */

int audit_usage_error(const char *fmt, ...) {
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
int audit_print_json_line(json_object *o, FILE *f) {
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
int audit_fail(const AuditArgs *a, int status, const char *code, const char *fmt, ...) {
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
                        (void) (a->verify ? print_json(o, stdout)
                                          : audit_print_json_line(o, stdout));
                }
        }
        return status;
}

int audit_fail_oom(const AuditArgs *a) {
        return audit_fail(a, JIT_EXIT_FAILURE, "internal", "out of memory");
}

int audit_fail_bad_reply(const AuditArgs *a) {
        return audit_fail(a, JIT_EXIT_FAILURE, "bad-reply",
                          "unexpected reply from the broker at %s", a->socket_path);
}

/* ---- arguments ---- */

int audit_parse_positive(const char *s, int64_t max, int64_t *ret) {
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
                { "no-pager", no_argument, NULL, ARG_NO_PAGER },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "fleet", no_argument, NULL, ARG_FLEET },
                { "database", required_argument, NULL, ARG_DATABASE },
                { "policy", required_argument, NULL, ARG_POLICY },
                {},
        };
        const char *listing_only = NULL; /* the first option only the listing takes */
        uint64_t now = now_usec(CLOCK_REALTIME), t;
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
                case ARG_NO_PAGER:
                        a->no_pager = true;
                        continue;
                case ARG_NO_LEGEND:
                        a->no_legend = true;
                        continue;
                case ARG_SINCE:
                case ARG_UNTIL:
                        if (timestamp_parse(optarg, now, &t) < 0)
                                return audit_usage_error(
                                        "invalid time '%s' (write 2026-11-23T10:00:00Z, "
                                        "2026-11-23, -1h, -30m or -2d)",
                                        optarg);
                        *(opt == ARG_SINCE ? &a->since : &a->until) = (time_t) (t / USEC_PER_SEC);
                        *(opt == ARG_SINCE ? &a->since_text : &a->until_text) = optarg;
                        break;
                case ARG_USER:
                        if (!valid_account_name(optarg))
                                return audit_usage_error("--user: '%s' is not a user name", optarg);
                        a->user = optarg;
                        break;
                case ARG_REQUEST:
                        if (audit_parse_positive(optarg, INT64_MAX, &a->request) < 0)
                                return audit_usage_error(
                                        "invalid request id '%s' (a positive integer)", optarg);
                        break;
                case ARG_LIMIT:
                        if (audit_parse_positive(optarg, JIT_AUDIT_LIMIT_MAX, &a->limit) < 0)
                                return audit_usage_error("invalid limit '%s' (1 to %d)", optarg,
                                                         JIT_AUDIT_LIMIT_MAX);
                        break;
                case ARG_VERIFY:
                        a->verify = true;
                        continue;
                case ARG_HEADS:
                        if (!*optarg)
                                return audit_usage_error("--heads needs a file");
                        a->heads = optarg;
                        continue;
                case ARG_ARCHIVE:
                        if (!*optarg)
                                return audit_usage_error("--archive needs a file");
                        a->archive = optarg;
                        continue;
                case ARG_FLEET:
                        a->fleet = true;
                        continue;
                case ARG_DATABASE:
                        if (!*optarg)
                                return audit_usage_error("--database needs a URI");
                        a->database = optarg;
                        continue;
                case ARG_POLICY:
                        if (!*optarg)
                                return audit_usage_error("--policy needs a path");
                        a->policy = optarg;
                        continue;
                case ARG_DB:
                        if (!*optarg)
                                return audit_usage_error("--db needs a path");
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
                return audit_usage_error("unexpected argument '%s'", argv[optind]);
        if (a->verify && listing_only)
                return audit_usage_error("--verify checks the whole log: it takes no --%s",
                                         listing_only);
        if (a->fleet && !a->verify)
                return audit_usage_error("--fleet goes with --verify");
        if ((a->database || a->policy) && !a->fleet)
                return audit_usage_error("--%s goes with --verify --fleet",
                                         a->database ? "database" : "policy");
        if (a->fleet && (a->db || a->archive || a->heads))
                return audit_usage_error("--fleet checks the fleet's store: it takes no --%s",
                                         a->db        ? "db"
                                         : a->archive ? "archive"
                                                      : "heads");
        if (a->database && a->policy)
                return audit_usage_error("--database or --policy, not both");
        if (a->heads && (!a->verify || a->archive))
                return audit_usage_error("--heads goes with --verify of the database");
        if (!a->verify && a->archive)
                return audit_usage_error("--archive goes with --verify");
        if (a->db && a->archive)
                return audit_usage_error(
                        "--verify checks either the database (--db) or an archive (--archive)");
        if (!a->verify && a->db)
                return audit_usage_error("--db goes with --verify (the listing asks the broker)");
        if (a->since_text && a->until_text && a->since > a->until)
                return audit_usage_error("--since %s is after --until %s", a->since_text,
                                         a->until_text);
        return CONTINUE;
}

/* ---- the listing, from the broker ---- */

static int report_client_error(const AuditArgs *a, int r) {
        switch (r) {
        case -EBADMSG:
                return audit_fail(a, JIT_EXIT_FAILURE, "bad-reply",
                                  "garbage reply from the broker at %s", a->socket_path);
        case -ENOMEM:
                return audit_fail_oom(a);
        case -EPERM:
                return audit_fail(
                        a, JIT_EXIT_UNREACHABLE, "unreachable",
                        "cannot trust the broker at %s: the socket is not owned by a root process",
                        a->socket_path);
        case -ETIMEDOUT:
                return audit_fail(a, JIT_EXIT_UNREACHABLE, "unreachable",
                                  "no answer from the broker at %s within %u s (see --timeout)",
                                  a->socket_path, a->timeout_ms / 1000);
        default:
                errno = -r;
                return audit_fail(a, JIT_EXIT_UNREACHABLE, "unreachable",
                                  "cannot reach the broker at %s: %m", a->socket_path);
        }
}

/* One exchange: JIT_EXIT_OK with the reply, or the failure reported and its status. */
int audit_broker_call(const AuditArgs *a, json_object *request, json_object **ret_reply,
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
                        return audit_fail_bad_reply(a);
                return audit_fail(
                        a, e == _JIT_ERROR_INVALID ? JIT_EXIT_FAILURE : jit_error_to_exit_status(e),
                        code, "%s", message ?: code);
        }
        (void) json_object_object_get_ex(reply, "result", &result);
        *ret_result = result;
        *ret_reply = TAKE_PTR(reply);
        return JIT_EXIT_OK;
}

int audit_add(json_object *o, const char *key, json_object *v) {
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
             audit_add(o, "since",
                       json_object_new_string(format_rfc3339((uint64_t) a->since * USEC_PER_SEC, t,
                                                             sizeof(t)))) < 0) ||
            (a->until_text &&
             audit_add(o, "until",
                       json_object_new_string(format_rfc3339((uint64_t) a->until * USEC_PER_SEC, t,
                                                             sizeof(t)))) < 0) ||
            (a->user && audit_add(o, "user", json_object_new_string(a->user)) < 0) ||
            (a->request > 0 && audit_add(o, "request", json_object_new_int64(a->request)) < 0) ||
            (a->limit > 0 && audit_add(o, "limit", json_object_new_int64(a->limit)) < 0))
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
char *audit_condense_details(json_object *details) {
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
        char buf[TIME_FOR_PEOPLE_BUF_MAX];
        json_object *details = NULL;
        uint64_t usec;
        int64_t seq = json_get_int(rec, "seq", -1), rid = json_get_int(rec, "request_id", 0);
        const char *at = json_get_string(rec, "at"), *event = json_get_string(rec, "event");
        const char *actor = json_get_string(rec, "actor");

        if (!json_object_is_type(rec, json_type_object) || seq <= 0 || !at || !event || !actor)
                return -EBADMSG;
        (void) json_object_object_get_ex(rec, "details", &details);

        snprintf(buf, sizeof(buf), "%" PRId64, seq);
        row->cell[0] = strdup(buf);
        /* Local time with its zone for people; the record itself (--json) keeps UTC. */
        row->cell[1] = rfc3339_parse(at, &usec) >= 0
                               ? strdup(format_time_for_people(usec, buf, sizeof(buf)))
                               : escape_text(at, 0, NULL);
        row->cell[2] = escape_text(event, 0, NULL);
        row->cell[3] = escape_text(actor, 0, NULL);
        if (rid > 0)
                snprintf(buf, sizeof(buf), "%" PRId64, rid);
        row->cell[4] = strdup(rid > 0 ? buf : "-");
        row->cell[5] = audit_condense_details(details);
        for (size_t k = 0; k < ELEMENTSOF(row->cell); k++) {
                if (!row->cell[k])
                        return -ENOMEM;
                row->width[k] = text_width(row->cell[k]);
        }
        return 0;
}

/* The table; built whole before anything is printed, so a bad reply prints nothing. */
static int print_records_table(json_object *result, bool legend, FILE *f) {
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
                if (legend)
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
        for (size_t k = 0; legend && k < ELEMENTSOF(headers); k++)
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
                return audit_fail_oom(a);
        r = audit_broker_call(a, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (!json_object_is_type(result, json_type_array))
                return audit_fail_bad_reply(a);

        if (a->json) {
                /* JSON lines: a SIEM reads one record per line, and a listing cut short
                 * still holds whole records. Checked first so that nothing half-valid is
                 * printed. */
                size_t n = json_object_array_length(result);
                for (size_t i = 0; i < n; i++)
                        if (!json_object_is_type(json_object_array_get_idx(result, i),
                                                 json_type_object))
                                return audit_fail_bad_reply(a);
                for (size_t i = 0; i < n; i++)
                        if (audit_print_json_line(json_object_array_get_idx(result, i), stdout) < 0)
                                return audit_fail_oom(a);
                return JIT_EXIT_OK;
        }
        pager_start(a->no_pager);
        r = print_records_table(result, !a->no_legend, stdout);
        if (r == -ENOMEM)
                return audit_fail_oom(a);
        if (r < 0)
                return audit_fail_bad_reply(a);
        return JIT_EXIT_OK;
}

int jitctl_audit(const char *socket_path, unsigned timeout_ms, bool json, bool no_pager,
                 bool no_legend, int argc, char *argv[]) {
        AuditArgs a = { .socket_path = socket_path,
                        .timeout_ms = timeout_ms,
                        .json = json,
                        .no_pager = no_pager,
                        .no_legend = no_legend };

        if (argc > 1 && STREQ(argv[1], "export"))
                return audit_export(&a, argc - 1, argv + 1);

        int r = parse_args(&a, argc, argv);
        if (r != CONTINUE)
                return r;
        if (a.verify && a.fleet)
                return audit_verify_fleet(&a);
        if (a.verify && a.archive)
                return audit_verify_archive(&a);
        return a.verify ? audit_verify_db(&a) : audit_list(&a);
}
