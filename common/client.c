/* SPDX-License-Identifier: MIT */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cleanup.h"
#include "protocol.h"
#include "timeutil.h"

int jit_client_connect(const char *path, uint64_t deadline_usec) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        if (!path || !*path)
                return -EINVAL;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        /* A non-blocking AF_UNIX connect fails with EAGAIN when the broker's backlog is
         * full, and nothing is left in progress: try again, backing off, until the deadline. */
        for (unsigned backoff_ms = 1;; backoff_ms = backoff_ms < 50 ? backoff_ms * 2 : 50) {
                if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline_usec)
                        return -ETIMEDOUT;
                uint64_t left_ms = (deadline_usec - now) / 1000;
                (void) poll(NULL, 0, (int) (left_ms < backoff_ms ? left_ms : backoff_ms));
        }

        struct ucred cred;
        socklen_t l = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0)
                return -errno;
        if (l != sizeof(cred) || cred.uid != 0)
                return -EPERM;

        return TAKE_FD(fd);
}

/* Connects and sends request's frame before deadline: the connected fd, or -errno. */
static int client_send(const char *path, uint64_t deadline, json_object *request) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *out = NULL;
        size_t out_len;

        out = jit_message_serialize(request, &out_len);
        if (!out)
                return -ENOMEM;
        if (out_len > JIT_REQUEST_MAX)
                return -EMSGSIZE;
        fd = jit_client_connect(path, deadline);
        if (fd < 0)
                return fd;
        int r = jit_frame_send(fd, out, out_len, deadline);
        return r < 0 ? r : TAKE_FD(fd);
}

int jit_client_call(const char *path, unsigned timeout_ms, json_object *request,
                    json_object **ret_reply) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * USEC_PER_MSEC;
        _cleanup_free_ char *in = NULL;
        size_t in_len;

        _cleanup_close_ int fd = client_send(path, deadline, request);
        if (fd < 0)
                return fd;
        int r = jit_frame_recv(fd, JIT_REPLY_MAX, deadline, &in, &in_len);
        /* A reply that does not fit the bounds is garbage; a connection closed with no
         * (complete) reply stays -ECONNRESET: the broker dropped us, e.g. when busy. */
        if (r == -EMSGSIZE)
                return -EBADMSG;
        if (r < 0)
                return r;
        return jit_reply_parse(in, in_len, ret_reply);
}

int jit_client_send(const char *path, unsigned timeout_ms, json_object *request) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * USEC_PER_MSEC;
        /* The frame is in the broker's socket buffer once sent: closing does not take it
         * back. */
        _cleanup_close_ int fd = client_send(path, deadline, request);
        return fd < 0 ? fd : 0;
}

int jit_reply_parse(const char *buf, size_t len, json_object **ret_reply) {
        json_object *reply;
        int r = jit_message_parse(buf, len, &reply);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        json_object *ok;
        if (!json_object_object_get_ex(reply, "ok", &ok) ||
            !json_object_is_type(ok, json_type_boolean)) {
                json_object_put(reply);
                return -EBADMSG;
        }
        *ret_reply = reply;
        return 0;
}

json_object *jit_request_new(const char *op) {
        json_object *o = json_object_new_object(), *v = json_object_new_int(JIT_PROTOCOL_VERSION),
                    *name = json_object_new_string(op);
        if (!o || !v || !name || json_object_object_add(o, "version", v) < 0) {
                json_object_put(o);
                json_object_put(v);
                json_object_put(name);
                return NULL;
        }
        if (json_object_object_add(o, "op", name) < 0) {
                json_object_put(o);
                json_object_put(name);
                return NULL;
        }
        return o;
}

int jit_stream_open(JitStream *s, const char *path, unsigned timeout_ms, json_object *request) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + (uint64_t) timeout_ms * USEC_PER_MSEC;

        *s = (JitStream) JIT_STREAM_INIT;
        int fd = client_send(path, deadline, request);
        if (fd < 0)
                return fd;
        /* Frames follow one another on this connection: the reader must never take bytes
         * past the frame it reads (one_frame stays false). */
        jit_frame_reader_init(&s->reader, JIT_REPLY_MAX);
        s->fd = fd;
        return 0;
}

int jit_stream_read(JitStream *s, json_object **ret) {
        json_object *frame;
        int r;

        if (s->fd < 0)
                return -EBADF;
        r = jit_frame_reader_feed(&s->reader, s->fd);
        if (r == -EMSGSIZE)
                return -EBADMSG;
        if (r <= 0)
                return r;

        _cleanup_free_ char *body = TAKE_PTR(s->reader.body);
        size_t len = s->reader.body_len;
        jit_frame_reader_init(&s->reader, JIT_REPLY_MAX);

        r = jit_message_parse(body, len, &frame);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        *ret = frame;
        return 1;
}

int jit_stream_next(JitStream *s, uint64_t deadline_usec, json_object **ret) {
        for (;;) {
                int r = jit_stream_read(s, ret);
                if (r != 0)
                        return r;

                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline_usec)
                        return 0;
                uint64_t left_ms = (deadline_usec - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                struct pollfd p = { .fd = s->fd, .events = POLLIN };
                r = poll(&p, 1, left_ms > 60000 ? 60000 : (int) left_ms);
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}

void jit_stream_close(JitStream *s) {
        s->fd = safe_close(s->fd);
        jit_frame_reader_done(&s->reader);
}
