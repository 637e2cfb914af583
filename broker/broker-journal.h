/* SPDX-License-Identifier: MIT */
/* Everything the broker says goes to journald as structured entries: one stable
 * MESSAGE_ID per kind of event (events.h; README's "Journal" section), JIT_* fields for
 * the request. Mirrored to stderr when stderr is
 * not the journal already. */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "events.h"
#include "store.h"

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
