/* SPDX-License-Identifier: MIT */
#include "protocol.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cleanup.h"
#include "json-strict.h"
#include "text-escape.h"
#include "timeutil.h"

_Static_assert(JIT_JSON_DEPTH_MAX <= JSON_STRICT_DEPTH_MAX,
               "the strict check cannot follow the protocol's depth");

static const char *const error_names[_JIT_ERROR_MAX] = {
        [JIT_ERROR_BAD_REQUEST] = "bad-request", [JIT_ERROR_REFUSED] = "refused",
        [JIT_ERROR_NOT_FOUND] = "not-found",     [JIT_ERROR_CONFLICT] = "conflict",
        [JIT_ERROR_INTERNAL] = "internal",
};

const char *jit_error_to_string(JitError e) {
        if (e < 0 || e >= _JIT_ERROR_MAX)
                return NULL;
        return error_names[e];
}

JitError jit_error_from_string(const char *s) {
        if (!s)
                return _JIT_ERROR_INVALID;
        for (int i = 0; i < _JIT_ERROR_MAX; i++)
                if (STREQ(s, error_names[i]))
                        return (JitError) i;
        return _JIT_ERROR_INVALID;
}

void jit_frame_header(size_t len, uint8_t out[JIT_FRAME_HEADER_SIZE]) {
        out[0] = (uint8_t) (len >> 24);
        out[1] = (uint8_t) (len >> 16);
        out[2] = (uint8_t) (len >> 8);
        out[3] = (uint8_t) len;
}

static size_t frame_header_decode(const uint8_t h[JIT_FRAME_HEADER_SIZE]) {
        return ((size_t) h[0] << 24) | ((size_t) h[1] << 16) | ((size_t) h[2] << 8) | h[3];
}

void jit_frame_reader_init(JitFrameReader *r, size_t max) {
        *r = (JitFrameReader){ .max = max };
}

void jit_frame_reader_done(JitFrameReader *r) {
        free(r->body);
        r->body = NULL;
}

/* Takes the header from what a first read brought, and as much of the body as came with it. */
static int frame_reader_take(JitFrameReader *r, const uint8_t *p, size_t n) {
        size_t take = JIT_FRAME_HEADER_SIZE - r->header_got;
        if (take > n)
                take = n;
        memcpy(r->header + r->header_got, p, take);
        r->header_got += take;
        if (r->header_got < JIT_FRAME_HEADER_SIZE)
                return 0;
        r->body_len = frame_header_decode(r->header);
        if (r->body_len == 0 || r->body_len > r->max)
                return -EMSGSIZE; /* before allocating anything */
        r->body = malloc(r->body_len + 1);
        if (!r->body)
                return -ENOMEM;
        /* One frame per connection: whatever follows it is not read. */
        r->body_got = n - take < r->body_len ? n - take : r->body_len;
        memcpy(r->body, p + take, r->body_got);
        return 0;
}

int jit_frame_reader_feed(JitFrameReader *r, int fd) {
        for (;;) {
                ssize_t n;

                if (r->header_got < JIT_FRAME_HEADER_SIZE) {
                        /* Header and body in one read where the connection has one frame:
                         * a request is a small one. */
                        uint8_t first[JIT_FRAME_HEADER_SIZE + 1024];
                        n = recv(fd, first,
                                 r->one_frame ? sizeof(first)
                                              : JIT_FRAME_HEADER_SIZE - r->header_got,
                                 MSG_DONTWAIT);
                        if (n > 0) {
                                int k = frame_reader_take(r, first, (size_t) n);
                                if (k < 0)
                                        return k;
                                continue;
                        }
                } else {
                        if (r->body_got == r->body_len) {
                                r->body[r->body_len] = '\0';
                                return 1;
                        }
                        n = recv(fd, r->body + r->body_got, r->body_len - r->body_got,
                                 MSG_DONTWAIT);
                        if (n > 0) {
                                r->body_got += (size_t) n;
                                continue;
                        }
                }

                if (n < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 0;
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                return -ECONNRESET; /* the peer closed before a whole frame */
        }
}

static int wait_fd(int fd, short events, uint64_t deadline_usec) {
        for (;;) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline_usec)
                        return -ETIMEDOUT;
                uint64_t left_ms = (deadline_usec - now + 999) / 1000;
                struct pollfd p = { .fd = fd, .events = events };
                int r = poll(&p, 1, left_ms > 60000 ? 60000 : (int) left_ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return 0;
        }
}

static int send_all(int fd, const void *buf, size_t len, uint64_t deadline_usec) {
        const char *p = buf;
        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK) {
                                int r = wait_fd(fd, POLLOUT, deadline_usec);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int jit_frame_send(int fd, const char *buf, size_t len, uint64_t deadline_usec) {
        uint8_t header[JIT_FRAME_HEADER_SIZE];

        if (len == 0 || len > UINT32_MAX)
                return -EMSGSIZE;
        jit_frame_header(len, header);
        /* Header and body in one message when it fits, so the peer reads them in one go. */
        struct iovec iov[2] = { { header, sizeof(header) }, { (void *) buf, len } };
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
        ssize_t n;
        do
                n = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                n = 0;
        }
        if ((size_t) n < sizeof(header)) {
                int r = send_all(fd, header + n, sizeof(header) - (size_t) n, deadline_usec);
                if (r < 0)
                        return r;
                n = sizeof(header);
        }
        return send_all(fd, buf + ((size_t) n - sizeof(header)),
                        len - ((size_t) n - sizeof(header)), deadline_usec);
}

int jit_frame_recv(int fd, size_t max, uint64_t deadline_usec, char **ret_buf, size_t *ret_len) {
        JitFrameReader r;
        int k;

        jit_frame_reader_init(&r, max);
        for (;;) {
                k = jit_frame_reader_feed(&r, fd);
                if (k != 0)
                        break;
                k = wait_fd(fd, POLLIN, deadline_usec);
                if (k < 0)
                        break;
        }
        if (k < 0) {
                jit_frame_reader_done(&r);
                return k;
        }
        *ret_buf = r.body;
        *ret_len = r.body_len;
        return 0;
}

JitTextProblem jit_text_check(const char *s, size_t len, uint32_t *ret_cp) {
        const unsigned char *p = (const unsigned char *) s;
        JitTextProblem problem = JIT_TEXT_OK;
        unsigned run = 0;
        uint32_t cp = 0;

        for (size_t i = 0; i < len && problem == JIT_TEXT_OK;) {
                size_t at = i;
                if (!utf8_next_strict(p, len, &i, &cp)) {
                        cp = p[at];
                        problem = JIT_TEXT_NOT_UTF8;
                } else if (jit_codepoint_is_control(cp))
                        problem = JIT_TEXT_CONTROL;
                else if (jit_codepoint_is_invisible(cp))
                        problem = JIT_TEXT_INVISIBLE;
                else if (!jit_codepoint_is_combining(cp))
                        run = 0;
                else if (++run > JIT_COMBINING_RUN_MAX)
                        problem = JIT_TEXT_COMBINING;
        }
        if (problem != JIT_TEXT_OK && ret_cp)
                *ret_cp = cp;
        return problem;
}

bool jit_text_is_safe(const char *s, size_t len) {
        return jit_text_check(s, len, NULL) == JIT_TEXT_OK;
}

void jit_text_problem_message(const char *field, JitTextProblem p, uint32_t cp, char *buf,
                              size_t size) {
        switch (p) {
        case JIT_TEXT_OK:
                snprintf(buf, size, "%s is valid text", field);
                break;
        case JIT_TEXT_NOT_UTF8:
                snprintf(buf, size, "%s is not valid UTF-8 (byte 0x%02X)", field, (unsigned) cp);
                break;
        case JIT_TEXT_CONTROL:
                snprintf(buf, size,
                         "%s contains a control character (U+%04X); remove it (no newlines or "
                         "tabs)",
                         field, (unsigned) cp);
                break;
        case JIT_TEXT_INVISIBLE:
                snprintf(buf, size,
                         "%s contains an invisible or reordering character (U+%04X); remove it",
                         field, (unsigned) cp);
                break;
        case JIT_TEXT_COMBINING:
                snprintf(buf, size,
                         "%s has more than %d combining marks in a row (U+%04X); remove some",
                         field, JIT_COMBINING_RUN_MAX, (unsigned) cp);
                break;
        default:
                snprintf(buf, size, "%s is not valid text", field);
        }
}

int jit_message_parse(const char *buf, size_t len, json_object **ret) {
        json_tokener *tok;
        json_object *o;

        /* The strict check is the gate: json-c alone would take duplicate names (the last
         * one winning), NaN, raw control characters in strings and lone surrogates. What
         * passes it is plain RFC 8259 JSON, which json-c then reads into objects. */
        if (!buf || len == 0 || len > INT_MAX ||
            json_strict_validate(buf, len, JIT_JSON_DEPTH_MAX) < 0)
                return -EBADMSG;

        /* json-c counts the innermost value as a level of its own. */
        tok = json_tokener_new_ex(JIT_JSON_DEPTH_MAX + 1);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, buf, (int) len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t consumed = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);

        if (!o || jerr != json_tokener_success) {
                json_object_put(o);
                return -EBADMSG;
        }
        /* Nothing but whitespace may follow the object. */
        for (size_t i = consumed; i < len; i++)
                if (!strchr(" \t\r\n", buf[i])) {
                        json_object_put(o);
                        return -EBADMSG;
                }
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }

        json_object *v;
        if (!json_object_object_get_ex(o, "version", &v) ||
            !json_object_is_type(v, json_type_int)) {
                json_object_put(o);
                return -EBADMSG;
        }
        if (json_object_get_int64(v) != JIT_PROTOCOL_VERSION) {
                json_object_put(o);
                return -EPROTONOSUPPORT;
        }
        *ret = o;
        return 0;
}

char *jit_message_serialize(json_object *o, size_t *ret_len) {
        size_t len;
        const char *s = json_object_to_json_string_length(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!s)
                return NULL;
        char *copy = strndup(s, len);
        if (copy && ret_len)
                *ret_len = len;
        return copy;
}

int jit_message_get_string(json_object *msg, const char *key, size_t max, bool required,
                           const char **ret) {
        json_object *v;

        *ret = NULL;
        if (!json_object_object_get_ex(msg, key, &v) || json_object_is_type(v, json_type_null))
                return required ? -EINVAL : 0;
        if (!json_object_is_type(v, json_type_string))
                return -EINVAL;
        size_t len = (size_t) json_object_get_string_len(v);
        const char *s = json_object_get_string(v);
        if (len > max)
                return -E2BIG;
        if (strlen(s) != len || !jit_text_is_safe(s, len))
                return -EBADMSG;
        *ret = s;
        return 0;
}

void jit_message_string_problem(json_object *msg, const char *key, char *buf, size_t size) {
        json_object *v;
        uint32_t cp = 0;

        if (!json_object_object_get_ex(msg, key, &v) || !json_object_is_type(v, json_type_string)) {
                snprintf(buf, size, "%s is missing or of the wrong type", key);
                return;
        }
        /* The length from json-c: a NUL inside the string is a control like any other. */
        JitTextProblem p = jit_text_check(json_object_get_string(v),
                                          (size_t) json_object_get_string_len(v), &cp);
        jit_text_problem_message(key, p, cp, buf, size);
}

int jit_message_get_int(json_object *msg, const char *key, int64_t min, int64_t max, bool required,
                        int64_t *ret, bool *present) {
        json_object *v;

        if (present)
                *present = false;
        if (!json_object_object_get_ex(msg, key, &v) || json_object_is_type(v, json_type_null))
                return required ? -EINVAL : 0;
        if (!json_object_is_type(v, json_type_int))
                return -EINVAL;
        errno = 0;
        int64_t n = json_object_get_int64(v);
        if (errno != 0 || n < min || n > max)
                return -EINVAL;
        /* json-c clamps integers beyond 64 bits to INT64_MAX without an error. */
        if (n == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX)
                return -EINVAL;
        *ret = n;
        if (present)
                *present = true;
        return 0;
}

int jit_message_get_bool(json_object *msg, const char *key, bool *ret) {
        json_object *v;

        *ret = false;
        if (!json_object_object_get_ex(msg, key, &v) || json_object_is_type(v, json_type_null))
                return 0;
        if (!json_object_is_type(v, json_type_boolean))
                return -EINVAL;
        *ret = json_object_get_boolean(v);
        return 0;
}

json_object *jit_reply_ok(json_object *result) {
        json_object *o = json_object_new_object();
        if (!o) {
                json_object_put(result);
                return NULL;
        }
        json_object_object_add(o, "version", json_object_new_int(JIT_PROTOCOL_VERSION));
        json_object_object_add(o, "ok", json_object_new_boolean(true));
        if (result)
                json_object_object_add(o, "result", result);
        return o;
}

json_object *jit_reply_error(JitError e, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "version", json_object_new_int(JIT_PROTOCOL_VERSION));
        json_object_object_add(o, "ok", json_object_new_boolean(false));
        json_object_object_add(o, "error",
                               json_object_new_string(jit_error_to_string(e) ?: "internal"));
        json_object_object_add(o, "message", json_object_new_string(msg));
        return o;
}
