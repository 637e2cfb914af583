/* SPDX-License-Identifier: MIT */
#include "outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "command-line.h"
#include "duration.h"
#include "sqlite-errno.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(Request *, request_free)

NotifyEvent outbox_event_of(JitEvent e, const Request *r) {
        if (!r)
                return _NOTIFY_EVENT_INVALID;
        switch (e) {
        case JIT_EVENT_REQUESTED:
                return NOTIFY_FILED;
        case JIT_EVENT_APPROVAL:
                /* The approval that completes a request is told once, as "approved". */
                return r->state == REQUEST_PENDING ? NOTIFY_APPROVAL : _NOTIFY_EVENT_INVALID;
        case JIT_EVENT_GRANTED:
        case JIT_EVENT_AUTO_APPROVED:
                return NOTIFY_APPROVED;
        case JIT_EVENT_DENIED:
                return NOTIFY_DENIED;
        case JIT_EVENT_CANCELLED:
                return NOTIFY_CANCELLED;
        case JIT_EVENT_EXPIRED:
                return NOTIFY_EXPIRED;
        case JIT_EVENT_REVOKED:
                return NOTIFY_REVOKED;
        case JIT_EVENT_TIMED_OUT:
                return NOTIFY_TIMED_OUT;
        case JIT_EVENT_BREAK_GLASS:
                return NOTIFY_BREAK_GLASS;
        case JIT_EVENT_ACKNOWLEDGED:
                return NOTIFY_ACKNOWLEDGED;
        case JIT_EVENT_WITHDRAWN:
                return NOTIFY_WITHDRAWN;
        case JIT_EVENT_CONSUMED:
                return NOTIFY_CONSUMED;
        default:
                return _NOTIFY_EVENT_INVALID;
        }
}

char *outbox_hook_identity(const PolicyNotifyHook *h) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        if (!a || json_object_array_add(a, json_object_new_string(h->command)) < 0)
                return NULL;
        for (size_t i = 0; i < h->args.n; i++)
                if (json_object_array_add(a, json_object_new_string(h->args.items[i])) < 0)
                        return NULL;
        const char *s = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
        return s ? strdup(s) : NULL;
}

void outbox_next_command(NotifyEvent ev, const Request *r, char *buf, size_t len) {
        const char *verb = "show";
        if (r->state == REQUEST_PENDING)
                verb = "approve";
        else if (r->break_glass && !r->acknowledged_by && r->state == REQUEST_ACTIVE)
                verb = "ack";
        snprintf(buf, len, "jitctl %s %" PRId64, verb, r->id);
}

/* ---- the document ---- */

static json_object *string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *time_or_null(uint64_t usec) {
        char t[RFC3339_BUF_MAX];
        return usec ? json_object_new_string(format_rfc3339(usec, t, sizeof(t))) : NULL;
}

static json_object *request_json(const Request *r, const Request *approvals, bool with_approvals) {
        json_object *o = json_object_new_object();
        char d[DURATION_BUF_MAX];
        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_int64(r->id));
        json_object_object_add(o, "state",
                               json_object_new_string(request_state_to_string(r->state)));
        json_object_object_add(o, "requester", json_object_new_string(r->requester));
        json_object_object_add(o, "requester_uid", json_object_new_int64(r->requester_uid));
        json_object_object_add(o, "service", json_object_new_string(r->service));
        json_object_object_add(o, "duration", json_object_new_int64((int64_t) r->duration));
        json_object_object_add(o, "duration_text",
                               json_object_new_string(duration_format(r->duration, d, sizeof(d))));
        json_object_object_add(o, "reason", json_object_new_string(r->reason));
        json_object_object_add(o, "ticket", string_or_null(r->ticket));
        json_object_object_add(o, "once", json_object_new_boolean(r->once));
        json_object_object_add(o, "rule", json_object_new_string(r->rule));
        json_object_object_add(o, "break_glass", json_object_new_boolean(r->break_glass));
        json_object_object_add(o, "approvals_required",
                               json_object_new_int((int) r->approvals_required));
        json_object *list = json_object_new_array();
        const Request *from = approvals ?: r;
        for (size_t i = 0; list && with_approvals && i < from->n_approvals; i++) {
                const Approval *a = &from->approvals[i];
                json_object *j = json_object_new_object();
                if (!j)
                        break;
                json_object_object_add(j, "approver", json_object_new_string(a->approver));
                json_object_object_add(j, "kind",
                                       json_object_new_string(a->by_rule ? "rule" : "person"));
                json_object_object_add(j, "comment", string_or_null(a->comment));
                json_object_object_add(j, "at", time_or_null(a->at));
                json_object_array_add(list, j);
        }
        json_object_object_add(o, "approvals", list);
        json_object_object_add(o, "approvals_count", json_object_new_int((int) from->n_approvals));
        json_object_object_add(o, "created_at", time_or_null(r->created_at));
        json_object_object_add(o, "activated_at", time_or_null(r->activated_at));
        json_object_object_add(o, "expires_at", time_or_null(r->expires_at));
        json_object_object_add(o, "ended_at", time_or_null(r->ended_at));
        json_object_object_add(o, "ended_by", string_or_null(r->ended_by));
        json_object_object_add(o, "end_reason", string_or_null(r->end_reason));
        json_object_object_add(o, "acknowledged_by", string_or_null(r->acknowledged_by));
        /* A grant for one command: what an approver must see exactly. */
        if (r->command) {
                json_object *argv = json_object_new_array();
                for (size_t i = 0; argv && r->argv && r->argv[i]; i++)
                        json_object_array_add(argv, json_object_new_string(r->argv[i]));
                _cleanup_free_ char *line = jit_command_line_quote((const char *const *) r->argv);
                json_object_object_add(o, "command", json_object_new_string(r->command));
                json_object_object_add(o, "argv", argv);
                json_object_object_add(o, "command_line", string_or_null(line));
                json_object_object_add(o, "run_as_user",
                                       json_object_new_string(r->run_as_user ?: "root"));
                json_object_object_add(o, "run_as_group", string_or_null(r->run_as_group));
                json_object_object_add(o, "cwd", string_or_null(r->cwd));
        } else
                json_object_object_add(o, "command", NULL);
        return o;
}

/* Who is asked about the request: its rule's approvers, or for a break-glass grant those
 * who review it (break_glass.requesters; root as well, who is never listed). */
static const StringList *approver_entries(const Policy *p, const Request *r) {
        if (r->break_glass)
                return &p->break_glass.requesters;
        const PolicyRule *rule = policy_find_rule(p, r->rule);
        return rule ? &rule->approvers : NULL;
}

static json_object *document(const Policy *p, NotifyEvent ev, const Effect *e,
                             const Request *approvals, const char *host, uint64_t now, bool full) {
        const Request *r = e->request;
        json_object *o = json_object_new_object();
        char command[64];
        if (!o)
                return NULL;
        json_object_object_add(o, "event", json_object_new_string(notify_event_to_string(ev)));
        json_object_object_add(o, "broker_event", json_object_new_string(jit_event_name(e->event)));
        json_object_object_add(o, "time", time_or_null(now));
        json_object_object_add(o, "actor", string_or_null(e->actor));
        json_object_object_add(o, "message", string_or_null(e->message));
        json_object_object_add(o, "host", json_object_new_string(host));
        json_object *profile = json_object_new_object();
        if (profile) {
                json_object_object_add(profile, "owner", string_or_null(p->profile.owner));
                json_object_object_add(profile, "environment",
                                       string_or_null(p->profile.environment));
                json_object_object_add(profile, "classification",
                                       string_or_null(p->profile.classification));
                json_object_object_add(profile, "description",
                                       string_or_null(p->profile.description));
        }
        json_object_object_add(o, "profile", profile);
        json_object_object_add(o, "request", request_json(r, approvals, full));
        json_object *list = json_object_new_array();
        const StringList *entries = approver_entries(p, r);
        size_t n = entries ? entries->n : 0;
        for (size_t i = 0; list && full && i < n && i < OUTBOX_APPROVERS_MAX; i++)
                json_object_array_add(list, json_object_new_string(entries->items[i]));
        json_object_object_add(o, "approvers", list);
        json_object_object_add(o, "approvers_truncated",
                               json_object_new_boolean(!full || n > OUTBOX_APPROVERS_MAX));
        outbox_next_command(ev, r, command, sizeof(command));
        json_object_object_add(o, "command", json_object_new_string(command));
        return o;
}

int outbox_payload(const Policy *p, NotifyEvent ev, const Effect *e, const Request *approvals,
                   const char *host, uint64_t now, char **ret) {
        for (int full = 1; full >= 0; full--) {
                _cleanup_(json_object_putp) json_object *o =
                        document(p, ev, e, approvals, host, now, full);
                size_t len;
                const char *s =
                        o ? json_object_to_json_string_length(
                                    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                    &len)
                          : NULL;
                if (!s)
                        return -ENOMEM;
                /* The texts of a request are bounded (protocol.h); the lists are what grows. */
                if (len > OUTBOX_PAYLOAD_MAX && full)
                        continue;
                if (!(*ret = strdup(s)))
                        return -ENOMEM;
                return 0;
        }
        return -E2BIG;
}

/* ---- the table ---- */

static int step_done(BrokerDb *db, sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        int r = rc == SQLITE_DONE ? 0 : (sqlite_errno(rc) ?: -EIO);
        db_release(db, st);
        return r;
}

int outbox_count(BrokerDb *db, int64_t *ret) {
        sqlite3_stmt *st;
        int r = db_prepare(db, "SELECT count(*) FROM outbox", &st);
        if (r < 0)
                return r;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        db_release(db, st);
        return rc == SQLITE_ROW ? 0 : (sqlite_errno(rc) ?: -EIO);
}

/* Makes room for n more rows; returns how many old ones it deleted. */
static int make_room(BrokerDb *db, size_t n) {
        int64_t count = 0;
        sqlite3_stmt *st;
        int r = outbox_count(db, &count);
        if (r < 0)
                return r;
        if (count + (int64_t) n <= OUTBOX_ROWS_MAX)
                return 0;
        int64_t excess = count + (int64_t) n - OUTBOX_ROWS_MAX;
        if ((r = db_prepare(db,
                            "DELETE FROM outbox WHERE id IN"
                            " (SELECT id FROM outbox ORDER BY id LIMIT ?1)",
                            &st)) < 0)
                return r;
        sqlite3_bind_int64(st, 1, excess);
        if ((r = step_done(db, st)) < 0)
                return r;
        return sqlite3_changes(db_sqlite(db));
}

static int insert_row(BrokerDb *db, uint64_t now, const char *hook, size_t index, NotifyEvent ev,
                      int64_t request_id, const char *payload) {
        sqlite3_stmt *st;
        int r = db_prepare(db,
                           "INSERT INTO outbox (created_at, hook, hook_index, event, request_id,"
                           " payload, attempts, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                           " 0, ?1)",
                           &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) now);
        sqlite3_bind_text(st, 2, hook, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) index);
        sqlite3_bind_text(st, 4, notify_event_to_string(ev), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, request_id);
        sqlite3_bind_text(st, 6, payload, -1, SQLITE_STATIC);
        return step_done(db, st);
}

int outbox_stage(BrokerDb *db, const Policy *p, EffectQueue *q, uint64_t now) {
        size_t first = q->n_due, last = q->n, wanted = 0;
        char host[256] = "";
        int r;

        if (!p || p->n_notify == 0)
                return 0;
        for (size_t i = first; i < last; i++) {
                NotifyEvent ev = outbox_event_of(q->items[i].event, q->items[i].request);
                for (size_t h = 0; ev != _NOTIFY_EVENT_INVALID && h < p->n_notify; h++)
                        wanted += policy_notify_hook_wants(&p->notify[h], ev);
        }
        if (wanted == 0)
                return 0;

        int dropped = make_room(db, wanted);
        if (dropped < 0)
                return dropped;
        if (gethostname(host, sizeof(host) - 1) < 0)
                snprintf(host, sizeof(host), "localhost");

        size_t written = 0;
        for (size_t i = first; i < last; i++) {
                const Effect *e = &q->items[i];
                NotifyEvent ev = outbox_event_of(e->event, e->request);
                _cleanup_(request_freep) Request *saved = NULL;
                _cleanup_free_ char *payload = NULL;
                bool any = false;

                for (size_t h = 0; ev != _NOTIFY_EVENT_INVALID && h < p->n_notify; h++)
                        any = any || policy_notify_hook_wants(&p->notify[h], ev);
                if (!any)
                        continue;
                /* The approvals as this transaction leaves them: the effect's copy was taken
                 * before the approval it tells of was added. */
                if ((e->event == JIT_EVENT_APPROVAL || e->event == JIT_EVENT_GRANTED) &&
                    (r = db_get_request(db, e->request->id, &saved)) < 0)
                        return r;
                if ((r = outbox_payload(p, ev, e, saved, host, now, &payload)) < 0)
                        return r;
                for (size_t h = 0; h < p->n_notify; h++) {
                        if (!policy_notify_hook_wants(&p->notify[h], ev))
                                continue;
                        _cleanup_free_ char *identity = outbox_hook_identity(&p->notify[h]);
                        if (!identity)
                                return -ENOMEM;
                        if ((r = insert_row(db, now, identity, h, ev, e->request->id, payload)) < 0)
                                return r;
                        written++;
                }
        }
        /* Staged last, so that the loop above never sees it; it is no event of a request. */
        char field[64];
        snprintf(field, sizeof(field), "JIT_NOTIFY_DROPPED=%d", dropped);
        if (dropped > 0 &&
            (r = effect_stage(q, JIT_EVENT_NOTIFY_DROPPED, LOG_WARNING, NULL, "broker", field,
                              "notification outbox full (%d rows): the %d oldest undelivered "
                              "notification%s dropped",
                              OUTBOX_ROWS_MAX, dropped, dropped == 1 ? " was" : "s were")) < 0)
                return r;
        return (int) written;
}

int outbox_due_per_hook(BrokerDb *db, uint64_t now, int64_t **ret, size_t *ret_n) {
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0, allocated = 0;
        sqlite3_stmt *st;
        int rc, r = db_prepare(db,
                               "SELECT min(id) FROM outbox WHERE next_attempt_at <= ?1"
                               " GROUP BY hook ORDER BY 1",
                               &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) now);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == allocated) {
                        size_t k = allocated ? allocated * 2 : 8;
                        int64_t *l = reallocarray(ids, k, sizeof(int64_t));
                        if (!l) {
                                db_release(db, st);
                                return -ENOMEM;
                        }
                        ids = l;
                        allocated = k;
                }
                ids[n++] = sqlite3_column_int64(st, 0);
        }
        db_release(db, st);
        if (rc != SQLITE_DONE)
                return sqlite_errno(rc) ?: -EIO;
        *ret = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

int outbox_next_due(BrokerDb *db, uint64_t now, uint64_t *ret) {
        sqlite3_stmt *st;
        int r = db_prepare(db, "SELECT min(next_attempt_at) FROM outbox WHERE next_attempt_at > ?1",
                           &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) now);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
                *ret = (uint64_t) sqlite3_column_int64(st, 0);
                r = 1;
        } else
                r = rc == SQLITE_ROW ? 0 : (sqlite_errno(rc) ?: -EIO);
        db_release(db, st);
        return r;
}

static char *column_strdup(sqlite3_stmt *st, int i) {
        const unsigned char *s = sqlite3_column_text(st, i);
        return s ? strdup((const char *) s) : NULL;
}

void outbox_row_done(OutboxRow *r) {
        free(r->hook);
        free(r->event);
        free(r->payload);
        free(r->last_error);
        *r = (OutboxRow){};
}

int outbox_get(BrokerDb *db, int64_t id, OutboxRow *ret) {
        sqlite3_stmt *st;
        int r = db_prepare(db,
                           "SELECT id, created_at, hook, hook_index, event, request_id, payload,"
                           " attempts, next_attempt_at, last_error FROM outbox WHERE id = ?1",
                           &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                db_release(db, st);
                return rc == SQLITE_DONE ? -ENOENT : (sqlite_errno(rc) ?: -EIO);
        }
        OutboxRow row = {
                .id = sqlite3_column_int64(st, 0),
                .created_at = (uint64_t) sqlite3_column_int64(st, 1),
                .hook = column_strdup(st, 2),
                .hook_index = (unsigned) sqlite3_column_int64(st, 3),
                .event = column_strdup(st, 4),
                .request_id = sqlite3_column_int64(st, 5),
                .payload = column_strdup(st, 6),
                .attempts = (unsigned) sqlite3_column_int64(st, 7),
                .next_attempt_at = (uint64_t) sqlite3_column_int64(st, 8),
                .last_error = column_strdup(st, 9),
        };
        db_release(db, st);
        if (!row.hook || !row.event || !row.payload) {
                outbox_row_done(&row);
                return -ENOMEM;
        }
        *ret = row;
        return 0;
}

int outbox_delete(BrokerDb *db, int64_t id) {
        sqlite3_stmt *st;
        int r = db_prepare(db, "DELETE FROM outbox WHERE id = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        return step_done(db, st);
}

int outbox_failed(BrokerDb *db, int64_t id, unsigned attempts, uint64_t next_attempt_at,
                  const char *error) {
        sqlite3_stmt *st;
        int r = db_prepare(db,
                           "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4"
                           " WHERE id = ?1",
                           &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, attempts);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) next_attempt_at);
        if (error)
                sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 4);
        if ((r = step_done(db, st)) < 0)
                return r;
        return sqlite3_changes(db_sqlite(db)) > 0 ? 0 : -ENOENT;
}

void outbox_hooks_free(char **hooks, int64_t *counts, size_t n) {
        for (size_t i = 0; hooks && i < n; i++)
                free(hooks[i]);
        free(hooks);
        free(counts);
}

int outbox_hooks(BrokerDb *db, char ***ret_hooks, int64_t **ret_counts, size_t *ret_n) {
        char **hooks = NULL;
        int64_t *counts = NULL;
        size_t n = 0;
        sqlite3_stmt *st;
        int rc, r = db_prepare(db, "SELECT hook, count(*) FROM outbox GROUP BY hook", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                char **h = reallocarray(hooks, n + 1, sizeof(char *));
                if (h)
                        hooks = h;
                int64_t *c = reallocarray(counts, n + 1, sizeof(int64_t));
                if (c)
                        counts = c;
                if (!h || !c || !(hooks[n] = column_strdup(st, 0))) {
                        db_release(db, st);
                        outbox_hooks_free(hooks, counts, n);
                        return -ENOMEM;
                }
                counts[n++] = sqlite3_column_int64(st, 1);
        }
        db_release(db, st);
        if (rc != SQLITE_DONE) {
                outbox_hooks_free(hooks, counts, n);
                return sqlite_errno(rc) ?: -EIO;
        }
        *ret_hooks = hooks;
        *ret_counts = counts;
        *ret_n = n;
        return 0;
}

int outbox_drop_hook(BrokerDb *db, const char *hook) {
        sqlite3_stmt *st;
        int r = db_prepare(db, "DELETE FROM outbox WHERE hook = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, hook, -1, SQLITE_STATIC);
        if ((r = step_done(db, st)) < 0)
                return r;
        return sqlite3_changes(db_sqlite(db));
}
