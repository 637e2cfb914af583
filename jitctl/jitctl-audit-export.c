/* SPDX-License-Identifier: MIT */
/* jitctl audit export: has the broker seal the records up to a time into an archive and
 * take them out of the live log, and copies the archive to a file of the caller's. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "client.h"
#include "jitctl-audit-internal.h"
#include "jitctl-audit.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"
#include "jitctl-text.h"
#include "timeutil.h"

/* ---- export: seal old records into an archive and take them out of the live log ---- */

static int copy_file(const char *from, int out) {
        _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char buf[65536];

        if (in < 0)
                return -errno;
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t) (n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                return -errno;
                        off += w;
                }
        }
        return fsync(out) < 0 ? -errno : 0;
}

int audit_export(AuditArgs *a, int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, ARG_JSON },
                { "until", required_argument, NULL, ARG_UNTIL },
                {},
        };
        const char *until_text = NULL;
        uint64_t until = 0;
        int opt;

        optind = 0;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        fputs(jitctl_audit_help, stdout);
                        return JIT_EXIT_OK;
                case ARG_JSON:
                        a->json = true;
                        break;
                case ARG_UNTIL:
                        if (timestamp_parse(optarg, now_usec(CLOCK_REALTIME), &until) < 0)
                                return audit_usage_error("invalid time '%s' for --until", optarg);
                        until_text = optarg;
                        break;
                default:
                        fputs("Try 'jitctl audit --help'.\n", stderr);
                        return JIT_EXIT_USAGE;
                }
        if (!until_text)
                return audit_usage_error(
                        "export: missing --until TIME (records up to then are archived)");
        if (optind >= argc)
                return audit_usage_error("export: missing FILE to write the archive to");
        if (optind + 1 < argc)
                return audit_usage_error("unexpected argument '%s'", argv[optind + 1]);
        const char *file = argv[optind];

        /* O_EXCL, before anything changes: never follow or overwrite what is there. */
        _cleanup_close_ int out =
                open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return audit_fail(a, JIT_EXIT_FAILURE, "write-failed", "cannot create %s: %m",
                                  file);

        char until_rfc[RFC3339_BUF_MAX];
        _cleanup_(json_object_putp) json_object *request = jit_request_new("audit-archive"),
                                                *reply = NULL;
        json_object *result;
        if (!request || audit_add(request, "until",
                                  json_object_new_string(
                                          format_rfc3339(until, until_rfc, sizeof(until_rfc)))) < 0)
                return audit_fail_oom(a);
        int r = audit_broker_call(a, request, &reply, &result);
        if (r != JIT_EXIT_OK) {
                (void) unlink(file);
                return r;
        }
        int64_t n = json_get_int(result, "records", 0);
        const char *archive = json_get_string(result, "file");
        if (n > 0) {
                if (!archive) {
                        (void) unlink(file);
                        return audit_fail_bad_reply(a);
                }
                r = copy_file(archive, out);
                if (r < 0) {
                        errno = -r;
                        return audit_fail(
                                a, JIT_EXIT_FAILURE, "write-failed",
                                "the records were archived to %s, but copying it to %s failed: %m",
                                archive, file);
                }
        }
        if (n == 0)
                (void) unlink(file);
        if (a->json)
                return print_json(result, stdout) < 0 ? audit_fail_oom(a) : JIT_EXIT_OK;
        if (n == 0)
                printf("No audit records up to %s: nothing archived.\n", until_rfc);
        else
                printf("Archived records %" PRId64 "-%" PRId64 " (%" PRId64
                       ") to %s (kept in %s); the live log "
                       "goes on from record %" PRId64 ".\n",
                       json_get_int(result, "first_seq", 0), json_get_int(result, "last_seq", 0), n,
                       file, archive, json_get_int(result, "last_seq", 0));
        return JIT_EXIT_OK;
}
