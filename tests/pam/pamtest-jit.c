/* SPDX-License-Identifier: MIT */
/* pamtest_jit: runs pam_acct_mgmt() (or pam_authenticate()) for one user through a real
 * libpam stack and checks what pam_jit.so returned and said. Meant to run under pam_wrapper:
 *
 *   PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=DIR LD_PRELOAD=libpam_wrapper.so ./pamtest_jit
 *
 * where DIR holds a service file (named JIT_TEST_SERVICE) such as
 *   account required /abs/path/pam_jit.so socket=/tmp/x/broker.sock timeout=300
 *
 * Configuration, from the environment (this is a test program, not the module):
 *   JIT_TEST_SERVICE           PAM service name (required)
 *   JIT_TEST_USER              PAM user; unset = start PAM without a user
 *   JIT_TEST_EXPECT            allow | deny | error, or a PAM code number (required):
 *                              allow = PAM_SUCCESS, deny = PAM_PERM_DENIED,
 *                              error = PAM_SERVICE_ERR (module misconfigured / local failure)
 *   JIT_TEST_EXPECT_MESSAGE    substring that must appear in one conversation message
 *   JIT_TEST_EXPECT_NO_MESSAGE =1: the module must not say anything
 *   JIT_TEST_SILENT            =1: call pam_acct_mgmt() with PAM_SILENT
 *   JIT_TEST_MAX_MS            pam_acct_mgmt() must return within this many milliseconds
 *   JIT_TEST_OP                account (default) | auth: pam_authenticate(), whose stack may
 *                              prompt (pam_jit's wait=)
 *   JIT_TEST_ANSWERS           auth: the answers to the prompts, in order, one per line; a
 *                              prompt beyond them fails the conversation (as Ctrl-C at sudo's
 *                              prompt does)
 *   JIT_TEST_EXPECT_PROMPTS    auth: exactly this many prompts
 *
 * Also checks that the module leaves no file descriptor open behind it.
 *
 * Prints each message the module sent ("pam-error: ..." / "pam-info: ...", and for auth
 * "pam-prompt: ..."), and the result on stdout, then exits 0 when every expectation held. */

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>

#include <cmocka.h>
#include <libpamtest.h>
#include <security/pam_appl.h>

#define MESSAGES_MAX 16

typedef struct Conversation {
        char *text[MESSAGES_MAX];
        int style[MESSAGES_MAX];
        size_t n;
        unsigned prompts;    /* the account stack must never ask the user anything */
        unsigned overflow;   /* messages beyond MESSAGES_MAX */
        bool may_prompt;     /* auth */
        const char *answers; /* what is left of JIT_TEST_ANSWERS */
} Conversation;

/* The next line of c->answers, or NULL when there is none. */
static char *next_answer(Conversation *c) {
        if (!c->answers)
                return NULL;
        const char *end = strchr(c->answers, '\n');
        size_t len = end ? (size_t) (end - c->answers) : strlen(c->answers);
        char *a = strndup(c->answers, len);
        c->answers = end ? end + 1 : NULL;
        return a;
}

static int conversation(int num_msg, const struct pam_message **msg, struct pam_response **resp,
                        void *userdata) {
        Conversation *c = userdata;
        struct pam_response *r;

        if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG)
                return PAM_CONV_ERR;
        r = calloc((size_t) num_msg, sizeof(*r));
        if (!r)
                return PAM_BUF_ERR;

        for (int i = 0; i < num_msg; i++) {
                switch (msg[i]->msg_style) {
                case PAM_ERROR_MSG:
                case PAM_TEXT_INFO:
                        printf("%s: %s\n",
                               msg[i]->msg_style == PAM_ERROR_MSG ? "pam-error" : "pam-info",
                               msg[i]->msg);
                        if (c->n >= MESSAGES_MAX) {
                                c->overflow++;
                                break;
                        }
                        c->text[c->n] = strdup(msg[i]->msg);
                        if (!c->text[c->n]) {
                                free(r);
                                return PAM_BUF_ERR;
                        }
                        c->style[c->n++] = msg[i]->msg_style;
                        break;
                case PAM_PROMPT_ECHO_ON:
                case PAM_PROMPT_ECHO_OFF:
                        if (c->may_prompt) {
                                printf("pam-prompt: %s\n", msg[i]->msg);
                                c->prompts++;
                                r[i].resp = next_answer(c);
                                if (r[i].resp)
                                        break;
                                printf("pam-prompt: (no answer left: the conversation fails)\n");
                        } else {
                                printf("pam-prompt (unexpected): %s\n", msg[i]->msg);
                                c->prompts++;
                        }
                        for (int j = 0; j < i; j++)
                                free(r[j].resp);
                        free(r);
                        return PAM_CONV_ERR;
                default:
                        printf("pam-prompt (unexpected): %s\n", msg[i]->msg);
                        c->prompts++;
                        for (int j = 0; j < i; j++)
                                free(r[j].resp);
                        free(r);
                        return PAM_CONV_ERR;
                }
        }

        if (resp)
                *resp = r;
        else
                free(r);
        return PAM_SUCCESS;
}

static void conversation_done(Conversation *c) {
        for (size_t i = 0; i < c->n; i++)
                free(c->text[i]);
        c->n = 0;
}

static const char *env(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

static bool env_true(const char *name) {
        const char *v = env(name);
        return v && (strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0);
}

static int expected_code(const char *s) {
        if (strcmp(s, "allow") == 0)
                return PAM_SUCCESS;
        if (strcmp(s, "deny") == 0)
                return PAM_PERM_DENIED;
        if (strcmp(s, "error") == 0)
                return PAM_SERVICE_ERR;

        char *end;
        errno = 0;
        long n = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end || n < 0 || n > INT_MAX)
                return -1;
        return (int) n;
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Open fds of this process, not counting the one used to list them; -1 if unknown. */
static int count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1;
}

static void test_account(void **state) {
        const char *service = env("JIT_TEST_SERVICE");
        const char *user = getenv("JIT_TEST_USER"); /* "" is a test case too */
        const char *expect = env("JIT_TEST_EXPECT");
        const char *expect_message = env("JIT_TEST_EXPECT_MESSAGE");
        const char *max_ms_s = env("JIT_TEST_MAX_MS");
        bool expect_no_message = env_true("JIT_TEST_EXPECT_NO_MESSAGE");
        int flags = env_true("JIT_TEST_SILENT") ? PAM_SILENT : 0;
        const char *op = env("JIT_TEST_OP") ?: "account";
        const char *expect_prompts = env("JIT_TEST_EXPECT_PROMPTS");
        bool auth = strcmp(op, "auth") == 0;
        Conversation conv = { .n = 0, .may_prompt = auth, .answers = getenv("JIT_TEST_ANSWERS") };
        int want;

        (void) state;

        if (!service || !expect) {
                fail_msg("JIT_TEST_SERVICE and JIT_TEST_EXPECT must be set");
                return;
        }
        want = expected_code(expect);
        if (want < 0) {
                fail_msg("JIT_TEST_EXPECT must be allow, deny, error or a PAM code, got \"%s\"",
                         expect);
                return;
        }

        if (!auth && strcmp(op, "account") != 0) {
                fail_msg("JIT_TEST_OP must be account or auth, got \"%s\"", op);
                return;
        }
        struct pam_testcase tests[] = {
                pam_test_flags(auth ? PAMTEST_AUTHENTICATE : PAMTEST_ACCOUNT, want, flags),
        };

        int fds_before = count_fds();
        uint64_t start = now_ms();
        /* run_pamtest_conv() in libpamtest.h is a broken macro; call what it wraps. */
        enum pamtest_err perr = _pamtest_conv(service, user, conversation, &conv, tests,
                                              sizeof(tests) / sizeof(tests[0]), NULL);
        uint64_t elapsed = now_ms() - start;
        int fds_after = count_fds();

        printf("result: %d (%s), expected %d (%s), %llu ms\n", tests[0].op_rv,
               pam_strerror(NULL, tests[0].op_rv), want, pam_strerror(NULL, want),
               (unsigned long long) elapsed);

        if (perr != PAMTEST_ERR_OK && perr != PAMTEST_ERR_CASE) {
                conversation_done(&conv);
                fail_msg("libpamtest failed: %s", pamtest_strerror(perr));
                return;
        }

        bool found = false;
        for (size_t i = 0; i < conv.n; i++)
                if (expect_message && strstr(conv.text[i], expect_message))
                        found = true;
        size_t n_messages = conv.n + conv.overflow;
        unsigned prompts = conv.prompts;
        conversation_done(&conv);

        assert_int_equal(tests[0].op_rv, want);
        assert_int_equal(perr, PAMTEST_ERR_OK);
        if (!auth)
                assert_int_equal(prompts, 0);
        else if (expect_prompts)
                assert_int_equal(prompts, strtoul(expect_prompts, NULL, 10));
        if (fds_after != fds_before)
                fail_msg("open file descriptors went from %d to %d: the module leaked %d",
                         fds_before, fds_after, fds_after - fds_before);
        if (expect_message && !found)
                fail_msg("no conversation message contains \"%s\"", expect_message);
        if (expect_no_message && n_messages > 0)
                fail_msg("expected no conversation message, got %zu", n_messages);
        if (max_ms_s) {
                unsigned long long max_ms = strtoull(max_ms_s, NULL, 10);
                if (elapsed > max_ms)
                        fail_msg("pam_%s took %llu ms, more than %llu",
                                 auth ? "authenticate" : "acct_mgmt", (unsigned long long) elapsed,
                                 max_ms);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_account),
        };

        setvbuf(stdout, NULL, _IOLBF, 0);
        return cmocka_run_group_tests_name("pam_jit", tests, NULL, NULL);
}
