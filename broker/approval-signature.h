/* SPDX-License-Identifier: MIT */
/* Signed approvals on this host (docs/signed-approvals.md): the statement the broker builds
 * itself from a request, and the check of an approver's signature over it with OpenSSH's
 * ssh-keygen -Y verify against the policy's allowed_signers file. */
#pragma once

#include <stdint.h>

#include "approval-statement.h"
#include "host-selector.h"
#include "policy.h"
#include "sshsig.h"
#include "store.h"

/* How long ssh-keygen may take for one check; past it the approval is refused. */
#define APPROVAL_VERIFY_TIMEOUT_MS 5000
/* allowed_signers larger than this is refused (a line per approver key). */
#define ALLOWED_SIGNERS_MAX (1024U * 1024U)
/* How far a signed not-before may be ahead of this host's clock (clocks of hosts differ). */
#define APPROVAL_CLOCK_SKEW 60
/* The system user (and its group) ssh-keygen checks signatures as, looked up for each check:
 * a user of its own, which no other process runs as (one that did could ptrace the child and
 * forge its verdict). The package creates it (jit.sysusers); without it signed approvals are
 * refused. */
#define APPROVAL_VERIFY_USER "jit-verify"

/* The name this host signs as (`hosts` of a local request's statement): the policy's
 * fleet.host, else the kernel's host name. */
int approval_host_name(const Policy *p, char *buf, size_t size);

/* The fields of the statement approving r on host by approver with the window
 * [not_before, not_after]; strings point into r and into *storage (free it after use). */
int approval_statement_of(const Request *r, const char *host, const char *approver,
                          uint64_t not_before, uint64_t not_after, ApprovalStatement *ret,
                          char **storage);

/* The window the broker offers the signer: from now to the end of a grant that starts at
 * the last moment the request can still be approved (its pending deadline). */
void approval_default_window(const Request *r, uint64_t now_usec, uint64_t *ret_not_before,
                             uint64_t *ret_not_after);

typedef struct SignatureCheck {
        const char *allowed_signers; /* path */
        const char *statement;       /* the broker's own bytes */
        size_t statement_len;
        const char *signature; /* armored */
        size_t signature_len;
        const char *approver;
        const char *requester;
} SignatureCheck;

/* A signed approval as it reaches this host: its statement and signature, and what they must
 * name. For jitctl approve here, a grant bundle, and (to come) the fleet's approvals. */
typedef struct SignedApproval {
        const Request *request;  /* the request as this host has it (requester, service,
                                    command, duration, reason, ticket) */
        const char *request_id;  /* what the statement must name: "42", "f:42" */
        const char *fleet;       /* the fleet it must name; NULL: none (a local request) */
        const char *approver;    /* who sends it: the statement's approver and principal */
        const char *statement;   /* as signed */
        const char *signature;   /* armored */
        const char *host;        /* this host's name (approval_host_name()) */
        const HostLabel *labels; /* and labels (policy_host_labels()) */
        size_t n_labels;
        bool exact_host;            /* `hosts` must be host itself, not a selector picking it */
        bool approver_is_requester; /* allow_self_approval decided it: the key may be theirs */
        const char *allowed_signers;
        uint64_t now; /* seconds since the epoch */
} SignedApproval;

/* Checks a in this order: the statement is canonical (-EBADMSG), names a->fleet, is byte for
 * byte the statement of a->request with a->request_id and a->approver for the window and
 * hosts it gives, its hosts pick this host, its window holds a grant of the request starting
 * now (-EPERM for each), and then approval_signature_check(). *ret_why (malloc'd) says why;
 * on success *ret_info names the key and *ret_not_after ends the window. */
int approval_check_signed(const SignedApproval *a, SshSigInfo *ret_info, uint64_t *ret_not_after,
                          char **ret_why);

/* 0 when the signature is good: made for namespace jit-approval by a key allowed_signers
 * lists for approver, and not for the requester, over exactly the statement; *ret_info then
 * names the key. -EPERM when it is not, with *ret_why (malloc'd) saying why; another -errno
 * when it could not be checked (*ret_why too). */
int approval_signature_check(const SignatureCheck *c, SshSigInfo *ret_info, char **ret_why);
