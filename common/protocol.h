/* SPDX-License-Identifier: MIT */
/* The wire protocol spoken on /run/jit/broker.sock. The full description, with every
 * operation and field, is common/PROTOCOL.md; keep the two in step. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JIT_PROTOCOL_VERSION 1

/* A frame is a 4-byte big-endian length followed by that many bytes of JSON. Lengths are
 * checked against these before any allocation. */
#define JIT_FRAME_HEADER_SIZE 4
#define JIT_REQUEST_MAX (64U * 1024U)
#define JIT_REPLY_MAX (4U * 1024U * 1024U)
#define JIT_JSON_DEPTH_MAX 8

/* Field limits, enforced by the broker and checked early by clients. */
#define JIT_USER_MAX 256
#define JIT_SERVICE_MAX 64
#define JIT_REASON_MAX 1024
#define JIT_TICKET_MAX 128
/* The terminal and remote host of a session (session-open), from PAM_TTY and PAM_RHOST. */
#define JIT_TTY_MAX 64
#define JIT_RHOST_MAX 256
/* The name of an operation ("op"). */
#define JIT_OP_MAX 32

/* Records in one answer to "audit": a record is up to ~2 KiB as JSON, so this many stay
 * under JIT_REPLY_MAX. The default when the request names no "limit". */
#define JIT_AUDIT_LIMIT_MAX 2000
#define JIT_AUDIT_LIMIT_DEFAULT 1000
_Static_assert(JIT_AUDIT_LIMIT_MAX * 2048ULL < JIT_REPLY_MAX, "audit answers must fit a reply");

/* Error codes carried in a reply's "error" field. */
typedef enum JitError {
        JIT_ERROR_BAD_REQUEST, /* malformed, unknown op, bad field */
        JIT_ERROR_REFUSED,     /* policy or permission says no */
        JIT_ERROR_NOT_FOUND,   /* no such request */
        JIT_ERROR_CONFLICT,    /* the request is not in a state that allows this */
        JIT_ERROR_INTERNAL,    /* the broker failed; nothing was changed */
        _JIT_ERROR_MAX,
        _JIT_ERROR_INVALID = -1,
} JitError;

const char *jit_error_to_string(JitError e);
JitError jit_error_from_string(const char *s);

/* Incremental reader for non-blocking sockets (the broker side). */
typedef struct JitFrameReader {
        uint8_t header[JIT_FRAME_HEADER_SIZE];
        size_t header_got;
        char *body; /* NUL-terminated once complete */
        size_t body_len;
        size_t body_got;
        size_t max;
        /* The connection carries one frame: a first read may take more than the header, so
         * that a small request is read in one call; whatever follows the frame is lost. */
        bool one_frame;
} JitFrameReader;

void jit_frame_reader_init(JitFrameReader *r, size_t max);
void jit_frame_reader_done(JitFrameReader *r);
/* Reads what is available, never past the frame unless r->one_frame. Returns 1 when a whole frame
 * is in r->body, 0 when more is needed (EAGAIN), -EMSGSIZE for a zero or oversized length,
 * -ECONNRESET on EOF, or another -errno. */
int jit_frame_reader_feed(JitFrameReader *r, int fd);

/* Encodes a frame header for len bytes. */
void jit_frame_header(size_t len, uint8_t out[JIT_FRAME_HEADER_SIZE]);

/* Blocking-style I/O on a non-blocking fd, bounded by an absolute CLOCK_MONOTONIC
 * deadline in microseconds (the client side). */
int jit_frame_send(int fd, const char *buf, size_t len, uint64_t deadline_usec);
int jit_frame_recv(int fd, size_t max, uint64_t deadline_usec, char **ret_buf, size_t *ret_len);

/* Parses one message: exactly one JSON object, strict (RFC 8259 and no more, no duplicate
 * member names: json_strict_validate() in json-strict.h), valid UTF-8, bounded depth, no
 * NUL bytes, with "version" equal to JIT_PROTOCOL_VERSION. -EBADMSG on malformed input,
 * -EPROTONOSUPPORT for another version. */
int jit_message_parse(const char *buf, size_t len, json_object **ret);

/* Serializes o compactly; returns a malloc'd string or NULL (ENOMEM). */
char *jit_message_serialize(json_object *o, size_t *ret_len);

/* What makes text unsafe for a person to read, first found first. */
typedef enum JitTextProblem {
        JIT_TEXT_OK,
        JIT_TEXT_NOT_UTF8,  /* not valid, shortest-form UTF-8 */
        JIT_TEXT_CONTROL,   /* a C0 or C1 control, DEL or NUL */
        JIT_TEXT_INVISIBLE, /* jit_codepoint_is_invisible() (text-escape.h): bidi controls,
                             * zero-width and format characters, tags, variation selectors,
                             * fillers, soft hyphen, line and paragraph separators */
        JIT_TEXT_COMBINING, /* more than JIT_COMBINING_RUN_MAX combining marks in a row */
} JitTextProblem;

/* Checks the len bytes at s; on a problem stores the code point it is about (the byte, for
 * JIT_TEXT_NOT_UTF8; the first mark past the limit, for JIT_TEXT_COMBINING) in *ret_cp when
 * not NULL. */
JitTextProblem jit_text_check(const char *s, size_t len, uint32_t *ret_cp);

/* Text a person reads (reasons, comments, tickets, names, every string field): what
 * jit_text_check() finds no problem in, so that it shows on a terminal and in a log as
 * what it is, in the order it was written. */
bool jit_text_is_safe(const char *s, size_t len);

/* One line for a person about what jit_text_check() found in field, e.g. "reason contains
 * an invisible or reordering character (U+202E); remove it". */
void jit_text_problem_message(const char *field, JitTextProblem p, uint32_t cp, char *buf,
                              size_t size);

/* Reads an optional string field. Returns 0 with *ret = NULL when absent and !required,
 * -EINVAL for a missing required field or another type, -E2BIG over max bytes,
 * -EBADMSG for unsafe text (not jit_text_is_safe(), or a NUL byte). */
int jit_message_get_string(json_object *msg, const char *key, size_t max, bool required,
                           const char **ret);
/* Why jit_message_get_string() refused key with -EBADMSG, as jit_text_problem_message()
 * words it. */
void jit_message_string_problem(json_object *msg, const char *key, char *buf, size_t size);
/* Reads an integer field; -EINVAL when missing (and required), of another type or
 * outside [min, max]. Returns 0 with *present = false when absent and !required. */
int jit_message_get_int(json_object *msg, const char *key, int64_t min, int64_t max, bool required,
                        int64_t *ret, bool *present);
int jit_message_get_bool(json_object *msg, const char *key, bool *ret);

/* Builds replies. Both return a new object or NULL on ENOMEM. */
json_object *jit_reply_ok(json_object *result /* consumed; may be NULL */);
json_object *jit_reply_error(JitError e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
