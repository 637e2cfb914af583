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

/* Plain diagnostics, dropped when priority is above the log level (log_set_max_level()).
 * Events (log_event()) are the audit trail and never dropped. errno is left as it was. */
void log_full(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)

/* The same for a failure: error is a negative errno (its absolute value is taken), for %m
 * in fmt. Returns -|error|, so that "return log_error_errno(r, ...);" passes r on. */
int log_full_errno(int priority, int error, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_notice_errno(error, ...) log_full_errno(LOG_NOTICE, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, error, __VA_ARGS__)
#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, error, __VA_ARGS__)

/* The log level: the highest priority log_full() passes on (LOG_EMERG .. LOG_DEBUG).
 * LOG_INFO until set. */
void log_set_max_level(int level);
int log_get_max_level(void);
/* A level as syslog(3) names it (emerg alert crit err warning notice info debug) or as
 * its number 0-7; -EINVAL for anything else. */
int log_level_from_string(const char *s);
