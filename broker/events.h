/* SPDX-License-Identifier: MIT */
/* The kinds of event the broker records, each with its name (the audit log's "event", the
 * journal's JIT_EVENT) and its stable journald MESSAGE_ID: defined once, in events.c. */
#pragma once

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
        JIT_EVENT_REQUESTS_ARCHIVED,
        JIT_EVENT_INTEGRITY_FAILED,
        JIT_EVENT_NOTIFY_FAILED,     /* a notify hook failed; retried later (notify.h) */
        JIT_EVENT_NOTIFY_DELIVERED,  /* a notify hook took an event (debug priority) */
        JIT_EVENT_NOTIFY_DROPPED,    /* notifications given up: outbox full, hook gone, retries */
        JIT_EVENT_COMMAND_USED,      /* sudo ran a command under a grant (the approval plugin) */
        JIT_EVENT_FLEET_CONNECTED,   /* the fleet store is in use (fleet-client.h) */
        JIT_EVENT_FLEET_UNREACHABLE, /* the fleet store cannot be used; retried with backoff */
        JIT_EVENT_FLEET_SCHEMA_MISMATCH, /* the fleet store's schema is not this broker's */
        JIT_EVENT_FLEET_GRANTED,         /* a fleet request's approvals met this host's policy */
        _JIT_EVENT_MAX,
} JitEvent;

const char *jit_event_message_id(JitEvent e);
const char *jit_event_name(JitEvent e);

/* NULL for a value out of range. */
const char *jit_event_message_id(JitEvent e);
const char *jit_event_name(JitEvent e);
