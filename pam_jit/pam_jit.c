/* SPDX-License-Identifier: MIT */
/* pam_jit: the account stack asks jit-brokerd whether the user holds an active grant for
 * this PAM service. Only a well-formed "allowed": true from a broker running as root lets
 * the user in; every other path denies (unless an administrator wrote fail=open, and then
 * only when the broker cannot be reached or answers garbage, loudly logged each time).
 *
 * The auth stack, with wait=, lets a user without a grant ask for one at the prompt and
 * wait for it (pam-wait.c). It never authenticates anyone: it returns PAM_IGNORE to let the
 * stack go on, or fails; the account stack still decides.
 *
 * The module keeps no state between calls: no static mutable data, nothing read from the
 * environment, every fd O_CLOEXEC (common/client.c), and everything it allocates is
 * released on every path. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "cleanup.h"
#include "client.h"
#include "command-line.h"
#include "duration.h"
#include "names.h"
#include "pam-wait.h"
#include "protocol.h"
#include "timeutil.h"

#define TIMEOUT_MS_DEFAULT 3000U
#define TIMEOUT_MS_MIN 100U
#define TIMEOUT_MS_MAX 60000U
#define WAIT_SEC_MAX 3600U
#define ERROR_CODE_MAX 32U /* longest "error" code accepted from the broker */

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *) NULL)->sun_path)

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)

typedef enum FailMode {
        FAIL_CLOSED,
        FAIL_OPEN,
} FailMode;

typedef enum Progress {
        PROGRESS_AUTO, /* prompt for sshd, info for everything else */
        PROGRESS_INFO,
        PROGRESS_PROMPT,
} Progress;

typedef struct Options {
        const char *socket; /* points into argv */
        unsigned timeout_ms;
        FailMode fail;
        bool debug;
        bool wait_set;
        unsigned wait_sec; /* 0: the auth part does nothing */
        Progress progress;
        const char *service; /* service= : the grant's service instead of PAM_SERVICE */
} Options;

/* Which of the module's parts runs. */
typedef enum Stack {
        STACK_ACCOUNT,
        STACK_AUTH,
} Stack;

/* What happened, before it becomes a PAM code in outcome_to_pam(). */
typedef enum Outcome {
        OUTCOME_ALLOWED,       /* well-formed ok reply, "allowed": true */
        OUTCOME_NO_GRANT,      /* well-formed ok reply, "allowed": false */
        OUTCOME_GRANTED,       /* auth: the request filed at the prompt became active */
        OUTCOME_NOT_GRANTED,   /* auth: refused, denied, timed out, cancelled, nothing filed */
        OUTCOME_WAIT_OFF,      /* auth: no wait= (or wait=0): nothing to do */
        OUTCOME_REFUSED,       /* the broker answered with an error reply */
        OUTCOME_BROKER_ERROR,  /* no trustworthy answer; error says why */
        OUTCOME_BAD_USER,      /* PAM_USER missing, too long or unprintable */
        OUTCOME_MISCONFIGURED, /* bad module argument or PAM_SERVICE; already logged */
        OUTCOME_LOCAL_ERROR,   /* ENOMEM and the like; error says why */
} Outcome;

typedef struct Check {
        Outcome outcome;
        int error; /* negative errno for OUTCOME_BROKER_ERROR / OUTCOME_LOCAL_ERROR */

        const char *user;        /* PAM_USER, printable only once user_ok */
        bool user_ok;            /* passed jit_text_is_safe() and the length limit */
        const char *service;     /* PAM_SERVICE, printable only once service_ok; then the grant's */
        const char *pam_service; /* PAM_SERVICE itself */
        bool service_ok;

        bool told; /* the wait told the user already (auth) */

        json_object *reply;         /* owns the strings below */
        int64_t request_id;         /* 0 when the reply named none */
        const char *expires_at;     /* NULL when absent */
        const char *broker_error;   /* error replies: the code, NULL if unusable */
        const char *broker_message; /* error replies: the text, NULL if unusable */

        char fail_open_refused[SUN_PATH_SIZE + 96]; /* why fail=open did not apply; "" */
} Check;

static void check_done(Check *c) {
        json_object_put(c->reply);
        c->reply = NULL;
}

/* The one place where an outcome becomes a PAM return code. Anything not named here, and
 * any error not on the short list of "the broker is down" errors, denies. */
static int account_code(Outcome outcome, int error, FailMode fail) {
        switch (outcome) {
        case OUTCOME_ALLOWED:
                return PAM_SUCCESS;

        case OUTCOME_BROKER_ERROR:
                if (fail != FAIL_OPEN)
                        return PAM_PERM_DENIED;
                /* fail=open covers only a broker that is not there at all. A slow broker, a
                 * dropped connection or garbage can be caused by any local user (a flood of
                 * connections keeps the broker busy), so they deny; so does a socket held
                 * by a non-root process (-EPERM), a path or permission problem, or a local
                 * failure. */
                switch (error) {
                case -ENOENT:
                case -ECONNREFUSED:
                        return PAM_SUCCESS;
                default:
                        return PAM_PERM_DENIED;
                }

        case OUTCOME_MISCONFIGURED:
        case OUTCOME_LOCAL_ERROR:
                return PAM_SERVICE_ERR;

        case OUTCOME_NO_GRANT:
        case OUTCOME_GRANTED:     /* auth only */
        case OUTCOME_NOT_GRANTED: /* auth only */
        case OUTCOME_WAIT_OFF:    /* auth only */
        case OUTCOME_REFUSED:
        case OUTCOME_BAD_USER:
        default:
                return PAM_PERM_DENIED;
        }
}

/* Auth follows from account: where account would let the user in, auth lets the stack go
 * on; where it would deny, auth fails. Auth never returns PAM_SUCCESS: going on is
 * PAM_IGNORE, so that pam_jit cannot stand in for the module that authenticates, whatever
 * its control (a stack whose modules all ignore fails). It fails with PAM_AUTH_ERR, which
 * sudo and sshd's keyboard-interactive take for a failed attempt (sshd shows the module's
 * messages only for that code). */
static int outcome_to_pam(Outcome outcome, int error, FailMode fail, Stack stack) {
        int code = account_code(outcome, error, fail);

        if (stack == STACK_ACCOUNT)
                return code;
        if (outcome == OUTCOME_GRANTED || outcome == OUTCOME_WAIT_OFF)
                return PAM_IGNORE;
        switch (code) {
        case PAM_SUCCESS:
                return PAM_IGNORE;
        case PAM_SERVICE_ERR:
                return PAM_SERVICE_ERR;
        default:
                return PAM_AUTH_ERR;
        }
}

/* fail=open believes "the broker is not there" (ENOENT, ECONNREFUSED) only when no user
 * could have made it so: a user who may write to a directory on the socket's path can
 * delete the socket, or bind one of their own there and exit. So every component, from /
 * down, must be root's and not writable by group or others (a sticky /tmp too: its
 * owner-only deletion does not stop a user from binding the name first), and none may be a
 * symbolic link (lstat(), nothing followed). The socket itself, when it is there, must be
 * root's socket; its own mode only says who may connect (0666 by design). A directory that
 * is missing ends the walk: only root could create it under root's directories. Returns 0,
 * or -EPERM with the reason in why. */
static int socket_path_root_only(const char *socket, char *why, size_t size) {
        char path[SUN_PATH_SIZE];
        size_t len = strlen(socket), end = 1;
        struct stat st;

        if (socket[0] != '/' || len >= sizeof(path)) {
                snprintf(why, size, "the socket path is not absolute or too long");
                return -EPERM;
        }
        memcpy(path, socket, len + 1);

        for (;;) {
                /* path[0..end) is "/" or a prefix ending at a component. */
                char saved = path[end];
                bool last = strspn(path + end, "/") == len - end;
                path[end] = '\0';

                if (lstat(path, &st) < 0) {
                        int error = errno;
                        if (error == ENOENT)
                                return 0;
                        snprintf(why, size, "cannot check %s: %s", path, strerror(error));
                        return -EPERM;
                }
                if (S_ISLNK(st.st_mode)) {
                        snprintf(why, size, "%s is a symbolic link", path);
                        return -EPERM;
                }
                if (st.st_uid != 0) {
                        snprintf(why, size, "%s is owned by uid %u, not root", path,
                                 (unsigned) st.st_uid);
                        return -EPERM;
                }
                if (last && !S_ISSOCK(st.st_mode)) {
                        snprintf(why, size, "%s is not a socket", path);
                        return -EPERM;
                }
                if (!last && !S_ISDIR(st.st_mode)) {
                        snprintf(why, size, "%s is not a directory", path);
                        return -EPERM;
                }
                if (!last && (st.st_mode & (S_IWGRP | S_IWOTH))) {
                        snprintf(why, size, "%s is writable by group/others", path);
                        return -EPERM;
                }
                path[end] = saved;
                if (last)
                        return 0;

                /* The next component: past the slashes, up to the next one. */
                end += strspn(path + end, "/");
                end += strcspn(path + end, "/");
        }
}

static const char *errno_text(int error, char *buf, size_t len) {
        if (error == -EPERM)
                return "the broker socket is not held by root";
        return strerror_r(error < 0 ? -error : error, buf, len); /* GNU variant */
}

static const char *startswith(const char *s, const char *prefix) {
        size_t n = strlen(prefix);
        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* Strict unsigned decimal: digits only, no sign, no spaces, within [min, max]. */
static int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t) (*p - '0');
                if (v > max)
                        return -ERANGE;
        }
        if (v < min)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

/* wait=: seconds as a bare number (0 turns the wait off), or a duration ("90s", "5m"), at
 * most WAIT_SEC_MAX. */
static int parse_wait(const char *s, unsigned *ret) {
        uint64_t sec;
        int r;

        if (s[0] >= '0' && s[0] <= '9' && s[strspn(s, "0123456789")] == '\0')
                return parse_unsigned(s, 0, WAIT_SEC_MAX, ret);
        r = duration_parse(s, &sec);
        if (r < 0)
                return r;
        if (sec > WAIT_SEC_MAX)
                return -ERANGE;
        *ret = (unsigned) sec;
        return 0;
}

/* Returns 0, or -EINVAL after logging what is wrong with the arguments. */
static int parse_options(const pam_handle_t *pamh, int argc, const char **argv, Options *o) {
        bool have_socket = false, have_timeout = false, have_fail = false, have_progress = false;

        *o = (Options){
                .socket = JIT_SOCKET_DEFAULT,
                .timeout_ms = TIMEOUT_MS_DEFAULT,
                .fail = FAIL_CLOSED,
        };

        if (argc < 0 || (argc > 0 && !argv)) {
                pam_syslog(pamh, LOG_ERR, "invalid module argument vector; denying");
                return -EINVAL;
        }

        for (int i = 0; i < argc; i++) {
                const char *a = argv[i];
                const char *v;
                int r;

                if (!a || !jit_text_is_safe(a, strlen(a))) {
                        pam_syslog(pamh, LOG_ERR, "module argument %d is unprintable; denying",
                                   i + 1);
                        return -EINVAL;
                }

                if ((v = startswith(a, "socket="))) {
                        if (have_socket) {
                                pam_syslog(pamh, LOG_ERR, "socket= given twice; denying");
                                return -EINVAL;
                        }
                        if (v[0] != '/' || strlen(v) >= SUN_PATH_SIZE) {
                                pam_syslog(
                                        pamh, LOG_ERR,
                                        "socket= needs an absolute path shorter than %zu bytes, got \"%.200s\"; denying",
                                        SUN_PATH_SIZE, v);
                                return -EINVAL;
                        }
                        o->socket = v;
                        have_socket = true;

                } else if ((v = startswith(a, "timeout="))) {
                        if (have_timeout) {
                                pam_syslog(pamh, LOG_ERR, "timeout= given twice; denying");
                                return -EINVAL;
                        }
                        r = parse_unsigned(v, TIMEOUT_MS_MIN, TIMEOUT_MS_MAX, &o->timeout_ms);
                        if (r < 0) {
                                pam_syslog(
                                        pamh, LOG_ERR,
                                        "timeout= must be milliseconds between %u and %u, got \"%.200s\"; denying",
                                        TIMEOUT_MS_MIN, TIMEOUT_MS_MAX, v);
                                return -EINVAL;
                        }
                        have_timeout = true;

                } else if ((v = startswith(a, "fail="))) {
                        if (have_fail) {
                                pam_syslog(pamh, LOG_ERR, "fail= given twice; denying");
                                return -EINVAL;
                        }
                        if (STREQ(v, "closed"))
                                o->fail = FAIL_CLOSED;
                        else if (STREQ(v, "open"))
                                o->fail = FAIL_OPEN;
                        else {
                                pam_syslog(
                                        pamh, LOG_ERR,
                                        "fail= must be \"closed\" or \"open\", got \"%.200s\"; denying",
                                        v);
                                return -EINVAL;
                        }
                        have_fail = true;

                } else if ((v = startswith(a, "wait="))) {
                        if (o->wait_set) {
                                pam_syslog(pamh, LOG_ERR, "wait= given twice; denying");
                                return -EINVAL;
                        }
                        r = parse_wait(v, &o->wait_sec);
                        if (r < 0) {
                                pam_syslog(
                                        pamh, LOG_ERR,
                                        "wait= must be 0 or a duration up to %us (300, 90s, 5m), got \"%.200s\"; denying",
                                        WAIT_SEC_MAX, v);
                                return -EINVAL;
                        }
                        o->wait_set = true;

                } else if ((v = startswith(a, "progress="))) {
                        if (have_progress) {
                                pam_syslog(pamh, LOG_ERR, "progress= given twice; denying");
                                return -EINVAL;
                        }
                        if (STREQ(v, "info"))
                                o->progress = PROGRESS_INFO;
                        else if (STREQ(v, "prompt"))
                                o->progress = PROGRESS_PROMPT;
                        else {
                                pam_syslog(
                                        pamh, LOG_ERR,
                                        "progress= must be \"info\" or \"prompt\", got \"%.200s\"; denying",
                                        v);
                                return -EINVAL;
                        }
                        have_progress = true;

                } else if ((v = startswith(a, "service="))) {
                        /* e.g. Debian's "sudo-i" stack asks about "sudo" grants. */
                        if (o->service) {
                                pam_syslog(pamh, LOG_ERR, "service= given twice; denying");
                                return -EINVAL;
                        }
                        if (!jit_service_name_is_valid(v)) {
                                pam_syslog(
                                        pamh, LOG_ERR,
                                        "service= must be 1-%u characters of [A-Za-z0-9._-]; denying",
                                        (unsigned) JIT_SERVICE_MAX);
                                return -EINVAL;
                        }
                        o->service = v;

                } else if (STREQ(a, "debug"))
                        o->debug = true;

                else {
                        pam_syslog(pamh, LOG_ERR, "unknown module argument \"%.200s\"; denying", a);
                        return -EINVAL;
                }
        }

        return 0;
}

/* Reads PAM_USER and PAM_SERVICE into c. Returns 0 or the outcome that ends the check. */
static int get_items(pam_handle_t *pamh, Check *c, Outcome *ret) {
        const void *item = NULL;
        int r;

        r = pam_get_item(pamh, PAM_SERVICE, &item);
        if (r != PAM_SUCCESS || !item) {
                pam_syslog(pamh, LOG_ERR, "cannot read PAM_SERVICE: %s; denying",
                           pam_strerror(pamh, r));
                *ret = OUTCOME_MISCONFIGURED;
                return -EINVAL;
        }
        c->service = c->pam_service = item;
        if (!jit_service_name_is_valid(c->service)) {
                pam_syslog(pamh, LOG_ERR,
                           "PAM service name is not 1-%u characters of [A-Za-z0-9._-]; denying",
                           (unsigned) JIT_SERVICE_MAX);
                *ret = OUTCOME_MISCONFIGURED;
                return -EINVAL;
        }
        c->service_ok = true;

        /* pam_get_item(), not pam_get_user(): the account stack never prompts. */
        item = NULL;
        r = pam_get_item(pamh, PAM_USER, &item);
        if (r != PAM_SUCCESS || !item || !*(const char *) item) {
                pam_syslog(pamh, LOG_ERR, "no PAM_USER set; denying");
                *ret = OUTCOME_BAD_USER;
                return -EINVAL;
        }
        c->user = item;
        size_t n = strnlen(c->user, JIT_USER_MAX + 1);
        if (n > JIT_USER_MAX) {
                pam_syslog(pamh, LOG_ERR, "user name longer than %u bytes; denying",
                           (unsigned) JIT_USER_MAX);
                *ret = OUTCOME_BAD_USER;
                return -EINVAL;
        }
        if (!jit_text_is_safe(c->user, n)) {
                pam_syslog(pamh, LOG_ERR, "user name is not printable UTF-8; denying");
                *ret = OUTCOME_BAD_USER;
                return -EINVAL;
        }
        c->user_ok = true;
        return 0;
}

/* Reads a well-formed reply (jit_client_call already checked framing, strict JSON, the
 * version and a boolean "ok") into c, and says what it means. */
static Outcome interpret_reply(Check *c) {
        json_object *ok, *result, *allowed;
        bool present;
        int r;

        if (!json_object_object_get_ex(c->reply, "ok", &ok) ||
            !json_object_is_type(ok, json_type_boolean)) {
                c->error = -EBADMSG;
                return OUTCOME_BROKER_ERROR;
        }

        if (!json_object_get_boolean(ok)) {
                /* An error reply denies whatever it holds; read it only to explain. */
                if (jit_message_get_string(c->reply, "error", ERROR_CODE_MAX, true,
                                           &c->broker_error) < 0)
                        c->broker_error = NULL;
                if (jit_message_get_string(c->reply, "message", JIT_REASON_MAX, false,
                                           &c->broker_message) < 0)
                        c->broker_message = NULL;
                return OUTCOME_REFUSED;
        }

        if (!json_object_object_get_ex(c->reply, "result", &result) ||
            !json_object_is_type(result, json_type_object) ||
            !json_object_object_get_ex(result, "allowed", &allowed) ||
            !json_object_is_type(allowed, json_type_boolean)) {
                c->error = -EBADMSG;
                return OUTCOME_BROKER_ERROR;
        }

        r = jit_message_get_int(result, "request_id", 1, INT64_MAX, false, &c->request_id,
                                &present);
        if (r < 0) {
                c->error = -EBADMSG;
                return OUTCOME_BROKER_ERROR;
        }
        if (!present)
                c->request_id = 0;

        r = jit_message_get_string(result, "expires_at", RFC3339_BUF_MAX, false, &c->expires_at);
        if (r < 0) {
                c->error = -EBADMSG;
                return OUTCOME_BROKER_ERROR;
        }

        return json_object_get_boolean(allowed) ? OUTCOME_ALLOWED : OUTCOME_NO_GRANT;
}

static Outcome ask_broker(const Options *o, Check *c) {
        _cleanup_(json_object_putp) json_object *req = NULL;
        json_object *v;
        int r;

        req = jit_request_new("check");
        if (!req) {
                c->error = -ENOMEM;
                return OUTCOME_LOCAL_ERROR;
        }

        v = json_object_new_string(c->user);
        if (!v || json_object_object_add(req, "user", v) < 0) {
                json_object_put(v);
                c->error = -ENOMEM;
                return OUTCOME_LOCAL_ERROR;
        }
        v = json_object_new_string(c->service);
        if (!v || json_object_object_add(req, "service", v) < 0) {
                json_object_put(v);
                c->error = -ENOMEM;
                return OUTCOME_LOCAL_ERROR;
        }

        r = jit_client_call(o->socket, o->timeout_ms, req, &c->reply);
        if (r < 0) {
                c->reply = NULL;
                c->error = r;
                return r == -ENOMEM ? OUTCOME_LOCAL_ERROR : OUTCOME_BROKER_ERROR;
        }
        Outcome outcome = interpret_reply(c);

        /* Where sudo loads jit_approval, the plugin decides on the command itself: a grant
         * for one command may then let this sudo through to it (the broker's "commands").
         * Only in sudo itself (the program that reads sudo.conf), and only for a user the
         * plugin gates: elsewhere nothing would check the command. Asked only after a no,
         * so that a grant holder's sudo reads neither sudo.conf nor the group database. */
        char group[JIT_USER_MAX + 1];
        if (outcome != OUTCOME_NO_GRANT || !STREQ(c->service, "sudo") || !c->pam_service)
                return outcome;
        if (!((STREQ(c->pam_service, "sudo") || STREQ(c->pam_service, "sudo-i")) &&
              jit_sudo_conf_file_loads_approval(JIT_SUDO_CONF, group, sizeof(group)) > 0 &&
              jit_user_in_group(c->user, group) > 0))
                return outcome;
        v = json_object_new_boolean(true);
        if (!v || json_object_object_add(req, "commands", v) < 0) {
                json_object_put(v);
                c->error = -ENOMEM;
                return OUTCOME_LOCAL_ERROR;
        }
        check_done(c);
        r = jit_client_call(o->socket, o->timeout_ms, req, &c->reply);
        if (r < 0) {
                c->reply = NULL;
                c->error = r;
                return r == -ENOMEM ? OUTCOME_LOCAL_ERROR : OUTCOME_BROKER_ERROR;
        }
        return interpret_reply(c);
}

static const char *outcome_name(Outcome o) {
        switch (o) {
        case OUTCOME_ALLOWED:
                return "allowed";
        case OUTCOME_NO_GRANT:
                return "no-grant";
        case OUTCOME_GRANTED:
                return "granted-at-prompt";
        case OUTCOME_NOT_GRANTED:
                return "not-granted-at-prompt";
        case OUTCOME_WAIT_OFF:
                return "no-wait";
        case OUTCOME_REFUSED:
                return "broker-refused";
        case OUTCOME_BROKER_ERROR:
                return "broker-error";
        case OUTCOME_BAD_USER:
                return "bad-user";
        case OUTCOME_MISCONFIGURED:
                return "misconfigured";
        case OUTCOME_LOCAL_ERROR:
                return "local-error";
        }
        return "unknown";
}

/* Tells the administrator (syslog) and the user (conversation, unless PAM_SILENT) what was
 * decided. Never changes the decision.
 *
 * The auth part talks to the user whatever the flags: sudo passes PAM_SILENT to every
 * pam_authenticate() (and shows what modules say all the same), so honouring it would
 * leave a user typing a reason into silence. What the wait said, it said itself
 * (c->told). */
static void report(pam_handle_t *pamh, int flags, const Options *o, const Check *c, int pam_code,
                   Stack stack) {
        const char *user = c->user_ok ? c->user : "(unprintable user)";
        const char *service = c->service_ok ? c->service : "(unprintable service)";
        bool auth = stack == STACK_AUTH;
        bool silent = auth ? c->told : (flags & PAM_SILENT);
        bool allowed = pam_code == (auth ? PAM_IGNORE : PAM_SUCCESS);
        char buf[256];

        switch (c->outcome) {
        case OUTCOME_ALLOWED:
                if (o->debug)
                        pam_syslog(pamh, LOG_DEBUG,
                                   "user %s holds grant %lld for %s until %s; allowing", user,
                                   (long long) c->request_id, service,
                                   c->expires_at ?: "(unknown)");
                break;

        case OUTCOME_GRANTED:
        case OUTCOME_NOT_GRANTED:
        case OUTCOME_WAIT_OFF:
                break; /* the wait logged its end; without one there is nothing to say */

        case OUTCOME_NO_GRANT:
                pam_syslog(pamh, LOG_NOTICE, "user %s has no active grant for %s; denying", user,
                           service);
                if (!silent)
                        pam_error(pamh,
                                  "jit: %s has no active grant for %s. Ask for one: "
                                  "jitctl request --service %s --for 1h --reason \"...\"",
                                  user, service, service);
                break;

        case OUTCOME_REFUSED:
                pam_syslog(pamh, LOG_ERR,
                           "broker refused the check for user %s, service %s: %s: %s; denying",
                           user, service, c->broker_error ?: "(unreadable error)",
                           c->broker_message ?: "(unreadable message)");
                if (!silent)
                        pam_error(pamh, "jit: the access broker refused the check (%s); access denied.",
                                  c->broker_message ?: c->broker_error ?: "no reason given");
                break;

        case OUTCOME_BROKER_ERROR: {
                const char *why = errno_text(c->error, buf, sizeof(buf));
                if (allowed) {
                        pam_syslog(
                                pamh, LOG_ALERT,
                                "broker at %s unusable (%s); ALLOWING user %s for %s WITHOUT A GRANT because of fail=open",
                                o->socket, why, user, service);
                        if (!silent)
                                pam_info(
                                        pamh,
                                        "jit: access broker unavailable (%s); access allowed by fail=open.",
                                        why);
                } else {
                        if (c->fail_open_refused[0])
                                pam_syslog(
                                        pamh, LOG_ERR,
                                        "fail=open refused: %s (a user could remove or replace the broker socket %s)",
                                        c->fail_open_refused, o->socket);
                        pam_syslog(pamh, LOG_ERR,
                                   "broker at %s unusable (%s); denying user %s for %s", o->socket,
                                   why, user, service);
                        if (!silent)
                                pam_error(pamh,
                                          "jit: access broker unavailable (%s); access denied.",
                                          why);
                }
                break;
        }

        case OUTCOME_BAD_USER:
                /* Already logged in detail; never echo a name that failed validation. */
                if (!silent)
                        pam_error(pamh, "jit: this user name cannot be checked; access denied.");
                break;

        case OUTCOME_MISCONFIGURED:
                if (!silent)
                        pam_error(
                                pamh,
                                "jit: pam_jit is misconfigured; access denied. Details are in the system log.");
                break;

        case OUTCOME_LOCAL_ERROR: {
                const char *why = errno_text(c->error, buf, sizeof(buf));
                pam_syslog(pamh, LOG_ERR, "checking user %s for %s failed: %s; denying", user,
                           service, why);
                if (!silent)
                        pam_error(pamh, "jit: internal error (%s); access denied.", why);
                break;
        }
        }

        if (o->debug)
                pam_syslog(pamh, LOG_DEBUG, "decision for user %s, service %s: %s -> %s", user,
                           service, outcome_name(c->outcome), pam_strerror(pamh, pam_code));
}

/* The grant to ask about: service= when given (validated in parse_options()), else the
 * PAM service's name, except that "sudo-i" (Debian's "sudo -i") asks about "sudo": a
 * pam-auth-update profile in common-account cannot give that one service its own service=. */
static const char *grant_service(const Options *o, const char *pam_service) {
        if (o->service)
                return o->service;
        if (STREQ(pam_service, "sudo-i"))
                return "sudo";
        return pam_service;
}

static Outcome account_check(pam_handle_t *pamh, const Options *o, Check *c) {
        Outcome outcome;

        if (get_items(pamh, c, &outcome) < 0)
                return outcome;
        c->service = grant_service(o, c->service);
        return ask_broker(o, c);
}

/* auth with wait=: a user who holds a grant goes on at once; one without asks for it. */
static Outcome auth_wait(pam_handle_t *pamh, const Options *o, Check *c) {
        const char *pam_service = NULL;
        Outcome outcome;
        WaitResult w;

        if (!o->wait_set || o->wait_sec == 0)
                return OUTCOME_WAIT_OFF;
        if (get_items(pamh, c, &outcome) < 0)
                return outcome;
        pam_service = c->service;
        c->service = grant_service(o, c->service);
        outcome = ask_broker(o, c);
        if (outcome != OUTCOME_NO_GRANT)
                return outcome;

        WaitConfig wc = {
                .socket = o->socket,
                .timeout_ms = o->timeout_ms,
                .wait_sec = o->wait_sec,
                .progress = o->progress == PROGRESS_PROMPT || (o->progress == PROGRESS_AUTO &&
                                                               STREQ(pam_service, "sshd"))
                                    ? WAIT_PROGRESS_PROMPT
                                    : WAIT_PROGRESS_INFO,
                .debug = o->debug,
                .user = c->user,
                .service = c->service,
        };
        pam_wait_run(pamh, &wc, &w);
        c->told = true;
        c->request_id = w.request_id;
        c->error = w.error;
        switch (w.end) {
        case WAIT_END_GRANTED:
                return OUTCOME_GRANTED;
        case WAIT_END_BROKER_ERROR:
                return OUTCOME_BROKER_ERROR;
        case WAIT_END_LOCAL_ERROR:
                return OUTCOME_LOCAL_ERROR;
        case WAIT_END_NOT_GRANTED:
        default:
                return OUTCOME_NOT_GRANTED;
        }
}

static int run(pam_handle_t *pamh, int flags, int argc, const char **argv, Stack stack) {
        _cleanup_(check_done) Check c = { .reply = NULL };
        Options o;
        int pam_code;

        if (!pamh)
                return outcome_to_pam(OUTCOME_MISCONFIGURED, -EINVAL, FAIL_CLOSED, stack);

        if (parse_options(pamh, argc, argv, &o) < 0) {
                o.fail = FAIL_CLOSED;
                c.outcome = OUTCOME_MISCONFIGURED;
        } else {
                if (o.fail == FAIL_OPEN)
                        pam_syslog(
                                pamh, LOG_WARNING,
                                "running with fail=open: an unreachable or broken broker lets users in without a grant");
                if (o.debug)
                        pam_syslog(pamh, LOG_DEBUG, "socket=%s timeout=%ums fail=%s wait=%us",
                                   o.socket, o.timeout_ms, o.fail == FAIL_OPEN ? "open" : "closed",
                                   o.wait_sec);
                c.outcome =
                        stack == STACK_AUTH ? auth_wait(pamh, &o, &c) : account_check(pamh, &o, &c);
        }

        /* fail=open is for a broker that is not there; that is believed only when no user
         * could have arranged it (socket_path_root_only()). */
        FailMode fail = o.fail;
        if (fail == FAIL_OPEN && c.outcome == OUTCOME_BROKER_ERROR &&
            (c.error == -ENOENT || c.error == -ECONNREFUSED) &&
            socket_path_root_only(o.socket, c.fail_open_refused, sizeof(c.fail_open_refused)) < 0)
                fail = FAIL_CLOSED;
        pam_code = outcome_to_pam(c.outcome, c.error, fail, stack);
        report(pamh, flags, &o, &c, pam_code, stack);
        return pam_code;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return run(pamh, flags, argc, argv, STACK_ACCOUNT);
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return run(pamh, flags, argc, argv, STACK_AUTH);
}

/* The auth part establishes no credentials. */
PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return PAM_IGNORE;
}

/* Sessions only record: the decision was made in account (sshd starts the shell even
 * when a session module fails). The broker holds the session's process by pidfd so that
 * it can end it with its grant. */
#define SESSION_DATA "pam_jit_session"

static void free_data(pam_handle_t *pamh, void *data, int error_status) {
        free(data);
}

static int session_call(pam_handle_t *pamh, const Options *o, json_object *request,
                        json_object **ret) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *ok, *result = NULL;
        int r = jit_client_call(o->socket, o->timeout_ms, request, &reply);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_get_boolean(ok))
                return -EPROTO;
        (void) json_object_object_get_ex(reply, "result", &result);
        *ret = result ? json_object_get(result) : NULL;
        return 0;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        _cleanup_(check_done) Check c = { .reply = NULL };
        _cleanup_(json_object_putp) json_object *request = NULL, *result = NULL;
        const void *tty = NULL, *rhost = NULL;
        Outcome outcome;
        Options o;
        char buf[128];

        if (!pamh || parse_options(pamh, argc, argv, &o) < 0 || get_items(pamh, &c, &outcome) < 0)
                return PAM_SESSION_ERR;
        c.service = grant_service(&o, c.service);
        /* sudo switches PAM_USER to the target user (root) before the session; the grant
         * holder is the invoking user, which it leaves in PAM_RUSER. */
        const void *ruser = NULL;
        if (pam_get_item(pamh, PAM_RUSER, &ruser) == PAM_SUCCESS && ruser &&
            *(const char *) ruser && strlen(ruser) <= JIT_USER_MAX &&
            jit_text_is_safe(ruser, strlen(ruser)))
                c.user = ruser;
        (void) pam_get_item(pamh, PAM_TTY, &tty);
        (void) pam_get_item(pamh, PAM_RHOST, &rhost);
        const char *t = tty;
        if (t && strncmp(t, "/dev/", 5) == 0)
                t += 5;

        request = jit_request_new("session-open");
        if (!request)
                return PAM_SESSION_ERR;
        json_object_object_add(request, "user", json_object_new_string(c.user));
        json_object_object_add(request, "service", json_object_new_string(c.service));
        /* Optional and informational: sent only when they are printable and short. */
        if (t && strlen(t) <= JIT_TTY_MAX && jit_text_is_safe(t, strlen(t)))
                json_object_object_add(request, "tty", json_object_new_string(t));
        if (rhost && strlen(rhost) <= JIT_RHOST_MAX && jit_text_is_safe(rhost, strlen(rhost)))
                json_object_object_add(request, "rhost", json_object_new_string(rhost));

        int r = session_call(pamh, &o, request, &result);
        if (r < 0) {
                /* Account decided already (and denies while the broker is away), so a missing
                 * broker must not break the sessions of users jit does not gate: ignore, and
                 * say loudly that this session could not be registered. */
                pam_syslog(
                        pamh, LOG_ERR,
                        "registering the %s session of %s failed: %s; it will not be ended with its grant",
                        c.service, c.user, errno_text(r, buf, sizeof(buf)));
                return PAM_IGNORE;
        }
        json_object *sid;
        if (result && json_object_object_get_ex(result, "session", &sid) &&
            json_object_is_type(sid, json_type_int)) {
                int64_t *data = malloc(sizeof(int64_t));
                if (!data)
                        return PAM_SESSION_ERR;
                *data = json_object_get_int64(sid);
                if (pam_set_data(pamh, SESSION_DATA, data, free_data) != PAM_SUCCESS) {
                        free(data);
                        return PAM_SESSION_ERR;
                }
                if (o.debug)
                        pam_syslog(pamh, LOG_DEBUG, "session %lld registered", (long long) *data);
        }
        return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        _cleanup_(json_object_putp) json_object *request = NULL;
        const void *data = NULL;
        Options o;
        char buf[128];

        if (!pamh || parse_options(pamh, argc, argv, &o) < 0)
                return PAM_SESSION_ERR;
        if (pam_get_data(pamh, SESSION_DATA, &data) != PAM_SUCCESS || !data)
                return PAM_SUCCESS; /* no session of ours in this handle */
        request = jit_request_new("session-close");
        if (!request)
                return PAM_SESSION_ERR;
        json_object_object_add(request, "session", json_object_new_int64(*(const int64_t *) data));
        /* A notice, not a question: the broker records the end from it or, should it be
         * lost, from the process's exit (it holds the process by pidfd). sudo returns to
         * the shell without waiting for a database write. */
        int r = jit_client_send(o.socket, o.timeout_ms, request);
        if (r < 0) {
                pam_syslog(pamh, LOG_WARNING, "closing session %lld failed: %s",
                           (long long) *(const int64_t *) data, errno_text(r, buf, sizeof(buf)));
                return PAM_SESSION_ERR;
        }
        return PAM_SUCCESS;
}
