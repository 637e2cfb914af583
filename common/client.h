/* SPDX-License-Identifier: MIT */
/* The client side of the broker socket, shared by jitctl and pam_jit. */
#pragma once

#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>

#include "protocol.h"

#define JIT_SOCKET_DEFAULT "/run/jit/broker.sock"

/* Connects to the broker at path and checks, from SO_PEERCRED, that the process that
 * holds the socket runs as root: an answer from anyone else means nothing.
 * Returns an O_CLOEXEC, non-blocking fd, or -ENOENT/-ECONNREFUSED (no broker),
 * -ETIMEDOUT, -EPERM (peer is not root), -ENAMETOOLONG, or another -errno. */
int jit_client_connect(const char *path, uint64_t deadline_usec);

/* One exchange: connects, sends request, reads the reply, all before timeout_ms.
 * The reply is a parsed message (see jit_message_parse); -EBADMSG for garbage. */
int jit_client_call(const char *path, unsigned timeout_ms, json_object *request,
                    json_object **ret_reply);

/* A notice: connects (with the same root check) and sends request, before timeout_ms, and
 * does not wait for the reply. 0 once the broker's socket holds the whole frame. */
int jit_client_send(const char *path, unsigned timeout_ms, json_object *request);

/* A reply frame's body as jit_client_call() takes it: a message with a boolean "ok";
 * -EBADMSG for anything else, -ENOMEM. */
int jit_reply_parse(const char *buf, size_t len, json_object **ret_reply);

/* A fresh request object {"version":1,"op":op}, or NULL on ENOMEM. */
json_object *jit_request_new(const char *op);

/* A stream (the operations watch and wait): the request goes out as a call's does, then
 * the broker keeps the connection and sends frame after frame until it or the client
 * closes. The reader keeps a partly read frame across calls, so a caller may poll the fd
 * with its own timeout (a countdown, other fds) and read on whenever it likes. */
typedef struct JitStream {
        int fd; /* -EBADF when closed */
        JitFrameReader reader;
} JitStream;

#define JIT_STREAM_INIT                                                                            \
        { .fd = -EBADF }

/* Connects (with the root check of jit_client_connect()) and sends request, all before
 * timeout_ms. Returns 0, or a negative errno as jit_client_call() does; s is left closed
 * on failure. */
int jit_stream_open(JitStream *s, const char *path, unsigned timeout_ms, json_object *request);

/* Reads without waiting. Returns 1 with the next frame in *ret (a message as
 * jit_message_parse() reads it: strict JSON, version 1; which kind of frame it is, is the
 * caller's business), 0 when no whole frame has arrived yet, -ECONNRESET when the broker
 * closed the connection (between frames or inside one), -EBADMSG for a frame outside
 * 1..JIT_REPLY_MAX bytes or not a message, -ENOMEM, or another -errno. After an error the
 * stream is unusable: close it. Frames that arrived together are returned one per call:
 * call again until it returns 0 before polling the fd. */
int jit_stream_read(JitStream *s, json_object **ret);

/* Waits for the next frame until deadline_usec (CLOCK_MONOTONIC): as jit_stream_read(),
 * except that 0 means the deadline passed first (what arrived of a frame is kept). */
int jit_stream_next(JitStream *s, uint64_t deadline_usec, json_object **ret);

/* Closes the connection (the broker sees the end of the stream) and frees what a partly
 * read frame held. Safe to call again. */
void jit_stream_close(JitStream *s);
