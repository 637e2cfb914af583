/* SPDX-License-Identifier: MIT */
/* Signed approvals on this host (docs/signed-approvals.md): the statement the broker builds
 * itself from a request, and the check of an approver's signature over it with OpenSSH's
 * ssh-keygen -Y verify against the policy's allowed_signers file. */
#pragma once

#include <stdint.h>

#include "approval-statement.h"
#include "policy.h"
#include "sshsig.h"
#include "store.h"

/* How long ssh-keygen may take for one check; past it the approval is refused. */
#define APPROVAL_VERIFY_TIMEOUT_MS 5000
/* allowed_signers larger than this is refused (a line per approver key). */
#define ALLOWED_SIGNERS_MAX (1024U * 1024U)
/* How far a signed not-before may be ahead of this host's clock (clocks of hosts differ). */
#define APPROVAL_CLOCK_SKEW 60
/* The uid and gid ssh-keygen checks signatures as: nobody, the overflow ids. */
#define APPROVAL_VERIFY_UID 65534
#define APPROVAL_VERIFY_GID 65534

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

/* 0 when the signature is good: made for namespace jit-approval by a key allowed_signers
 * lists for approver, and not for the requester, over exactly the statement; *ret_info then
 * names the key. -EPERM when it is not, with *ret_why (malloc'd) saying why; another -errno
 * when it could not be checked (*ret_why too). */
int approval_signature_check(const SignatureCheck *c, SshSigInfo *ret_info, char **ret_why);
