/* SPDX-License-Identifier: MIT */
/* Everything the broker says goes to journald as structured entries: one stable
 * MESSAGE_ID per kind of event (listed in common/PROTOCOL.md's sibling, README's
 * "Journal" section), JIT_* fields for the request. Mirrored to stderr when stderr is
 * not the journal already. */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "store.h"

typedef enum JitEvent {
        JIT_EVENT_REQUESTED,
        JIT_EVENT_APPROVAL,
        JIT_EVENT_GRANTED,
        JIT_EVENT_DENIED,
        JIT_EVENT_CANCELLED,
        JIT_EVENT_EXPIRED,
        JIT_EVENT_REVOKED,
        JIT_EVENT_TIMED_OUT,
        JIT_EVENT_ACCESS_ALLOWED,
        JIT_EVENT_ACCESS_DENIED,
        JIT_EVENT_REFUSED,
        JIT_EVENT_STARTED,
        JIT_EVENT_STOPPING,
        JIT_EVENT_POLICY_LOADED,
        JIT_EVENT_POLICY_REJECTED,
        JIT_EVENT_AUTO_APPROVED,
        JIT_EVENT_BREAK_GLASS,
        JIT_EVENT_ACKNOWLEDGED,
        JIT_EVENT_WITHDRAWN,
        JIT_EVENT_AUDIT_ARCHIVED,
        JIT_EVENT_SESSION_OPENED,
        JIT_EVENT_SESSION_CLOSED,
        JIT_EVENT_SESSION_TERMINATED,
        JIT_EVENT_CONSUMED,
        _JIT_EVENT_MAX,
} JitEvent;

const char *jit_event_message_id(JitEvent e);
const char *jit_event_name(JitEvent e);

/* A structured event. r may be NULL; actor is the user (or "broker") who caused it;
 * the extra fields are "KEY=value" strings, NULL-terminated. */
void log_event(JitEvent e, int priority, const Request *r, const char *actor,
               const char *const *extra, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));

/* Plain diagnostics. Use %m with errno set, e.g. errno = -r. */
void log_full(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
