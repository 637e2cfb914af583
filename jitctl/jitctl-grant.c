/* SPDX-License-Identifier: MIT */
/* jitctl grant export / import: a grant with its signed approvals, carried on a file to a
 * host without a fleet store and installed there once its broker has checked every
 * signature against its own policy and allowed_signers (docs/signed-approvals.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "client.h"
#include "jitctl-command.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"
#include "jitctl-text.h"
#include "json-strict.h"
#include "protocol.h"

/* A bundle of 16 approvals with RSA signatures stays far below this; the request frame is
 * 64 KiB. */
#define BUNDLE_FILE_MAX (60U * 1024U)

const char grant_help[] =
        "Usage: jitctl grant export ID [--output FILE]\n"
        "       jitctl grant import FILE\n"
        "\n"
        "Carry a grant approved with signatures to a host without a fleet store.\n"
        "\n"
        "  export ID   Write the active grant ID with its signed approvals as a bundle\n"
        "              (JSON) to FILE, or to standard output\n"
        "  import FILE Root: install the grant of a bundle on this host, once this host's\n"
        "              broker has checked each signature against its allowed_signers and\n"
        "              its policy (the approvers of its rule, their number, the cap)\n"
        "\n"
        "Options:\n"
        "  --output FILE  export: where to write the bundle (created, mode 0644)\n"
        "  --json         import: print the installed request as JSON\n"
        "  -h, --help     Show this help\n";

enum {
        ARG_OUTPUT = 0x300,
};

static int grant_export(Context *c, int64_t id, const char *output) {
        _cleanup_(json_object_putp) json_object *request = request_with_id("grant-export", id);
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *result;
        if (!request)
                return fail_oom(c);
        int r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        const char *text = json_object_to_json_string_ext(
                result, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return fail_oom(c);
        if (!output) {
                printf("%s\n", text);
                return JIT_EXIT_OK;
        }
        _cleanup_close_ int fd =
                open(output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return fail(c, JIT_EXIT_FAILURE, "io", "cannot create %s: %m", output);
        if (dprintf(fd, "%s\n", text) < 0 || fsync(fd) < 0)
                return fail(c, JIT_EXIT_FAILURE, "io", "writing %s: %m", output);
        fprintf(stderr, "Grant %" PRIi64 " written to %s.\n", id, output);
        return JIT_EXIT_OK;
}

static int grant_import(Context *c, const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0)
                return fail(c, JIT_EXIT_FAILURE, "io", "cannot open %s: %m", path);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > BUNDLE_FILE_MAX)
                return fail(c, JIT_EXIT_FAILURE, "io",
                            "%s is not a bundle (a regular file of at most 60 KiB)", path);
        _cleanup_free_ char *buf = malloc(BUNDLE_FILE_MAX + 1);
        if (!buf)
                return fail_oom(c);
        size_t n = 0;
        for (ssize_t k; n < BUNDLE_FILE_MAX && (k = read(fd, buf + n, BUNDLE_FILE_MAX - n)) != 0;) {
                if (k < 0)
                        return fail(c, JIT_EXIT_FAILURE, "io", "reading %s: %m", path);
                n += (size_t) k;
        }
        buf[n] = 0;
        _cleanup_(json_object_putp) json_object *bundle = NULL;
        if (strlen(buf) != n || json_strict_validate(buf, n, JIT_JSON_DEPTH_MAX - 1) < 0 ||
            !(bundle = json_tokener_parse(buf)) || !json_object_is_type(bundle, json_type_object))
                return fail(c, JIT_EXIT_FAILURE, "bad-bundle", "%s is not a JSON object", path);

        _cleanup_(json_object_putp) json_object *request = jit_request_new("grant-import");
        _cleanup_(json_object_putp) json_object *reply = NULL;
        _cleanup_(request_view_done) RequestView v = {};
        json_object *result;
        if (!request)
                return fail_oom(c);
        json_object_object_add(request, "bundle", TAKE_PTR(bundle));
        int r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (c->json)
                return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;
        if ((r = request_view_init(&v, result)) < 0)
                return fail_reply(c, r);
        printf("Imported as request %" PRIi64 ".\n", v.id);
        print_outcome(&v, stdout);
        return JIT_EXIT_OK;
}

int cmd_grant(Context *c, int argc, char *argv[]) {
        const struct option options[] = {
                COMMON_OPTIONS,
                { "output", required_argument, NULL, ARG_OUTPUT },
                {},
        };
        const char *output = NULL;
        int opt, r;

        begin_options();
        while ((opt = next_option(c, argc, argv, options)) >= 0)
                switch (opt) {
                case 'h':
                        return print_help(c);
                case ARG_OUTPUT:
                        output = optarg;
                        break;
                default:
                        return option_error(c);
                }
        if (optind >= argc)
                return usage_error(c, "expected export ID or import FILE");
        const char *verb = argv[optind];
        if (STREQ(verb, "export")) {
                if (c->json)
                        return usage_error(c, "export writes JSON already; --json does not apply");
                int64_t id;
                if (optind + 2 != argc)
                        return usage_error(c, "export takes one request ID");
                if (parse_positive(argv[optind + 1], INT64_MAX, &id) < 0)
                        return usage_error(c, "invalid request id '%s'", argv[optind + 1]);
                return grant_export(c, id, output);
        }
        if (STREQ(verb, "import")) {
                if (output)
                        return usage_error(c, "--output is for export");
                if (optind + 2 != argc)
                        return usage_error(c, "import takes one FILE");
                r = grant_import(c, argv[optind + 1]);
                return r;
        }
        return usage_error(c, "unknown grant command '%s' (export or import)", verb);
}
