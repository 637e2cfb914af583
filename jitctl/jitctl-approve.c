/* SPDX-License-Identifier: MIT */
/* jitctl approve: an approval, signed with the approver's SSH key through their ssh-agent
 * when the request's rule requires it or --sign asks (docs/signed-approvals.md). jitctl
 * runs as the approver: the broker never holds a key, it only checks signatures. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "approval-statement.h"
#include "cleanup.h"
#include "client.h"
#include "jitctl-command.h"
#include "jitctl-exit.h"
#include "jitctl-fleet-requests.h"
#include "jitctl-format.h"
#include "jitctl-text.h"
#include "protocol.h"
#include "ssh-keygen.h"
#include "sshsig.h"

/* A public key line: type, base64, comment. An RSA 16384 key is under 3 KiB. */
#define PUBLIC_KEY_MAX (16U * 1024U)
#define SIGN_TIMEOUT_MS 120000 /* a hardware key waits for a touch */

const char approve_help[] =
        "Usage: jitctl approve ID [--comment TEXT] [--sign] [--key FILE]\n"
        "\n"
        "Approve a pending request (ID, or f:ID for a fleet request). You must be an approver\n"
        "of its rule, and you cannot approve your own request. When the rule requires signed\n"
        "approvals (fleet requests: unless it says signed = false), or with --sign,\n"
        "jitctl signs the approval with your SSH key through your ssh-agent (SSH_AUTH_SOCK);\n"
        "the host checks it against its allowed_signers file.\n"
        "\n"
        "Options:\n"
        "  --comment TEXT  A note kept with your approval\n"
        "  --sign          Sign the approval even if the rule does not require it\n"
        "  --key FILE      The public key to sign with (its private half in ssh-agent);\n"
        "                  default: the agent's first key\n"
        "  --json          Print the request as JSON\n"
        "  -h, --help      Show this help\n";

enum {
        ARG_SIGN = 0x200,
        ARG_KEY,
};

/* The environment ssh-keygen and ssh-add get: the agent, and nothing else of ours. */
static int signing_env(const Context *c, char ***ret) {
        const char *sock = getenv("SSH_AUTH_SOCK");
        if (!sock || !*sock)
                return fail(c, JIT_EXIT_FAILURE, "signing",
                            "no ssh-agent: SSH_AUTH_SOCK is not set; start one and add your key "
                            "(ssh-add) to sign approvals");
        const char *home = getenv("HOME");
        char **env = calloc(5, sizeof(char *));
        if (!env || asprintf(&env[0], "SSH_AUTH_SOCK=%s", sock) < 0 ||
            !(env[1] = strdup("PATH=/usr/bin:/bin")) || !(env[2] = strdup("LC_ALL=C")) ||
            (home && asprintf(&env[3], "HOME=%s", home) < 0)) {
                if (env)
                        for (size_t i = 0; i < 4; i++)
                                free(env[i]);
                free(env);
                return fail_oom(c);
        }
        *ret = env;
        return CONTINUE;
}

static void env_free(char ***env) {
        for (size_t i = 0; *env && (*env)[i]; i++)
                free((*env)[i]);
        free(*env);
}

/* The first line of text, cut there (trailing CR too). */
static void first_line(char *text) {
        text[strcspn(text, "\r\n")] = 0;
}

/* --key FILE's public key, or the agent's first one (ssh-add -L). */
static int signing_key(const Context *c, const char *key_file, char *const *env, char **ret) {
        if (key_file) {
                _cleanup_close_ int fd = open(key_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                struct stat st;
                if (fd < 0)
                        return fail(c, JIT_EXIT_FAILURE, "signing", "cannot open the key %s: %m",
                                    key_file);
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > PUBLIC_KEY_MAX)
                        return fail(c, JIT_EXIT_FAILURE, "signing",
                                    "%s is not a public key file (a regular file, at most 16 KiB)",
                                    key_file);
                char *buf = calloc(1, PUBLIC_KEY_MAX + 1);
                ssize_t n = buf ? read(fd, buf, PUBLIC_KEY_MAX) : -1;
                if (n < 0) {
                        free(buf);
                        return buf ? fail(c, JIT_EXIT_FAILURE, "signing", "reading %s: %m",
                                          key_file)
                                   : fail_oom(c);
                }
                first_line(buf);
                if (strncmp(buf, "ssh-", 4) != 0 && strncmp(buf, "ecdsa-", 6) != 0 &&
                    strncmp(buf, "sk-", 3) != 0) {
                        free(buf);
                        return fail(c, JIT_EXIT_FAILURE, "signing",
                                    "%s does not start with a public key (ssh-ed25519 AAAA..., "
                                    "ecdsa-sha2-..., sk-...): give the .pub file",
                                    key_file);
                }
                *ret = buf;
                return CONTINUE;
        }

        char *argv[] = { "ssh-add", "-L", NULL };
        SshKeygenRun run = {
                .program = SSH_ADD_PATH, .argv = argv, .env = env, .input = "", .timeout_ms = 10000
        };
        _cleanup_free_ SshKeygenResult *res = malloc(sizeof(SshKeygenResult));
        if (!res)
                return fail_oom(c);
        int k = ssh_keygen_run(&run, res);
        if (k < 0)
                return fail(c, JIT_EXIT_FAILURE, "signing", "cannot run %s: %s", SSH_ADD_PATH,
                            strerror(-k));
        if (res->status == 1)
                return fail(c, JIT_EXIT_FAILURE, "signing",
                            "your ssh-agent holds no key: add yours with ssh-add");
        if (res->status != 0) {
                first_line(res->err);
                return fail(c, JIT_EXIT_FAILURE, "signing", "cannot reach your ssh-agent (%s): %s",
                            getenv("SSH_AUTH_SOCK"), *res->err ? res->err : "ssh-add failed");
        }
        first_line(res->out);
        if (!(*ret = strdup(res->out)))
                return fail_oom(c);
        return CONTINUE;
}

/* The armored signature of statement by key, made by the agent. */
static int sign_statement(const Context *c, const char *statement, const char *key,
                          char *const *env, char **ret) {
        char *argv[] = {
                "ssh-keygen",      "-Y", "sign", "-U", "-n", APPROVAL_SIGNATURE_NAMESPACE, "-f",
                SSH_KEYGEN_FILE_0, NULL
        };
        SshKeygenRun run = {
                .argv = argv,
                .env = env,
                .input = statement,
                .input_len = strlen(statement),
                .files = { key },
                .files_len = { strlen(key) },
                .n_files = 1,
                .timeout_ms = SIGN_TIMEOUT_MS,
        };
        _cleanup_free_ SshKeygenResult *res = malloc(sizeof(SshKeygenResult));
        if (!res)
                return fail_oom(c);
        int k = ssh_keygen_run(&run, res);
        if (k < 0)
                return fail(c, JIT_EXIT_FAILURE, "signing", "cannot run %s: %s", SSH_KEYGEN_PATH,
                            strerror(-k));
        SshSigInfo info;
        const char *why;
        if (res->status != 0 || sshsig_parse(res->out, strlen(res->out), &info, &why) < 0) {
                /* Its last line says why ("Couldn't find key in agent"). */
                char *e = res->err, *last = e;
                for (char *p = strtok(e, "\n"); p; p = strtok(NULL, "\n"))
                        last = p;
                return fail(c, JIT_EXIT_FAILURE, "signing", "signing the approval failed: %s",
                            res->timed_out ? "ssh-keygen did not finish in time"
                            : *last        ? last
                                           : "ssh-keygen failed");
        }
        if (!(*ret = strdup(res->out)))
                return fail_oom(c);
        return CONTINUE;
}

/* The broker's statement for id, without a word on failure (then *ret stays NULL). */
static void fetch_statement(const Context *c, const char *op, int64_t id, json_object **ret_reply,
                            const char **ret_statement, bool *ret_required) {
        _cleanup_(json_object_putp) json_object *request = request_with_id(op, id);
        json_object *reply = NULL, *ok, *result, *v;

        *ret_statement = NULL;
        if (!request || jit_client_call(c->socket_path, c->timeout_ms, request, &reply) < 0)
                return;
        if (json_object_object_get_ex(reply, "ok", &ok) && json_object_get_boolean(ok) &&
            json_object_object_get_ex(reply, "result", &result) &&
            json_object_object_get_ex(result, "statement", &v) &&
            json_object_is_type(v, json_type_string)) {
                *ret_statement = json_object_get_string(v);
                *ret_required = json_object_object_get_ex(result, "signed_required", &v) &&
                                json_object_get_boolean(v);
                *ret_reply = reply;
                return;
        }
        json_object_put(reply);
}

int cmd_approve(Context *c, int argc, char *argv[]) {
        const struct option options[] = {
                COMMON_OPTIONS,
                { "comment", required_argument, NULL, ARG_TEXT },
                { "sign", no_argument, NULL, ARG_SIGN },
                { "key", required_argument, NULL, ARG_KEY },
                {},
        };
        const char *comment = NULL, *key_file = NULL;
        bool sign = false, fleet = false;
        int64_t id;
        int opt, r;

        begin_options();
        while ((opt = next_option(c, argc, argv, options)) >= 0)
                switch (opt) {
                case 'h':
                        return print_help(c);
                case ARG_TEXT:
                        comment = optarg;
                        break;
                case ARG_SIGN:
                        sign = true;
                        break;
                case ARG_KEY:
                        key_file = optarg;
                        sign = true;
                        break;
                default:
                        return option_error(c);
                }
        if (comment && (r = check_text(c, "--comment", comment, JIT_REASON_MAX)) != CONTINUE)
                return r;

        if (optind < argc && strncmp(argv[optind], "f:", 2) == 0) {
                int64_t fid;
                if (!fleet_id_parse(argv[optind], &fid))
                        return usage_error(c,
                                           "invalid fleet request id '%s' (f: and a positive "
                                           "integer)",
                                           argv[optind]);
                if ((r = check_no_more_args(c, argc, argv, 1)) != CONTINUE)
                        return r;
                id = fid;
                fleet = true;
        } else if ((r = parse_id_arg(c, argc, argv, &id)) != CONTINUE)
                return r;
        const char *statement_op = fleet ? "fleet-approval-statement" : "approval-statement";

        /* Whether to sign: the broker says what the rule wants. A broker that cannot say
         * (an error, an older broker) gets the plain approval and answers it as it would. */
        _cleanup_(json_object_putp) json_object *statement_reply = NULL;
        const char *statement = NULL;
        bool required = false;
        fetch_statement(c, statement_op, id, &statement_reply, &statement, &required);
        if (sign && !statement) {
                /* Its error, in the words of the broker. */
                _cleanup_(json_object_putp) json_object *again = NULL;
                json_object *result;
                json_object *request = request_with_id(statement_op, id);
                if (!request)
                        return fail_oom(c);
                r = broker_call(c, request, &again, &result);
                json_object_put(request);
                if (r != JIT_EXIT_OK)
                        return r;
                return fail_bad_reply(c);
        }

        _cleanup_free_ char *key = NULL, *signature = NULL;
        _cleanup_(env_free) char **env = NULL;
        if (statement && (sign || required)) {
                if (geteuid() == 0)
                        return fail(c, JIT_EXIT_FAILURE, "signing",
                                    "signing as root: run jitctl approve as yourself, with your "
                                    "own ssh-agent");
                if ((r = signing_env(c, &env)) != CONTINUE ||
                    (r = signing_key(c, key_file, env, &key)) != CONTINUE ||
                    (r = sign_statement(c, statement, key, env, &signature)) != CONTINUE)
                        return r;
        }
        if (fleet)
                return fleet_request_act_signed(c, "approve", id, "comment", comment, statement,
                                                signature);

        _cleanup_(json_object_putp) json_object *request = request_with_id("approve", id);
        _cleanup_(json_object_putp) json_object *reply = NULL;
        _cleanup_(request_view_done) RequestView v = {};
        json_object *result;
        if (!request || (comment && add_string(request, "comment", comment) < 0) ||
            (signature && (add_string(request, "statement", statement) < 0 ||
                           add_string(request, "signature", signature) < 0)))
                return fail_oom(c);
        r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (c->json)
                return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;
        r = request_view_init(&v, result);
        if (r < 0)
                return fail_reply(c, r);
        print_approval(&v, stdout);
        return JIT_EXIT_OK;
}
