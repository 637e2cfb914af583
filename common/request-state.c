/* SPDX-License-Identifier: MIT */
#include "request-state.h"

#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "string-table.h"

static const char *const state_names[_REQUEST_STATE_MAX] = {
        [REQUEST_PENDING] = "pending",     [REQUEST_ACTIVE] = "active",
        [REQUEST_EXPIRED] = "expired",     [REQUEST_REVOKED] = "revoked",
        [REQUEST_CONSUMED] = "consumed",   [REQUEST_DENIED] = "denied",
        [REQUEST_CANCELLED] = "cancelled", [REQUEST_TIMED_OUT] = "timed_out",
};

static const char *const event_names[_REQUEST_EVENT_MAX] = {
        [EVENT_APPROVED] = "approved", [EVENT_DENY] = "deny",
        [EVENT_CANCEL] = "cancel",     [EVENT_PENDING_TIMEOUT] = "pending-timeout",
        [EVENT_EXPIRE] = "expire",     [EVENT_REVOKE] = "revoke",
        [EVENT_CONSUME] = "consume",
};

DEFINE_STRING_TABLE(request_state, RequestState, state_names, _REQUEST_STATE_MAX);
DEFINE_STRING_TABLE(request_event, RequestEvent, event_names, _REQUEST_EVENT_MAX);

bool request_state_is_final(RequestState s) {
        return s != REQUEST_PENDING && s != REQUEST_ACTIVE;
}

int request_transition(RequestState s, RequestEvent e, RequestState *ret) {
        static const struct {
                RequestState from;
                RequestEvent event;
                RequestState to;
        } table[] = {
                { REQUEST_PENDING, EVENT_APPROVED, REQUEST_ACTIVE },
                { REQUEST_PENDING, EVENT_DENY, REQUEST_DENIED },
                { REQUEST_PENDING, EVENT_CANCEL, REQUEST_CANCELLED },
                { REQUEST_PENDING, EVENT_PENDING_TIMEOUT, REQUEST_TIMED_OUT },
                { REQUEST_ACTIVE, EVENT_EXPIRE, REQUEST_EXPIRED },
                { REQUEST_ACTIVE, EVENT_REVOKE, REQUEST_REVOKED },
                { REQUEST_ACTIVE, EVENT_CONSUME, REQUEST_CONSUMED },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].from == s && table[i].event == e) {
                        *ret = table[i].to;
                        return 0;
                }
        return -EBUSY;
}

ApprovalVerdict approval_decide(RequestState state, uid_t requester_uid, uid_t approver_uid,
                                bool approver_listed, const uid_t *prior, size_t n_prior,
                                unsigned required, bool allow_self) {
        if (state != REQUEST_PENDING)
                return APPROVAL_NOT_PENDING;
        /* Before the listing check: no rule, and no admin path, lets anyone approve their own. */
        if (approver_uid == requester_uid && !allow_self)
                return APPROVAL_SELF;
        if (!approver_listed)
                return APPROVAL_NOT_APPROVER;
        for (size_t i = 0; i < n_prior; i++)
                if (prior[i] == approver_uid)
                        return APPROVAL_DUPLICATE;
        return n_prior + 1 >= required ? APPROVAL_COMPLETE : APPROVAL_COUNTED;
}
