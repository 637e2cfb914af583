/* SPDX-License-Identifier: MIT */
/* wait=: ask for a grant at the prompt and wait for the decision. The steps, each a single
 * exchange with the broker (as root, checked by SO_PEERCRED in common/client.c):
 *
 *   explain   what the user's rule asks for (a ticket?) or why there is none
 *   prompt    a reason, and a ticket when the rule wants one; an empty answer files nothing
 *   request   filed for PAM_USER ("requester": only root may say that)
 *   wait      one connection kept open: the request as it stands, its audit records as
 *             they are committed, and a last frame once it leaves pending. With
 *             cancel_on_close the broker cancels the request when this connection closes
 *             while it is pending: the wait running out, Ctrl-C, or the process dying all
 *             end the request that way.
 *
 * Only strings that passed jit_message_get_string() (printable, bounded) reach the user or
 * the log, and they are cut at a character boundary to keep each message short. */

#include "pam-wait.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <syslog.h>

#include <security/pam_ext.h>

#include "cleanup.h"
#include "client.h"
#include "duration.h"
#include "protocol.h"
#include "timeutil.h"

/* How often a waiting sudo user hears that it still waits, when nothing else was said. */
#define REFRESH_USEC (30 * USEC_PER_SEC)

/* Longest pieces of broker text in one message, so that a message stays well under the
 * 512 bytes (PAM_MAX_MSG_SIZE) a conversation function may be written for. */
#define APPROVERS_TEXT_MAX 160
#define BROKER_TEXT_MAX 240
#define PATTERN_TEXT_MAX 96
#define NAME_TEXT_MAX 64

#define ERROR_CODE_MAX 32U
#define STATE_MAX 32U
#define EVENT_MAX 64U

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

/* ---- reading what the broker sends ---- */

static int get_string(json_object *o, const char *key, size_t max, bool required,
                      const char **ret) {
        return jit_message_get_string(o, key, max, required, ret) < 0 ? -EBADMSG : 0;
}

/* An approvers array: printable strings, each no longer than a user or %group name. */
static int approvers_parse(json_object *v, json_object **ret) {
        *ret = NULL;
        if (!v || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *e = json_object_array_get_idx(v, i);
                size_t len = json_object_is_type(e, json_type_string)
                                     ? (size_t) json_object_get_string_len(e)
                                     : 0;
                const char *s = len ? json_object_get_string(e) : NULL;
                if (!s || len > JIT_USER_MAX + 1 || strlen(s) != len || !jit_text_is_safe(s, len))
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

int wait_request_parse(json_object *o, WaitRequest *ret) {
        WaitRequest q = {};
        json_object *v = NULL;

        if (!o || !json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if (jit_message_get_int(o, "id", 1, INT64_MAX, true, &q.id, NULL) < 0 ||
            get_string(o, "state", STATE_MAX, true, &q.state) < 0 ||
            jit_message_get_int(o, "approvals_required", 0, INT32_MAX, false, &q.approvals_required,
                                NULL) < 0 ||
            jit_message_get_int(o, "duration", 0, INT64_MAX, false, &q.duration, NULL) < 0 ||
            get_string(o, "ended_by", JIT_USER_MAX, false, &q.ended_by) < 0 ||
            get_string(o, "end_reason", JIT_REASON_MAX, false, &q.end_reason) < 0)
                return -EBADMSG;

        if (json_object_object_get_ex(o, "approvals", &v) &&
            !json_object_is_type(v, json_type_null)) {
                if (!json_object_is_type(v, json_type_array))
                        return -EBADMSG;
                q.n_approvals = json_object_array_length(v);
        }
        v = NULL;
        (void) json_object_object_get_ex(o, "approvers", &v);
        if (approvers_parse(v, &q.approvers) < 0)
                return -EBADMSG;
        *ret = q;
        return 0;
}

int wait_frame_parse(json_object *msg, WaitFrame *ret) {
        WaitFrame f = {};
        json_object *v, *inner;

        if (!msg || !json_object_is_type(msg, json_type_object))
                return -EBADMSG;

        if (json_object_object_get_ex(msg, "ok", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        return -EBADMSG;
                if (!json_object_get_boolean(v)) {
                        f.kind = WAIT_FRAME_ERROR;
                        if (get_string(msg, "error", ERROR_CODE_MAX, true, &f.error) < 0 ||
                            get_string(msg, "message", JIT_REASON_MAX, false, &f.message) < 0)
                                return -EBADMSG;
                } else {
                        f.kind = WAIT_FRAME_FIRST;
                        if (!json_object_object_get_ex(msg, "result", &inner) ||
                            wait_request_parse(inner, &f.request) < 0)
                                return -EBADMSG;
                }
        } else if (json_object_object_get_ex(msg, "done", &v)) {
                if (!json_object_is_type(v, json_type_boolean) || !json_object_get_boolean(v))
                        return -EBADMSG;
                f.kind = WAIT_FRAME_DONE;
                if (!json_object_object_get_ex(msg, "request", &inner) ||
                    wait_request_parse(inner, &f.request) < 0)
                        return -EBADMSG;
        } else if (json_object_object_get_ex(msg, "record", &inner)) {
                bool present;
                f.kind = WAIT_FRAME_RECORD;
                if (!json_object_is_type(inner, json_type_object) ||
                    get_string(inner, "event", EVENT_MAX, true, &f.event) < 0 ||
                    get_string(inner, "actor", JIT_USER_MAX, false, &f.actor) < 0 ||
                    jit_message_get_int(inner, "request_id", 1, INT64_MAX, false, &f.record_request,
                                        &present) < 0)
                        return -EBADMSG;
                if (!present)
                        f.record_request = 0;
        } else
                return -EBADMSG;

        *ret = f;
        return 0;
}

/* Copies s into buf, at most max bytes of it, cut at a UTF-8 character boundary with "..."
 * appended when cut. s is printable text (checked), so every prefix that ends at a
 * boundary is printable text too. */
static const char *text_cut(const char *s, size_t max, char *buf, size_t size) {
        size_t len = strlen(s);

        if (size < 4) {
                if (size > 0)
                        buf[0] = '\0';
                return buf;
        }
        if (max > size - 4)
                max = size - 4;
        if (len <= max) {
                memcpy(buf, s, len + 1);
                return buf;
        }
        while (max > 0 && ((unsigned char) s[max] & 0xC0) == 0x80)
                max--;
        memcpy(buf, s, max);
        memcpy(buf + max, "...", 4);
        return buf;
}

const char *wait_approvers_text(json_object *approvers, char *buf, size_t size) {
        size_t n = approvers ? json_object_array_length(approvers) : 0, used = 0;

        if (size == 0)
                return buf;
        buf[0] = '\0';
        if (n == 0) {
                snprintf(buf, size, "an approver");
                return buf;
        }
        for (size_t i = 0; i < n; i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(approvers, i));
                size_t need = strlen(s) + (i > 0 ? 2 : 0);
                if (used + need + 4 > size) {
                        if (used + 4 <= size)
                                memcpy(buf + used, "...", 4);
                        break;
                }
                used += (size_t) snprintf(buf + used, size - used, "%s%s", i > 0 ? ", " : "", s);
        }
        return buf;
}

/* ---- exchanges ---- */

/* One answer: the reply owns result and the strings. */
typedef struct Answer {
        json_object *reply;
        json_object *result; /* ok replies */
        const char *error;   /* error replies: the code */
        const char *message; /* error replies: the text, NULL if none */
} Answer;

static void answer_done(Answer *a) {
        json_object_put(a->reply);
        *a = (Answer){};
}

/* Returns 0 for an ok reply, 1 for an error reply (a well-formed "no"), or a negative
 * errno: the transport's, -EBADMSG for garbage. */
static int call(const WaitConfig *c, json_object *request, Answer *ret) {
        json_object *ok;
        Answer a = {};
        int r;

        r = jit_client_call(c->socket, c->timeout_ms, request, &a.reply);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(a.reply, "ok", &ok) ||
            !json_object_is_type(ok, json_type_boolean)) {
                answer_done(&a);
                return -EBADMSG;
        }
        if (!json_object_get_boolean(ok)) {
                if (get_string(a.reply, "error", ERROR_CODE_MAX, true, &a.error) < 0 ||
                    get_string(a.reply, "message", JIT_REASON_MAX, false, &a.message) < 0) {
                        answer_done(&a);
                        return -EBADMSG;
                }
                *ret = a;
                return 1;
        }
        if (!json_object_object_get_ex(a.reply, "result", &a.result) ||
            !json_object_is_type(a.result, json_type_object)) {
                answer_done(&a);
                return -EBADMSG;
        }
        *ret = a;
        return 0;
}

static int add_string(json_object *o, const char *key, const char *value) {
        json_object *v = json_object_new_string(value);
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static json_object *new_op(const char *op, const WaitConfig *c, bool with_user) {
        json_object *o = jit_request_new(op);
        if (!o)
                return NULL;
        if ((with_user && add_string(o, "user", c->user) < 0) ||
            add_string(o, "service", c->service) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* ---- the conversation ---- */

typedef struct Wait {
        pam_handle_t *pamh;
        const WaitConfig *c;
        WaitResult *result;

        /* From explain. */
        Answer explain;
        const char *verdict, *rule, *policy_message, *ticket_pattern;
        bool ticket_required, auto_approve;
        int64_t approvals;
        json_object *approvers;

        /* The request. */
        int64_t id;
        int64_t approvals_required;
        size_t approvals_seen;
        int64_t duration;
        char approvers_text[APPROVERS_TEXT_MAX + 4];
        uint64_t deadline; /* CLOCK_MONOTONIC usec */
        uint64_t last_said;

        JitStream stream;
        int signal_fd;
} Wait;

static void wait_done(Wait *w) {
        answer_done(&w->explain);
        jit_stream_close(&w->stream);
        w->signal_fd = safe_close(w->signal_fd);
}

static void say(Wait *w, int style, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(Wait *w, int style, const char *fmt, ...) {
        _cleanup_free_ char *text = NULL;
        va_list ap;

        va_start(ap, fmt);
        int n = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        /* Not even a message is the caller's to lose: a conversation that fails here is
         * noticed at the next prompt, or not needed. */
        (void) pam_prompt(w->pamh, style, NULL, "%s", text);
        w->last_said = now_usec(CLOCK_MONOTONIC);
}

static const char *left_text(const Wait *w, char *buf, size_t size) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        return duration_format(w->deadline > now ? (w->deadline - now) / USEC_PER_SEC : 0, buf,
                               size);
}

static const char *plural(int64_t n) {
        return n == 1 ? "" : "s";
}

static const char *error_text(int error, char *buf, size_t size) {
        switch (error) {
        case -EPERM:
                return "the broker socket is not held by root";
        case -EBADMSG:
                return "malformed answer";
        default:
                return strerror_r(-error, buf, size); /* GNU variant */
        }
}

static void fail_broker(Wait *w, const char *what, int error) {
        char buf[128];
        const char *why = error_text(error, buf, sizeof(buf));
        w->result->end = error == -ENOMEM ? WAIT_END_LOCAL_ERROR : WAIT_END_BROKER_ERROR;
        w->result->error = error;
        pam_syslog(w->pamh, LOG_ERR, "%s for user %s, service %s failed: %s", what, w->c->user,
                   w->c->service, why);
        say(w, PAM_ERROR_MSG, "jit: the access broker could not be asked (%s).", why);
}

static void fail_refused(Wait *w, const char *what, const Answer *a) {
        char m[BROKER_TEXT_MAX + 4];
        const char *text = text_cut(a->message ?: a->error, BROKER_TEXT_MAX, m, sizeof(m));
        w->result->end = WAIT_END_NOT_GRANTED;
        pam_syslog(w->pamh, LOG_NOTICE, "broker refused the %s for user %s, service %s: %s: %s",
                   what, w->c->user, w->c->service, a->error, a->message ?: "(no message)");
        say(w, PAM_ERROR_MSG, "jit: %s", text);
}

/* Asks one question. Returns 0 with the answer (trimmed of spaces) in *ret, 1 when the
 * user gave none, or -EIO when the conversation failed (no conversation, Ctrl-C at
 * sudo's prompt, sshd's client gone). */
static int ask(Wait *w, const char *prompt, char **ret) {
        char *resp = NULL;
        int r = pam_prompt(w->pamh, PAM_PROMPT_ECHO_ON, &resp, "%s", prompt);
        w->last_said = now_usec(CLOCK_MONOTONIC);
        if (r != PAM_SUCCESS) {
                if (resp) {
                        explicit_bzero(resp, strlen(resp));
                        free(resp);
                }
                pam_syslog(w->pamh, LOG_NOTICE, "conversation with user %s failed: %s", w->c->user,
                           pam_strerror(w->pamh, r));
                return -EIO;
        }
        if (!resp)
                return 1;

        size_t start = strspn(resp, " "), len = strlen(resp + start);
        while (len > 0 && resp[start + len - 1] == ' ')
                len--;
        if (len == 0) {
                free(resp);
                return 1;
        }
        memmove(resp, resp + start, len);
        resp[len] = '\0';
        *ret = resp;
        return 0;
}

static void free_answer(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char *, free_answer)

/* A reason or ticket that the broker would refuse, or that must not be filed. Returns 0,
 * or -EINVAL after telling the user why. */
static int check_answer(Wait *w, const char *field, const char *s, size_t max) {
        const void *authtok = NULL;
        size_t len = strlen(s);
        uint32_t cp = 0;
        char why[160];

        if (len > max) {
                say(w, PAM_ERROR_MSG, "jit: the %s is longer than %zu bytes; nothing filed.", field,
                    max);
                return -EINVAL;
        }
        JitTextProblem p = jit_text_check(s, len, &cp);
        if (p != JIT_TEXT_OK) {
                jit_text_problem_message(field, p, cp, why, sizeof(why));
                say(w, PAM_ERROR_MSG, "jit: %s; nothing filed.", why);
                return -EINVAL;
        }
        /* A password typed at the wrong prompt would go to approvers and the audit log.
         * PAM_AUTHTOK is set when a password module ran before this one. */
        if (pam_get_item(w->pamh, PAM_AUTHTOK, &authtok) == PAM_SUCCESS && authtok &&
            STREQ(authtok, s)) {
                pam_syslog(w->pamh, LOG_WARNING,
                           "user %s answered the %s prompt with their password; nothing filed",
                           w->c->user, field);
                say(w, PAM_ERROR_MSG, "jit: that %s is your password; nothing filed.", field);
                return -EINVAL;
        }
        return 0;
}

/* ---- explain, prompt, file ---- */

static int do_explain(Wait *w) {
        _cleanup_(json_object_putp) json_object *req = new_op("explain", w->c, true);
        json_object *v;
        int r;

        if (!req) {
                fail_broker(w, "explaining the policy", -ENOMEM);
                return -ENOMEM;
        }
        r = call(w->c, req, &w->explain);
        if (r < 0) {
                fail_broker(w, "explaining the policy", r);
                return r;
        }
        if (r > 0) {
                fail_refused(w, "explanation", &w->explain);
                return -EPERM;
        }

        json_object *res = w->explain.result;
        if (get_string(res, "verdict", 16, true, &w->verdict) < 0 ||
            get_string(res, "rule", JIT_USER_MAX, false, &w->rule) < 0 ||
            get_string(res, "message", JIT_REASON_MAX, false, &w->policy_message) < 0 ||
            get_string(res, "ticket_pattern", JIT_REASON_MAX, false, &w->ticket_pattern) < 0 ||
            jit_message_get_int(res, "approvals", 0, INT32_MAX, false, &w->approvals, NULL) < 0 ||
            jit_message_get_bool(res, "ticket_required", &w->ticket_required) < 0 ||
            jit_message_get_bool(res, "auto_approve", &w->auto_approve) < 0 ||
            !(STREQ(w->verdict, "auto") || STREQ(w->verdict, "approval") ||
              STREQ(w->verdict, "refused"))) {
                fail_broker(w, "explaining the policy", -EBADMSG);
                return -EBADMSG;
        }
        v = NULL;
        (void) json_object_object_get_ex(res, "approvers", &v);
        if (approvers_parse(v, &w->approvers) < 0) {
                fail_broker(w, "explaining the policy", -EBADMSG);
                return -EBADMSG;
        }
        return 0;
}

static void announce_rule(Wait *w) {
        /* A rule that wants a ticket is "refused" until it has one: auto_approve says how
         * it decides then. */
        if (STREQ(w->verdict, "auto") || w->auto_approve)
                say(w, PAM_TEXT_INFO, "jit: no active grant for %s; a request is granted at once.",
                    w->c->service);
        else
                say(w, PAM_TEXT_INFO,
                    "jit: no active grant for %s; a request needs %lld approval%s from %s.",
                    w->c->service, (long long) w->approvals, plural(w->approvals),
                    wait_approvers_text(w->approvers, w->approvers_text,
                                        sizeof(w->approvers_text)));
}

typedef enum Filed {
        FILED_PENDING,
        FILED_ACTIVE, /* a rule that approves at once */
        FILED_OTHER,
} Filed;

/* Returns 0 with the request filed (w->id) and its state in *ret, or -errno after setting
 * the result. */
static int do_file(Wait *w, const char *reason, const char *ticket, Filed *ret) {
        _cleanup_(json_object_putp) json_object *req = new_op("request", w->c, false);
        _cleanup_(answer_done) Answer a = {};
        int r;

        if (!req || add_string(req, "reason", reason) < 0 ||
            (ticket && add_string(req, "ticket", ticket) < 0) ||
            add_string(req, "requester", w->c->user) < 0) {
                fail_broker(w, "filing the request", -ENOMEM);
                return -ENOMEM;
        }
        r = call(w->c, req, &a);
        if (r < 0) {
                fail_broker(w, "filing the request", r);
                return r;
        }
        if (r > 0) {
                fail_refused(w, "request", &a);
                return -EPERM;
        }
        WaitRequest q;
        if (wait_request_parse(a.result, &q) < 0) {
                fail_broker(w, "filing the request", -EBADMSG);
                return -EBADMSG;
        }
        w->id = w->result->request_id = q.id;
        w->approvals_required = q.approvals_required;
        w->approvals_seen = q.n_approvals;
        w->duration = q.duration;
        *ret = STREQ(q.state, "pending")  ? FILED_PENDING
               : STREQ(q.state, "active") ? FILED_ACTIVE
                                          : FILED_OTHER;
        pam_syslog(w->pamh, LOG_NOTICE,
                   "request %lld filed for user %s, service %s (%s); waiting up to %us",
                   (long long) q.id, w->c->user, w->c->service, q.state, w->c->wait_sec);
        return 0;
}

/* Best effort, for a request whose wait could not begin or was lost: without the stream,
 * nothing else cancels it. */
static void cancel_request(Wait *w) {
        _cleanup_(json_object_putp) json_object *req = jit_request_new("cancel");
        _cleanup_(answer_done) Answer a = {};
        char buf[128];

        json_object *v = req ? json_object_new_int64(w->id) : NULL;
        if (!v || json_object_object_add(req, "id", v) < 0) {
                json_object_put(v);
                pam_syslog(w->pamh, LOG_ERR, "cannot cancel request %lld: out of memory",
                           (long long) w->id);
                return;
        }
        int r = call(w->c, req, &a);
        if (r < 0)
                pam_syslog(w->pamh, LOG_ERR, "cancelling request %lld failed: %s; it stays pending",
                           (long long) w->id, error_text(r, buf, sizeof(buf)));
        else if (r > 0)
                pam_syslog(w->pamh, LOG_NOTICE, "cancelling request %lld: %s: %s",
                           (long long) w->id, a.error, a.message ?: "(no message)");
}

static void granted(Wait *w) {
        char d[DURATION_BUF_MAX];
        w->result->end = WAIT_END_GRANTED;
        pam_syslog(w->pamh, LOG_NOTICE, "request %lld of user %s for %s is active",
                   (long long) w->id, w->c->user, w->c->service);
        say(w, PAM_TEXT_INFO, "jit: request %lld granted for %s.", (long long) w->id,
            duration_format((uint64_t) w->duration, d, sizeof(d)));
}

/* ---- the wait ---- */

typedef enum Step {
        STEP_GO_ON,
        STEP_END, /* w->result is set */
} Step;

static Step ended(Wait *w, const WaitRequest *q) {
        char by[NAME_TEXT_MAX + 4], why[BROKER_TEXT_MAX + 4];
        const char *who = q->ended_by ? text_cut(q->ended_by, NAME_TEXT_MAX, by, sizeof(by)) : NULL;

        if (q->id != w->id) {
                fail_broker(w, "waiting", -EBADMSG);
                return STEP_END;
        }
        w->duration = q->duration;
        if (STREQ(q->state, "active")) {
                granted(w);
                return STEP_END;
        }

        w->result->end = WAIT_END_NOT_GRANTED;
        pam_syslog(w->pamh, LOG_NOTICE, "request %lld of user %s for %s ended %s (by %s: %s)",
                   (long long) w->id, w->c->user, w->c->service, q->state, q->ended_by ?: "-",
                   q->end_reason ?: "-");
        if (STREQ(q->state, "denied")) {
                if (q->end_reason)
                        say(w, PAM_ERROR_MSG, "jit: request %lld denied by %s: %s",
                            (long long) w->id, who ?: "an approver",
                            text_cut(q->end_reason, BROKER_TEXT_MAX, why, sizeof(why)));
                else
                        say(w, PAM_ERROR_MSG, "jit: request %lld denied by %s.", (long long) w->id,
                            who ?: "an approver");
        } else if (STREQ(q->state, "timed_out"))
                say(w, PAM_ERROR_MSG, "jit: request %lld timed out: nobody approved it in time.",
                    (long long) w->id);
        else if (STREQ(q->state, "cancelled"))
                say(w, PAM_ERROR_MSG, "jit: request %lld was cancelled%s%s.", (long long) w->id,
                    who ? " by " : "", who ?: "");
        else
                say(w, PAM_ERROR_MSG, "jit: request %lld ended: %s.", (long long) w->id, q->state);
        return STEP_END;
}

static Step handle_frame(Wait *w, json_object *msg) {
        char who[NAME_TEXT_MAX + 4];
        WaitFrame f;

        if (wait_frame_parse(msg, &f) < 0) {
                fail_broker(w, "waiting", -EBADMSG);
                return STEP_END;
        }
        switch (f.kind) {
        case WAIT_FRAME_RECORD:
                if (f.record_request != w->id || !STREQ(f.event, "approval") || !f.actor)
                        return STEP_GO_ON;
                w->approvals_seen++;
                if ((int64_t) w->approvals_seen < w->approvals_required) {
                        int64_t more = w->approvals_required - (int64_t) w->approvals_seen;
                        say(w, PAM_TEXT_INFO, "jit: approved by %s; %lld more approval%s needed.",
                            text_cut(f.actor, NAME_TEXT_MAX, who, sizeof(who)), (long long) more,
                            plural(more));
                } else
                        say(w, PAM_TEXT_INFO, "jit: approved by %s",
                            text_cut(f.actor, NAME_TEXT_MAX, who, sizeof(who)));
                return STEP_GO_ON;

        case WAIT_FRAME_DONE:
                return ended(w, &f.request);

        case WAIT_FRAME_ERROR: {
                char m[BROKER_TEXT_MAX + 4];
                w->result->end = WAIT_END_BROKER_ERROR;
                w->result->error = -ECONNRESET;
                pam_syslog(w->pamh, LOG_ERR, "the broker ended the wait for request %lld: %s: %s",
                           (long long) w->id, f.error, f.message ?: "(no message)");
                say(w, PAM_ERROR_MSG, "jit: the access broker ended the wait for request %lld: %s",
                    (long long) w->id,
                    text_cut(f.message ?: f.error, BROKER_TEXT_MAX, m, sizeof(m)));
                return STEP_END;
        }

        case WAIT_FRAME_FIRST:
        default:
                /* Only ever the first frame. */
                fail_broker(w, "waiting", -EBADMSG);
                return STEP_END;
        }
}

/* Signals that mean "stop" and that the application holds blocked while PAM runs (sudo
 * blocks SIGINT during authentication, so Ctrl-C would only act once the wait is over).
 * The fd becomes readable while one of them is pending; it is never read, so the signal
 * stays pending for the application, which acts on it once the module has returned. */
static int open_signal_fd(void) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGQUIT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        return fd < 0 ? -errno : fd;
}

static int start_stream(Wait *w) {
        _cleanup_(json_object_putp) json_object *req = jit_request_new("wait");
        _cleanup_(json_object_putp) json_object *first = NULL;
        json_object *v;
        int r;

        if (!req)
                return -ENOMEM;
        v = json_object_new_int64(w->id);
        if (!v || json_object_object_add(req, "id", v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        v = json_object_new_boolean(1);
        if (!v || json_object_object_add(req, "cancel_on_close", v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }

        r = jit_stream_open(&w->stream, w->c->socket, w->c->timeout_ms, req);
        if (r < 0)
                return r;
        r = jit_stream_next(&w->stream,
                            now_usec(CLOCK_MONOTONIC) + (uint64_t) w->c->timeout_ms * USEC_PER_MSEC,
                            &first);
        if (r == 0)
                return -ETIMEDOUT;
        if (r < 0)
                return r;

        WaitFrame f;
        if (wait_frame_parse(first, &f) < 0)
                return -EBADMSG;
        if (f.kind == WAIT_FRAME_ERROR) {
                char m[BROKER_TEXT_MAX + 4];
                pam_syslog(w->pamh, LOG_ERR, "broker refused to wait for request %lld: %s: %s",
                           (long long) w->id, f.error, f.message ?: "(no message)");
                say(w, PAM_ERROR_MSG, "jit: cannot wait for request %lld: %s", (long long) w->id,
                    text_cut(f.message ?: f.error, BROKER_TEXT_MAX, m, sizeof(m)));
                return -EPERM;
        }
        if (f.kind != WAIT_FRAME_FIRST || f.request.id != w->id)
                return -EBADMSG;
        w->approvals_required = f.request.approvals_required;
        w->approvals_seen = f.request.n_approvals;
        w->duration = f.request.duration;
        if (f.request.approvers)
                wait_approvers_text(f.request.approvers, w->approvers_text,
                                    sizeof(w->approvers_text));
        return 0;
}

static void wait_for_decision(Wait *w) {
        char left[DURATION_BUF_MAX], total[DURATION_BUF_MAX], buf[128];
        int r;

        r = start_stream(w);
        if (r < 0) {
                jit_stream_close(&w->stream);
                if (r != -EPERM)
                        fail_broker(w, "waiting", r);
                else
                        w->result->end = WAIT_END_NOT_GRANTED;
                cancel_request(w);
                return;
        }

        int64_t missing = w->approvals_required - (int64_t) w->approvals_seen;
        if (missing < 1)
                missing = 1;
        say(w, PAM_TEXT_INFO,
            "jit: request %lld filed, waiting for %lld approval%s from %s (%s left, Ctrl-C cancels)",
            (long long) w->id, (long long) missing, plural(missing), w->approvers_text,
            left_text(w, left, sizeof(left)));

        if (w->c->progress == WAIT_PROGRESS_PROMPT) {
                /* The messages so far reach an sshd user only with a prompt. */
                char *resp = NULL;
                r = pam_prompt(w->pamh, PAM_PROMPT_ECHO_ON, &resp,
                               "jit: press Enter to wait for the decision: ");
                free_answer(resp);
                if (r != PAM_SUCCESS) {
                        pam_syslog(
                                w->pamh, LOG_NOTICE,
                                "conversation with user %s ended while request %lld was pending: %s; cancelling it",
                                w->c->user, (long long) w->id, pam_strerror(w->pamh, r));
                        jit_stream_close(&w->stream); /* the broker cancels it */
                        w->result->end = WAIT_END_NOT_GRANTED;
                        return;
                }
        }

        if (w->c->debug)
                pam_syslog(w->pamh, LOG_DEBUG,
                           "waiting %s for a decision on request %lld of user %s",
                           left_text(w, left, sizeof(left)), (long long) w->id, w->c->user);

        w->signal_fd = open_signal_fd();
        if (w->signal_fd < 0)
                pam_syslog(w->pamh, LOG_WARNING,
                           "signalfd failed: %s; Ctrl-C will not cancel the wait",
                           strerror_r(-w->signal_fd, buf, sizeof(buf)));

        for (;;) {
                _cleanup_(json_object_putp) json_object *frame = NULL;

                r = jit_stream_read(&w->stream, &frame);
                if (r > 0) {
                        if (handle_frame(w, frame) == STEP_END)
                                return;
                        continue;
                }
                if (r < 0) {
                        jit_stream_close(&w->stream);
                        pam_syslog(w->pamh, LOG_ERR,
                                   "lost the wait for request %lld of user %s: %s",
                                   (long long) w->id, w->c->user, error_text(r, buf, sizeof(buf)));
                        w->result->end =
                                r == -ENOMEM ? WAIT_END_LOCAL_ERROR : WAIT_END_BROKER_ERROR;
                        w->result->error = r;
                        say(w, PAM_ERROR_MSG,
                            "jit: lost the access broker while waiting (%s); giving up on request %lld.",
                            error_text(r, buf, sizeof(buf)), (long long) w->id);
                        cancel_request(w);
                        return;
                }

                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= w->deadline) {
                        jit_stream_close(&w->stream); /* the broker cancels it */
                        duration_format(w->c->wait_sec, total, sizeof(total));
                        pam_syslog(
                                w->pamh, LOG_NOTICE,
                                "no decision on request %lld of user %s within %s; cancelling it",
                                (long long) w->id, w->c->user, total);
                        say(w, PAM_ERROR_MSG, "jit: no approval within %s; request %lld cancelled",
                            total, (long long) w->id);
                        w->result->end = WAIT_END_NOT_GRANTED;
                        return;
                }

                uint64_t wake = w->deadline;
                bool refresh = w->c->progress == WAIT_PROGRESS_INFO;
                if (refresh && w->last_said + REFRESH_USEC < wake)
                        wake = w->last_said + REFRESH_USEC;
                uint64_t ms = wake > now ? (wake - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC : 0;
                struct pollfd p[2] = {
                        { .fd = w->stream.fd, .events = POLLIN },
                        { .fd = w->signal_fd, .events = POLLIN },
                };
                int n = poll(p, w->signal_fd >= 0 ? 2 : 1, ms > 60000 ? 60000 : (int) ms);
                if (n < 0 && errno != EINTR) {
                        r = -errno;
                        jit_stream_close(&w->stream);
                        fail_broker(w, "waiting", r);
                        return;
                }
                if (n > 0 && w->signal_fd >= 0 && (p[1].revents & POLLIN)) {
                        jit_stream_close(&w->stream); /* the broker cancels it */
                        pam_syslog(w->pamh, LOG_NOTICE,
                                   "user %s interrupted the wait; request %lld cancelled",
                                   w->c->user, (long long) w->id);
                        say(w, PAM_ERROR_MSG, "jit: request %lld cancelled.", (long long) w->id);
                        w->result->end = WAIT_END_NOT_GRANTED;
                        return;
                }
                now = now_usec(CLOCK_MONOTONIC);
                if (refresh && now >= w->last_said + REFRESH_USEC && now < w->deadline) {
                        int64_t m = w->approvals_required - (int64_t) w->approvals_seen;
                        if (m < 1)
                                m = 1;
                        say(w, PAM_TEXT_INFO,
                            "jit: still waiting for %lld approval%s of request %lld (%s left, Ctrl-C cancels)",
                            (long long) m, plural(m), (long long) w->id,
                            left_text(w, left, sizeof(left)));
                }
        }
}

void pam_wait_run(pam_handle_t *pamh, const WaitConfig *c, WaitResult *ret) {
        _cleanup_(wait_done) Wait w = {
                .pamh = pamh,
                .c = c,
                .result = ret,
                .stream = JIT_STREAM_INIT,
                .signal_fd = -EBADF,
        };
        _cleanup_(free_answerp) char *reason = NULL, *ticket = NULL;
        char pattern[PATTERN_TEXT_MAX + 4], m[BROKER_TEXT_MAX + 4], name[NAME_TEXT_MAX + 4];
        int r;

        *ret = (WaitResult){ .end = WAIT_END_NOT_GRANTED };

        if (do_explain(&w) < 0)
                return;
        if (STREQ(w.verdict, "refused") && !w.ticket_required) {
                pam_syslog(pamh, LOG_NOTICE, "policy refuses user %s a request for %s: %s", c->user,
                           c->service, w.policy_message ?: "(no message)");
                say(&w, PAM_ERROR_MSG, "jit: %s cannot ask for %s access: %s",
                    text_cut(c->user, NAME_TEXT_MAX, name, sizeof(name)), c->service,
                    w.policy_message ? text_cut(w.policy_message, BROKER_TEXT_MAX, m, sizeof(m))
                                     : "no policy rule allows it");
                return;
        }

        announce_rule(&w);
        r = ask(&w, "jit: reason (empty cancels): ", &reason);
        if (r == 0 && w.ticket_required) {
                _cleanup_free_ char *prompt = NULL;
                if (asprintf(&prompt, "jit: ticket matching %s (empty cancels): ",
                             w.ticket_pattern ? text_cut(w.ticket_pattern, PATTERN_TEXT_MAX,
                                                         pattern, sizeof(pattern))
                                              : "the rule's pattern") < 0) {
                        ret->end = WAIT_END_LOCAL_ERROR;
                        ret->error = -ENOMEM;
                        return;
                }
                r = ask(&w, prompt, &ticket);
        }
        if (r < 0)
                return; /* logged; nothing filed */
        if (r > 0) {
                pam_syslog(pamh, LOG_NOTICE, "user %s gave no answer; nothing filed", c->user);
                say(&w, PAM_ERROR_MSG, "jit: no answer; nothing filed.");
                return;
        }
        if (check_answer(&w, "reason", reason, JIT_REASON_MAX) < 0 ||
            (ticket && check_answer(&w, "ticket", ticket, JIT_TICKET_MAX) < 0))
                return;

        Filed filed;
        if (do_file(&w, reason, ticket, &filed) < 0)
                return;
        w.deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) c->wait_sec * USEC_PER_SEC;
        wait_approvers_text(w.approvers, w.approvers_text, sizeof(w.approvers_text));

        if (filed == FILED_ACTIVE) {
                granted(&w);
                return;
        }
        if (filed != FILED_PENDING) {
                ret->end = WAIT_END_NOT_GRANTED;
                say(&w, PAM_ERROR_MSG, "jit: request %lld was not granted.", (long long) w.id);
                return;
        }
        wait_for_decision(&w);
}
