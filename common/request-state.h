/* SPDX-License-Identifier: MIT */
/* The request lifecycle (docs/lifecycle.md) as one pure state machine: every transition the
 * broker makes goes through request_transition(), so none can happen twice or out of
 * order. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef enum RequestState {
        REQUEST_PENDING,
        REQUEST_ACTIVE,
        REQUEST_EXPIRED,
        REQUEST_REVOKED,
        REQUEST_CONSUMED,
        REQUEST_DENIED,
        REQUEST_CANCELLED,
        REQUEST_TIMED_OUT,
        _REQUEST_STATE_MAX,
        _REQUEST_STATE_INVALID = -1,
} RequestState;

typedef enum RequestEvent {
        EVENT_APPROVED, /* the last required approval arrived */
        EVENT_DENY,
        EVENT_CANCEL,
        EVENT_PENDING_TIMEOUT,
        EVENT_EXPIRE,
        EVENT_REVOKE,
        EVENT_CONSUME,
        _REQUEST_EVENT_MAX,
        _REQUEST_EVENT_INVALID = -1,
} RequestEvent;

/* "pending", "active", ...; NULL out of range. And back: _REQUEST_STATE_INVALID for
 * anything else. */
const char *request_state_to_string(RequestState s);
RequestState request_state_from_string(const char *s);
/* "approved", "deny", ...; NULL out of range. And back: _REQUEST_EVENT_INVALID. */
const char *request_event_to_string(RequestEvent e);
RequestEvent request_event_from_string(const char *s);

/* Whether the state is final (nothing can happen to the request any more). */
bool request_state_is_final(RequestState s);

/* The state event leads to from s, or -EBUSY when the event is not allowed in s. */
int request_transition(RequestState s, RequestEvent e, RequestState *ret);

typedef enum ApprovalVerdict {
        APPROVAL_COUNTED,      /* recorded; more approvals still needed */
        APPROVAL_COMPLETE,     /* recorded; the request becomes active */
        APPROVAL_NOT_PENDING,  /* the request is not pending */
        APPROVAL_SELF,         /* the approver is the requester */
        APPROVAL_NOT_APPROVER, /* not listed as approver by the rule */
        APPROVAL_DUPLICATE,    /* this approver already approved */
} ApprovalVerdict;

/* Decides what an approval by approver_uid means for a request. prior holds the uids of
 * the approvals already recorded. allow_self: the rule lets requesters approve their own
 * requests (allow_self_approval); they must still be listed approvers. */
ApprovalVerdict approval_decide(RequestState state, uid_t requester_uid, uid_t approver_uid,
                                bool approver_listed, const uid_t *prior, size_t n_prior,
                                unsigned required, bool allow_self);
