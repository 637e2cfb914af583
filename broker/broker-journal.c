/* SPDX-License-Identifier: MIT */
#include "broker-journal.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "cleanup.h"
#include "text-escape.h"
#include "timeutil.h"

static bool stderr_is_journal(void) {
        /* systemd sets JOURNAL_STREAM when stderr already goes to the journal. */
        return secure_getenv("JOURNAL_STREAM") != NULL;
}

#define EVENT_FIELDS_MAX 32

void log_event(JitEvent e, int priority, const Request *r, const char *actor,
               const char *const *extra, const char *fmt, ...) {
        char *fields[EVENT_FIELDS_MAX] = {};
        struct iovec iov[EVENT_FIELDS_MAX];
        size_t n = 0;
        _cleanup_free_ char *raw = NULL, *message = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&raw, fmt, ap) < 0)
                raw = NULL;
        va_end(ap);
        /* MESSAGE is what journalctl shows as the line: user text in it (a reason, a name)
         * must not hide or reorder it (bidi controls, tags, controls), so it is escaped as
         * jitctl escapes it. The JIT_* fields keep the exact text: journald stores them as
         * data, and jitctl escapes them when it shows them. */
        if (raw)
                message = jit_text_escape(raw, strlen(raw));

#define ADD(...)                                                                                   \
        do {                                                                                       \
                if (n < EVENT_FIELDS_MAX && asprintf(&fields[n], __VA_ARGS__) >= 0)                \
                        n++;                                                                       \
        } while (0)

        ADD("MESSAGE=%s", message ? message : jit_event_name(e));
        ADD("MESSAGE_ID=%s", jit_event_message_id(e));
        ADD("PRIORITY=%d", priority);
        ADD("SYSLOG_IDENTIFIER=jit-brokerd");
        ADD("JIT_EVENT=%s", jit_event_name(e));
        if (actor)
                ADD("JIT_ACTOR=%s", actor);
        if (r) {
                char t[RFC3339_BUF_MAX];
                ADD("JIT_REQUEST_ID=%lld", (long long) r->id);
                ADD("JIT_REQUESTER=%s", r->requester);
                ADD("JIT_REQUESTER_UID=%u", (unsigned) r->requester_uid);
                ADD("JIT_SERVICE=%s", r->service);
                ADD("JIT_STATE=%s", request_state_to_string(r->state));
                ADD("JIT_RULE=%s", r->rule);
                if (r->policy_version)
                        ADD("JIT_POLICY_VERSION=%s", r->policy_version);
                if (r->break_glass)
                        ADD("JIT_BREAK_GLASS=1");
                ADD("JIT_DURATION=%llu", (unsigned long long) r->duration);
                ADD("JIT_REASON=%s", r->reason);
                if (r->ticket)
                        ADD("JIT_TICKET=%s", r->ticket);
                if (r->expires_at)
                        ADD("JIT_EXPIRES_AT=%s", format_rfc3339(r->expires_at, t, sizeof(t)));
                if (r->end_reason)
                        ADD("JIT_END_REASON=%s", r->end_reason);
        }
        for (size_t i = 0; extra && extra[i]; i++)
                ADD("%s", extra[i]);
#undef ADD

        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec){ .iov_base = fields[i], .iov_len = strlen(fields[i]) };
        (void) sd_journal_sendv(iov, (int) n);

        if (!stderr_is_journal())
                fprintf(stderr, "jit-brokerd: %s\n", message ? message : jit_event_name(e));

        for (size_t i = 0; i < n; i++)
                free(fields[i]);
}

static int log_max_level = LOG_INFO;

void log_set_max_level(int level) {
        assert(level >= LOG_EMERG && level <= LOG_DEBUG);
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = {
                [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
                [LOG_ERR] = "err",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
        };

        if (!s)
                return -EINVAL;
        for (int i = 0; i < (int) (sizeof(names) / sizeof(names[0])); i++)
                if (STREQ(s, names[i]))
                        return i;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

/* Formats with errno as the caller left it (for %m) and sends the message on; errno is
 * restored afterwards. */
static void log_fullv(int priority, const char *fmt, va_list ap) {
        int saved = errno;
        char buf[1024];

        if (priority > log_max_level)
                return;
        vsnprintf(buf, sizeof(buf), fmt, ap);

        (void) sd_journal_send("MESSAGE=%s", buf, "PRIORITY=%d", priority,
                               "SYSLOG_IDENTIFIER=jit-brokerd", NULL);
        if (!stderr_is_journal())
                fprintf(stderr, "jit-brokerd: %s\n", buf);
        errno = saved;
}

void log_full(int priority, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_fullv(priority, fmt, ap);
        va_end(ap);
}

int log_full_errno(int priority, int error, const char *fmt, ...) {
        int saved = errno;
        va_list ap;

        error = error < 0 ? -error : error;
        errno = error;
        va_start(ap, fmt);
        log_fullv(priority, fmt, ap);
        va_end(ap);
        errno = saved;
        return -error;
}
