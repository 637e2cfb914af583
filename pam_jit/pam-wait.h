/* SPDX-License-Identifier: MIT */
/* pam_jit's auth part (wait=): a user without a grant asks for one at the prompt, and the
 * module waits, on one connection to the broker, until an approver decides or the wait runs
 * out. It never decides access: the account stack does that. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <security/pam_modules.h>

/* How the user sees the wait. INFO: a message for each step, shown at once (sudo). PROMPT:
 * the conversation shows messages only with the next prompt (sshd's keyboard-interactive),
 * so the status comes with one prompt to press Enter at, and the wait after it is silent. */
typedef enum WaitProgress {
        WAIT_PROGRESS_INFO,
        WAIT_PROGRESS_PROMPT,
} WaitProgress;

typedef struct WaitConfig {
        const char *socket;
        unsigned timeout_ms; /* each exchange with the broker */
        unsigned wait_sec;   /* how long to wait for a decision, > 0 */
        WaitProgress progress;
        bool debug;
        const char *user;    /* PAM_USER, validated */
        const char *service; /* the grant's service, validated */
} WaitConfig;

typedef enum WaitEnd {
        WAIT_END_GRANTED,      /* the request is active: the account stack will allow */
        WAIT_END_NOT_GRANTED,  /* refused, denied, timed out, cancelled, nothing filed */
        WAIT_END_BROKER_ERROR, /* no trustworthy answer; error says why */
        WAIT_END_LOCAL_ERROR,  /* ENOMEM and the like; error says why */
} WaitEnd;

typedef struct WaitResult {
        WaitEnd end;
        int error;          /* negative errno for the two errors */
        int64_t request_id; /* 0 when nothing was filed */
} WaitResult;

/* Asks for a reason (and a ticket when the rule wants one), files the request for the user,
 * waits and tells the user how it went. Every message to the user and the log is said
 * here; the caller maps the end to a PAM code. */
void pam_wait_run(pam_handle_t *pamh, const WaitConfig *c, WaitResult *ret);

/* ---- what the broker sends, read without side effects (and fuzzed) ---- */

/* The parts of a request object the wait uses. Strings point into the parsed message. */
typedef struct WaitRequest {
        int64_t id;
        const char *state;
        int64_t approvals_required;
        size_t n_approvals;
        int64_t duration;
        const char *ended_by;   /* NULL when absent */
        const char *end_reason; /* NULL when absent */
        json_object *approvers; /* array of strings, or NULL */
} WaitRequest;

typedef enum WaitFrameKind {
        WAIT_FRAME_FIRST,  /* {"ok": true, "result": REQUEST} */
        WAIT_FRAME_RECORD, /* {"record": AUDIT_RECORD} */
        WAIT_FRAME_DONE,   /* {"done": true, "request": REQUEST} */
        WAIT_FRAME_ERROR,  /* {"ok": false, "error": CODE, "message": TEXT} */
} WaitFrameKind;

typedef struct WaitFrame {
        WaitFrameKind kind;
        WaitRequest request;         /* FIRST, DONE */
        int64_t record_request;      /* RECORD: its request_id, 0 when it has none */
        const char *event, *actor;   /* RECORD; actor may be NULL */
        const char *error, *message; /* ERROR; message may be NULL */
} WaitFrame;

/* Reads a request object. -EBADMSG when a field the wait uses is missing, of the wrong
 * type, out of range or not printable text. */
int wait_request_parse(json_object *o, WaitRequest *ret);

/* Classifies one frame of a wait stream (a message already checked by
 * jit_message_parse()) and reads its fields. -EBADMSG for anything else. */
int wait_frame_parse(json_object *msg, WaitFrame *ret);

/* Joins the approver entries of a (parsed) approvers array with ", " into buf, cut with
 * "..." when it does not fit; "an approver" when there are none. Returns buf. */
const char *wait_approvers_text(json_object *approvers, char *buf, size_t size);
