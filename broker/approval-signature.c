/* SPDX-License-Identifier: MIT */
/* Why ssh-keygen, as a child process, and not a verifier of our own: the signature format,
 * the allowed_signers file (principal patterns, cert-authority, namespaces=, valid-after=,
 * valid-before= options) and every key type including FIDO ones are OpenSSH's, and its
 * implementation is the audited one every OpenSSH user already trusts; a second one would
 * be a second place for mistakes. It runs as jit-verify, with a clean environment, no
 * descriptor but its input, output and the two in-memory files, and a deadline; and never
 * on the path of pam_jit's check, which reads only the database. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "approval-signature.h"
#include "cleanup.h"
#include "ssh-keygen.h"
#include "timeutil.h"

int approval_host_name(const Policy *p, char *buf, size_t size) {
        if (p && p->fleet.enabled && p->fleet.host) {
                if (strlen(p->fleet.host) >= size)
                        return -ENAMETOOLONG;
                strcpy(buf, p->fleet.host);
                return 0;
        }
        if (gethostname(buf, size) < 0)
                return -errno;
        buf[size - 1] = 0;
        return 0;
}

int approval_statement_of(const Request *r, const char *host, const char *approver,
                          uint64_t not_before, uint64_t not_after, ApprovalStatement *ret,
                          char **storage) {
        char *s = NULL;
        ApprovalStatement st = {
                .request = NULL,
                .requester = r->requester,
                .requester_uid = (uint32_t) r->requester_uid,
                .service = r->service,
                .command = r->command,
                .cwd = r->cwd,
                .hosts = host,
                .duration = r->duration,
                .not_before = not_before,
                .not_after = not_after,
                .approver = approver,
        };
        /* storage: the id, then the run-as ("USER[:GROUP]"). */
        /* A group without a user runs as root with that group: "root:GROUP". */
        const char *user = r->run_as_user ? r->run_as_user : r->run_as_group ? "root" : "";
        if (asprintf(&s, "%lld%c%s%s%s", (long long) r->id, 0, user, r->run_as_group ? ":" : "",
                     r->run_as_group ? r->run_as_group : "") < 0)
                return -ENOMEM;
        st.request = s;
        const char *run_as = s + strlen(s) + 1;
        st.run_as = r->command && *run_as ? run_as : NULL;
        if (r->command)
                approval_statement_hash_argv(r->argv, st.argv_sha256);
        approval_statement_hash_text(r->reason ? r->reason : "", st.reason_sha256);
        if (r->ticket)
                approval_statement_hash_text(r->ticket, st.ticket_sha256);
        *ret = st;
        *storage = s;
        return 0;
}

void approval_default_window(const Request *r, uint64_t now_usec, uint64_t *ret_not_before,
                             uint64_t *ret_not_after) {
        uint64_t now = now_usec / 1000000;
        uint64_t last = r->deadline_at > now_usec ? (r->deadline_at + 999999) / 1000000 : now;
        *ret_not_before = now;
        *ret_not_after = last + r->duration;
}

/* allowed_signers as root keeps it: a regular file owned by root that nobody else may
 * write, at most ALLOWED_SIGNERS_MAX bytes. */
static int read_allowed_signers(const char *path, char **ret, size_t *ret_len, char **ret_why) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        struct stat st;
        if (fd < 0) {
                int k = -errno;
                if (asprintf(ret_why, "cannot read the allowed signers file %s: %s", path,
                             strerror(-k)) < 0)
                        *ret_why = NULL;
                return k;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) ||
            st.st_size > ALLOWED_SIGNERS_MAX) {
                if (asprintf(ret_why,
                             "the allowed signers file %s must be a regular file owned by root, "
                             "writable by nobody else, at most 1 MiB",
                             path) < 0)
                        *ret_why = NULL;
                return -EPERM;
        }
        _cleanup_free_ char *buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t n = 0;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}

static char *const keygen_env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };

/* The uid and gid of APPROVAL_VERIFY_USER; fails closed when it is missing or is root. */
static int verify_user(uid_t *ret_uid, gid_t *ret_gid, char **ret_why) {
        struct passwd pw, *pwp = NULL;
        char buf[4096];

        int k = getpwnam_r(APPROVAL_VERIFY_USER, &pw, buf, sizeof(buf), &pwp);
        if (k != 0) {
                if (asprintf(ret_why, "cannot look up the user %s: %s", APPROVAL_VERIFY_USER,
                             strerror(k)) < 0)
                        *ret_why = NULL;
                return -k;
        }
        if (!pwp) {
                if (asprintf(ret_why,
                             "the system user %s, which checks signatures, does not exist "
                             "(the jit package creates it: systemd-sysusers jit.conf); signed "
                             "approvals are refused until it does",
                             APPROVAL_VERIFY_USER) < 0)
                        *ret_why = NULL;
                return -ESRCH;
        }
        if (pw.pw_uid == 0 || pw.pw_gid == 0) {
                if (asprintf(ret_why,
                             "the user %s is root (uid or group 0); signed approvals are refused",
                             APPROVAL_VERIFY_USER) < 0)
                        *ret_why = NULL;
                return -EPERM;
        }
        *ret_uid = pw.pw_uid;
        *ret_gid = pw.pw_gid;
        return 0;
}

static int run_keygen(char *const *argv, const SignatureCheck *c, const char *signers,
                      size_t signers_len, SshKeygenResult *res, char **ret_why) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        bool drop = uid == 0;
        int k;

        if (drop && (k = verify_user(&uid, &gid, ret_why)) < 0)
                return k == -EPERM ? -EACCES : k; /* not the signature's fault: not -EPERM */
        SshKeygenRun run = {
                .argv = argv,
                .env = keygen_env,
                .input = c->statement,
                .input_len = c->statement_len,
                .files = { c->signature, signers },
                .files_len = { c->signature_len, signers_len },
                .n_files = 2,
                .drop = drop,
                .uid = uid,
                .gid = gid,
                .timeout_ms = APPROVAL_VERIFY_TIMEOUT_MS,
        };
        k = ssh_keygen_run(&run, res);
        if (k < 0) {
                if (asprintf(ret_why, "cannot run %s: %s", SSH_KEYGEN_PATH, strerror(-k)) < 0)
                        *ret_why = NULL;
                return k;
        }
        if (res->timed_out || res->status == 127 || res->status < 0) {
                if (asprintf(ret_why, "%s %s", SSH_KEYGEN_PATH,
                             res->timed_out ? "did not answer in time" : "failed to run") < 0)
                        *ret_why = NULL;
                return -ETIMEDOUT;
        }
        return 0;
}

/* Whether name is one of the principals find-principals printed (one line each, a line
 * may be a comma-separated list). */
static bool principal_listed(const char *out, const char *name) {
        size_t n = strlen(name);
        for (const char *p = out; *p;) {
                size_t l = strcspn(p, ",\n");
                if (l == n && strncmp(p, name, n) == 0)
                        return true;
                p += l;
                if (*p)
                        p++;
        }
        return false;
}

int approval_signature_check(const SignatureCheck *c, SshSigInfo *ret_info, char **ret_why) {
        SshSigInfo info;
        const char *why;
        int k;

        *ret_why = NULL;
        if (sshsig_parse(c->signature, c->signature_len, &info, &why) < 0) {
                if (asprintf(ret_why, "the signature is %s", why) < 0)
                        *ret_why = NULL;
                return -EPERM;
        }
        if (!STREQ(info.namespace, APPROVAL_SIGNATURE_NAMESPACE)) {
                if (asprintf(ret_why, "the signature is for namespace \"%s\", not \"%s\"",
                             info.namespace, APPROVAL_SIGNATURE_NAMESPACE) < 0)
                        *ret_why = NULL;
                return -EPERM;
        }

        _cleanup_free_ char *signers = NULL;
        size_t signers_len = 0;
        if ((k = read_allowed_signers(c->allowed_signers, &signers, &signers_len, ret_why)) < 0)
                return k;

        /* Who the key belongs to, for the reasons below and the self-approval check. */
        _cleanup_free_ SshKeygenResult *found = malloc(sizeof(SshKeygenResult));
        _cleanup_free_ SshKeygenResult *verified = malloc(sizeof(SshKeygenResult));
        if (!found || !verified)
                return -ENOMEM;
        char *find_argv[] = { "ssh-keygen",      "-Y", "find-principals", "-f",
                              SSH_KEYGEN_FILE_1, "-s", SSH_KEYGEN_FILE_0, NULL };
        if ((k = run_keygen(find_argv, c, signers, signers_len, found, ret_why)) < 0)
                return k;
        const char *principals = found->status == 0 ? found->out : "";
        if (!*principals) {
                if (asprintf(ret_why, "key %s (%s) is not in %s", info.fingerprint, info.key_type,
                             c->allowed_signers) < 0)
                        *ret_why = NULL;
                return -EPERM;
        }
        /* Whether the key is the requester's as OpenSSH itself sees it: ssh-keygen accepts
         * the signature for the requester's name. find-principals shows only the first line
         * listing the key, with its principal patterns as written (`ops-*`), so comparing
         * names with its output would miss a second line or a pattern. */
        bool requesters = c->requester && principal_listed(principals, c->requester);
        if (c->requester && !requesters) {
                char *requester_argv[] = { "ssh-keygen",
                                           "-Y",
                                           "verify",
                                           "-f",
                                           SSH_KEYGEN_FILE_1,
                                           "-I",
                                           (char *) c->requester,
                                           "-n",
                                           APPROVAL_SIGNATURE_NAMESPACE,
                                           "-s",
                                           SSH_KEYGEN_FILE_0,
                                           NULL };
                if ((k = run_keygen(requester_argv, c, signers, signers_len, verified, ret_why)) <
                    0)
                        return k;
                requesters = verified->status == 0;
        }
        if (requesters) {
                if (asprintf(ret_why,
                             "key %s is listed for %s, the requester: a request cannot be "
                             "approved with its requester's key",
                             info.fingerprint, c->requester) < 0)
                        *ret_why = NULL;
                return -EPERM;
        }

        char *verify_argv[] = { "ssh-keygen",
                                "-Y",
                                "verify",
                                "-f",
                                SSH_KEYGEN_FILE_1,
                                "-I",
                                (char *) c->approver,
                                "-n",
                                APPROVAL_SIGNATURE_NAMESPACE,
                                "-s",
                                SSH_KEYGEN_FILE_0,
                                NULL };
        if ((k = run_keygen(verify_argv, c, signers, signers_len, verified, ret_why)) < 0)
                return k;
        if (verified->status != 0) {
                _cleanup_free_ char *shown = strndup(principals, strcspn(principals, "\n"));
                if (!principal_listed(principals, c->approver))
                        k = asprintf(ret_why, "key %s is listed for %s, not for %s",
                                     info.fingerprint, shown ? shown : "someone else", c->approver);
                else
                        k = asprintf(ret_why,
                                     "the signature by key %s does not verify over this request's "
                                     "statement",
                                     info.fingerprint);
                if (k < 0)
                        *ret_why = NULL;
                return -EPERM;
        }
        /* "Good "jit-approval" signature for NAME with TYPE key SHA256:..." names the key that
         * verified: the one the signature carries, or something is very wrong. */
        const char *fp = strstr(verified->out, " key SHA256:");
        size_t fl = strlen(info.fingerprint);
        if (!fp || strncmp(fp + 5, info.fingerprint, fl) != 0 ||
            (fp[5 + fl] != '\n' && fp[5 + fl] != 0)) {
                if (asprintf(ret_why, "ssh-keygen verified a key other than %s", info.fingerprint) <
                    0)
                        *ret_why = NULL;
                return -EPERM;
        }
        *ret_info = info;
        return 0;
}

static int why_printf(char **ret_why, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int why_printf(char **ret_why, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret_why, fmt, ap) < 0)
                *ret_why = NULL;
        va_end(ap);
        return r;
}

static int check_statement(const SignedApproval *a, const ApprovalStatement *s, char **ours,
                           size_t *ours_len, char **ret_why) {
        _cleanup_free_ char *storage = NULL;
        ApprovalStatement mine;
        const char *why;
        char t[64];
        int k;

        if ((a->fleet || s->fleet) && !(a->fleet && s->fleet && STREQ(a->fleet, s->fleet)))
                return why_printf(ret_why, -EPERM, "the signed statement is for %s%s, not %s%s",
                                  s->fleet ? "fleet " : "", s->fleet ? s->fleet : "one host",
                                  a->fleet ? "fleet " : "", a->fleet ? a->fleet : "one host");
        /* Ours, for the hosts and the window the signer chose; any other difference is named. */
        if ((k = approval_statement_of(a->request, s->hosts, a->approver, s->not_before,
                                       s->not_after, &mine, &storage)) < 0)
                return why_printf(ret_why, k, "out of memory");
        mine.request = a->request_id;
        mine.fleet = a->fleet;
        if ((k = approval_statement_format(&mine, ours, ours_len, &why)) < 0)
                return why_printf(ret_why, k == -ENOMEM ? k : -EPERM,
                                  "the request cannot be signed: its %s does not fit a statement",
                                  why);
        const char *field = approval_statement_diff(&mine, s);
        if (field)
                return why_printf(ret_why, -EPERM,
                                  "the signed statement does not match the request: its %s differs",
                                  field);

        HostSelector *sel = NULL;
        bool here = a->exact_host
                            ? STREQ(s->hosts, a->host)
                            : host_selector_parse(s->hosts, &sel, NULL) >= 0 &&
                                      host_selector_matches(sel, a->host, a->labels, a->n_labels);
        host_selector_free(sel);
        if (!here)
                return why_printf(ret_why, -EPERM, "it is for hosts %s, not this host (%s)",
                                  s->hosts, a->host);
        if (s->not_before > a->now + APPROVAL_CLOCK_SKEW)
                return why_printf(ret_why, -EPERM, "the signed approval is not valid before %s",
                                  format_rfc3339(s->not_before * 1000000, t, sizeof(t)));
        if (a->now + a->request->duration > s->not_after)
                return why_printf(ret_why, -EPERM,
                                  "the signed approval has expired: it holds only for a grant "
                                  "ending by %s",
                                  format_rfc3339(s->not_after * 1000000, t, sizeof(t)));
        return 0;
}

int approval_check_signed(const SignedApproval *a, SshSigInfo *ret_info, uint64_t *ret_not_after,
                          char **ret_why) {
        ApprovalStatement s;
        const char *why;
        int k;

        *ret_why = NULL;
        if (approval_statement_parse(a->statement, strlen(a->statement), &s, &why) < 0)
                return why_printf(ret_why, -EBADMSG, "the signed statement is malformed: %s", why);
        _cleanup_free_ char *ours = NULL;
        size_t ours_len = 0;
        k = check_statement(a, &s, &ours, &ours_len, ret_why);
        uint64_t not_after = s.not_after;
        approval_statement_done(&s);
        if (k < 0)
                return k;

        _cleanup_free_ char *reason = NULL;
        SignatureCheck c = {
                .allowed_signers = a->allowed_signers,
                .statement = ours,
                .statement_len = ours_len,
                .signature = a->signature,
                .signature_len = strlen(a->signature),
                .approver = a->approver,
                .requester = a->approver_is_requester ? NULL : a->request->requester,
        };
        k = approval_signature_check(&c, ret_info, &reason);
        if (k == -EPERM)
                return why_printf(ret_why, k, "the signature is refused: %s",
                                  reason ? reason : "out of memory");
        if (k < 0) {
                *ret_why = TAKE_PTR(reason);
                return k;
        }
        *ret_not_after = not_after;
        return 0;
}
