/* SPDX-License-Identifier: MIT */
/* What jitctl's commands share (jitctl-command.h): failures reported as DESIGN.md says,
 * on stderr and with --json as the one document on stdout; one exchange with the broker
 * and its errors mapped to an exit status; the checks of typed arguments. */
#include "jitctl-command.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "client.h"
#include "duration.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"
#include "jitctl-pager.h"
#include "jitctl-text.h"
#include "names.h"
#include "policy.h"
#include "protocol.h"
#include "timeutil.h"

/* Reports a failure after the command line was accepted: on stderr, and in JSON mode as
 * the one document on stdout. Returns status. */
int vfail(const Context *c, const char *prefix, int status, const char *code, const char *fmt,
          va_list ap) {
        _cleanup_free_ char *msg = NULL;

        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL; /* undefined after a failure */

        fputs(prefix, stderr);
        fputs_escaped(msg ?: "out of memory", stderr);
        fputc('\n', stderr);

        if (c->json) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "error", json_object_new_string(code));
                        json_object_object_add(o, "message",
                                               json_object_new_string(msg ?: "out of memory"));
                        (void) print_json(o, stdout);
                }
        }
        return status;
}

int fail(const Context *c, int status, const char *code, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        int r = vfail(c, "jitctl: ", status, code, fmt, ap);
        va_end(ap);
        return r;
}

int fail_oom(const Context *c) {
        return fail(c, JIT_EXIT_FAILURE, "internal", "out of memory");
}

int fail_bad_reply(const Context *c) {
        return fail(c, JIT_EXIT_FAILURE, "bad-reply", "unexpected reply from the broker at %s",
                    c->socket_path);
}

int fail_reply(const Context *c, int r) {
        return r == -ENOMEM ? fail_oom(c) : fail_bad_reply(c);
}

/* Maps what jit_client_call() returned to a message and an exit status. */
static int report_client_error(const Context *c, int r) {
        switch (r) {
        case -EBADMSG:
                return fail(c, JIT_EXIT_FAILURE, "bad-reply", "garbage reply from the broker at %s",
                            c->socket_path);
        case -ENOMEM:
                return fail_oom(c);
        case -EMSGSIZE:
                return fail(c, JIT_EXIT_FAILURE, "bad-request",
                            "request too large for the protocol");
        case -EPERM:
                return fail(
                        c, JIT_EXIT_UNREACHABLE, "unreachable",
                        "cannot trust the broker at %s: the socket is not owned by a root process",
                        c->socket_path);
        case -ETIMEDOUT:
                /* The broker may have acted on a request it received but never answered. */
                return fail(c, JIT_EXIT_UNREACHABLE, "unreachable",
                            "no answer from the broker at %s within %u s (see --timeout)",
                            c->socket_path, c->timeout_ms / 1000);
        default:
                errno = -r;
                return fail(c, JIT_EXIT_UNREACHABLE, "unreachable",
                            "cannot reach the broker at %s: %m", c->socket_path);
        }
}

/* A reply with "ok": false, as the broker meant it. */
static int report_broker_error(const Context *c, json_object *reply) {
        const char *code = json_get_string(reply, "error");
        const char *message = json_get_string(reply, "message");
        JitError e = jit_error_from_string(code);

        if (!code)
                return fail_bad_reply(c);
        /* An error code from a newer broker still fails, just without a finer status. */
        int status = e == _JIT_ERROR_INVALID ? JIT_EXIT_FAILURE : jit_error_to_exit_status(e);
        return fail(c, status, code, "%s", message ?: code);
}

/* One exchange with the broker. Returns JIT_EXIT_OK with the reply in *ret_reply and its
 * "result" (borrowed from it, NULL when absent) in *ret_result; otherwise reports the
 * failure and returns the exit status. */
int broker_call(const Context *c, json_object *request, json_object **ret_reply,
                json_object **ret_result) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *ok, *result = NULL;

        int r = jit_client_call(c->socket_path, c->timeout_ms, request, &reply);
        if (r < 0)
                return report_client_error(c, r);

        if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_get_boolean(ok))
                return report_broker_error(c, reply);
        (void) json_object_object_get_ex(reply, "result", &result);
        *ret_result = result;
        *ret_reply = TAKE_PTR(reply);
        return JIT_EXIT_OK;
}

int broker_stream_open(const Context *c, json_object *request, int *ret_fd,
                       json_object **ret_reply, json_object **ret_result) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        _cleanup_free_ char *body = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        json_object *ok, *result = NULL;
        size_t len, n;
        int r;

        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) c->timeout_ms * 1000;
        if ((fd = jit_client_connect(c->socket_path, deadline)) < 0)
                return report_client_error(c, fd);
        if (!(body = jit_message_serialize(request, &len)))
                return fail_oom(c);
        if ((r = jit_frame_send(fd, body, len, deadline)) < 0 ||
            (r = jit_frame_recv(fd, JIT_REPLY_MAX, deadline, &buf, &n)) < 0 ||
            (r = jit_reply_parse(buf, n, &reply)) < 0)
                return report_client_error(c, r);
        if (!json_object_object_get_ex(reply, "ok", &ok) || !json_object_get_boolean(ok))
                return report_broker_error(c, reply);
        (void) json_object_object_get_ex(reply, "result", &result);
        *ret_result = result;
        *ret_reply = TAKE_PTR(reply);
        *ret_fd = TAKE_FD(fd);
        return JIT_EXIT_OK;
}

int broker_stream_next(const Context *c, int fd, json_object **ret_frame) {
        _cleanup_free_ char *buf = NULL;
        size_t n;
        int r = jit_frame_recv(fd, JIT_REPLY_MAX, UINT64_MAX, &buf, &n);
        if (r == -ECONNRESET)
                return fail(c, JIT_EXIT_FAILURE, "broker-unreachable",
                            "the broker closed the stream (it stopped or restarted)");
        if (r < 0 || (r = jit_message_parse(buf, n, ret_frame)) < 0)
                return report_client_error(c, r);
        return JIT_EXIT_OK;
}

/* Adds v (consumed) under key; -ENOMEM when v could not be made or added. */
static int add_value(json_object *o, const char *key, json_object *v) {
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int add_string(json_object *o, const char *key, const char *value) {
        return add_value(o, key, json_object_new_string(value));
}

int add_int(json_object *o, const char *key, int64_t value) {
        return add_value(o, key, json_object_new_int64(value));
}

int add_bool(json_object *o, const char *key, bool value) {
        return add_value(o, key, json_object_new_boolean(value));
}

/* {"version": 1, "op": op, "id": id}, or NULL on ENOMEM. */
json_object *request_with_id(const char *op, int64_t id) {
        _cleanup_(json_object_putp) json_object *o = jit_request_new(op);
        if (!o || add_int(o, "id", id) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* Request ids and --timeout: written in decimal, no sign, no blanks, no suffix. */
int parse_positive(const char *s, int64_t max, int64_t *ret) {
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

/* Text a person types (reason, comment, ticket) is checked here so that a mistake gets a
 * usage error naming the option, rather than a bad-request from the broker. */
int check_text(const Context *c, const char *option, const char *s, size_t max) {
        size_t len = strlen(s);

        if (strspn(s, " ") == len)
                return usage_error(c, "%s must not be empty", option);
        if (len > max)
                return usage_error(c, "%s is too long (%zu bytes, at most %zu)", option, len, max);
        uint32_t cp = 0;
        JitTextProblem p = jit_text_check(s, len, &cp);
        if (p != JIT_TEXT_OK) {
                /* The broker's words for the same refusal, naming the character. */
                char why[256];
                jit_text_problem_message(option, p, cp, why, sizeof(why));
                return usage_error(c, "%s", why);
        }
        return CONTINUE;
}

int check_service(const Context *c, const char *s) {
        if (!jit_service_name_is_valid(s))
                return usage_error(
                        c, "invalid service '%s' (letters, digits, '.', '_', '-'; at most %d)", s,
                        JIT_SERVICE_MAX);
        return CONTINUE;
}

int check_duration(const Context *c, const char *s, uint64_t *ret) {
        char max[DURATION_BUF_MAX];

        int r = duration_parse(s, ret);
        if (r == -ERANGE)
                return usage_error(c, "duration '%s' is too long (at most %s)", s,
                                   duration_format(JIT_DURATION_MAX_SEC, max, sizeof(max)));
        if (r < 0)
                return usage_error(c, "invalid duration '%s' (write e.g. 90s, 30m, 1h30m, 2h, 1d)",
                                   s);
        return CONTINUE;
}

/* Rejects positional arguments beyond the n expected. */
int check_no_more_args(const Context *c, int argc, char *argv[], int n) {
        if (argc - optind > n)
                return usage_error(c, "unexpected argument '%s'", argv[optind + n]);
        return CONTINUE;
}

/* The one positional ID of show, approve, deny, revoke and cancel. */
int parse_id_arg(const Context *c, int argc, char *argv[], int64_t *ret) {
        if (optind >= argc)
                return usage_error(c, "missing request id");
        /* Ids are positive 63-bit integers. */
        if (parse_positive(argv[optind], INT64_MAX, ret) < 0)
                return usage_error(c, "invalid request id '%s' (a positive integer)", argv[optind]);
        return check_no_more_args(c, argc, argv, 1);
}

/* Runs getopt_long over a command's arguments and takes --json, which every command has.
 * Returns the next option, or -1 at the end. */
int next_option(Context *c, int argc, char *argv[], const struct option *options) {
        for (;;) {
                int opt = getopt_long(argc, argv, "h", options, NULL);
                if (opt == ARG_JSON)
                        c->json = true;
                else if (opt == ARG_NO_PAGER)
                        c->no_pager = true;
                else if (opt == ARG_NO_LEGEND)
                        c->no_legend = true;
                else
                        return opt;
        }
}

int parse_no_arguments(Context *c, int argc, char *argv[]) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                {},
        };
        int opt;

        begin_options();
        while ((opt = next_option(c, argc, argv, options)) >= 0)
                switch (opt) {
                case 'h':
                        return print_help(c);
                default:
                        return option_error(c);
                }
        return check_no_more_args(c, argc, argv, 0);
}

void begin_options(void) {
        optind = 0; /* fully reinitialise getopt for a new argument vector */
}

/* The common end of a command that shows one reply: the JSON document with --json,
 * else print() for people. request is consumed. */
int call_and_print(Context *c, json_object *request, int (*print)(json_object *result, FILE *f),
                   bool long_listing) {
        _cleanup_(json_object_putp) json_object *owned = request;
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *result;

        if (!request)
                return fail_oom(c);
        int r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (c->json)
                return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;
        if (long_listing)
                pager_start(c->no_pager);
        r = print(result, stdout);
        return r < 0 ? fail_reply(c, r) : JIT_EXIT_OK;
}
