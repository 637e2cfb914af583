/* SPDX-License-Identifier: MIT */
/* The canonical statement an approver signs with their SSH key (docs/signed-approvals.md):
 * a version line, then one "key value" line per field in a fixed order, each value
 * percent-encoded so that no value can add, end or change a line. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define APPROVAL_STATEMENT_VERSION "jit-approval-v1"
/* The sshsig namespace of approvals: a signature made for anything else never passes. */
#define APPROVAL_SIGNATURE_NAMESPACE "jit-approval"
/* The longest statement: the command path (4096 bytes, each encoded in up to 3) is the
 * only long field; every other value is bounded by the protocol's limits. */
#define APPROVAL_STATEMENT_MAX (16U * 1024U)
#define APPROVAL_SHA256_HEX_LEN 64

typedef struct ApprovalStatement {
        const char *fleet;     /* the fleet's name; NULL: a request of this host alone */
        const char *request;   /* "42" here, "f:42" for a fleet request */
        const char *requester; /* user name */
        uint32_t requester_uid;
        const char *service;
        const char *command; /* absolute path; NULL: the whole service */
        /* lowercase hex SHA-256 over each argument followed by one NUL byte; "" without a
         * command (approval_statement_hash_argv()) */
        char argv_sha256[APPROVAL_SHA256_HEX_LEN + 1];
        const char *run_as;  /* "USER" or "USER:GROUP"; NULL: not a command grant, or root */
        const char *cwd;     /* NULL: anywhere */
        const char *hosts;   /* this host's name, or a fleet request's canonical selector */
        uint64_t duration;   /* seconds */
        uint64_t not_before; /* seconds since the epoch, UTC */
        uint64_t not_after;
        char reason_sha256[APPROVAL_SHA256_HEX_LEN + 1]; /* over the reason's bytes */
        char ticket_sha256[APPROVAL_SHA256_HEX_LEN + 1]; /* "" without a ticket */
        const char *approver;                            /* user name */

        /* set by approval_statement_parse() only: the storage the fields above point into */
        char *parsed_storage_;
} ApprovalStatement;

/* Lowercase hex SHA-256 of text's bytes (without its NUL) into out. */
void approval_statement_hash_text(const char *text, char out[APPROVAL_SHA256_HEX_LEN + 1]);
/* Of a NULL-terminated argv: each argument, then a NUL byte. */
void approval_statement_hash_argv(char *const *argv, char out[APPROVAL_SHA256_HEX_LEN + 1]);

/* The statement's bytes, NUL-terminated (the NUL is not part of it), in *ret (malloc'd) and
 * their count in *ret_len. -EINVAL when a required field is missing or empty, a hash is not
 * 64 lowercase hex digits, or not_before > not_after; -EILSEQ when a value is not valid UTF-8;
 * -E2BIG past APPROVAL_STATEMENT_MAX; *why then names the field. */
int approval_statement_format(const ApprovalStatement *s, char **ret, size_t *ret_len,
                              const char **why);

/* Reads a statement. Only the canonical bytes are accepted: the text must be exactly what
 * approval_statement_format() gives for the fields read (so every statement has a single
 * form). -EBADMSG with *why saying what is wrong; on success free with
 * approval_statement_done(). */
int approval_statement_parse(const char *text, size_t len, ApprovalStatement *ret,
                             const char **why);
void approval_statement_done(ApprovalStatement *s);

/* The key of the first field in which a and b differ ("request", "hosts", ...), NULL when
 * they are the same statement. */
const char *approval_statement_diff(const ApprovalStatement *a, const ApprovalStatement *b);
