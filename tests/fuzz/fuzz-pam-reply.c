/* SPDX-License-Identifier: MIT */
/* What pam_jit makes of the broker's reply: pam_jit/pam_jit.c is #included below, whole and
 * unchanged, so its static functions (interpret_reply(), outcome_to_pam(), report(), the
 * session calls) run as in the module. Two things are replaced, in this file only:
 *
 * - jit_client_call(), renamed by a macro before the #include: instead of a socket it hands
 *   the module the fuzz input as the reply's frame body, after the same steps
 *   common/client.c takes once a frame is in (jit_message_parse(), then "ok" must be a
 *   boolean), or fails the way a transport can (no broker, timeout, a socket not held by
 *   root, a dropped connection, ENOMEM);
 * - the PAM library: pam_get_item(), pam_syslog(), pam_prompt() (pam_error and pam_info),
 *   pam_strerror(), pam_set_data() and pam_get_data() are defined here, so that no PAM
 *   stack is needed and every line the module would log or show is checked.
 *
 * Input: one control byte, then the reply.
 *   bit 0  fail=open      bit 1  debug      bit 2  PAM_SILENT      bit 3  service=sudo-i
 *   bit 4-6  0: the reply is delivered; 1..7: the call fails with -ENOENT, -ECONNREFUSED,
 *            -ETIMEDOUT, -EPERM, -ECONNRESET, -ENOMEM, -EBADMSG
 *   bit 7  PAM_USER holds an escape sequence
 *
 * Checked on every input, for pam_sm_acct_mgmt():
 * - PAM_SUCCESS only for a delivered reply with "ok": true and "result": {"allowed": true},
 *   or with fail=open when the broker is absent (-ENOENT, -ECONNREFUSED), and never for a
 *   user name that failed validation;
 * - every line logged or shown is printable UTF-8 text (jit_text_is_safe()): nothing from
 *   the broker or PAM_USER reaches a log or a terminal raw.
 * Then pam_sm_open_session() and pam_sm_close_session() read the same reply.
 *
 * Then pam_sm_authenticate() with wait= (pam_jit/pam-wait.c, #included the same way): every
 * exchange (check, explain, request, cancel) gets the same reply, the prompts get a reason,
 * and the wait stream (jit_stream_*(), replaced here) gives a well-formed first frame for
 * the request the reply filed, then the frames that follow the reply in the input, each
 * after a NUL byte (the reply ends at the first NUL; without one, the reply is each further
 * frame), up to STREAM_FRAMES_MAX, then a closed connection. Checked: auth never returns
 * PAM_SUCCESS; PAM_IGNORE only when the reply says allowed, or says that a request is active (a
 * request, or a "done" frame), or with fail=open for an absent broker; every line is
 * printable. wait_frame_parse() reads the reply as a frame on its own, too. */

#define jit_client_call fuzz_client_call
#include "../../pam_jit/pam_jit.c"
#undef jit_client_call

/* client.h came in with pam_jit.c, before these names were replaced. */
int fuzz_stream_open(JitStream *s, const char *path, unsigned timeout_ms, json_object *request);
int fuzz_stream_read(JitStream *s, json_object **ret);
int fuzz_stream_next(JitStream *s, uint64_t deadline_usec, json_object **ret);
void fuzz_stream_close(JitStream *s);

#define jit_client_call fuzz_client_call
#define jit_stream_open fuzz_stream_open
#define jit_stream_read fuzz_stream_read
#define jit_stream_next fuzz_stream_next
#define jit_stream_close fuzz_stream_close
#define json_object_putp wait_json_object_putp /* pam-wait.c defines its own */
#include "../../pam_jit/pam-wait.c"
#undef json_object_putp
#undef jit_stream_close
#undef jit_stream_next
#undef jit_stream_read
#undef jit_stream_open
#undef jit_client_call

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz-check.h"

/* ---- the transport ---- */

static const int transport_errors[8] = { 0,      -ENOENT,     -ECONNREFUSED, -ETIMEDOUT,
                                         -EPERM, -ECONNRESET, -ENOMEM,       -EBADMSG };

static struct {
        const char *reply;
        size_t reply_len;
        int error;
        unsigned calls;
} transport;

int fuzz_client_call(const char *path, unsigned timeout_ms, json_object *request,
                     json_object **ret_reply) {
        size_t len;

        transport.calls++;
        CHECK(path && path[0] == '/');
        CHECK(timeout_ms >= TIMEOUT_MS_MIN && timeout_ms <= TIMEOUT_MS_MAX);
        /* What the module sends is a well-formed request within the bound. */
        char *out = jit_message_serialize(request, &len);
        CHECK(out);
        CHECK(len <= JIT_REQUEST_MAX);
        json_object *again = NULL;
        CHECK(jit_message_parse(out, len, &again) == 0);
        json_object_put(again);
        free(out);

        if (transport.error < 0)
                return transport.error;

        /* common/client.c, once the frame is in. */
        return jit_reply_parse(transport.reply, transport.reply_len, ret_reply);
}

/* ---- the wait stream ---- */

#define STREAM_FRAMES_MAX 4

static struct {
        const char *frames; /* after the reply's NUL: frame bodies, NUL-separated; or NULL */
        size_t frames_len;
        unsigned given; /* frames handed out on the open stream */
        bool open;
        int64_t id; /* of the request the wait is for */
} stream;

/* The n-th frame body after the reply (from 0), or the reply itself when the input has no
 * frames; false past the last. */
static bool stream_frame(unsigned n, const char **ret, size_t *ret_len) {
        if (!stream.frames) {
                *ret = transport.reply;
                *ret_len = transport.reply_len;
                return true;
        }
        const char *p = stream.frames, *end = stream.frames + stream.frames_len;
        for (;;) {
                const char *nul = memchr(p, '\0', (size_t) (end - p));
                const char *stop = nul ? nul : end;
                if (n-- == 0) {
                        *ret = p;
                        *ret_len = (size_t) (stop - p);
                        return true;
                }
                if (!nul)
                        return false;
                p = nul + 1;
        }
}

int fuzz_stream_open(JitStream *s, const char *path, unsigned timeout_ms, json_object *request) {
        json_object *id;

        *s = (JitStream) JIT_STREAM_INIT;
        CHECK(!stream.open);
        CHECK(path && path[0] == '/');
        CHECK(json_object_object_get_ex(request, "id", &id));
        stream.id = json_object_get_int64(id);
        CHECK(stream.id > 0);
        if (transport.error < 0)
                return transport.error;
        stream.open = true;
        stream.given = 0;
        s->fd = -1; /* never polled: a frame, or the end, is always there */
        return 0;
}

int fuzz_stream_read(JitStream *s, json_object **ret) {
        const char *body;
        size_t len;

        CHECK(stream.open);
        if (stream.given == 0) {
                /* The broker's first frame: the request as it stands, pending. */
                char first[256];
                int n = snprintf(first, sizeof(first),
                                 "{\"version\":1,\"ok\":true,\"result\":{\"id\":%lld,\"state\":"
                                 "\"pending\",\"approvals_required\":1,\"approvals\":[],"
                                 "\"duration\":3600,\"approvers\":[\"%%sre\"]}}",
                                 (long long) stream.id);
                CHECK(n > 0 && (size_t) n < sizeof(first));
                stream.given++;
                CHECK(jit_message_parse(first, (size_t) n, ret) == 0);
                return 1;
        }
        if (stream.given > STREAM_FRAMES_MAX || !stream_frame(stream.given - 1, &body, &len))
                return -ECONNRESET;
        stream.given++;
        int r = len ? jit_message_parse(body, len, ret) : -EBADMSG;
        if (r == -ENOMEM)
                return r;
        return r < 0 ? -EBADMSG : 1;
}

int fuzz_stream_next(JitStream *s, uint64_t deadline_usec, json_object **ret) {
        return fuzz_stream_read(s, ret);
}

void fuzz_stream_close(JitStream *s) {
        stream.open = false;
        s->fd = -EBADF;
}

/* ---- the PAM library ---- */

#define HANDLE ((pam_handle_t *) &pam_items)

static struct {
        const char *service, *user, *ruser, *tty, *rhost;
        const char *data_name;
        void *data;
        void (*cleanup)(pam_handle_t *pamh, void *data, int error_status);
        unsigned lines;
} pam_items;

int pam_get_item(const pam_handle_t *pamh, int item_type, const void **item) {
        CHECK(pamh == HANDLE);
        switch (item_type) {
        case PAM_SERVICE:
                *item = pam_items.service;
                return PAM_SUCCESS;
        case PAM_USER:
                *item = pam_items.user;
                return PAM_SUCCESS;
        case PAM_RUSER:
                *item = pam_items.ruser;
                return PAM_SUCCESS;
        case PAM_TTY:
                *item = pam_items.tty;
                return PAM_SUCCESS;
        case PAM_RHOST:
                *item = pam_items.rhost;
                return PAM_SUCCESS;
        default:
                return PAM_BAD_ITEM;
        }
}

/* Every line for the log or the user: formatted in full, and printable. */
static void check_line(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static void check_line(const char *fmt, va_list ap) {
        char buf[16384];
        int n = vsnprintf(buf, sizeof(buf), fmt, ap);
        CHECK(n >= 0 && (size_t) n < sizeof(buf));
        if (!jit_text_is_safe(buf, (size_t) n))
                fprintf(stderr, "unprintable line: \"%s\"\n", buf);
        CHECK(jit_text_is_safe(buf, (size_t) n));
        pam_items.lines++;
}

void pam_syslog(const pam_handle_t *pamh, int priority, const char *fmt, ...) {
        va_list ap;

        CHECK(pamh == HANDLE);
        va_start(ap, fmt);
        check_line(fmt, ap);
        va_end(ap);
}

int pam_prompt(pam_handle_t *pamh, int style, char **response, const char *fmt, ...) {
        va_list ap;

        CHECK(pamh == HANDLE);
        va_start(ap, fmt);
        check_line(fmt, ap);
        va_end(ap);
        if (style == PAM_PROMPT_ECHO_ON || style == PAM_PROMPT_ECHO_OFF) {
                /* Only the auth part asks, and it reads the answer. */
                CHECK(response);
                *response = strdup("the payments queue is stuck");
                return *response ? PAM_SUCCESS : PAM_BUF_ERR;
        }
        CHECK(style == PAM_ERROR_MSG || style == PAM_TEXT_INFO);
        CHECK(!response);
        return PAM_SUCCESS;
}

const char *pam_strerror(pam_handle_t *pamh, int errnum) {
        return errnum == PAM_SUCCESS ? "Success" : "Failure";
}

int pam_set_data(pam_handle_t *pamh, const char *module_data_name, void *data,
                 void (*cleanup)(pam_handle_t *pamh, void *data, int error_status)) {
        CHECK(pamh == HANDLE);
        if (pam_items.data && pam_items.cleanup)
                pam_items.cleanup(pamh, pam_items.data, PAM_SUCCESS);
        pam_items.data_name = module_data_name;
        pam_items.data = data;
        pam_items.cleanup = cleanup;
        return PAM_SUCCESS;
}

int pam_get_data(const pam_handle_t *pamh, const char *module_data_name, const void **data) {
        CHECK(pamh == HANDLE);
        if (!pam_items.data || strcmp(pam_items.data_name, module_data_name) != 0)
                return PAM_NO_MODULE_DATA;
        *data = pam_items.data;
        return PAM_SUCCESS;
}

/* pam_end(): the module's data goes with the handle. */
static void pam_items_end(void) {
        if (pam_items.data && pam_items.cleanup)
                pam_items.cleanup(HANDLE, pam_items.data, PAM_SUCCESS);
        pam_items.data = NULL;
        pam_items.cleanup = NULL;
}

/* ---- the check ---- */

/* Whether the reply or a stream frame, read independently of the module, says that a
 * request is active: a request object (ok reply) or a "done" frame whose state is
 * "active". */
static bool says_active(const char *body, size_t len) {
        json_object *o, *v, *q = NULL;
        bool yes = false;

        if (len == 0 || jit_message_parse(body, len, &o) < 0)
                return false;
        if (json_object_object_get_ex(o, "result", &v) && json_object_is_type(v, json_type_object))
                q = v;
        else if (json_object_object_get_ex(o, "request", &v) &&
                 json_object_is_type(v, json_type_object))
                q = v;
        if (q && json_object_object_get_ex(q, "state", &v) &&
            json_object_is_type(v, json_type_string))
                yes = strcmp(json_object_get_string(v), "active") == 0;
        json_object_put(o);
        return yes;
}

static bool reply_says_active(void) {
        const char *body;
        size_t len;

        if (says_active(transport.reply, transport.reply_len))
                return true;
        for (unsigned n = 0; n < STREAM_FRAMES_MAX && stream_frame(n, &body, &len); n++)
                if (says_active(body, len))
                        return true;
        return false;
}

/* The frame reader on its own: what it accepts, it accepts only as printable text. */
static void check_frame(void) {
        json_object *o;
        WaitFrame f;
        char text[APPROVERS_TEXT_MAX + 4];

        if (jit_message_parse(transport.reply, transport.reply_len, &o) < 0)
                return;
        if (wait_frame_parse(o, &f) == 0) {
                const char *strings[] = { f.event,
                                          f.actor,
                                          f.error,
                                          f.message,
                                          f.request.state,
                                          f.request.ended_by,
                                          f.request.end_reason };
                for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                        CHECK(!strings[i] || jit_text_is_safe(strings[i], strlen(strings[i])));
                wait_approvers_text(f.request.approvers, text, sizeof(text));
                CHECK(strlen(text) < sizeof(text) && jit_text_is_safe(text, strlen(text)));
        }
        json_object_put(o);
}

/* Whether the reply, read independently of the module, says "allowed". */
static bool reply_allows(void) {
        json_object *o, *ok, *result, *allowed;
        bool yes = false;

        if (jit_message_parse(transport.reply, transport.reply_len, &o) < 0)
                return false;
        yes = json_object_object_get_ex(o, "ok", &ok) &&
              json_object_is_type(ok, json_type_boolean) && json_object_get_boolean(ok) &&
              json_object_object_get_ex(o, "result", &result) &&
              json_object_is_type(result, json_type_object) &&
              json_object_object_get_ex(result, "allowed", &allowed) &&
              json_object_is_type(allowed, json_type_boolean) && json_object_get_boolean(allowed);
        json_object_put(o);
        return yes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *argv[5];
        int argc = 0;

        if (size < 1)
                return 0;
        uint8_t control = data[0];
        bool fail_open = control & 1, silent = control & 4, bad_user = control & 128;

        transport.reply = (const char *) data + 1;
        transport.reply_len = size - 1;
        const char *nul = memchr(transport.reply, '\0', transport.reply_len);
        stream.frames = nul ? nul + 1 : NULL;
        stream.frames_len = nul ? transport.reply_len - (size_t) (nul + 1 - transport.reply) : 0;
        if (nul)
                transport.reply_len = (size_t) (nul - transport.reply);
        transport.error = transport_errors[(control >> 4) & 7];
        transport.calls = 0;

        pam_items = (typeof(pam_items)){
                .service = "sudo",
                .user = bad_user ? "mallory\033]0;root\a" : "alice",
                .ruser = "alice",
                .tty = "/dev/pts/3",
                .rhost = "192.0.2.1",
        };

        argv[argc++] = "socket=/run/jit/fuzz.sock";
        argv[argc++] = fail_open ? "fail=open" : "fail=closed";
        if (control & 2)
                argv[argc++] = "debug";
        if (control & 8)
                argv[argc++] = "service=sudo-i";

        int pam_code = pam_sm_acct_mgmt(HANDLE, silent ? PAM_SILENT : 0, argc, argv);
        CHECK(pam_code == PAM_SUCCESS || pam_code == PAM_PERM_DENIED ||
              pam_code == PAM_SERVICE_ERR);
        if (bad_user)
                CHECK(transport.calls == 0 && pam_code == PAM_PERM_DENIED);
        else
                CHECK(transport.calls == 1);
        if (pam_code == PAM_SUCCESS) {
                bool absent = transport.error == -ENOENT || transport.error == -ECONNREFUSED;
                if (transport.error == 0)
                        CHECK(reply_allows());
                else
                        CHECK(fail_open && absent);
        }
        /* The decision is always explained: to the log, or to the user. */
        if (pam_code != PAM_SUCCESS && !silent)
                CHECK(pam_items.lines > 0);

        /* The session stack reads the same reply: a session id to keep, or nothing. */
        int r = pam_sm_open_session(HANDLE, silent ? PAM_SILENT : 0, argc, argv);
        CHECK(r == PAM_SUCCESS || r == PAM_IGNORE || r == PAM_SESSION_ERR);
        r = pam_sm_close_session(HANDLE, silent ? PAM_SILENT : 0, argc, argv);
        CHECK(r == PAM_SUCCESS || r == PAM_SESSION_ERR);
        pam_items_end();

        /* The auth part, asking at the prompt. */
        check_frame();
        argv[argc++] = "wait=5m";
        stream.open = false;
        r = pam_sm_authenticate(HANDLE, silent ? PAM_SILENT : 0, argc, argv);
        CHECK(!stream.open);
        CHECK(r == PAM_IGNORE || r == PAM_AUTH_ERR || r == PAM_SERVICE_ERR);
        if (bad_user)
                CHECK(r == PAM_AUTH_ERR);
        if (r == PAM_IGNORE) {
                bool absent = transport.error == -ENOENT || transport.error == -ECONNREFUSED;
                if (transport.error == 0)
                        CHECK(reply_allows() || reply_says_active());
                else
                        CHECK(fail_open && absent);
        }
        CHECK(pam_sm_setcred(HANDLE, 0, argc, argv) == PAM_IGNORE);
        pam_items_end();
        return 0;
}
