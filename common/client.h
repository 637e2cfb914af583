/* SPDX-License-Identifier: MIT */
/* The client side of the broker socket, shared by jitctl and pam_jit. */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

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

/* A reply frame's body as jit_client_call() takes it: a message with a boolean "ok";
 * -EBADMSG for anything else, -ENOMEM. */
int jit_reply_parse(const char *buf, size_t len, json_object **ret_reply);

/* A fresh request object {"version":1,"op":op}, or NULL on ENOMEM. */
json_object *jit_request_new(const char *op);
