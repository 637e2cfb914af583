/* SPDX-License-Identifier: MIT */
/* The commands that follow the broker's streams (common/PROTOCOL.md, "Streams"): watch, a
 * live view of the audit records the caller may see, and request --wait, which follows one
 * request until it is decided. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "client.h"
#include "jitctl-audit.h"
#include "jitctl-command.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"
#include "jitctl-text.h"
#include "protocol.h"
#include "timeutil.h"

/* clang-format off */
const char watch_help[] =
        "Usage: jitctl watch [--since TIME] [--json]\n"
        "\n"
        "Follow the audit records you may see as the broker writes them: new requests,\n"
        "approvals, grants, denials, expiries, revocations, sessions. An approver sees the\n"
        "requests their rules cover, the audit group everything, everyone their own.\n"
        "Runs until interrupted (Ctrl+C) or the broker stops.\n"
        "\n"
        "Options:\n"
        "  --since TIME    First show the records since TIME (at most the newest 1000),\n"
        "                  then follow: 2026-11-23T10:00:00Z, -1h, today, ...\n"
        "  --json          One JSON object per line and record (as jitctl audit --json)\n"
        "  -h, --help      Show this help\n"
        "\n"
        "A watcher that reads too slowly is dropped by the broker; jitctl then says so and\n"
        "exits 1: start again with --since to catch up.\n";
/* clang-format on */

/* A frame the broker ends a stream with: "lost-events", or another error. */
static int stream_error(const Context *c, json_object *frame) {
        const char *code = json_get_string(frame, "error"),
                   *msg = json_get_string(frame, "message");
        if (code && STREQ(code, "lost-events"))
                return fail(c, JIT_EXIT_FAILURE, "lost-events",
                            "the broker dropped this watch because it read too slowly (%s); "
                            "start again with --since to catch up",
                            msg ?: "lost events");
        return fail(c, JIT_EXIT_FAILURE, code ?: "bad-reply", "%s",
                    msg ?: "the broker ended the stream");
}

/* "2026-12-07T03:01:02Z  approval  #42  jit-bob  comment=... requester=jit-alice" */
static int print_record_line(json_object *rec, FILE *f) {
        json_object *details = NULL;
        (void) json_object_object_get_ex(rec, "details", &details);
        _cleanup_free_ char *text = audit_condense_details(details);
        _cleanup_free_ char *event = escape_text(json_get_string(rec, "event") ?: "?", 32, NULL);
        _cleanup_free_ char *actor = escape_text(json_get_string(rec, "actor") ?: "-", 32, NULL);
        int64_t id = json_get_int(rec, "request_id", 0);
        char idbuf[32] = "-";

        if (!text || !event || !actor)
                return -ENOMEM;
        if (id > 0)
                snprintf(idbuf, sizeof(idbuf), "#%" PRIi64, id);
        fprintf(f, "%s  %-24s %-6s %-16s %s\n", json_get_string(rec, "at") ?: "-", event, idbuf,
                actor, text);
        return 0;
}

typedef struct WatchArgs {
        uint64_t since; /* realtime usec, 0: none */
} WatchArgs;

static int parse_watch_args(Context *c, int argc, char *argv[], WatchArgs *a) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "since", required_argument, NULL, ARG_SINCE },
                {},
        };
        int opt, r;

        *a = (WatchArgs){};
        begin_options();
        while ((opt = next_option(c, argc, argv, options)) >= 0)
                switch (opt) {
                case 'h':
                        return print_help(c);
                case ARG_SINCE:
                        if (timestamp_parse(optarg, now_usec(CLOCK_REALTIME), &a->since) < 0 ||
                            a->since == 0)
                                return usage_error(c,
                                                   "--since: invalid time '%s' (write "
                                                   "2026-11-23T10:00:00Z, 2026-11-23, -1h, -30m "
                                                   "or -2d)",
                                                   optarg);
                        break;
                default:
                        return option_error(c);
                }
        if ((r = check_no_more_args(c, argc, argv, 0)) != CONTINUE)
                return r;
        return CONTINUE;
}

int cmd_watch(Context *c, int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *request = NULL, *reply = NULL;
        _cleanup_close_ int fd = -EBADF;
        json_object *result;
        WatchArgs a;
        char since[RFC3339_BUF_MAX];
        int r;

        if ((r = parse_watch_args(c, argc, argv, &a)) != CONTINUE)
                return r;
        request = jit_request_new("watch");
        if (!request || (a.since && add_string(request, "since",
                                               format_rfc3339(a.since, since, sizeof(since))) < 0))
                return fail_oom(c);
        if ((r = broker_stream_open(c, request, &fd, &reply, &result)) != JIT_EXIT_OK)
                return r;
        if (!c->json && isatty(STDERR_FILENO))
                fprintf(stderr,
                        "Watching the audit log from record %" PRIi64 " on%s "
                        "(Ctrl+C stops)\n",
                        json_get_int(result, "seq", 0), glyph_ellipsis());

        for (;;) {
                _cleanup_(json_object_putp) json_object *frame = NULL;
                json_object *rec, *ok;

                if ((r = broker_stream_next(c, fd, &frame)) != JIT_EXIT_OK)
                        return r;
                if (json_object_object_get_ex(frame, "ok", &ok) && !json_object_get_boolean(ok))
                        return stream_error(c, frame);
                if (!json_object_object_get_ex(frame, "record", &rec) ||
                    !json_object_is_type(rec, json_type_object))
                        return fail_bad_reply(c);
                r = c->json ? audit_print_json_line(rec, stdout) : print_record_line(rec, stdout);
                if (r < 0)
                        return fail_oom(c);
                /* Each line as it comes: watch is read live, or piped into something that
                 * is. */
                if (fflush(stdout) != 0)
                        return JIT_EXIT_FAILURE; /* the reader went away */
        }
}

/* One line of progress for a record of the request being waited for, on stderr; *approvals
 * counts the approvals so far. */
static void print_progress(json_object *rec, int64_t required, int64_t *approvals) {
        const char *event = json_get_string(rec, "event"), *actor = json_get_string(rec, "actor");

        if (!event || !actor || !STREQ(event, "approval"))
                return;
        (*approvals)++;
        fputs("Approved by ", stderr);
        fputs_escaped(actor, stderr);
        if (required > 0)
                fprintf(stderr, " (%" PRIi64 " of %" PRIi64 ")", *approvals, required);
        fputs(".\n", stderr);
}

int wait_for_decision(const Context *c, int64_t id, json_object **ret_reply,
                      json_object **ret_result) {
        _cleanup_(json_object_putp) json_object *request = request_with_id("wait", id);
        _cleanup_(json_object_putp) json_object *first = NULL;
        _cleanup_close_ int fd = -EBADF;
        json_object *result;
        int r;

        if (!request)
                return fail_oom(c);
        if ((r = broker_stream_open(c, request, &fd, &first, &result)) != JIT_EXIT_OK)
                return r;
        int64_t required = json_get_int(result, "approvals_required", -1), approvals = 0;
        json_object *so_far;
        if (json_object_object_get_ex(result, "approvals", &so_far) &&
            json_object_is_type(so_far, json_type_array))
                approvals = (int64_t) json_object_array_length(so_far);
        if (!c->json) {
                fprintf(stderr, "Waiting for approval of request %" PRIi64, id);
                json_object *approvers;
                if (json_object_object_get_ex(result, "approvers", &approvers) &&
                    json_object_is_type(approvers, json_type_array) &&
                    json_object_array_length(approvers) > 0) {
                        fputs(" from ", stderr);
                        for (size_t i = 0; i < json_object_array_length(approvers); i++) {
                                const char *s = json_object_get_string(
                                        json_object_array_get_idx(approvers, i));
                                if (i > 0)
                                        fputs(", ", stderr);
                                fputs_escaped(s ?: "?", stderr);
                        }
                }
                fprintf(stderr, "%s (Ctrl+C stops waiting; the request stays pending)\n",
                        glyph_ellipsis());
        }

        for (;;) {
                _cleanup_(json_object_putp) json_object *frame = NULL;
                json_object *v;

                if ((r = broker_stream_next(c, fd, &frame)) != JIT_EXIT_OK)
                        return r;
                if (json_object_object_get_ex(frame, "ok", &v) && !json_object_get_boolean(v))
                        return stream_error(c, frame);
                if (json_object_object_get_ex(frame, "done", &v)) {
                        if (!json_object_object_get_ex(frame, "request", &v) ||
                            !json_object_is_type(v, json_type_object))
                                return fail_bad_reply(c);
                        *ret_result = v;
                        *ret_reply = TAKE_PTR(frame);
                        return JIT_EXIT_OK;
                }
                if (!c->json && json_object_object_get_ex(frame, "record", &v))
                        print_progress(v, required, &approvals);
        }
}
