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
 * Then pam_sm_open_session() and pam_sm_close_session() read the same reply. */

#define jit_client_call fuzz_client_call
#include "../../pam_jit/pam_jit.c"
#undef jit_client_call

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz-check.h"

/* ---- the transport ---- */

static const int transport_errors[8] = { 0,           -ENOENT,     -ECONNREFUSED, -ETIMEDOUT,
                                         -EPERM,      -ECONNRESET, -ENOMEM,       -EBADMSG };

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
        CHECK(style == PAM_ERROR_MSG || style == PAM_TEXT_INFO);
        CHECK(!response);
        va_start(ap, fmt);
        check_line(fmt, ap);
        va_end(ap);
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

/* Whether the reply, read independently of the module, says "allowed". */
static bool reply_allows(void) {
        json_object *o, *ok, *result, *allowed;
        bool yes = false;

        if (jit_message_parse(transport.reply, transport.reply_len, &o) < 0)
                return false;
        yes = json_object_object_get_ex(o, "ok", &ok) && json_object_is_type(ok, json_type_boolean) &&
              json_object_get_boolean(ok) && json_object_object_get_ex(o, "result", &result) &&
              json_object_is_type(result, json_type_object) &&
              json_object_object_get_ex(result, "allowed", &allowed) &&
              json_object_is_type(allowed, json_type_boolean) && json_object_get_boolean(allowed);
        json_object_put(o);
        return yes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *argv[4];
        int argc = 0;

        if (size < 1)
                return 0;
        uint8_t control = data[0];
        bool fail_open = control & 1, silent = control & 4, bad_user = control & 128;

        transport.reply = (const char *) data + 1;
        transport.reply_len = size - 1;
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
        return 0;
}
