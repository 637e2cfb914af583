/* SPDX-License-Identifier: MIT */
/* One function per protocol operation (common/PROTOCOL.md). Each authorizes the caller
 * from SO_PEERCRED, validates every field, changes state in one transaction through the
 * state machine, logs the event, and answers. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access-log.h"
#include "approval-signature.h"
#include "broker-audit.h"
#include "broker-journal.h"
#include "broker-sessions.h"
#include "broker.h"
#include "check-cache.h"
#include "cleanup.h"
#include "command-line.h"
#include "config.h"
#include "duration.h"
#include "event-stream.h"
#include "fleet-client.h"
#include "grant.h"
#include "names.h"
#include "passwd-cache.h"
#include "policy-json.h"
#include "protocol.h"
#include "timeutil.h"

/* The group whose members read everything the audit log holds, unless the policy names another. */
#define AUDIT_GROUP "jit-auditors"

DEFINE_TRIVIAL_CLEANUP_FUNC(Request *, request_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

typedef struct Op {
        Broker *b;
        const struct ucred *peer;
        int peer_fd; /* the connection, for SO_PEERPIDFD */
        json_object *msg;
        Identity caller;
        bool *taken; /* a stream took the connection (watch, wait): no reply */
} Op;

static json_object *json_time(uint64_t usec) {
        char buf[RFC3339_BUF_MAX];
        return usec ? json_object_new_string(format_rfc3339(usec, buf, sizeof(buf))) : NULL;
}

static json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static uint64_t grant_usec_left(const Broker *b, const Request *r) {
        if (r->state != REQUEST_ACTIVE || strcmp(r->boot_id, b->boot_id) != 0)
                return 0;
        uint64_t nb = now_usec(CLOCK_BOOTTIME), nr = now_usec(CLOCK_REALTIME);
        uint64_t by_boot = r->deadline_boot > nb ? r->deadline_boot - nb : 0;
        uint64_t by_real = r->expires_at > nr ? r->expires_at - nr : 0;
        return by_boot < by_real ? by_boot : by_real;
}

/* Whether a name stored with a request (its requester's, an approver's) still names the
 * uid stored beside it, and what that uid is called now. Accounts are renamed and names
 * reused: the grant is bound to the uid, and what people are shown must not let the name
 * mislead them. */
typedef struct NameCheck {
        char *name; /* as stored */
        uid_t uid;
        int renamed; /* 1: the name no longer maps to the uid; 0: it does; -1: unknown */
        char *now;   /* the uid's name now; NULL when it has none (or NSS failed) */
} NameCheck;

static void name_check_done(NameCheck *c) {
        free(c->name);
        free(c->now);
        *c = (NameCheck){ .uid = (uid_t) -1, .renamed = -1 };
}

static void name_check_fill(const Broker *b, NameCheck *c, const char *name, uid_t uid) {
        uid_t by_name;
        int r = 0;

        name_check_done(c);
        c->name = strdup(name);
        c->uid = uid;
        /* The usual case costs one lookup: the name still maps to the uid. The password
         * file's answer, when NSS would take it from there, without reading it again. */
        if (b->passwd_cache && valid_account_name(name))
                r = passwd_cache_lookup(b->passwd_cache, name, &by_name);
        if (r == 0)
                r = user_uid_from_name(name, &by_name);
        if (r >= 0 && by_name == uid) {
                c->renamed = 0;
                c->now = strdup(name);
                return;
        }
        if (r < 0 && r != -ENOENT && r != -EINVAL)
                return; /* NSS failed: unknown, not flagged */
        c->renamed = 1;
        Identity id = { .uid = (uid_t) -1 };
        if (identity_from_uid(uid, &id) >= 0)
                c->now = TAKE_PTR(id.name);
        identity_done(&id);
}

/* A list of many requests by a few people asks NSS once per person: answers are kept for
 * one iteration of the event loop (one reply), never longer, so a rename shows at once. */
#define NAME_MEMO_MAX 64
static struct {
        uint64_t iteration; /* sd_event_now() of the iteration the entries belong to */
        NameCheck entries[NAME_MEMO_MAX];
        size_t n;
        NameCheck scratch; /* when the memo cannot be used */
} name_memo;

/* The answer for (name, uid); valid until the next call. */
static const NameCheck *name_check(const Broker *b, const char *name, uid_t uid) {
        uint64_t iteration;

        /* sd_event_now() returns 0 with the time of the current iteration, 1 before the
         * first one (a time that is no iteration's). */
        if (!b->event || sd_event_now(b->event, CLOCK_MONOTONIC, &iteration) != 0) {
                name_check_fill(b, &name_memo.scratch, name, uid);
                return &name_memo.scratch;
        }
        if (iteration != name_memo.iteration) {
                for (size_t i = 0; i < name_memo.n; i++)
                        name_check_done(&name_memo.entries[i]);
                name_memo.n = 0;
                name_memo.iteration = iteration;
        }
        for (size_t i = 0; i < name_memo.n; i++) {
                NameCheck *c = &name_memo.entries[i];
                if (c->uid == uid && c->name && STREQ(c->name, name))
                        return c;
        }
        NameCheck *c = name_memo.n < NAME_MEMO_MAX ? &name_memo.entries[name_memo.n++]
                                                   : &name_memo.scratch;
        name_check_fill(b, c, name, uid);
        return c;
}

/* PREFIX_renamed (true, false, or null when NSS could not say) and PREFIX_now (the uid's
 * name now, or null) for the name and uid stored in a request. */
static void add_name_check(const Broker *b, json_object *o, const char *prefix, const char *name,
                           uid_t uid) {
        const NameCheck *c = name_check(b, name, uid);
        char key[32];

        snprintf(key, sizeof(key), "%s_renamed", prefix);
        json_object_object_add(o, key,
                               c->renamed < 0 ? NULL : json_object_new_boolean(c->renamed > 0));
        snprintf(key, sizeof(key), "%s_now", prefix);
        json_object_object_add(o, key, json_string_or_null(c->now));
}

static json_object *request_to_json(const Broker *b, const Request *r) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_int64(r->id));
        json_object_object_add(o, "state",
                               json_object_new_string(request_state_to_string(r->state)));
        json_object_object_add(o, "requester", json_object_new_string(r->requester));
        json_object_object_add(o, "requester_uid", json_object_new_int64(r->requester_uid));
        add_name_check(b, o, "requester", r->requester, r->requester_uid);
        json_object_object_add(o, "service", json_object_new_string(r->service));
        json_object_object_add(o, "duration", json_object_new_int64((int64_t) r->duration));
        json_object_object_add(o, "reason", json_object_new_string(r->reason));
        json_object_object_add(o, "ticket", json_string_or_null(r->ticket));
        json_object_object_add(o, "once", json_object_new_boolean(r->once));
        json_object_object_add(o, "rule", json_object_new_string(r->rule));
        json_object_object_add(o, "approvals_required",
                               json_object_new_int((int) r->approvals_required));

        json_object *approvals = json_object_new_array();
        for (size_t i = 0; approvals && i < r->n_approvals; i++) {
                json_object *a = json_object_new_object();
                if (!a)
                        break;
                json_object_object_add(a, "approver",
                                       json_object_new_string(r->approvals[i].approver));
                json_object_object_add(
                        a, "kind",
                        json_object_new_string(r->approvals[i].by_rule ? "rule" : "person"));
                json_object_object_add(
                        a, "approver_uid",
                        r->approvals[i].by_rule
                                ? NULL
                                : json_object_new_int64(r->approvals[i].approver_uid));
                if (!r->approvals[i].by_rule)
                        add_name_check(b, a, "approver", r->approvals[i].approver,
                                       r->approvals[i].approver_uid);
                json_object_object_add(a, "policy_version",
                                       json_string_or_null(r->approvals[i].policy_version));
                json_object_object_add(a, "comment", json_string_or_null(r->approvals[i].comment));
                json_object_object_add(a, "signer_fingerprint",
                                       json_string_or_null(r->approvals[i].signer_fingerprint));
                json_object_object_add(a, "at", json_time(r->approvals[i].at));
                json_object_array_add(approvals, a);
        }
        json_object_object_add(o, "approvals", approvals);

        json_object_object_add(o, "created_at", json_time(r->created_at));
        json_object_object_add(o, "activated_at", json_time(r->activated_at));
        json_object_object_add(o, "expires_at", json_time(r->expires_at));
        json_object_object_add(o, "ended_at", json_time(r->ended_at));
        json_object_object_add(o, "ended_by", json_string_or_null(r->ended_by));
        json_object_object_add(o, "end_reason", json_string_or_null(r->end_reason));
        json_object_object_add(o, "policy_version", json_string_or_null(r->policy_version));
        json_object_object_add(o, "break_glass", json_object_new_boolean(r->break_glass));
        json_object_object_add(o, "acknowledged_by", json_string_or_null(r->acknowledged_by));
        json_object_object_add(o, "acknowledged_at", json_time(r->acknowledged_at));
        if (r->command) {
                json_object *argv = json_object_new_array();
                for (size_t i = 0; argv && r->argv && r->argv[i]; i++)
                        json_object_array_add(argv, json_object_new_string(r->argv[i]));
                json_object_object_add(o, "command", json_object_new_string(r->command));
                json_object_object_add(o, "argv", argv);
                json_object_object_add(o, "run_as_user",
                                       json_object_new_string(r->run_as_user ?: "root"));
                json_object_object_add(o, "run_as_group", json_string_or_null(r->run_as_group));
                json_object_object_add(o, "cwd", json_string_or_null(r->cwd));
                _cleanup_free_ char *line = jit_command_line_quote((const char *const *) r->argv);
                json_object_object_add(o, "command_line", json_string_or_null(line));
        } else
                json_object_object_add(o, "command", NULL);
        json_object_object_add(
                o, "seconds_left",
                r->state == REQUEST_ACTIVE
                        ? json_object_new_int64((int64_t) (grant_usec_left(b, r) / USEC_PER_SEC))
                        : NULL);
        return o;
}

json_object *broker_request_to_json(const Broker *b, const Request *r) {
        return request_to_json(b, r);
}

/* The approver entries of the rule named so in the policy in force (none when it is gone). */
static json_object *rule_approvers_json(const Policy *p, const char *rule_name) {
        const PolicyRule *rule = policy_find_rule(p, rule_name);
        json_object *approvers = json_object_new_array();
        for (size_t i = 0; rule && approvers && i < rule->approvers.n; i++)
                json_object_array_add(approvers, json_object_new_string(rule->approvers.items[i]));
        return approvers;
}

/* The reply of a change to request id: saved is the request as the change wrote it, when
 * the operation has it (then nothing is read back), or NULL. */
static json_object *reply_request_saved(Op *op, int64_t id, Request *saved) {
        _cleanup_(request_freep) Request *r = saved;
        int k = r ? 0 : db_get_request(op->b->db, id, &r);
        if (k < 0) {
                log_error_errno(k, "reading request %lld back: %m", (long long) id);
                return jit_reply_error(JIT_ERROR_INTERNAL,
                                       "the change was saved but could not be read back");
        }
        return jit_reply_ok(request_to_json(op->b, r));
}

static json_object *reply_request(Op *op, int64_t id) {
        return reply_request_saved(op, id, NULL);
}

static json_object *internal_error(Op *op, const char *what, int r) {
        log_error_errno(r, "%s (for uid %u): %m; sqlite: %s", what, (unsigned) op->peer->uid,
                        db_error(op->b->db));
        return jit_reply_error(JIT_ERROR_INTERNAL,
                               "the broker failed while %s; nothing was changed", what);
}

static json_object *refuse(Op *op, const Request *r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static json_object *refuse(Op *op, const Request *r, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        char who[32];
        snprintf(who, sizeof(who), "uid %u", (unsigned) op->peer->uid);
        /* At a bounded rate per uid, as the core's refusals (effects.h). */
        if (effect_log_allowed(&op->b->effects, JIT_EVENT_REFUSED, op->peer->uid,
                               now_usec(CLOCK_BOOTTIME)))
                log_event(JIT_EVENT_REFUSED, LOG_NOTICE, r, op->caller.name ?: who, NULL,
                          "refused %s: %s", op->caller.name ?: who, msg);
        return jit_reply_error(JIT_ERROR_REFUSED, "%s", msg);
}

/* The reply for a change the core refused or could not make; failures are logged here,
 * refusals were recorded by the core. */
static json_object *grant_error_reply(Op *op, int r, const GrantError *e) {
        if (e->doing)
                log_error_errno(r, "%s (for uid %u): %m; sqlite: %s", e->doing,
                                (unsigned) op->peer->uid, db_error(op->b->db));
        else if (e->held)
                log_error_errno(r, "%s (for uid %u)", e->message, (unsigned) op->peer->uid);
        return jit_reply_error(e->code, "%s", e->message);
}

static json_object *bad_field(json_object *msg, const char *field, int r, size_t max) {
        if (r == -E2BIG)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "%s is longer than %zu bytes", field,
                                       max);
        if (r == -EBADMSG) {
                /* Names the character: "reason contains an invisible or reordering
                 * character (U+202E); remove it". */
                char why[256];
                jit_message_string_problem(msg, field, why, sizeof(why));
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "%s", why);
        }
        return jit_reply_error(JIT_ERROR_BAD_REQUEST, "%s is missing or of the wrong type", field);
}

static int get_id(json_object *msg, int64_t *ret) {
        return jit_message_get_int(msg, "id", 1, INT64_MAX, true, ret, NULL);
}

static bool is_root(const Op *op) {
        return op->peer->uid == 0;
}

static bool may_see(const Op *op, const Request *r) {
        return grant_may_see(&op->b->grants, &op->caller, r);
}

/* ---- check: the PAM module asks whether a user holds a grant ---- */

/* The PAM stack's two questions share their message: root only, a user and a service. */
static json_object *get_user_service(Op *op, const char *what, const char **ret_user,
                                     const char **ret_service) {
        int r;

        /* Only root (the PAM stack inside sudo/sshd) may ask on someone's behalf. */
        if (!is_root(op))
                return refuse(op, NULL, "only root may %s", what);
        if ((r = jit_message_get_string(op->msg, "user", JIT_USER_MAX, true, ret_user)) < 0)
                return bad_field(op->msg, "user", r, JIT_USER_MAX);
        if ((r = jit_message_get_string(op->msg, "service", JIT_SERVICE_MAX, true, ret_service)) <
            0)
                return bad_field(op->msg, "service", r, JIT_SERVICE_MAX);
        if (!jit_service_name_is_valid(*ret_service))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "service must be a PAM service name");
        return NULL;
}

/* The active grant of the named user for service, now: 1 with *ret_id, 0 for none (an
 * unknown user has none), or -errno. */
/* The broker whose core and journal limits the check consults wherever it is answered:
 * the front thread answers root's checks with a view of the broker that has only a database
 * connection and the boot id (broker-server.c). Both are safe from another thread. */
static Broker *shared_broker;

void broker_ops_share(Broker *b) {
        shared_broker = b;
}

static Broker *core_of(Op *op) {
        return shared_broker ?: op->b;
}

/* The active grant of the named user for service, now: 1 with *ret_id, 0 for none (an
 * unknown user has none), or -errno. *ret_uid is the user's uid ((uid_t) -1 when unknown).
 * A grant the core has ended in memory, its end not saved yet, is none: *ret_held names it.
 * So is a one-shot grant whose one session is held without a record. */
/* db_find_grant(), or its answer kept from when the database was last as it is now (where
 * the front thread answers, check-cache.h): the deadlines are compared with the clocks at
 * every use, and a kept answer whose grant has run out is read again. */
static int grant_of(Op *op, uid_t uid, const char *service, int64_t *ret_id,
                    uint64_t *ret_expires_at) {
        uint64_t now_boot = now_usec(CLOCK_BOOTTIME), now_real = now_usec(CLOCK_REALTIME);
        uint8_t stamp[CHECK_CACHE_STAMP_SIZE];
        CheckCache *cache = op->b->check_cache;
        CheckAnswer a;

        bool stamped = cache && check_cache_stamp(cache, stamp);
        if (stamped && check_cache_get(cache, stamp, uid, service, &a)) {
                if (a.id == 0)
                        return 0; /* no change since: still none (time ends grants, never makes one)
                                   */
                if (a.deadline_boot > now_boot && a.expires_at > now_real) {
                        *ret_id = a.id;
                        *ret_expires_at = a.expires_at;
                        return 1;
                }
        }
        a = (CheckAnswer){ 0 };
        int r = db_find_grant(op->b->db, uid, service, op->b->boot_id, now_boot, now_real, &a.id,
                              &a.expires_at, &a.deadline_boot);
        if (r < 0)
                return r;
        if (r == 0)
                a.id = 0;
        if (stamped)
                check_cache_put(cache, stamp, uid, service, &a);
        *ret_id = a.id;
        *ret_expires_at = a.expires_at;
        return r;
}

static int find_grant(Op *op, const char *user, const char *service, uid_t *ret_uid,
                      int64_t *ret_id, uint64_t *ret_expires_at, int64_t *ret_held) {
        uid_t uid;
        *ret_uid = (uid_t) -1;
        *ret_held = 0;
        int r = 0;
        if (op->b->passwd_cache && valid_account_name(user))
                r = passwd_cache_lookup(op->b->passwd_cache, user, &uid);
        if (r == 0)
                r = user_uid_from_name(user, &uid);
        if (r == -ENOENT || r == -EINVAL)
                return 0;
        if (r < 0)
                return r;
        *ret_uid = uid;
        /* An end the core held in memory while the answer was read, and saved and let go of
         * before it is looked for, would be in neither: when one was let go of meanwhile,
         * the answer is read again (the core saves an end before it lets go, so the next
         * read has it). Three tries, then no. */
        Grants *core = &core_of(op)->grants;
        for (unsigned attempt = 0; attempt < 3; attempt++) {
                uint64_t saved = grants_held_saved(core);
                r = grant_of(op, uid, service, ret_id, ret_expires_at);
                bool held = r > 0 && grants_ended_in_memory(core, *ret_id);
                if (grants_held_saved(core) != saved)
                        continue;
                if (held) {
                        *ret_held = *ret_id;
                        return 0;
                }
                return r;
        }
        return 0;
}

/* The check's answer, logged: NULL with *ret_id (0: not allowed) and *ret_expires_at, or
 * the error reply. */
static json_object *check_decide(Op *op, int64_t *ret_id, uint64_t *ret_expires_at) {
        const char *user, *service;
        json_object *bad = get_user_service(op, "check grants", &user, &service);
        int r;

        if (bad)
                return bad;

        int64_t id = 0, held = 0;
        uint64_t expires_at = 0;
        uid_t uid;
        r = find_grant(op, user, service, &uid, &id, &expires_at, &held);
        if (r < 0)
                return internal_error(op, "looking up a grant", r);

        /* commands: pam_jit saw sudo.conf load jit_approval, which then decides on the
         * command itself: a grant for one command lets this sudo through to it. */
        bool commands = false;
        if (r == 0 && !held && uid != (uid_t) -1 && STREQ(service, "sudo") &&
            jit_message_get_bool(op->msg, "commands", &commands) >= 0 && commands) {
                Request **list = NULL;
                size_t n = 0;
                int k = db_find_command_grants(op->b->db, uid, op->b->boot_id,
                                               now_usec(CLOCK_BOOTTIME), now_usec(CLOCK_REALTIME),
                                               &list, &n);
                if (k < 0)
                        return internal_error(op, "looking up command grants", k);
                /* As find_grant(): an end let go of while this was read may be in neither. */
                uint64_t saved = grants_held_saved(&core_of(op)->grants);
                for (size_t i = 0; i < n && r == 0; i++)
                        if (!grants_ended_in_memory(&core_of(op)->grants, list[i]->id)) {
                                id = list[i]->id;
                                expires_at = list[i]->expires_at;
                                r = 1;
                        }
                request_free_many(list, n);
                if (grants_held_saved(&core_of(op)->grants) != saved)
                        r = 0, id = 0; /* refused; the next sudo asks again */
        }

        bool allowed = r > 0;
        uint64_t uses = 1, now = now_usec(CLOCK_BOOTTIME);
        bool log_allowed = allowed && (!op->b->access_log ||
                                       access_log_use(op->b->access_log, id, now, &uses));
        /* Anyone can make sudo ask at will: denials are logged at a bounded rate per user. */
        bool log_denied = !allowed && effect_log_allowed(&core_of(op)->effects,
                                                         JIT_EVENT_ACCESS_DENIED, uid, now);
        if (log_allowed || log_denied) {
                char id_field[64], user_field[JIT_USER_MAX + 16],
                        service_field[JIT_SERVICE_MAX + 16], uses_field[64];
                snprintf(id_field, sizeof(id_field), "JIT_REQUEST_ID=%lld",
                         (long long) (allowed ? id : held));
                snprintf(user_field, sizeof(user_field), "JIT_USER=%s", user);
                snprintf(service_field, sizeof(service_field), "JIT_SERVICE=%s", service);
                snprintf(uses_field, sizeof(uses_field), "JIT_USES=%" PRIu64, uses);
                const char *fields[] = { user_field, service_field,
                                         allowed || held ? id_field : NULL,
                                         allowed ? uses_field : NULL, NULL };
                if (allowed && uses > 1)
                        log_event(JIT_EVENT_ACCESS_ALLOWED, LOG_INFO, NULL, NULL, fields,
                                  "%s allowed for %s under grant %lld (%" PRIu64
                                  " uses since the last entry)",
                                  service, user, (long long) id, uses);
                else if (allowed)
                        log_event(JIT_EVENT_ACCESS_ALLOWED, LOG_INFO, NULL, NULL, fields,
                                  "%s allowed for %s under grant %lld", service, user,
                                  (long long) id);
                else if (held)
                        log_event(JIT_EVENT_ACCESS_DENIED, LOG_NOTICE, NULL, NULL, fields,
                                  "%s denied for %s: grant %lld has ended (not saved yet)", service,
                                  user, (long long) held);
                else
                        log_event(JIT_EVENT_ACCESS_DENIED, LOG_NOTICE, NULL, NULL, fields,
                                  "%s denied for %s: no active grant", service, user);
        }

        *ret_id = allowed ? id : 0;
        *ret_expires_at = allowed ? expires_at : 0;
        return NULL;
}

static json_object *op_check(Op *op) {
        int64_t id;
        uint64_t expires_at;
        json_object *bad = check_decide(op, &id, &expires_at);
        if (bad)
                return bad;
        json_object *res = json_object_new_object();
        if (!res)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        json_object_object_add(res, "allowed", json_object_new_boolean(id > 0));
        json_object_object_add(res, "request_id", id > 0 ? json_object_new_int64(id) : NULL);
        json_object_object_add(res, "expires_at", id > 0 ? json_time(expires_at) : NULL);
        return jit_reply_ok(res);
}

json_object *broker_check_text(Broker *b, const struct ucred *peer, json_object *msg, char *buf,
                               size_t size, size_t *ret_len) {
        Op op = { .b = b, .peer = peer, .peer_fd = -EBADF, .msg = msg };
        int64_t id;
        uint64_t expires_at;
        int n;

        *ret_len = 0;
        if (peer->uid != 0) /* the rate limit and the refusal: broker_dispatch() */
                return broker_dispatch(b, peer, -EBADF, msg, NULL);
        json_object *bad = check_decide(&op, &id, &expires_at);
        if (bad)
                return bad;
        /* What op_check()'s reply serializes to, byte for byte: no string in it comes from
         * the request. */
        if (id > 0) {
                char t[RFC3339_BUF_MAX];
                n = snprintf(buf, size,
                             "{\"version\":%d,\"ok\":true,\"result\":{\"allowed\":true,"
                             "\"request_id\":%" PRId64 ",\"expires_at\":\"%s\"}}",
                             JIT_PROTOCOL_VERSION, id, format_rfc3339(expires_at, t, sizeof(t)));
        } else
                n = snprintf(buf, size,
                             "{\"version\":%d,\"ok\":true,\"result\":{\"allowed\":false,"
                             "\"request_id\":null,\"expires_at\":null}}",
                             JIT_PROTOCOL_VERSION);
        if (n < 0 || (size_t) n >= size)
                return jit_reply_error(JIT_ERROR_INTERNAL, "reply could not be built");
        *ret_len = (size_t) n;
        return NULL;
}

/* ---- request ---- */

/* The command line of a check-command (or a command request) from msg, its strings
 * borrowed from msg; argv allocated (free it). NULL, or the error reply. */
static json_object *get_command_line(Op *op, JitCommandLine *cl, const char ***ret_argv) {
        json_object *a;
        int r;

        *cl = (JitCommandLine){};
        if ((r = jit_message_get_string(op->msg, "command", JIT_COMMAND_PATH_MAX, true,
                                        &cl->command)) < 0)
                return bad_field(op->msg, "command", r, JIT_COMMAND_PATH_MAX);
        if (!json_object_object_get_ex(op->msg, "argv", &a) ||
            !json_object_is_type(a, json_type_array) || json_object_array_length(a) < 1 ||
            json_object_array_length(a) > JIT_COMMAND_ARGS_MAX)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "argv must be an array of 1 to %d strings",
                                       JIT_COMMAND_ARGS_MAX);
        size_t n = json_object_array_length(a);
        const char **argv = calloc(n + 1, sizeof(char *));
        if (!argv)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(a, i);
                if (!json_object_is_type(v, json_type_string) ||
                    strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v)) {
                        free(argv);
                        return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                               "argv must be an array of strings without NUL");
                }
                argv[i] = json_object_get_string(v);
        }
        cl->argv = argv;
        if ((r = jit_message_get_string(op->msg, "run_as_user", JIT_USER_MAX, false,
                                        &cl->run_as_user)) < 0 ||
            (r = jit_message_get_string(op->msg, "run_as_group", JIT_USER_MAX, false,
                                        &cl->run_as_group)) < 0 ||
            (r = jit_message_get_string(op->msg, "cwd", JIT_COMMAND_PATH_MAX, false, &cl->cwd)) <
                    0) {
                free(argv);
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "run_as_user, run_as_group and cwd must be short strings");
        }
        if ((r = jit_command_line_check(cl)) < 0) {
                free(argv);
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "%s", jit_command_line_error(r));
        }
        /* check-command: how sudo will run it, as the plugin saw (absent: not plain). */
        if (jit_message_get_bool(op->msg, "env_plain", &cl->env_plain) < 0 ||
            jit_message_get_bool(op->msg, "chroot", &cl->chroot) < 0 ||
            jit_message_get_bool(op->msg, "sudoedit", &cl->sudoedit) < 0) {
                free(argv);
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "env_plain, chroot and sudoedit must be booleans");
        }
        *ret_argv = argv;
        return NULL;
}

static json_object *op_request(Op *op) {
        const char *service, *reason, *ticket;
        int64_t duration = 0;
        bool has_duration, once;
        int r;

        if ((r = jit_message_get_string(op->msg, "service", JIT_SERVICE_MAX, false, &service)) < 0)
                return bad_field(op->msg, "service", r, JIT_SERVICE_MAX);
        if (!service)
                service = "sudo";
        if (!jit_service_name_is_valid(service))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "service must be a PAM service name "
                                                              "(letters, digits, '.', '_', '-')");
        if ((r = jit_message_get_string(op->msg, "reason", JIT_REASON_MAX, true, &reason)) < 0)
                return bad_field(op->msg, "reason", r, JIT_REASON_MAX);
        if (strspn(reason, " ") == strlen(reason))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "reason must not be empty");
        if ((r = jit_message_get_string(op->msg, "ticket", JIT_TICKET_MAX, false, &ticket)) < 0)
                return bad_field(op->msg, "ticket", r, JIT_TICKET_MAX);
        if (ticket && !*ticket)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "ticket must not be empty");
        if ((r = jit_message_get_int(op->msg, "duration", 1, (int64_t) JIT_DURATION_MAX_SEC, false,
                                     &duration, &has_duration)) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "duration must be whole seconds between 1 and %llu",
                                       (unsigned long long) JIT_DURATION_MAX_SEC);
        if (jit_message_get_bool(op->msg, "once", &once) < 0)
                return bad_field(op->msg, "once", -EINVAL, 0);
        /* A grant for one command line under sudo (jitctl request --command). */
        _cleanup_free_ const char **argv = NULL;
        _cleanup_free_ char *identity = NULL;
        JitCommandLine cl;
        json_object *command;
        bool for_command = json_object_object_get_ex(op->msg, "command", &command);
        if (for_command) {
                json_object *bad = get_command_line(op, &cl, &argv);
                if (bad)
                        return bad;
                if (!STREQ(service, "sudo"))
                        return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                               "a grant for a command is a sudo grant "
                                               "(service sudo)");
                /* The program as it is now: what sudo runs later must be this very file. */
                const char *why = NULL;
                r = jit_program_identity(cl.command, &identity, &why);
                if (r == -ENOMEM)
                        return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
                /* One answer for every other failure: the broker runs as root, and must not
                 * tell who asks what exists in directories they cannot read. */
                if (r < 0)
                        return jit_reply_error(JIT_ERROR_REFUSED, "jit cannot vouch for %s: %s",
                                               cl.command,
                                               why
                                                       ?: "not an executable file root alone "
                                                          "controls");
        }
        const char *requester;
        if ((r = jit_message_get_string(op->msg, "requester", JIT_USER_MAX, false, &requester)) < 0)
                return bad_field(op->msg, "requester", r, JIT_USER_MAX);
        _cleanup_(identity_done) Identity behalf = { .uid = (uid_t) -1 };
        const Identity *caller = &op->caller;
        if (requester) {
                /* pam_jit's wait= files for the user at the prompt; only root may say who
                 * the requester is, everyone else is the requester. */
                if (!is_root(op))
                        return refuse(op, NULL, "only root may file a request for another user");
                if (!valid_account_name(requester) || identity_from_name(requester, &behalf) < 0)
                        return jit_reply_error(JIT_ERROR_NOT_FOUND, "no user %s", requester);
                if (behalf.uid == 0)
                        return jit_reply_error(JIT_ERROR_REFUSED, "root does not ask for grants");
                caller = &behalf;
        }

        GrantAsk ask = {
                .service = service,
                .duration = has_duration ? (uint64_t) duration : 0,
                .reason = reason,
                .ticket = ticket,
                .once = once,
                .command = for_command ? &cl : NULL,
                .command_identity = identity,
        };
        GrantError e;
        int64_t id;
        if ((r = grant_file(&op->b->grants, caller, &ask, &id, &e)) < 0)
                return grant_error_reply(op, r, &e);
        return reply_request(op, id);
}

/* ---- approve, and the statement a signed approval signs ---- */

static json_object *rate_limit(Op *op);

/* A pending request the caller may approve, for the statement and the signature check: the
 * cheap refusals come before any ssh-keygen runs (the core decides again when it writes).
 * quiet: a question (approval-statement), whose refusals are answered, not logged. */
static json_object *signable_request(Op *op, int64_t id, bool quiet, Request **ret) {
        _cleanup_(request_freep) Request *r = NULL;
        int k = db_get_request(op->b->db, id, &r);
        if (k == -ENOENT)
                return jit_reply_error(JIT_ERROR_NOT_FOUND, "no request %lld", (long long) id);
        if (k < 0)
                return internal_error(op, "reading the request", k);
        if (!may_see(op, r))
                return quiet ? jit_reply_error(JIT_ERROR_REFUSED, "%s may not see request %lld",
                                               op->caller.name, (long long) id)
                             : refuse(op, r, "%s may not see request %lld", op->caller.name,
                                      (long long) id);
        if (r->state != REQUEST_PENDING)
                return jit_reply_error(JIT_ERROR_CONFLICT,
                                       "request %lld is %s; only pending requests can be approved",
                                       (long long) id, request_state_to_string(r->state));
        for (size_t i = 0; i < r->n_approvals; i++)
                if (!r->approvals[i].by_rule && r->approvals[i].approver_uid == op->caller.uid)
                        return jit_reply_error(JIT_ERROR_REFUSED,
                                               "%s has already approved request %lld; an "
                                               "approver counts once",
                                               op->caller.name, (long long) id);
        const PolicyRule *rule = policy_find_rule(op->b->policy, r->rule);
        if (!rule || !policy_rule_is_approver(rule, &op->caller))
                return quiet ? jit_reply_error(JIT_ERROR_REFUSED,
                                               "%s is not an approver for rule \"%s\"",
                                               op->caller.name, r->rule)
                             : refuse(op, r, "%s is not an approver for rule \"%s\"",
                                      op->caller.name, r->rule);
        *ret = TAKE_PTR(r);
        return NULL;
}

/* The statement of the caller's approval of r, in *ret (malloc'd, with its length). */
static json_object *statement_for(Op *op, const Request *r, uint64_t not_before, uint64_t not_after,
                                  char **ret, size_t *ret_len) {
        char host[256];
        _cleanup_free_ char *storage = NULL;
        ApprovalStatement s;
        const char *why;
        int k;

        if ((k = approval_host_name(op->b->policy, host, sizeof(host))) < 0)
                return internal_error(op, "reading the host name", k);
        if ((k = approval_statement_of(r, host, op->caller.name, not_before, not_after, &s,
                                       &storage)) < 0)
                return internal_error(op, "building the approval statement", k);
        if ((k = approval_statement_format(&s, ret, ret_len, &why)) < 0) {
                if (k == -ENOMEM)
                        return internal_error(op, "building the approval statement", k);
                return jit_reply_error(JIT_ERROR_CONFLICT,
                                       "request %lld cannot be signed: its %s does not fit an "
                                       "approval statement",
                                       (long long) r->id, why);
        }
        return NULL;
}

static json_object *op_approval_statement(Op *op) {
        _cleanup_(request_freep) Request *r = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len;
        int64_t id;
        json_object *fail;

        if (get_id(op->msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        if ((fail = signable_request(op, id, true, &r)))
                return fail;
        uint64_t nb, na;
        approval_default_window(r, now_usec(CLOCK_REALTIME), &nb, &na);
        if ((fail = statement_for(op, r, nb, na, &text, &len)))
                return fail;
        json_object *o = json_object_new_object();
        if (!o)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        json_object_object_add(o, "statement", json_object_new_string_len(text, (int) len));
        json_object_object_add(o, "namespace",
                               json_object_new_string(APPROVAL_SIGNATURE_NAMESPACE));
        json_object_object_add(o, "signed_required",
                               json_object_new_boolean(policy_rule_requires_signature(
                                       policy_find_rule(op->b->policy, r->rule), false)));
        return jit_reply_ok(o);
}

/* A string field that is not typed text (it holds newlines): only its length and the
 * absence of NUL are checked here; its own reader checks the rest. */
static int get_raw_string(json_object *msg, const char *key, size_t max, const char **ret,
                          size_t *ret_len) {
        json_object *v;
        *ret = NULL;
        if (!json_object_object_get_ex(msg, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -EINVAL;
        size_t len = (size_t) json_object_get_string_len(v);
        if (len > max)
                return -E2BIG;
        if (strlen(json_object_get_string(v)) != len)
                return -EINVAL;
        *ret = json_object_get_string(v);
        *ret_len = len;
        return 0;
}

/* Checks a signed approval of request id by the caller (approval_check_signed()): the
 * statement must be, byte for byte, the one the broker builds from its own copy of the
 * request for this host and the window the client chose, the window must hold a grant
 * starting now, and the signature must be good. */
static json_object *check_signed_approval(Op *op, int64_t id, const char *statement,
                                          const char *signature, SshSigInfo *ret_info,
                                          uint64_t *ret_not_after) {
        _cleanup_(request_freep) Request *r = NULL;
        _cleanup_free_ char *why = NULL;
        json_object *fail;
        char host[256], rid[32];
        int k;

        if ((fail = signable_request(op, id, false, &r)))
                return fail;
        if ((k = approval_host_name(op->b->policy, host, sizeof(host))) < 0)
                return internal_error(op, "reading the host name", k);
        snprintf(rid, sizeof(rid), "%lld", (long long) id);
        SignedApproval a = {
                .request = r,
                .request_id = rid,
                .approver = op->caller.name,
                .statement = statement,
                .signature = signature,
                .host = host,
                .exact_host = true,
                /* Approving one's own request is the core's to allow (allow_self_approval)
                 * or refuse; another's must not be approved with the requester's key. */
                .approver_is_requester = op->caller.uid == r->requester_uid,
                .allowed_signers = policy_allowed_signers(op->b->policy),
                .now = now_usec(CLOCK_REALTIME) / 1000000,
        };
        k = approval_check_signed(&a, ret_info, ret_not_after, &why);
        if (k == -EBADMSG)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "%s", why ? why : "malformed");
        if (k == -EPERM)
                return refuse(op, r, "%s", why ? why : "out of memory");
        if (k < 0) {
                log_error_errno(k, "checking the signature of %s's approval of request %lld: %s",
                                op->caller.name, (long long) id, why ? why : "%m");
                return jit_reply_error(JIT_ERROR_INTERNAL,
                                       "the signature could not be checked (%s); nothing was "
                                       "changed",
                                       why ? why : strerror(-k));
        }
        return NULL;
}

static json_object *op_approve(Op *op) {
        const char *comment, *statement, *signature;
        size_t statement_len = 0, signature_len = 0;
        GrantError e;
        int64_t id;
        int k;

        if (get_id(op->msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        if ((k = jit_message_get_string(op->msg, "comment", JIT_REASON_MAX, false, &comment)) < 0)
                return bad_field(op->msg, "comment", k, JIT_REASON_MAX);
        if ((k = get_raw_string(op->msg, "statement", APPROVAL_STATEMENT_MAX, &statement,
                                &statement_len)) < 0)
                return bad_field(op->msg, "statement", k, APPROVAL_STATEMENT_MAX);
        if ((k = get_raw_string(op->msg, "signature", SSHSIG_ARMORED_MAX, &signature,
                                &signature_len)) < 0)
                return bad_field(op->msg, "signature", k, SSHSIG_ARMORED_MAX);
        if (!statement != !signature)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "statement and signature go together");

        Request *saved = NULL;
        if (signature) {
                /* Each check runs ssh-keygen twice: as dear as the limited operations. */
                json_object *limited = op->peer->uid != 0 ? rate_limit(op) : NULL;
                if (limited)
                        return limited;
                SshSigInfo info;
                uint64_t not_after = 0;
                json_object *fail;
                if ((fail = check_signed_approval(op, id, statement, signature, &info, &not_after)))
                        return fail;
                GrantSignature sig = { .statement = statement,
                                       .signature = signature,
                                       .fingerprint = info.fingerprint,
                                       .not_after = not_after };
                k = grant_approve_signed(&op->b->grants, &op->caller, id, comment, &sig, &saved,
                                         &e);
        } else
                k = grant_approve_saved(&op->b->grants, &op->caller, id, comment, &saved, &e);
        if (k < 0)
                return grant_error_reply(op, k, &e);
        return reply_request_saved(op, id, saved);
}

/* ---- deny, cancel, revoke: a request leaves pending/active early ---- */

static json_object *end_request(Op *op, RequestEvent event, const char *reason) {
        GrantError e;
        int64_t id;
        int k;

        if (get_id(op->msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        if ((k = grant_end(&op->b->grants, &op->caller, id, event, reason, &e)) < 0)
                return grant_error_reply(op, k, &e);
        return reply_request(op, id);
}

static json_object *op_deny(Op *op) {
        const char *reason;
        int k = jit_message_get_string(op->msg, "reason", JIT_REASON_MAX, true, &reason);
        if (k < 0)
                return bad_field(op->msg, "reason", k, JIT_REASON_MAX);
        return end_request(op, EVENT_DENY, reason);
}

static json_object *op_revoke(Op *op) {
        const char *reason;
        int k = jit_message_get_string(op->msg, "reason", JIT_REASON_MAX, false, &reason);
        if (k < 0)
                return bad_field(op->msg, "reason", k, JIT_REASON_MAX);
        return end_request(op, EVENT_REVOKE, reason);
}

static json_object *op_cancel(Op *op) {
        return end_request(op, EVENT_CANCEL, NULL);
}

/* ---- list, show, status ---- */

/* The rate limit of the expensive operations (broker_rate_limit()): NULL when the caller
 * may go on, else the reply. */
static json_object *rate_limit(Op *op) {
        uint64_t retry;
        if (broker_rate_limit(op->b, op->peer->uid, &retry) >= 0)
                return NULL;
        return jit_reply_error(JIT_ERROR_REFUSED, "too many requests, retry in %llu s",
                               (unsigned long long) ((retry + USEC_PER_SEC - 1) / USEC_PER_SEC));
}

/* A non-root read that ran past its budget (db_set_budget()), or another failure. */
static json_object *read_error(Op *op, const char *what, int r, const char *narrow) {
        if (!db_over_budget(op->b->db))
                return internal_error(op, what, r);
        log_debug("uid %u: %s ran past its budget", (unsigned) op->peer->uid, what);
        return jit_reply_error(JIT_ERROR_REFUSED, "the query is too broad; narrow it with %s",
                               narrow);
}

/* Whether the caller reviews break-glass grants: the SQL side of grant_may_see(). */
static bool reviews_break_glass(const Op *op) {
        const StringList *l = &op->b->policy->break_glass.requesters;
        for (size_t i = 0; i < l->n; i++)
                if (identity_matches(&op->caller, l->items[i]))
                        return true;
        return false;
}

static json_object *requests_to_array(Op *op, Request **list, size_t n, bool only_visible) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++) {
                if (only_visible && !may_see(op, list[i]))
                        continue;
                json_object *o = request_to_json(op->b, list[i]);
                if (o)
                        json_object_array_add(arr, o);
        }
        return arr;
}

static json_object *op_list(Op *op) {
        static const RequestState open_states[] = { REQUEST_PENDING, REQUEST_ACTIVE };
        static const RequestState pending[] = { REQUEST_PENDING };
        static const RequestState active[] = { REQUEST_ACTIVE };
        const RequestState *states = open_states;
        size_t n_states = 2;
        const char *filter;
        bool mine;
        int k;

        if ((k = jit_message_get_string(op->msg, "filter", 16, false, &filter)) < 0)
                return bad_field(op->msg, "filter", k, 16);
        if (jit_message_get_bool(op->msg, "mine", &mine) < 0)
                return bad_field(op->msg, "mine", -EINVAL, 0);
        if (!filter || STREQ(filter, "open"))
                ;
        else if (STREQ(filter, "pending"))
                states = pending, n_states = 1;
        else if (STREQ(filter, "active"))
                states = active, n_states = 1;
        else if (STREQ(filter, "all"))
                states = NULL, n_states = 0;
        else
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "filter must be open, pending, active or all");
        /* Every state is the expensive kind; open ones are few. */
        json_object *limited = states ? NULL : rate_limit(op);
        if (limited)
                return limited;

        /* Only rows the caller may see count towards the limit: their own, those of the rules
         * they approve, break-glass grants they review (may_see() still has the last word). */
        RequestView view = { .uid = op->caller.uid };
        _cleanup_free_ const char **rules = NULL;
        if (!mine && !is_root(op)) {
                const Policy *p = op->b->policy;
                rules = calloc(p->n_rules + 1, sizeof(char *));
                if (!rules)
                        return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
                for (size_t i = 0; i < p->n_rules; i++)
                        if (policy_rule_is_approver(&p->rules[i], &op->caller))
                                rules[view.n_rules++] = p->rules[i].name;
                view.rules = rules;
                view.break_glass = reviews_break_glass(op);
        }

        Request **list = NULL;
        size_t n = 0;
        k = db_list_visible_requests(op->b->db, states, n_states, DB_LIST_MAX, true,
                                     is_root(op) && !mine ? NULL : &view, &list, &n);
        if (k < 0)
                return read_error(op, "listing requests", k, "--mine, --pending or --active");
        json_object *arr = requests_to_array(op, list, n, true);
        request_free_many(list, n);
        return arr ? jit_reply_ok(arr) : jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
}

static json_object *profile_to_json(const Policy *p) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        if (p->profile.owner)
                json_object_object_add(o, "owner", json_object_new_string(p->profile.owner));
        if (p->profile.environment)
                json_object_object_add(o, "environment",
                                       json_object_new_string(p->profile.environment));
        if (p->profile.classification)
                json_object_object_add(o, "classification",
                                       json_object_new_string(p->profile.classification));
        if (p->profile.description)
                json_object_object_add(o, "description",
                                       json_object_new_string(p->profile.description));
        return o;
}

static json_object *op_show(Op *op) {
        _cleanup_(request_freep) Request *r = NULL;
        int64_t id;

        if (get_id(op->msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        int k = db_get_request(op->b->db, id, &r);
        if (k == -ENOENT)
                return jit_reply_error(JIT_ERROR_NOT_FOUND, "no request %lld", (long long) id);
        if (k < 0)
                return internal_error(op, "reading the request", k);
        if (!may_see(op, r))
                return refuse(op, r, "%s may not see request %lld", op->caller.name,
                              (long long) id);

        json_object *o = request_to_json(op->b, r);
        if (!o)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        json_object_object_add(o, "profile", profile_to_json(op->b->policy));
        json_object_object_add(o, "sessions", sessions_json(op->b, r->id));
        json_object_object_add(o, "current_policy_version",
                               json_object_new_string(op->b->policy->hash));
        json_object_object_add(o, "approvers", rule_approvers_json(op->b->policy, r->rule));
        return jit_reply_ok(o);
}

/* The pending requests waiting for the caller's approval: under rules they approve, not
 * their own, not approved by them already. Oldest first. */
static int awaiting_approval(Op *op, json_object **ret) {
        static const RequestState pending[] = { REQUEST_PENDING };
        const Policy *p = op->b->policy;
        _cleanup_free_ const char **rules = calloc(p->n_rules + 1, sizeof(char *));
        RequestView view = { .uid = (uid_t) -1 }; /* nobody's own: matches no requester */
        Request **list = NULL;
        size_t n = 0;
        int k;

        if (!rules)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_rules; i++)
                if (!p->rules[i].auto_approve && policy_rule_is_approver(&p->rules[i], &op->caller))
                        rules[view.n_rules++] = p->rules[i].name;
        json_object *arr = json_object_new_array();
        if (!arr)
                return -ENOMEM;
        if (view.n_rules > 0 || is_root(op)) {
                view.rules = rules;
                if ((k = db_list_visible_requests(op->b->db, pending, 1, DB_LIST_MAX, false,
                                                  is_root(op) ? NULL : &view, &list, &n)) < 0) {
                        json_object_put(arr);
                        return k;
                }
        }
        for (size_t i = 0; i < n; i++) {
                const Request *r = list[i];
                bool done = r->requester_uid == op->caller.uid;
                for (size_t j = 0; j < r->n_approvals && !done; j++)
                        done = !r->approvals[j].by_rule &&
                               r->approvals[j].approver_uid == op->caller.uid;
                if (done || !may_see(op, r))
                        continue;
                json_object *o = request_to_json(op->b, r);
                if (!o || json_object_array_add(arr, o) < 0) {
                        json_object_put(o);
                        json_object_put(arr);
                        request_free_many(list, n);
                        return -ENOMEM;
                }
        }
        request_free_many(list, n);
        *ret = arr;
        return 0;
}

static json_object *op_status(Op *op) {
        static const RequestState active[] = { REQUEST_ACTIVE };
        static const RequestState pending[] = { REQUEST_PENDING };
        Request **la = NULL, **lp = NULL;
        size_t na = 0, np = 0;
        unsigned all_active = 0, all_pending = 0;
        json_object *to_approve = NULL;
        int k;

        if ((k = db_list_requests(op->b->db, active, 1, DB_LIST_MAX, false, op->caller.uid, &la,
                                  &na)) < 0 ||
            (k = db_list_requests(op->b->db, pending, 1, DB_LIST_MAX, false, op->caller.uid, &lp,
                                  &np)) < 0 ||
            (k = db_count_open(op->b->db, (uid_t) -1, &all_active, &all_pending)) < 0 ||
            (k = awaiting_approval(op, &to_approve)) < 0) {
                request_free_many(la, na);
                request_free_many(lp, np);
                return read_error(op, "reading status", k, "jitctl list --mine");
        }

        json_object *res = json_object_new_object();
        json_object *broker = json_object_new_object();
        if (res && broker) {
                json_object *grants = requests_to_array(op, la, na, false);
                for (size_t i = 0; grants && i < json_object_array_length(grants); i++)
                        json_object_object_add(json_object_array_get_idx(grants, i), "sessions",
                                               sessions_json(op->b, la[i]->id));
                json_object_object_add(res, "to_approve", TAKE_PTR(to_approve));
                json_object_object_add(res, "grants", grants);
                json_object_object_add(res, "pending", requests_to_array(op, lp, np, false));
                json_object_object_add(broker, "version", json_object_new_string(JIT_VERSION));
                json_object_object_add(broker, "active", json_object_new_int((int) all_active));
                json_object_object_add(broker, "pending", json_object_new_int((int) all_pending));
                json_object_object_add(broker, "policy",
                                       json_object_new_string(op->b->policy_path));
                json_object_object_add(
                        broker, "streams",
                        json_object_new_int((int) event_streams_count(op->b->streams)));
                /* The fleet's connection is the host's business: root's and auditors'. */
                if (is_root(op) ||
                    identity_in_group(&op->caller, op->b->policy->audit_group ?: AUDIT_GROUP))
                        json_object_object_add(broker, "fleet",
                                               fleet_client_status_json(op->b->fleet));
                json_object_object_add(res, "broker", broker);
                broker = NULL;
        }
        json_object_put(broker);
        json_object_put(to_approve);
        request_free_many(la, na);
        request_free_many(lp, np);
        return res ? jit_reply_ok(res) : jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
}

/* ---- break-glass and its acknowledgement ---- */

static json_object *op_break_glass(Op *op) {
        const char *service, *reason;
        int64_t duration = 0;
        bool has_duration;
        int r;

        if ((r = jit_message_get_string(op->msg, "service", JIT_SERVICE_MAX, true, &service)) < 0)
                return bad_field(op->msg, "service", r, JIT_SERVICE_MAX);
        if (!jit_service_name_is_valid(service))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "service must be a PAM service name");
        if ((r = jit_message_get_string(op->msg, "reason", JIT_REASON_MAX, true, &reason)) < 0)
                return bad_field(op->msg, "reason", r, JIT_REASON_MAX);
        if (strspn(reason, " ") == strlen(reason))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "reason must not be empty");
        if ((r = jit_message_get_int(op->msg, "duration", 1, (int64_t) JIT_DURATION_MAX_SEC, false,
                                     &duration, &has_duration)) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "duration must be whole seconds");

        GrantAsk ask = { .service = service,
                         .duration = has_duration ? (uint64_t) duration : 0,
                         .reason = reason };
        GrantError e;
        int64_t id;
        if ((r = grant_break_glass(&op->b->grants, &op->caller, &ask, &id, &e)) < 0)
                return grant_error_reply(op, r, &e);
        return reply_request(op, id);
}

static json_object *op_ack(Op *op) {
        GrantError e;
        int64_t id;
        int k;

        if (get_id(op->msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        if ((k = grant_acknowledge(&op->b->grants, &op->caller, id, &e)) < 0)
                return grant_error_reply(op, k, &e);
        return reply_request(op, id);
}

/* ---- explain: a dry run of the live policy ---- */

/* A time in a message, in seconds: RFC 3339 as clients send it, or anything else
 * timestamp_parse() reads (relative to the broker's clock, local time its time zone). */
static int parse_time(const char *s, time_t *ret) {
        uint64_t usec;
        int r = timestamp_parse(s, now_usec(CLOCK_REALTIME), &usec);

        if (r < 0)
                return r;
        *ret = (time_t) (usec / USEC_PER_SEC);
        return 0;
}

static json_object *op_explain(Op *op) {
        const char *user, *service, *ticket, *at_text;
        int64_t duration = 0;
        bool has_duration;
        time_t at = time(NULL);
        Identity id = { .uid = (uid_t) -1 };
        int r;

        if ((r = jit_message_get_string(op->msg, "user", JIT_USER_MAX, true, &user)) < 0)
                return bad_field(op->msg, "user", r, JIT_USER_MAX);
        if ((r = jit_message_get_string(op->msg, "service", JIT_SERVICE_MAX, true, &service)) < 0)
                return bad_field(op->msg, "service", r, JIT_SERVICE_MAX);
        if ((r = jit_message_get_string(op->msg, "ticket", JIT_TICKET_MAX, false, &ticket)) < 0)
                return bad_field(op->msg, "ticket", r, JIT_TICKET_MAX);
        if ((r = jit_message_get_string(op->msg, "at", 64, false, &at_text)) < 0)
                return bad_field(op->msg, "at", r, 64);
        if (at_text && parse_time(at_text, &at) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "at must be an RFC 3339 time");
        if (jit_message_get_int(op->msg, "duration", 1, (int64_t) JIT_DURATION_MAX_SEC, false,
                                &duration, &has_duration) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "duration must be whole seconds");

        json_object *groups;
        if (json_object_object_get_ex(op->msg, "groups", &groups) &&
            !json_object_is_type(groups, json_type_null)) {
                /* Explaining for hypothetical groups: nothing is looked up. */
                size_t n = json_object_is_type(groups, json_type_array)
                                   ? json_object_array_length(groups)
                                   : SIZE_MAX;
                if (n > IDENTITY_GROUPS_MAX || !valid_account_name(user))
                        return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                               "groups must be a list of group names");
                id.name = strdup(user);
                id.groups = calloc(n + 1, sizeof(char *));
                if (!id.name || !id.groups) {
                        identity_done(&id);
                        return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
                }
                for (size_t i = 0; i < n; i++) {
                        json_object *g = json_object_array_get_idx(groups, i);
                        const char *gs = json_object_is_type(g, json_type_string)
                                                 ? json_object_get_string(g)
                                                 : NULL;
                        if (!gs || !valid_account_name(gs) ||
                            !(id.groups[id.n_groups++] = strdup(gs))) {
                                identity_done(&id);
                                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                                       "groups must be a list of group names");
                        }
                }
        } else if ((r = identity_from_name(user, &id)) < 0)
                return jit_reply_error(JIT_ERROR_NOT_FOUND, "no user %s", user);

        /* A request for one command line (policy explain --command). */
        _cleanup_free_ const char **argv = NULL;
        JitCommandLine cl;
        json_object *command;
        bool for_command = json_object_object_get_ex(op->msg, "command", &command);
        if (for_command) {
                json_object *bad = get_command_line(op, &cl, &argv);
                if (bad) {
                        identity_done(&id);
                        return bad;
                }
        }
        PolicyQuery q = {
                .requester = &id,
                .service = service,
                .duration = has_duration ? (uint64_t) duration : 0,
                .at = at,
                .ticket = ticket,
                .command = for_command ? &cl : NULL,
        };
        PolicyDecision d = {};
        r = policy_decide(op->b->policy, &q, &d);
        json_object *res = r < 0 ? NULL : policy_decision_to_json(op->b->policy, &q, &d);
        if (res) {
                /* What a prompt must ask for before filing (pam_jit's wait=). */
                const char *pattern = d.rule ? d.rule->ticket_pattern : NULL;
                json_object_object_add(res, "ticket_required",
                                       json_object_new_boolean(pattern != NULL));
                json_object_object_add(res, "ticket_pattern", json_string_or_null(pattern));
        }
        policy_decision_done(&d);
        identity_done(&id);
        return res ? jit_reply_ok(res) : jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
}

/* ---- audit: the record, for auditors in full, for others their own requests ---- */

static json_object *op_audit(Op *op) {
        const char *since_text, *until_text, *user;
        int64_t request_id = 0, limit = JIT_AUDIT_LIMIT_DEFAULT;
        time_t since = 0, until = 0;
        int r;

        if ((r = jit_message_get_string(op->msg, "since", 64, false, &since_text)) < 0)
                return bad_field(op->msg, "since", r, 64);
        if ((r = jit_message_get_string(op->msg, "until", 64, false, &until_text)) < 0)
                return bad_field(op->msg, "until", r, 64);
        if ((since_text && parse_time(since_text, &since) < 0) ||
            (until_text && parse_time(until_text, &until) < 0))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "since and until must be RFC 3339 times");
        if ((r = jit_message_get_string(op->msg, "user", JIT_USER_MAX, false, &user)) < 0)
                return bad_field(op->msg, "user", r, JIT_USER_MAX);
        if (jit_message_get_int(op->msg, "request", 1, INT64_MAX, false, &request_id, NULL) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "request must be a positive id");
        if (jit_message_get_int(op->msg, "limit", 1, JIT_AUDIT_LIMIT_MAX, false, &limit, NULL) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "limit must be 1..%d",
                                       JIT_AUDIT_LIMIT_MAX);

        /* Root and auditors read everything; everyone else the records of their own requests. */
        bool auditor = is_root(op) ||
                       identity_in_group(&op->caller, op->b->policy->audit_group ?: AUDIT_GROUP);
        json_object *records = NULL;
        r = audit_query(op->b, (uint64_t) since * USEC_PER_SEC, (uint64_t) until * USEC_PER_SEC,
                        user, request_id, auditor ? (uid_t) -1 : op->caller.uid, (unsigned) limit,
                        &records);
        if (r < 0)
                return read_error(op, "reading the audit log", r, "--since/--until/--limit");
        return jit_reply_ok(records);
}

static json_object *op_audit_archive(Op *op) {
        const char *until_text;
        time_t until;
        int r;

        /* Archiving moves records out of the live log: root only, like reading the database. */
        if (!is_root(op))
                return refuse(op, NULL, "only root may archive the audit log");
        if ((r = jit_message_get_string(op->msg, "until", 64, true, &until_text)) < 0)
                return bad_field(op->msg, "until", r, 64);
        if (parse_time(until_text, &until) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "until must be an RFC 3339 time");

        _cleanup_free_ char *dir = audit_archive_dir(op->b->db_path);
        if (!dir)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        json_object *info = NULL;
        r = audit_archive(op->b, (uint64_t) until * USEC_PER_SEC, dir, op->caller.name,
                          op->caller.uid, &info);
        if (r < 0)
                return internal_error(op, "archiving the audit log", r);
        return jit_reply_ok(info);
}

/* ---- sessions: pam_jit's session part registers and closes them ---- */

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

/* The peer's process held by pidfd: SO_PEERPIDFD names it race-free; else pidfd_open() of
 * the peer, which waits for our answer and so cannot have gone. */
static int peer_pidfd(const Op *op) {
        int pidfd = -1;
        socklen_t l = sizeof(pidfd);
        if (op->peer_fd < 0 || getsockopt(op->peer_fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &l) < 0 ||
            pidfd < 0)
                pidfd = pidfd_open(op->peer->pid, 0);
        if (pidfd < 0)
                return -errno;
        (void) fcntl(pidfd, F_SETFD, FD_CLOEXEC);
        return pidfd;
}

static json_object *op_session_open(Op *op) {
        const char *user, *service, *tty, *rhost;
        json_object *bad = get_user_service(op, "register sessions", &user, &service);
        int r;

        if (bad)
                return bad;
        if ((r = jit_message_get_string(op->msg, "tty", JIT_TTY_MAX, false, &tty)) < 0)
                return bad_field(op->msg, "tty", r, JIT_TTY_MAX);
        if ((r = jit_message_get_string(op->msg, "rhost", JIT_RHOST_MAX, false, &rhost)) < 0)
                return bad_field(op->msg, "rhost", r, JIT_RHOST_MAX);

        int64_t id = 0, session = 0, held = 0;
        uint64_t expires_at;
        uid_t uid;
        r = find_grant(op, user, service, &uid, &id, &expires_at, &held);
        if (r == 0 && held == 0 && STREQ(service, "sudo") &&
            (id = sessions_command_grant_of(op->peer->pid)) > 0)
                r = 1; /* a command the approval plugin allowed under a command grant */
        if (r == 0)
                /* The account stack decided; a session without a grant (or under one that has
                 * ended, saved or not) has nothing to end. */
                return jit_reply_ok(json_object_new_object());
        if (r < 0)
                return internal_error(op, "looking up the grant", r);

        /* The session's process is the peer: held by pidfd from the kernel, never by a pid
         * in the message. */
        int pidfd = peer_pidfd(op);
        if (pidfd < 0)
                return internal_error(op, "holding the session's process", pidfd);

        _cleanup_(request_freep) Request *grant = NULL;
        if ((r = db_session_grant(op->b->db, id, &grant)) < 0) {
                close(pidfd);
                return internal_error(op, "reading the grant", r);
        }
        if (grant->requester_uid != uid) { /* not this user's grant: nothing of theirs to end */
                close(pidfd);
                return jit_reply_ok(json_object_new_object());
        }
        bool unrecorded;
        r = sessions_open(op->b, pidfd, op->peer->pid, grant, tty, rhost, &session, &unrecorded);
        if (r < 0 && unrecorded) {
                /* Not in the database, but held: it still ends with its grant. */
                log_error_errno(r, "recording a session under grant %lld: %m (%s)", (long long) id,
                                grant_store_failure(r));
                return jit_reply_error(JIT_ERROR_INTERNAL,
                                       "the session is not recorded: %s; the broker holds it "
                                       "and ends it with grant %lld",
                                       grant_store_failure(r), (long long) id);
        }
        if (r < 0)
                return internal_error(op, "registering the session", r);
        json_object *res = json_object_new_object();
        if (res) {
                json_object_object_add(res, "session", json_object_new_int64(session));
                json_object_object_add(res, "request_id", json_object_new_int64(id));
        }
        return jit_reply_ok(res);
}

int broker_session_open_text(Broker *view, const struct ucred *peer, int peer_fd, json_object *msg,
                             char *buf, size_t size, size_t *ret_len, SessionEarly **ret_early) {
        Op op = { .b = view, .peer = peer, .peer_fd = peer_fd, .msg = msg };
        const char *user, *service, *tty, *rhost;
        _cleanup_(json_object_putp) json_object *reply = NULL;
        int r;

        *ret_early = NULL;
        /* Anything but root's well-formed open under a grant that is not one-shot: the main
         * loop answers, with its errors and refusals. */
        if (peer->uid != 0 ||
            (reply = get_user_service(&op, "register sessions", &user, &service)) ||
            jit_message_get_string(msg, "tty", JIT_TTY_MAX, false, &tty) < 0 ||
            jit_message_get_string(msg, "rhost", JIT_RHOST_MAX, false, &rhost) < 0)
                return 0;

        int64_t id = 0, held = 0;
        uint64_t expires_at;
        uid_t uid;
        if ((r = find_grant(&op, user, service, &uid, &id, &expires_at, &held)) < 0)
                return 0;
        if (r == 0 && held == 0 && STREQ(service, "sudo") &&
            (id = sessions_command_grant_of(peer->pid)) > 0)
                r = 1; /* a command the approval plugin allowed under a command grant */
        if (r > 0) {
                _cleanup_(request_freep) Request *grant = NULL;
                int pidfd;
                if (db_session_grant(view->db, id, &grant) < 0 || grant->once ||
                    grant->requester_uid != uid || (pidfd = peer_pidfd(&op)) < 0)
                        return 0;
                if (sessions_open_early(grant, pidfd, peer->pid, view->boot_id, tty, rhost,
                                        ret_early) <= 0) {
                        close(pidfd);
                        return 0;
                }
        }
        /* As op_session_open() answers, written here so that nothing can fail once the
         * session is opened: its fields are numbers. */
        int n = *ret_early ? snprintf(buf, size,
                                      "{\"version\":%d,\"ok\":true,\"result\":{\"session\":%" PRId64
                                      ",\"request_id\":%" PRId64 "}}",
                                      JIT_PROTOCOL_VERSION, session_early_id(*ret_early), id)
                           : snprintf(buf, size, "{\"version\":%d,\"ok\":true,\"result\":{}}",
                                      JIT_PROTOCOL_VERSION);
        assert(n > 0 && (size_t) n < size); /* 256 bytes hold two 20-digit numbers */
        *ret_len = (size_t) n;
        return 1;
}

static json_object *op_session_close(Op *op) {
        int64_t session;
        int r;

        if (!is_root(op))
                return refuse(op, NULL, "only root may close sessions");
        if (jit_message_get_int(op->msg, "session", 1, INT64_MAX, true, &session, NULL) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "session must be a positive id");
        r = sessions_close_later(op->b, session, "closed");
        if (r < 0)
                return internal_error(op, "closing the session", r);
        return jit_reply_ok(NULL);
}

/* ---- check-command: the sudo approval plugin's question ---- */

/* Whether command grant g covers command line cl exactly: the program, every argument after
 * argv[0], the run-as user (root when not named) and group, and the working directory
 * when the grant names one. */
static bool grant_covers(const Request *g, const JitCommandLine *cl, const char *identity) {
        if (!g->command || !g->argv || !g->argv[0] || !STREQ(g->command, cl->command))
                return false;
        /* Only as sudo runs it by default: the caller's LD_PRELOAD, PATH or HOME, a chroot or
         * sudoedit would run other code under the approved name. */
        if (!cl->env_plain || cl->chroot || cl->sudoedit)
                return false;
        /* The very program that was approved: not another file swapped in since. */
        if (!g->command_identity || !identity || !STREQ(g->command_identity, identity))
                return false;
        size_t i = 1;
        for (; g->argv[i] && cl->argv[i]; i++)
                if (!STREQ(g->argv[i], cl->argv[i]))
                        return false;
        if (g->argv[i] || cl->argv[i])
                return false;
        if (!STREQ(g->run_as_user ?: "root", cl->run_as_user ?: "root"))
                return false;
        if (!!g->run_as_group != !!cl->run_as_group ||
            (g->run_as_group && !STREQ(g->run_as_group, cl->run_as_group)))
                return false;
        return !g->cwd || (cl->cwd && STREQ(g->cwd, cl->cwd));
}

static json_object *op_check_command(Op *op) {
        _cleanup_free_ const char **argv = NULL;
        const char *user;
        JitCommandLine cl;
        int r;

        /* Only root (the plugin inside sudo) asks, on the invoking user's behalf. */
        if (!is_root(op))
                return refuse(op, NULL, "only root may check commands");
        if ((r = jit_message_get_string(op->msg, "user", JIT_USER_MAX, true, &user)) < 0)
                return bad_field(op->msg, "user", r, JIT_USER_MAX);
        json_object *bad = get_command_line(op, &cl, &argv);
        if (bad)
                return bad;

        /* A whole-sudo grant covers any command; else a command grant for exactly this one. */
        int64_t id = 0, held = 0;
        uint64_t expires_at = 0;
        uid_t uid;
        const char *scope = NULL;
        bool once = false;
        if ((r = find_grant(op, user, "sudo", &uid, &id, &expires_at, &held)) < 0)
                return internal_error(op, "looking up the grant", r);
        if (r > 0)
                scope = "sudo";
        else if (uid != (uid_t) -1) {
                Request **list = NULL;
                size_t n = 0;
                if ((r = db_find_command_grants(op->b->db, uid, op->b->boot_id,
                                                now_usec(CLOCK_BOOTTIME), now_usec(CLOCK_REALTIME),
                                                &list, &n)) < 0)
                        return internal_error(op, "looking up command grants", r);
                _cleanup_free_ char *identity = NULL;
                const char *why;
                if (n > 0 && jit_program_identity(cl.command, &identity, &why) == -ENOMEM) {
                        request_free_many(list, n);
                        return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
                }
                for (size_t i = 0; i < n && !scope; i++)
                        if (grant_covers(list[i], &cl, identity) &&
                            !grants_ended_in_memory(&op->b->grants, list[i]->id)) {
                                id = list[i]->id;
                                once = list[i]->once;
                                scope = "command";
                        }
                request_free_many(list, n);
        }
        if (scope) {
                /* Each command run under a grant is recorded; a one-shot command grant is
                 * spent by it. A grant that ended meanwhile refuses. */
                GrantError e;
                r = grant_use_command(&op->b->grants, id, &cl, op->peer->pid, &e);
                if (r == -EBUSY)
                        scope = NULL;
                else if (r < 0)
                        return grant_error_reply(op, r, &e);
                else if (STREQ(scope, "command") && !once)
                        /* The session sudo opens next is held under it. */
                        sessions_note_command(op->peer->pid, id);
        }
        json_object *res = json_object_new_object();
        if (!res)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        json_object_object_add(res, "allowed", json_object_new_boolean(scope != NULL));
        json_object_object_add(res, "request_id", scope ? json_object_new_int64(id) : NULL);
        json_object_object_add(res, "scope", scope ? json_object_new_string(scope) : NULL);
        return jit_reply_ok(res);
}

/* ---- streams: watch and wait (event-stream.c) ---- */

static json_object *stream_refused(Op *op, int r) {
        if (r == -EUSERS)
                return refuse(op, NULL, "too many open streams (at most %d per user, %d in all)",
                              EVENT_STREAMS_PER_UID, EVENT_STREAMS_MAX);
        return internal_error(op, "starting the stream", r);
}

static json_object *op_watch(Op *op) {
        const char *since_text;
        time_t since = 0;
        int r;

        if ((r = jit_message_get_string(op->msg, "since", 64, false, &since_text)) < 0)
                return bad_field(op->msg, "since", r, 64);
        if (since_text && (parse_time(since_text, &since) < 0 || since <= 0))
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "since must be an RFC 3339 time");
        if (!op->taken || op->peer_fd < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "watch needs a connection of its own");
        if ((r = event_streams_admit(op->b->streams, op->peer->uid)) < 0)
                return stream_refused(op, r);

        StreamSpec spec = {
                .counted_uid = op->peer->uid,
                .caller = &op->caller,
                .sees_all = is_root(op) || identity_in_group(&op->caller, op->b->policy->audit_group
                                                                                  ?: AUDIT_GROUP),
                .since = (uint64_t) since * USEC_PER_SEC,
        };
        if ((r = event_stream_start(op->b->streams, op->peer_fd, &spec, NULL)) < 0)
                return stream_refused(op, r);
        *op->taken = true;
        return NULL;
}

static json_object *op_wait(Op *op) {
        _cleanup_(request_freep) Request *req = NULL;
        _cleanup_(identity_done) Identity canceller = { .uid = (uid_t) -1 };
        bool cancel_on_close = false;
        int64_t id;
        int r;

        if (get_id(op->msg, &id) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "id must be a positive integer");
        if (jit_message_get_bool(op->msg, "cancel_on_close", &cancel_on_close) < 0)
                return bad_field(op->msg, "cancel_on_close", -EINVAL, 0);
        if (!op->taken || op->peer_fd < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "wait needs a connection of its own");
        if ((r = db_get_request(op->b->db, id, &req)) == -ENOENT)
                return jit_reply_error(JIT_ERROR_NOT_FOUND, "no request %lld", (long long) id);
        if (r < 0)
                return internal_error(op, "reading the request", r);
        if (!may_see(op, req))
                return refuse(op, req, "%s may not see request %lld", op->caller.name,
                              (long long) id);
        if (cancel_on_close && !is_root(op) && req->requester_uid != op->caller.uid)
                return refuse(op, req, "only the requester or root may wait with cancel_on_close");
        if (cancel_on_close && (r = identity_copy(&op->caller, &canceller)) < 0)
                return internal_error(op, "starting the stream", r);

        /* Root waits at the prompt on a user's behalf: the user's limit. */
        uid_t counted = is_root(op) ? req->requester_uid : op->peer->uid;
        if ((r = event_streams_admit(op->b->streams, counted)) < 0)
                return stream_refused(op, r);
        StreamSpec spec = {
                .wait = true,
                .counted_uid = counted,
                .request_id = id,
                .cancel_on_close = cancel_on_close,
                .canceller = cancel_on_close ? &canceller : NULL,
        };
        json_object *first = request_to_json(op->b, req);
        if (!first)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        json_object_object_add(first, "approvers", rule_approvers_json(op->b->policy, req->rule));
        if ((r = event_stream_start(op->b->streams, op->peer_fd, &spec, first)) < 0)
                return stream_refused(op, r);
        *op->taken = true;
        return NULL;
}

/* ---- fleet requests (broker-fleet.c) ---- */

static json_object *op_fleet(Op *op) {
        const char *name = NULL;
        (void) jit_message_get_string(op->msg, "op", JIT_OP_MAX, true, &name);
        return broker_fleet_op(op->b, name, &op->caller, op->peer_fd, op->msg, op->taken);
}

/* ---- grant bundles (broker-bundle.c) ---- */

static json_object *op_bundle(Op *op) {
        const char *name = NULL;
        (void) jit_message_get_string(op->msg, "op", JIT_OP_MAX, true, &name);
        return broker_bundle_op(op->b, name, &op->caller, op->msg);
}

/* ---- reload ---- */

/* What SIGHUP does, answered: ExecReload= runs `jitctl reload`, so `systemctl reload` fails
 * with the parser's file:line message when the new policy is refused. */
static json_object *op_reload(Op *op) {
        _cleanup_free_ char *error = NULL;

        if (!is_root(op))
                return refuse(op, NULL, "only root may reload the policy");
        int r = broker_reload(op->b, &error);
        if (r < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "policy refused, the old one stays: %s",
                                       error ?: strerror(-r));
        json_object *res = json_object_new_object();
        if (!res)
                return jit_reply_error(JIT_ERROR_INTERNAL, "out of memory");
        const Policy *p = op->b->policy;
        json_object_object_add(res, "policy", json_object_new_string(op->b->policy_path));
        json_object_object_add(res, "version", json_object_new_string(p->hash));
        json_object_object_add(res, "rules", json_object_new_int64((int64_t) p->n_rules));
        json_object *warnings = json_object_new_array();
        for (size_t i = 0; warnings && i < p->n_warnings; i++)
                json_object_array_add(warnings, json_object_new_string(p->warnings[i]));
        json_object_object_add(res, "warnings", warnings);
        return jit_reply_ok(res);
}

static const struct {
        const char *name;
        json_object *(*handler)(Op *op);
        bool needs_caller; /* resolve the caller's name and groups first */
        bool limited;      /* expensive: rate-limited per non-root uid (list --all: op_list) */
        bool read_only;    /* for non-root callers, under a budget of sqlite time */
} ops[] = {
        /* check is the PAM hot path and only needs the peer's uid (root is never limited;
         * anyone else is refused, and logged, at most at the rate limit). */
        { "check", op_check, false, true, false },
        { "request", op_request, true, false, false },
        { "approve", op_approve, true, false, false },
        { "approval-statement", op_approval_statement, true, false, true },
        { "grant-export", op_bundle, true, false, true },
        { "grant-import", op_bundle, true, false, false },
        { "deny", op_deny, true, false, false },
        { "revoke", op_revoke, true, false, false },
        { "cancel", op_cancel, true, false, false },
        { "list", op_list, true, false, true },
        { "show", op_show, true, false, true },
        { "status", op_status, true, true, true },
        { "break-glass", op_break_glass, true, false, false },
        { "ack", op_ack, true, false, false },
        { "explain", op_explain, false, true, false },
        { "check-command", op_check_command, false, true, false },
        { "watch", op_watch, true, true, false },
        { "wait", op_wait, true, false, false },
        { "audit", op_audit, true, true, true },
        { "audit-archive", op_audit_archive, true, false, false },
        { "session-open", op_session_open, false, false, false },
        { "session-close", op_session_close, false, false, false },
        { "reload", op_reload, false, false, false },
        { "fleet-request", op_fleet, true, false, false },
        { "fleet-list", op_fleet, true, true, false },
        { "fleet-show", op_fleet, true, true, false },
        { "fleet-approve", op_fleet, true, false, false },
        { "fleet-deny", op_fleet, true, false, false },
        { "fleet-revoke", op_fleet, true, false, false },
        { "fleet-cancel", op_fleet, true, false, false },
        { "fleet-approval-statement", op_fleet, true, true, false },
};

json_object *broker_dispatch(Broker *b, const struct ucred *peer, int peer_fd, json_object *msg,
                             bool *ret_taken) {
        Op op = { .b = b,
                  .peer = peer,
                  .peer_fd = peer_fd,
                  .msg = msg,
                  .caller = { .uid = (uid_t) -1 },
                  .taken = ret_taken };
        const char *name;
        json_object *reply;

        if (jit_message_get_string(msg, "op", JIT_OP_MAX, true, &name) < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST, "missing \"op\"");

        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                if (!STREQ(ops[i].name, name))
                        continue;
                /* Sessions answered before they were written are written before anything
                 * else looks at sessions or the audit log. */
                if (!STREQ(name, "session-open") && !STREQ(name, "session-close") &&
                    !STREQ(name, "check"))
                        (void) sessions_flush(b);
                if (ops[i].limited && (reply = rate_limit(&op)))
                        return reply;
                /* Who is asking comes from the kernel, resolved here; never from the message. */
                int r = ops[i].needs_caller ? identity_from_uid(peer->uid, &op.caller) : 0;
                if (r < 0) {
                        log_warning_errno(r, "request from uid %u that has no user entry: %m",
                                          (unsigned) peer->uid);
                        return jit_reply_error(JIT_ERROR_REFUSED, "uid %u is not a known user",
                                               (unsigned) peer->uid);
                }
                /* No read of another user may hold up the loop for long; root's may. */
                bool budget = ops[i].read_only && peer->uid != 0;
                if (budget)
                        db_set_budget(b->db, BROKER_READ_BUDGET_USEC);
                reply = ops[i].handler(&op);
                if (budget)
                        db_set_budget(b->db, 0);
                if (ops[i].needs_caller)
                        identity_done(&op.caller);
                return reply;
        }
        return jit_reply_error(JIT_ERROR_BAD_REQUEST, "unknown op \"%.*s\"", JIT_OP_MAX, name);
}
