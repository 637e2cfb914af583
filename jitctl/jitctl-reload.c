/* SPDX-License-Identifier: MIT */
/* jitctl reload: the broker re-reads its policy now and says whether it took it; what
 * jit-brokerd.service's ExecReload= runs, so that `systemctl reload` fails with the
 * parser's file:line message when the new policy is refused. */
#include <stdio.h>

#include "cleanup.h"
#include "client.h"
#include "jitctl-command.h"
#include "jitctl-exit.h"
#include "jitctl-format.h"
#include "jitctl-text.h"
#include "protocol.h"

/* clang-format off */
const char reload_help[] =
        "Usage: jitctl reload\n"
        "\n"
        "Make the broker re-read its policy file now (root only). A policy the broker refuses\n"
        "changes nothing: the old one stays, and the error names the file and line.\n"
        "jit-brokerd.service runs this for 'systemctl reload jit-brokerd'.\n"
        "\n"
        "Options:\n"
        "  --json          Print the loaded policy's version, rule count and warnings as JSON\n"
        "  -h, --help      Show this help\n"
        "\n"
        "Exit status: 0 loaded, 1 refused (the old policy stays), 3 not root, 4 broker\n"
        "unreachable.\n";
/* clang-format on */

static int print_reloaded(json_object *result, FILE *f) {
        json_object *v, *warnings;
        const char *version =
                json_object_object_get_ex(result, "version", &v) ? json_object_get_string(v) : "";
        int64_t rules =
                json_object_object_get_ex(result, "rules", &v) ? json_object_get_int64(v) : 0;
        fputs("policy ", f);
        if (json_object_object_get_ex(result, "policy", &v))
                fputs_escaped(json_object_get_string(v), f);
        fprintf(f, " loaded: %lld rule%s, version %.12s\n", (long long) rules,
                rules == 1 ? "" : "s", version ?: "");
        if (json_object_object_get_ex(result, "warnings", &warnings) &&
            json_object_is_type(warnings, json_type_array))
                for (size_t i = 0; i < json_object_array_length(warnings); i++) {
                        fputs("warning: ", f);
                        fputs_escaped(
                                json_object_get_string(json_object_array_get_idx(warnings, i)), f);
                        fputc('\n', f);
                }
        return 0;
}

int cmd_reload(Context *c, int argc, char *argv[]) {
        int r = parse_no_arguments(c, argc, argv);
        if (r != CONTINUE)
                return r;
        return call_and_print(c, jit_request_new("reload"), print_reloaded, false);
}
