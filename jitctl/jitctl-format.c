/* SPDX-License-Identifier: MIT */
#include "jitctl-format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "jitctl-text.h"
#include "timeutil.h"

/* Width of the REASON column: enough to recognise a request, short enough for one line. */
#define REASON_COLUMNS 40
/* Labels of the detail view are right-aligned to this width, like hostnamectl. */
#define LABEL_WIDTH 14

const char *json_get_string(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

int64_t json_get_int(json_object *o, const char *key, int64_t fallback) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return fallback;
        return json_object_get_int64(v);
}

/* A *_renamed flag: 1 or 0, -1 when absent or null (the broker could not tell). */
static int json_get_renamed(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
                return -1;
        return json_object_get_boolean(v);
}

/* The escaped value of a string field, NULL when it is absent or null. The length comes
 * from json-c so that an embedded NUL is shown rather than hiding what follows it. */
static int get_escaped(json_object *o, const char *key, size_t max_width, char **ret) {
        json_object *v;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return 0;
        *ret = escape_text_len(json_object_get_string(v), (size_t) json_object_get_string_len(v),
                               max_width, NULL);
        return *ret ? 0 : -ENOMEM;
}

/* A time field for people: local time with its zone (format_time_for_people()); escaped
 * as it came when it is not the broker's RFC 3339 UTC. NULL when absent or null. */
static int get_time(json_object *o, const char *key, char **ret) {
        json_object *v;
        uint64_t usec;
        char buf[TIME_FOR_PEOPLE_BUF_MAX];

        if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) &&
            rfc3339_parse(json_object_get_string(v), &usec) >= 0) {
                *ret = strdup(format_time_for_people(usec, buf, sizeof(buf)));
                return *ret ? 0 : -ENOMEM;
        }
        return get_escaped(o, key, 0, ret);
}

void request_view_done(RequestView *v) {
        char **strings[] = {
                &v->state,         &v->requester, &v->service,      &v->reason,
                &v->ticket,        &v->rule,      &v->created_at,   &v->activated_at,
                &v->expires_at,    &v->ended_at,  &v->ended_by,     &v->end_reason,
                &v->requester_now, &v->command,   &v->command_line, &v->run_as_user,
                &v->run_as_group,  &v->cwd,
        };
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                free(*strings[i]);
                *strings[i] = NULL;
        }
}

int request_view_init(RequestView *v, json_object *o) {
        static const struct {
                const char *key;
                size_t offset;
                bool time;
        } fields[] = {
                { "state", offsetof(RequestView, state) },
                { "requester", offsetof(RequestView, requester) },
                { "service", offsetof(RequestView, service) },
                { "reason", offsetof(RequestView, reason) },
                { "ticket", offsetof(RequestView, ticket) },
                { "rule", offsetof(RequestView, rule) },
                { "created_at", offsetof(RequestView, created_at), true },
                { "activated_at", offsetof(RequestView, activated_at), true },
                { "expires_at", offsetof(RequestView, expires_at), true },
                { "ended_at", offsetof(RequestView, ended_at), true },
                { "ended_by", offsetof(RequestView, ended_by) },
                { "end_reason", offsetof(RequestView, end_reason) },
                { "requester_now", offsetof(RequestView, requester_now) },
                { "command", offsetof(RequestView, command) },
                { "command_line", offsetof(RequestView, command_line) },
                { "run_as_user", offsetof(RequestView, run_as_user) },
                { "run_as_group", offsetof(RequestView, run_as_group) },
                { "cwd", offsetof(RequestView, cwd) },
        };
        json_object *b, *a;

        *v = (RequestView){ .json = o };
        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        v->id = json_get_int(o, "id", -1);
        if (v->id <= 0)
                return -EBADMSG;

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                char **field = (char **) ((char *) v + fields[i].offset);
                int r = fields[i].time ? get_time(o, fields[i].key, field)
                                       : get_escaped(o, fields[i].key, 0, field);
                if (r < 0) {
                        request_view_done(v);
                        return r;
                }
        }
        if (!v->state) {
                request_view_done(v);
                return -EBADMSG;
        }

        v->requester_uid = json_get_int(o, "requester_uid", -1);
        v->requester_renamed = json_get_renamed(o, "requester_renamed");
        v->duration = json_get_int(o, "duration", -1);
        v->seconds_left = json_get_int(o, "seconds_left", -1);
        v->approvals_required = json_get_int(o, "approvals_required", -1);
        v->once = json_object_object_get_ex(o, "once", &b) &&
                  json_object_is_type(b, json_type_boolean) && json_object_get_boolean(b);
        if (json_object_object_get_ex(o, "approvals", &a) &&
            json_object_is_type(a, json_type_array)) {
                v->approvals = a;
                v->n_approvals = json_object_array_length(a);
        }
        return 0;
}

const char *request_time_left(const RequestView *v, char *buf, size_t len) {
        if (v->seconds_left < 0)
                return NULL;
        /* No grant outlasts JIT_DURATION_MAX_SEC; the cap keeps the multiplication sane
         * whatever the broker sent. */
        uint64_t sec = (uint64_t) v->seconds_left;
        if (sec > JIT_DURATION_MAX_SEC)
                sec = JIT_DURATION_MAX_SEC;
        return format_time_left(sec * USEC_PER_SEC, buf, len);
}

static const char *request_duration(const RequestView *v, char *buf, size_t len) {
        if (v->duration < 0)
                return NULL;
        return duration_format((uint64_t) v->duration, buf, len);
}

static const char *plural(int64_t n, const char *one, const char *many) {
        return n == 1 ? one : many;
}

static const char *or_dash(const char *s) {
        return s ?: "-";
}

/* A person as stored with a request, name and uid, e.g. "alice (uid 1001)". An account can
 * be renamed and its old name given to someone else; the broker binds grants to the uid
 * and says when the stored name no longer maps to it: then "alice (uid 1001, renamed: now
 * alice-old)", or "alice (uid 1001, account removed)" when the uid has no name now. The uid
 * is shown only when flagged unless always_uid. name and now are escaped already. NULL:
 * out of memory. */
static char *person_label(const char *name, int64_t uid, int renamed, const char *now,
                          bool always_uid) {
        const char *who = or_dash(name);
        char *s = NULL, uid_text[40] = "";
        int k;

        if (uid >= 0)
                snprintf(uid_text, sizeof(uid_text), "uid %" PRIi64 ", ", uid);
        if (renamed > 0 && now)
                k = asprintf(&s, "%s (%srenamed: now %s)", who, uid_text, now);
        else if (renamed > 0)
                k = asprintf(&s, "%s (%saccount removed)", who, uid_text);
        else if (always_uid && uid >= 0)
                k = asprintf(&s, "%s (uid %" PRIi64 ")", who, uid);
        else
                return strdup(who);
        return k < 0 ? NULL : s;
}

static char *requester_label(const RequestView *v, bool always_uid) {
        return person_label(v->requester, v->requester_uid, v->requester_renamed, v->requester_now,
                            always_uid);
}

/* " by X" and ": reason" as far as the broker recorded them. */
static void print_ended_by(const RequestView *v, FILE *f) {
        if (v->ended_by)
                fprintf(f, " by %s", v->ended_by);
        if (v->end_reason)
                fprintf(f, ": %s", v->end_reason);
}

static void print_active_until(const RequestView *v, FILE *f) {
        char left[64];

        _cleanup_free_ char *who = requester_label(v, false);
        fprintf(f, "%s for %s active", or_dash(v->service), who ?: or_dash(v->requester));
        if (v->expires_at)
                fprintf(f, " until %s", v->expires_at);
        if (request_time_left(v, left, sizeof(left)))
                fprintf(f, " (%s left)", left);
}

void print_outcome(const RequestView *v, FILE *f) {
        const char *s = v->state;

        fprintf(f, "Request %" PRIi64, v->id);
        if (STREQ(s, "pending") && v->approvals_required >= 0) {
                fprintf(f, " pending: %zu of %" PRIi64 " %s.\n", v->n_approvals,
                        v->approvals_required,
                        plural(v->approvals_required, "approval", "approvals"));
        } else if (STREQ(s, "active")) {
                fputs(" approved: ", f);
                print_active_until(v, f);
                fputs(".\n", f);
        } else if (STREQ(s, "denied") || STREQ(s, "revoked") || STREQ(s, "cancelled")) {
                fprintf(f, " %s", s);
                print_ended_by(v, f);
                fputs(".\n", f);
        } else if (STREQ(s, "timed_out")) {
                fputs(" timed out waiting for approval.\n", f);
        } else if (STREQ(s, "expired")) {
                fprintf(f, " expired%s%s.\n", v->ended_at ? " at " : "", v->ended_at ?: "");
        } else if (STREQ(s, "consumed")) {
                fputs(" consumed: its one-shot session has ended.\n", f);
        } else {
                fprintf(f, " is %s.\n", s);
        }
}

void print_filed(const RequestView *v, FILE *f) {
        char dur[DURATION_BUF_MAX];

        fprintf(f, "Request %" PRIi64 " filed", v->id);
        if (STREQ(v->state, "pending")) {
                fprintf(f, ": %s", or_dash(v->service));
                if (v->command_line) {
                        fprintf(f, " to run %s", v->command_line);
                        if (v->run_as_user && !STREQ(v->run_as_user, "root"))
                                fprintf(f, " as %s", v->run_as_user);
                }
                if (request_duration(v, dur, sizeof(dur)))
                        fprintf(f, " for %s", dur);
                if (v->once)
                        fputs(" (one-shot)", f);
                if (v->approvals_required >= 0)
                        fprintf(f, ", waiting for %" PRIi64 " %s", v->approvals_required,
                                plural(v->approvals_required, "approval", "approvals"));
                if (v->rule)
                        fprintf(f, " (rule %s)", v->rule);
                fprintf(f, ".\nAn approver runs: jitctl approve %" PRIi64 "\n", v->id);
        } else if (STREQ(v->state, "active")) {
                fputs(" and approved", f);
                if (v->rule)
                        fprintf(f, " by rule %s", v->rule);
                fputs(": ", f);
                print_active_until(v, f);
                fputs(".\n", f);
        } else {
                fputs(".\n", f);
                print_outcome(v, f);
        }
}

void print_approval(const RequestView *v, FILE *f) {
        if (STREQ(v->state, "pending") && v->approvals_required >= 0)
                fprintf(f, "Request %" PRIi64 " approved (%zu of %" PRIi64 "); still pending.\n",
                        v->id, v->n_approvals, v->approvals_required);
        else
                print_outcome(v, f);
}

static void print_field(FILE *f, const char *label, const char *value) {
        if (value)
                fprintf(f, "%*s: %s\n", LABEL_WIDTH, label, value);
}

static int print_approvals(const RequestView *v, FILE *f) {
        for (size_t i = 0; i < v->n_approvals; i++) {
                json_object *a = json_object_array_get_idx(v->approvals, i);
                _cleanup_free_ char *who = NULL, *now = NULL, *at = NULL, *comment = NULL,
                                    *label = NULL, *signer = NULL;
                int r;

                if ((r = get_escaped(a, "approver", 0, &who)) < 0 ||
                    (r = get_escaped(a, "approver_now", 0, &now)) < 0 ||
                    (r = get_time(a, "at", &at)) < 0 ||
                    (r = get_escaped(a, "comment", 0, &comment)) < 0 ||
                    (r = get_escaped(a, "signer_fingerprint", 0, &signer)) < 0)
                        return r;
                /* A person with their uid; a rule's approval has none. */
                label = person_label(who, json_get_int(a, "approver_uid", -1),
                                     json_get_renamed(a, "approver_renamed"), now, true);
                if (!label)
                        return -ENOMEM;
                fprintf(f, "%*s  %s", LABEL_WIDTH, "", label);
                if (at)
                        fprintf(f, " at %s", at);
                if (signer)
                        fprintf(f, ", signed by key %s", signer);
                if (comment)
                        fprintf(f, ": %s", comment);
                fputc('\n', f);
        }
        return 0;
}

/* The rule's approver entries ("%sre-leads", "carol") on one line. */
static int print_approvers(json_object *result, FILE *f) {
        json_object *list;

        if (!json_object_object_get_ex(result, "approvers", &list) ||
            !json_object_is_type(list, json_type_array))
                return 0;
        fprintf(f, "%*s: ", LABEL_WIDTH, "Approvers");
        size_t n = json_object_array_length(list);
        if (n == 0)
                fputs("none", f);
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(list, i);
                _cleanup_free_ char *s = NULL;
                if (json_object_is_type(e, json_type_string)) {
                        s = escape_text_len(json_object_get_string(e),
                                            (size_t) json_object_get_string_len(e), 0, NULL);
                        if (!s)
                                return -ENOMEM;
                }
                fprintf(f, "%s%s", i > 0 ? ", " : "", or_dash(s));
        }
        fputc('\n', f);
        return 0;
}

/* Whatever keys the policy's profile has, in the broker's order. */
static int print_profile(json_object *result, FILE *f) {
        json_object *profile;
        size_t width = LABEL_WIDTH;

        if (!json_object_object_get_ex(result, "profile", &profile) ||
            !json_object_is_type(profile, json_type_object) ||
            json_object_object_length(profile) == 0)
                return 0;

        json_object_object_foreach (profile, k, val) {
                size_t w;
                _cleanup_free_ char *e = escape_text(k, 0, &w);
                if (!e)
                        return -ENOMEM;
                if (w > width)
                        width = w;
                (void) val;
        }

        fputs("\nHost profile:\n", f);
        json_object_object_foreach (profile, key, value) {
                size_t len;
                const char *raw;
                if (json_object_is_type(value, json_type_string)) {
                        raw = json_object_get_string(value);
                        len = (size_t) json_object_get_string_len(value);
                } else {
                        raw = json_object_to_json_string_length(value, JSON_C_TO_STRING_PLAIN,
                                                                &len);
                        if (!raw)
                                return -ENOMEM;
                }
                size_t w;
                _cleanup_free_ char *ek = escape_text(key, 0, &w),
                                    *ev = escape_text_len(raw, len, 0, NULL);
                if (!ek || !ev)
                        return -ENOMEM;
                /* Pad by hand: printf counts bytes, not columns. */
                fprintf(f, "%*s%s: %s\n", (int) (width - w), "", ek, ev);
        }
        return 0;
}

/* The sessions under a grant, one line each: "#7 sshd pts/3 from 10.0.0.5 since T, running". */
static int print_sessions(json_object *request, const char *indent, FILE *f) {
        json_object *list;
        if (!json_object_object_get_ex(request, "sessions", &list) ||
            !json_object_is_type(list, json_type_array))
                return 0;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *s = json_object_array_get_idx(list, i), *running;
                _cleanup_free_ char *service = NULL, *tty = NULL, *rhost = NULL, *opened = NULL,
                                    *why = NULL;
                int r;
                if ((r = get_escaped(s, "service", 0, &service)) < 0 ||
                    (r = get_escaped(s, "tty", 0, &tty)) < 0 ||
                    (r = get_escaped(s, "rhost", 0, &rhost)) < 0 ||
                    (r = get_time(s, "opened_at", &opened)) < 0 ||
                    (r = get_escaped(s, "end_reason", 0, &why)) < 0)
                        return r;
                bool on = json_object_object_get_ex(s, "running", &running) &&
                          json_object_get_boolean(running);
                fprintf(f, "%s#%" PRIi64 " %s %s%s%s since %s, %s\n", indent,
                        json_get_int(s, "session", 0), or_dash(service), tty ? tty : "no tty",
                        rhost ? " from " : "", rhost ? rhost : "", or_dash(opened),
                        on ? "running" : "ended");
                if (!on && why)
                        fprintf(f, "%s   (%s)\n", indent, why);
        }
        return 0;
}

int print_request_details(json_object *result, FILE *f) {
        _cleanup_(request_view_done) RequestView v = {};
        char buf[64], dur[DURATION_BUF_MAX];
        int r;

        r = request_view_init(&v, result);
        if (r < 0)
                return r;

        fprintf(f, "%*s: %" PRIi64 "\n", LABEL_WIDTH, "Request", v.id);
        print_field(f, "State", v.state);
        if (v.requester) {
                _cleanup_free_ char *who = requester_label(&v, true);
                if (!who)
                        return -ENOMEM;
                print_field(f, "Requester", who);
        }
        print_field(f, "Service", v.service);
        if (v.command) {
                /* What sudo will run, as it will run it: an approver reads this line. */
                print_field(f, "Command", v.command_line ?: v.command);
                print_field(f, "Program", v.command);
                fprintf(f, "%*s: %s%s%s\n", LABEL_WIDTH, "Run as", v.run_as_user ?: "root",
                        v.run_as_group ? ":" : "", v.run_as_group ?: "");
                print_field(f, "In directory", v.cwd ?: "any");
        }
        print_field(f, "Duration", request_duration(&v, dur, sizeof(dur)));
        print_field(f, "One-shot", v.once ? "yes" : "no");
        print_field(f, "Reason", v.reason);
        print_field(f, "Ticket", v.ticket ?: "none");
        print_field(f, "Rule", v.rule);
        if (v.approvals_required >= 0) {
                fprintf(f, "%*s: %zu of %" PRIi64 "\n", LABEL_WIDTH, "Approvals", v.n_approvals,
                        v.approvals_required);
                r = print_approvals(&v, f);
                if (r < 0)
                        return r;
        }
        r = print_approvers(result, f);
        if (r < 0)
                return r;
        print_field(f, "Created", v.created_at);
        print_field(f, "Activated", v.activated_at);
        if (v.expires_at && request_time_left(&v, buf, sizeof(buf)))
                fprintf(f, "%*s: %s (%s left)\n", LABEL_WIDTH, "Expires", v.expires_at, buf);
        else
                print_field(f, "Expires", v.expires_at);
        if (v.ended_at && v.ended_by)
                fprintf(f, "%*s: %s by %s\n", LABEL_WIDTH, "Ended", v.ended_at, v.ended_by);
        else
                print_field(f, "Ended", v.ended_at);
        print_field(f, "End reason", v.end_reason);
        {
                _cleanup_free_ char *version = NULL, *current = NULL, *acked = NULL,
                                    *acked_at = NULL;
                if ((r = get_escaped(result, "policy_version", 0, &version)) < 0 ||
                    (r = get_escaped(result, "current_policy_version", 0, &current)) < 0 ||
                    (r = get_escaped(result, "acknowledged_by", 0, &acked)) < 0 ||
                    (r = get_time(result, "acknowledged_at", &acked_at)) < 0)
                        return r;
                json_object *bg;
                if (json_object_object_get_ex(result, "break_glass", &bg) &&
                    json_object_get_boolean(bg)) {
                        print_field(f, "Break-glass", "yes: taken without approval");
                        if (acked)
                                fprintf(f, "%*s: by %s at %s\n", LABEL_WIDTH, "Acknowledged", acked,
                                        or_dash(acked_at));
                        else
                                print_field(f, "Acknowledged", "not yet (jitctl ack ID)");
                }
                /* Which version of the policy decided, and whether it is still the one in force. */
                if (version && current && strcmp(version, current) != 0)
                        fprintf(f, "%*s: %.12s (now in force: %.12s)\n", LABEL_WIDTH, "Policy",
                                version, current);
                else if (version)
                        fprintf(f, "%*s: %.12s\n", LABEL_WIDTH, "Policy", version);
        }

        json_object *sessions;
        if (json_object_object_get_ex(result, "sessions", &sessions) &&
            json_object_is_type(sessions, json_type_array) &&
            json_object_array_length(sessions) > 0) {
                fprintf(f, "%*s:\n", LABEL_WIDTH, "Sessions");
                r = print_sessions(result, "                ", f);
                if (r < 0)
                        return r;
        }
        return print_profile(result, f);
}

/* A table of escaped cells; the first row holds the headers. */
typedef struct Cell {
        char *text;
        size_t width;
} Cell;

typedef struct Table {
        size_t n_columns;
        Cell *cells;
        size_t n_cells;
        size_t allocated;
} Table;

static void table_done(Table *t) {
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i].text);
        free(t->cells);
        *t = (Table){};
}

/* Adds the next cell, escaped and cut to max_width columns (0: no limit); NULL shows "-". */
static int table_add(Table *t, const char *text, size_t max_width) {
        if (t->n_cells == t->allocated) {
                size_t n = t->allocated ? t->allocated * 2 : 32;
                Cell *c = reallocarray(t->cells, n, sizeof(Cell));
                if (!c)
                        return -ENOMEM;
                t->cells = c;
                t->allocated = n;
        }
        Cell *c = &t->cells[t->n_cells];
        c->text = escape_text(text ?: "-", max_width, &c->width);
        if (!c->text)
                return -ENOMEM;
        t->n_cells++;
        return 0;
}

static int table_init(Table *t, const char *const *headers, size_t n) {
        *t = (Table){ .n_columns = n };
        for (size_t i = 0; i < n; i++) {
                int r = table_add(t, headers[i], 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* --no-legend: request tables without their header line or "No requests." */
static bool legend_shown = true;

void format_set_legend(bool shown) {
        legend_shown = shown;
}

static void table_print(const Table *t, FILE *f) {
        size_t widths[16] = {};
        size_t first = legend_shown ? 0 : t->n_columns; /* the header row is the first */

        for (size_t i = first; i < t->n_cells; i++) {
                size_t c = i % t->n_columns;
                if (c < ELEMENTSOF(widths) && t->cells[i].width > widths[c])
                        widths[c] = t->cells[i].width;
        }
        for (size_t i = first; i < t->n_cells; i++) {
                size_t c = i % t->n_columns;
                fputs(t->cells[i].text, f);
                if (c + 1 == t->n_columns)
                        fputc('\n', f);
                else /* no trailing blanks after the last column */
                        fprintf(f, "%*s", (int) (widths[c] - t->cells[i].width + 2), "");
        }
}

/* The columns a request table can have. */
typedef enum Column {
        COL_ID,
        COL_STATE,
        COL_REQUESTER,
        COL_SERVICE,
        COL_DURATION_OR_LEFT,
        COL_DURATION,
        COL_LEFT,
        COL_EXPIRES,
        COL_APPROVALS,
        COL_REASON,
} Column;

/* Adds one row to t from a request, the given columns in order. */
static int table_add_request(Table *t, json_object *o, const Column *columns, size_t n) {
        _cleanup_(request_view_done) RequestView v = {};
        char buf[64];
        int r;

        r = request_view_init(&v, o);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *reason = NULL, *label = NULL;
                const char *text = NULL;

                switch (columns[i]) {
                case COL_ID:
                        snprintf(buf, sizeof(buf), "%" PRIi64, v.id);
                        text = buf;
                        break;
                case COL_STATE:
                        text = v.state;
                        break;
                case COL_REQUESTER:
                        /* The uid only where the name may mislead. */
                        text = label = requester_label(&v, false);
                        if (!text)
                                return -ENOMEM;
                        break;
                case COL_SERVICE:
                        /* A grant for one command shows it: "sudo: systemctl restart nginx". */
                        if (v.command && v.command_line) {
                                if (asprintf(&label, "%s: %s", v.service ?: "sudo",
                                             v.command_line) < 0)
                                        return -ENOMEM;
                                text = label;
                        } else
                                text = v.service;
                        break;
                case COL_DURATION_OR_LEFT: {
                        char left[48];
                        if (STREQ(v.state, "active") && request_time_left(&v, left, sizeof(left))) {
                                snprintf(buf, sizeof(buf), "%s left", left);
                                text = buf;
                        } else
                                text = request_duration(&v, buf, sizeof(buf));
                        break;
                }
                case COL_DURATION:
                        text = request_duration(&v, buf, sizeof(buf));
                        break;
                case COL_LEFT:
                        text = request_time_left(&v, buf, sizeof(buf));
                        break;
                case COL_EXPIRES:
                        text = v.expires_at;
                        break;
                case COL_APPROVALS:
                        if (v.approvals_required >= 0) {
                                snprintf(buf, sizeof(buf), "%zu/%" PRIi64, v.n_approvals,
                                         v.approvals_required);
                                text = buf;
                        }
                        break;
                case COL_REASON:
                        /* Cut from the raw text so that an escape is never split. */
                        r = get_escaped(o, "reason", REASON_COLUMNS, &reason);
                        if (r < 0)
                                return r;
                        text = reason;
                        break;
                }
                /* Escaping is idempotent: text from v is escaped already, table_add()
                 * escapes again only to measure it. */
                r = table_add(t, text, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Fills t with the requests in array; t stays empty when array is. */
static int table_fill(Table *t, json_object *array, const char *const *headers,
                      const Column *columns, size_t n) {
        int r;

        if (!json_object_is_type(array, json_type_array))
                return -EBADMSG;
        size_t rows = json_object_array_length(array);
        if (rows == 0)
                return 0;
        r = table_init(t, headers, n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < rows; i++) {
                r = table_add_request(t, json_object_array_get_idx(array, i), columns, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

int print_request_table(json_object *result, FILE *f) {
        static const char *const headers[] = {
                "ID", "STATE", "REQUESTER", "SERVICE", "DURATION/LEFT", "APPROVALS", "REASON",
        };
        static const Column columns[] = {
                COL_ID,        COL_STATE,  COL_REQUESTER, COL_SERVICE, COL_DURATION_OR_LEFT,
                COL_APPROVALS, COL_REASON,
        };
        _cleanup_(table_done) Table t = {};

        int r = table_fill(&t, result, headers, columns, ELEMENTSOF(columns));
        if (r < 0)
                return r;
        if (t.n_cells == 0) {
                if (legend_shown)
                        fputs("No requests.\n", f);
        } else
                table_print(&t, f);
        return 0;
}

/* The fleet store's connection, shown to root and auditors (docs/fleet.md):
 * "Fleet: host db-7, connected since ...; last poll ...; 12 changes seen." */
static int print_fleet_line(json_object *broker, FILE *f) {
        _cleanup_free_ char *host = NULL, *state = NULL, *since = NULL, *last_poll = NULL,
                            *error = NULL;
        json_object *fleet;
        int r;

        if (!json_object_object_get_ex(broker, "fleet", &fleet) ||
            !json_object_is_type(fleet, json_type_object))
                return 0;
        if ((r = get_escaped(fleet, "host", 0, &host)) < 0 ||
            (r = get_escaped(fleet, "state", 0, &state)) < 0 ||
            (r = get_time(fleet, "since", &since)) < 0 ||
            (r = get_time(fleet, "last_poll", &last_poll)) < 0 ||
            (r = get_escaped(fleet, "last_error", 0, &error)) < 0)
                return r;
        fprintf(f, "Fleet: host %s, %s since %s", or_dash(host), or_dash(state), or_dash(since));
        if (error && state && !STREQ(state, "connected"))
                fprintf(f, " (%s)", error);
        fprintf(f, "; last poll %s; %" PRIi64 " change%s seen.\n", last_poll ? last_poll : "never",
                json_get_int(fleet, "changes_seen", 0),
                json_get_int(fleet, "changes_seen", 0) == 1 ? "" : "s");
        return 0;
}

static int print_broker_line(json_object *broker, FILE *f) {
        _cleanup_free_ char *version = NULL, *policy = NULL;
        int r;

        if (!json_object_is_type(broker, json_type_object))
                return 0;
        if ((r = get_escaped(broker, "version", 0, &version)) < 0 ||
            (r = get_escaped(broker, "policy", 0, &policy)) < 0)
                return r;
        fprintf(f, "Broker %s: %" PRIi64 " active, %" PRIi64 " pending", or_dash(version),
                json_get_int(broker, "active", 0), json_get_int(broker, "pending", 0));
        if (policy)
                fprintf(f, "; policy %s", policy);
        fputs(".\n", f);
        return print_fleet_line(broker, f);
}

int print_status(json_object *result, FILE *f) {
        static const char *const grant_headers[] = { "ID", "SERVICE", "LEFT", "EXPIRES", "REASON" };
        static const Column grant_columns[] = { COL_ID, COL_SERVICE, COL_LEFT, COL_EXPIRES,
                                                COL_REASON };
        static const char *const pending_headers[] = { "ID", "SERVICE", "DURATION", "APPROVALS",
                                                       "REASON" };
        static const Column pending_columns[] = { COL_ID, COL_SERVICE, COL_DURATION, COL_APPROVALS,
                                                  COL_REASON };
        static const char *const approve_headers[] = { "ID",       "REQUESTER", "SERVICE",
                                                       "DURATION", "APPROVALS", "REASON" };
        static const Column approve_columns[] = { COL_ID,       COL_REQUESTER, COL_SERVICE,
                                                  COL_DURATION, COL_APPROVALS, COL_REASON };
        _cleanup_(table_done) Table grants = {}, pending = {}, approve = {};
        json_object *g, *p, *a = NULL, *broker;
        int r;

        if (!json_object_is_type(result, json_type_object) ||
            !json_object_object_get_ex(result, "grants", &g) ||
            !json_object_object_get_ex(result, "pending", &p))
                return -EBADMSG;
        /* Both tables are built before anything is printed: a bad reply prints nothing. */
        r = table_fill(&grants, g, grant_headers, grant_columns, ELEMENTSOF(grant_columns));
        if (r < 0)
                return r;
        r = table_fill(&pending, p, pending_headers, pending_columns, ELEMENTSOF(pending_columns));
        if (r < 0)
                return r;
        /* An approver's queue comes first: what others wait for. */
        if (json_object_object_get_ex(result, "to_approve", &a) &&
            json_object_is_type(a, json_type_array) && json_object_array_length(a) > 0) {
                r = table_fill(&approve, a, approve_headers, approve_columns,
                               ELEMENTSOF(approve_columns));
                if (r < 0)
                        return r;
                fputs("Waiting for your approval (jitctl approve ID):\n", f);
                table_print(&approve, f);
                fputc('\n', f);
        }

        if (grants.n_cells == 0)
                fputs("No active grants.\n", f);
        else {
                fputs("Active grants:\n", f);
                table_print(&grants, f);
                for (size_t i = 0; i < json_object_array_length(g); i++) {
                        json_object *grant = json_object_array_get_idx(g, i), *list;
                        if (json_object_object_get_ex(grant, "sessions", &list) &&
                            json_object_array_length(list) > 0) {
                                fprintf(f, "Sessions of grant %" PRIi64 ":\n",
                                        json_get_int(grant, "id", 0));
                                r = print_sessions(grant, "  ", f);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        fputc('\n', f);
        if (pending.n_cells == 0)
                fputs("No pending requests.\n", f);
        else {
                fputs("Pending requests:\n", f);
                table_print(&pending, f);
        }
        if (json_object_object_get_ex(result, "broker", &broker)) {
                fputc('\n', f);
                return print_broker_line(broker, f);
        }
        return 0;
}
