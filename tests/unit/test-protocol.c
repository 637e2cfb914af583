/* SPDX-License-Identifier: MIT */
/* common/protocol.[ch]: framing over a socketpair, message parsing and field accessors,
 * replies, error codes. (jitctl's exit status for those codes: test-jitctl-exit.c.) */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "json-strict.h"
#include "protocol.h"
#include "text-escape.h"
#include "timeutil.h"

/* ---------------------------------------------------------------------------------------
 * Helpers */

typedef struct Pair {
        int a; /* the side the code under test reads from */
        int b; /* the side the test writes to */
} Pair;

static int pair_setup(void **state) {
        Pair *p = malloc(sizeof(*p));
        int fds[2];

        if (!p || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) {
                free(p);
                return -1;
        }
        p->a = fds[0];
        p->b = fds[1];
        *state = p;
        return 0;
}

static int pair_teardown(void **state) {
        Pair *p = *state;

        if (p->a >= 0)
                close(p->a);
        if (p->b >= 0)
                close(p->b);
        free(p);
        return 0;
}

static void close_writer(Pair *p) {
        assert_int_equal(close(p->b), 0);
        p->b = -1;
}

static void write_all(int fd, const void *buf, size_t len) {
        assert_int_equal(write(fd, buf, len), (ssize_t) len);
}

static void write_header(int fd, uint32_t len) {
        uint8_t h[JIT_FRAME_HEADER_SIZE];
        jit_frame_header(len, h);
        write_all(fd, h, sizeof(h));
}

static uint64_t deadline_in_ms(uint64_t ms) {
        return now_usec(CLOCK_MONOTONIC) + ms * USEC_PER_MSEC;
}

/* Parses a C string as a message; returns the result code, and the object in *ret. */
static int parse(const char *s, json_object **ret) {
        *ret = NULL;
        return jit_message_parse(s, strlen(s), ret);
}

static void assert_parse_fails(const char *s, int expect) {
        json_object *o = NULL;
        int r = parse(s, &o);
        if (r != expect)
                fail_msg("jit_message_parse(%s) = %d, expected %d", s, r, expect);
        assert_null(o);
}

static json_object *parse_ok(const char *s) {
        json_object *o = NULL;
        int r = parse(s, &o);
        if (r != 0)
                fail_msg("jit_message_parse(%s) = %d, expected 0", s, r);
        assert_non_null(o);
        return o;
}

static void assert_serializes_to(json_object *o, const char *expect) {
        size_t len = 0;
        char *s = jit_message_serialize(o, &len);
        assert_non_null(s);
        assert_string_equal(s, expect);
        assert_int_equal(len, strlen(expect));
        free(s);
}

/* Nested arrays under the top-level object: depth counts the containers. */
static char *nested(unsigned depth) {
        size_t cap = 64 + 2 * depth;
        char *s = malloc(cap);
        size_t off = 0;

        assert_non_null(s);
        off += (size_t) snprintf(s + off, cap - off, "{\"version\":1,\"a\":");
        for (unsigned i = 1; i < depth; i++)
                s[off++] = '[';
        s[off++] = '1';
        for (unsigned i = 1; i < depth; i++)
                s[off++] = ']';
        s[off++] = '}';
        s[off] = '\0';
        return s;
}

/* ---------------------------------------------------------------------------------------
 * Error codes */

static void test_error_strings(void **state) {
        static const struct {
                JitError e;
                const char *s;
        } table[] = {
                { JIT_ERROR_BAD_REQUEST, "bad-request" }, { JIT_ERROR_REFUSED, "refused" },
                { JIT_ERROR_NOT_FOUND, "not-found" },     { JIT_ERROR_CONFLICT, "conflict" },
                { JIT_ERROR_INTERNAL, "internal" },
        };

        assert_int_equal(_JIT_ERROR_MAX, 5);
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                assert_string_equal(jit_error_to_string(table[i].e), table[i].s);
                assert_int_equal(jit_error_from_string(table[i].s), table[i].e);
        }
        assert_null(jit_error_to_string(_JIT_ERROR_MAX));
        assert_null(jit_error_to_string(_JIT_ERROR_INVALID));
        assert_null(jit_error_to_string((JitError) 1000));

        assert_int_equal(jit_error_from_string(NULL), _JIT_ERROR_INVALID);
        assert_int_equal(jit_error_from_string(""), _JIT_ERROR_INVALID);
        assert_int_equal(jit_error_from_string("Refused"), _JIT_ERROR_INVALID);
        assert_int_equal(jit_error_from_string("refused "), _JIT_ERROR_INVALID);
        assert_int_equal(jit_error_from_string("bad_request"), _JIT_ERROR_INVALID);
        assert_int_equal(jit_error_from_string("not-found\n"), _JIT_ERROR_INVALID);
}

static void test_limit_constants(void **state) {
        /* Part of the protocol (common/PROTOCOL.md). */
        assert_int_equal(JIT_REQUEST_MAX, 65536);
        assert_int_equal(JIT_REPLY_MAX, 4194304);
        assert_int_equal(JIT_AUDIT_LIMIT_MAX, 2000);
        assert_int_equal(JIT_AUDIT_LIMIT_DEFAULT, 1000);
        assert_true(JIT_AUDIT_LIMIT_DEFAULT <= JIT_AUDIT_LIMIT_MAX);
}

/* ---------------------------------------------------------------------------------------
 * Framing */

static void test_frame_header_big_endian(void **state) {
        uint8_t h[JIT_FRAME_HEADER_SIZE];

        jit_frame_header(0x01020304, h);
        assert_memory_equal(h, "\x01\x02\x03\x04", 4);
        jit_frame_header(5, h);
        assert_memory_equal(h, "\x00\x00\x00\x05", 4);
        jit_frame_header(256, h);
        assert_memory_equal(h, "\x00\x00\x01\x00", 4);
        jit_frame_header(JIT_REQUEST_MAX, h);
        assert_memory_equal(h, "\x00\x01\x00\x00", 4);
        jit_frame_header(JIT_REPLY_MAX, h);
        assert_memory_equal(h, "\x00\x40\x00\x00", 4);
        jit_frame_header(0xffffffffU, h);
        assert_memory_equal(h, "\xff\xff\xff\xff", 4);
}

static void test_reader_whole_frame(void **state) {
        Pair *p = *state;
        JitFrameReader r;
        static const char body[] = "{\"version\":1}";

        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        assert_null(r.body);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), 0); /* nothing there yet */

        write_header(p->b, sizeof(body) - 1);
        write_all(p->b, body, sizeof(body) - 1);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), 1);
        assert_int_equal(r.body_len, sizeof(body) - 1);
        assert_string_equal(r.body, body); /* NUL-terminated */
        /* Complete stays complete. */
        assert_int_equal(jit_frame_reader_feed(&r, p->a), 1);
        jit_frame_reader_done(&r);
        assert_null(r.body);
        jit_frame_reader_done(&r); /* idempotent */
}

static void test_reader_byte_by_byte(void **state) {
        Pair *p = *state;
        JitFrameReader r;
        static const char body[] = "{\"version\":1,\"op\":\"status\"}";
        uint8_t wire[JIT_FRAME_HEADER_SIZE + sizeof(body) - 1];

        jit_frame_header(sizeof(body) - 1, wire);
        memcpy(wire + JIT_FRAME_HEADER_SIZE, body, sizeof(body) - 1);

        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        for (size_t i = 0; i < sizeof(wire); i++) {
                assert_int_equal(jit_frame_reader_feed(&r, p->a), 0);
                write_all(p->b, wire + i, 1);
        }
        assert_int_equal(jit_frame_reader_feed(&r, p->a), 1);
        assert_int_equal(r.body_len, sizeof(body) - 1);
        assert_string_equal(r.body, body);
        jit_frame_reader_done(&r);
}

static void test_reader_does_not_read_past_frame(void **state) {
        Pair *p = *state;
        JitFrameReader r;
        char rest[8];

        write_header(p->b, 2);
        write_all(p->b, "{}NEXT", 6);

        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), 1);
        assert_string_equal(r.body, "{}");
        jit_frame_reader_done(&r);
        assert_int_equal(read(p->a, rest, sizeof(rest)), 4);
        assert_memory_equal(rest, "NEXT", 4);
}

/* The broker's connections carry one frame: header and body come in one read, and an
 * oversized length is refused before anything is allocated for it. */
static void test_one_frame_reader(void **state) {
        Pair *p = *state;
        JitFrameReader r;
        char big[300];

        write_header(p->b, 2);
        write_all(p->b, "{}", 2);
        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        r.one_frame = true;
        assert_int_equal(jit_frame_reader_feed(&r, p->a), 1);
        assert_string_equal(r.body, "{}");
        jit_frame_reader_done(&r);

        /* A body larger than the first read, sent in two parts. */
        memset(big, 'x', sizeof(big));
        big[0] = '"', big[sizeof(big) - 1] = '"';
        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        r.one_frame = true;
        write_header(p->b, sizeof(big));
        write_all(p->b, big, 100);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), 0);
        assert_int_equal(r.body_got, 100);
        write_all(p->b, big + 100, sizeof(big) - 100);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), 1);
        assert_int_equal(r.body_len, sizeof(big));
        assert_memory_equal(r.body, big, sizeof(big));
        jit_frame_reader_done(&r);

        jit_frame_reader_init(&r, 64);
        r.one_frame = true;
        write_header(p->b, 65);
        write_all(p->b, "{}", 2);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), -EMSGSIZE);
        assert_null(r.body);
        jit_frame_reader_done(&r);
}

static void test_reader_zero_length(void **state) {
        Pair *p = *state;
        JitFrameReader r;

        write_header(p->b, 0);
        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), -EMSGSIZE);
        assert_null(r.body);
        jit_frame_reader_done(&r);
}

static void test_reader_oversized_before_allocation(void **state) {
        Pair *p = *state;
        static const uint32_t lengths[] = { JIT_REQUEST_MAX + 1, JIT_REPLY_MAX, 0x7fffffffU,
                                            0xffffffffU };

        for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
                JitFrameReader r;

                write_header(p->b, lengths[i]);
                jit_frame_reader_init(&r, JIT_REQUEST_MAX);
                assert_int_equal(jit_frame_reader_feed(&r, p->a), -EMSGSIZE);
                assert_null(r.body); /* refused from the header alone */
                assert_int_equal(r.body_got, 0);
                jit_frame_reader_done(&r);
        }
}

static void test_reader_exact_max(void **state) {
        Pair *p = *state;
        JitFrameReader r;
        char *body = malloc(JIT_REQUEST_MAX);
        int k;

        assert_non_null(body);
        memset(body, ' ', JIT_REQUEST_MAX);
        write_header(p->b, JIT_REQUEST_MAX);

        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        /* Write in chunks, feeding in between, so the socket buffer size does not matter. */
        for (size_t off = 0; off < JIT_REQUEST_MAX; off += 4096) {
                write_all(p->b, body + off, 4096);
                k = jit_frame_reader_feed(&r, p->a);
                assert_int_equal(k, off + 4096 == JIT_REQUEST_MAX ? 1 : 0);
        }
        assert_int_equal(r.body_len, JIT_REQUEST_MAX);
        assert_int_equal(strlen(r.body), JIT_REQUEST_MAX);
        jit_frame_reader_done(&r);
        free(body);
}

static void test_reader_eof(void **state) {
        Pair *p = *state;
        JitFrameReader r;

        /* EOF before anything. */
        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        shutdown(p->b, SHUT_WR);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), -ECONNRESET);
        jit_frame_reader_done(&r);
}

static void test_reader_eof_mid_header(void **state) {
        Pair *p = *state;
        JitFrameReader r;

        write_all(p->b, "\x00\x00", 2);
        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), 0);
        close_writer(p);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), -ECONNRESET);
        assert_null(r.body);
        jit_frame_reader_done(&r);
}

static void test_reader_eof_mid_body(void **state) {
        Pair *p = *state;
        JitFrameReader r;

        write_header(p->b, 10);
        write_all(p->b, "{\"ver", 5);
        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), 0);
        assert_int_equal(r.body_got, 5);
        close_writer(p);
        assert_int_equal(jit_frame_reader_feed(&r, p->a), -ECONNRESET);
        jit_frame_reader_done(&r);
}

static void test_reader_bad_fd(void **state) {
        JitFrameReader r;
        int fds[2];

        jit_frame_reader_init(&r, JIT_REQUEST_MAX);
        assert_int_equal(jit_frame_reader_feed(&r, -1), -EBADF);
        /* Not a socket: the error comes back as -errno, not as "need more". */
        assert_int_equal(pipe(fds), 0);
        assert_int_equal(jit_frame_reader_feed(&r, fds[0]), -ENOTSOCK);
        close(fds[0]);
        close(fds[1]);
        jit_frame_reader_done(&r);
}

static void test_send_recv_round_trip(void **state) {
        Pair *p = *state;
        static const char body[] = "{\"version\":1,\"ok\":true}";
        char *buf = NULL;
        size_t len = 0;
        uint8_t wire[64];

        assert_int_equal(jit_frame_send(p->b, body, sizeof(body) - 1, deadline_in_ms(5000)), 0);
        /* What went on the wire is header + body, nothing else. */
        assert_int_equal(recv(p->a, wire, sizeof(wire), MSG_PEEK),
                         JIT_FRAME_HEADER_SIZE + sizeof(body) - 1);
        assert_memory_equal(wire, "\x00\x00\x00\x17", 4);
        assert_memory_equal(wire + 4, body, sizeof(body) - 1);

        assert_int_equal(jit_frame_recv(p->a, JIT_REPLY_MAX, deadline_in_ms(5000), &buf, &len), 0);
        assert_int_equal(len, sizeof(body) - 1);
        assert_string_equal(buf, body);
        free(buf);
}

static void test_recv_two_frames_in_order(void **state) {
        Pair *p = *state;
        char *buf = NULL;
        size_t len = 0;

        assert_int_equal(jit_frame_send(p->b, "{\"n\":1}", 7, deadline_in_ms(5000)), 0);
        assert_int_equal(jit_frame_send(p->b, "{\"n\":22}", 8, deadline_in_ms(5000)), 0);
        assert_int_equal(jit_frame_recv(p->a, JIT_REPLY_MAX, deadline_in_ms(5000), &buf, &len), 0);
        assert_int_equal(len, 7);
        assert_string_equal(buf, "{\"n\":1}");
        free(buf);
        assert_int_equal(jit_frame_recv(p->a, JIT_REPLY_MAX, deadline_in_ms(5000), &buf, &len), 0);
        assert_int_equal(len, 8);
        assert_string_equal(buf, "{\"n\":22}");
        free(buf);
}

static void test_send_refuses_empty(void **state) {
        Pair *p = *state;
        char c;

        assert_int_equal(jit_frame_send(p->b, "", 0, deadline_in_ms(5000)), -EMSGSIZE);
        assert_int_equal(recv(p->a, &c, 1, MSG_DONTWAIT), -1); /* nothing was sent */
        assert_int_equal(errno, EAGAIN);
}

static void test_send_to_closed_peer(void **state) {
        Pair *p = *state;

        close(p->a);
        p->a = -1;
        /* MSG_NOSIGNAL: an error, not a SIGPIPE that kills the PAM host process. */
        assert_int_equal(jit_frame_send(p->b, "{}", 2, deadline_in_ms(5000)), -EPIPE);
}

static void test_send_timeout(void **state) {
        Pair *p = *state;
        size_t len = 8U * 1024U * 1024U; /* far more than a socket buffer holds */
        char *big = calloc(1, len);
        uint64_t start = now_usec(CLOCK_MONOTONIC);

        assert_non_null(big);
        /* Nobody reads p->a: the send must give up at the deadline. */
        assert_int_equal(jit_frame_send(p->b, big, len, deadline_in_ms(50)), -ETIMEDOUT);
        assert_true(now_usec(CLOCK_MONOTONIC) - start < 5 * USEC_PER_SEC);
        free(big);
}

static void test_recv_timeout(void **state) {
        Pair *p = *state;
        char *buf = (char *) 0x1;
        size_t len = 12345;
        uint64_t start = now_usec(CLOCK_MONOTONIC);

        assert_int_equal(jit_frame_recv(p->a, JIT_REPLY_MAX, deadline_in_ms(30), &buf, &len),
                         -ETIMEDOUT);
        uint64_t took = now_usec(CLOCK_MONOTONIC) - start;
        assert_true(took >= 30 * USEC_PER_MSEC);
        assert_true(took < 5 * USEC_PER_SEC);
        /* Outputs untouched on failure. */
        assert_ptr_equal(buf, (char *) 0x1);
        assert_int_equal(len, 12345);
}

static void test_recv_timeout_mid_frame(void **state) {
        Pair *p = *state;
        char *buf = NULL;
        size_t len = 0;

        write_header(p->b, 100);
        write_all(p->b, "{\"version\"", 10);
        assert_int_equal(jit_frame_recv(p->a, JIT_REPLY_MAX, deadline_in_ms(30), &buf, &len),
                         -ETIMEDOUT);
        assert_null(buf);
}

static void test_recv_deadline_in_past(void **state) {
        Pair *p = *state;
        char *buf = NULL;
        size_t len = 0;

        assert_int_equal(
                jit_frame_recv(p->a, JIT_REPLY_MAX, now_usec(CLOCK_MONOTONIC) - 1, &buf, &len),
                -ETIMEDOUT);
        assert_int_equal(jit_frame_recv(p->a, JIT_REPLY_MAX, 0, &buf, &len), -ETIMEDOUT);
        assert_null(buf);
}

static void test_recv_eof_and_oversize(void **state) {
        Pair *p = *state;
        char *buf = NULL;
        size_t len = 0;

        write_header(p->b, 101);
        assert_int_equal(jit_frame_recv(p->a, 100, deadline_in_ms(5000), &buf, &len), -EMSGSIZE);
        assert_null(buf);

        write_header(p->b, 0);
        assert_int_equal(jit_frame_recv(p->a, 100, deadline_in_ms(5000), &buf, &len), -EMSGSIZE);

        write_header(p->b, 10);
        write_all(p->b, "abc", 3);
        close_writer(p);
        assert_int_equal(jit_frame_recv(p->a, 100, deadline_in_ms(5000), &buf, &len), -ECONNRESET);
        assert_null(buf);
}

typedef struct Sender {
        int fd;
        const char *buf;
        size_t len;
        int r;
} Sender;

static void *sender_thread(void *arg) {
        Sender *s = arg;
        s->r = jit_frame_send(s->fd, s->buf, s->len, now_usec(CLOCK_MONOTONIC) + 30 * USEC_PER_SEC);
        return NULL;
}

/* A reply of the largest allowed size crosses the socket in many pieces, both sides
 * waiting in poll(). */
static void test_send_recv_max_reply(void **state) {
        Pair *p = *state;
        size_t n = JIT_REPLY_MAX;
        char *big = malloc(n);
        char *buf = NULL;
        size_t len = 0;
        pthread_t t;

        assert_non_null(big);
        for (size_t i = 0; i < n; i++)
                big[i] = (char) ('a' + i % 26);
        Sender s = { .fd = p->b, .buf = big, .len = n };
        assert_int_equal(pthread_create(&t, NULL, sender_thread, &s), 0);
        assert_int_equal(jit_frame_recv(p->a, JIT_REPLY_MAX,
                                        now_usec(CLOCK_MONOTONIC) + 30 * USEC_PER_SEC, &buf, &len),
                         0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(s.r, 0);
        assert_int_equal(len, n);
        assert_memory_equal(buf, big, n);
        assert_int_equal(buf[n], '\0');
        free(buf);
        free(big);
}

/* ---------------------------------------------------------------------------------------
 * Message parsing */

static void test_parse_valid(void **state) {
        json_object *o, *v;

        o = parse_ok("{\"version\":1,\"op\":\"status\"}");
        assert_true(json_object_object_get_ex(o, "op", &v));
        assert_string_equal(json_object_get_string(v), "status");
        json_object_put(o);

        /* Whitespace around the object is fine. */
        o = parse_ok(" \t\r\n{ \"version\" : 1 } \t\r\n");
        json_object_put(o);

        /* Nested values, unicode escapes, negative numbers. */
        o = parse_ok(
                "{\"version\":1,\"a\":{\"b\":[1,-2,3.5,true,false,null,\"\\u00e9\\ud83d\\ude00\"]}}");
        json_object_put(o);

        /* The exact length is honoured: bytes past len are not looked at. */
        const char *s = "{\"version\":1}garbage";
        o = NULL;
        assert_int_equal(jit_message_parse(s, 13, &o), 0);
        assert_non_null(o);
        json_object_put(o);
}

static void test_parse_empty_and_truncated(void **state) {
        json_object *o = NULL;

        assert_int_equal(jit_message_parse(NULL, 0, &o), -EBADMSG);
        assert_int_equal(jit_message_parse("", 0, &o), -EBADMSG);
        assert_int_equal(jit_message_parse("{}", 0, &o), -EBADMSG);
        assert_null(o);
        assert_parse_fails(" ", -EBADMSG);
        assert_parse_fails("{", -EBADMSG);
        assert_parse_fails("{\"version\":1", -EBADMSG);
        assert_parse_fails("{\"version\":1,", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":\"x", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":[1,2}", -EBADMSG);
}

static void test_parse_trailing_data(void **state) {
        assert_parse_fails("{\"version\":1}x", -EBADMSG);
        assert_parse_fails("{\"version\":1}{\"version\":1}", -EBADMSG);
        assert_parse_fails("{\"version\":1} {}", -EBADMSG);
        assert_parse_fails("{\"version\":1}\n{\"version\":1}\n", -EBADMSG);
        assert_parse_fails("{\"version\":1}}", -EBADMSG);
        assert_parse_fails("{\"version\":1}\v", -EBADMSG); /* not JSON whitespace */
        assert_parse_fails("{\"version\":1}\f", -EBADMSG);
        assert_parse_fails("{\"version\":1}1", -EBADMSG);
        assert_parse_fails("{\"version\":1}//", -EBADMSG);
}

static void test_parse_top_level_not_object(void **state) {
        assert_parse_fails("[{\"version\":1}]", -EBADMSG);
        assert_parse_fails("[]", -EBADMSG);
        assert_parse_fails("\"version\"", -EBADMSG);
        assert_parse_fails("1 ", -EBADMSG);
        assert_parse_fails("1", -EBADMSG);
        assert_parse_fails("true", -EBADMSG);
        assert_parse_fails("null", -EBADMSG);
}

static void test_parse_not_strict_json(void **state) {
        assert_parse_fails("{\"version\":1,}", -EBADMSG);          /* trailing comma */
        assert_parse_fails("{version:1}", -EBADMSG);               /* bare key */
        assert_parse_fails("{\"version\":1,\"a\":'x'}", -EBADMSG); /* single-quoted value */
        assert_parse_fails("{\"version\":01}", -EBADMSG);          /* leading zero */
        assert_parse_fails("{\"version\":1,\"a\":nan}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":TRUE}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":[1,]}", -EBADMSG);
        assert_parse_fails("{\"version\":1 /* c */}", -EBADMSG);
        assert_parse_fails("{\"version\":1 // c\n}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":\"\\x41\"}", -EBADMSG); /* not a JSON escape */
}

static void test_parse_depth(void **state) {
        char *s;
        json_object *o = NULL;

        for (unsigned d = 1; d < JIT_JSON_DEPTH_MAX; d++) {
                s = nested(d);
                o = parse_ok(s);
                json_object_put(o);
                free(s);
        }
        /* Depth 8 (the documented maximum) is accepted: see test-known-bugs.c. */
        for (unsigned d = JIT_JSON_DEPTH_MAX + 1; d <= JIT_JSON_DEPTH_MAX + 3; d++) {
                s = nested(d);
                assert_parse_fails(s, -EBADMSG);
                free(s);
        }
        /* Far too deep is refused without recursing into it. */
        s = nested(100000);
        assert_parse_fails(s, -EBADMSG);
        free(s);
}

static void test_parse_invalid_utf8(void **state) {
        assert_parse_fails("{\"version\":1,\"a\":\"\xc3\"}", -EBADMSG); /* truncated */
        assert_parse_fails("{\"version\":1,\"a\":\"\xff\"}", -EBADMSG); /* never valid */
        assert_parse_fails("{\"version\":1,\"a\":\"\xfe\"}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":\"\x80\"}", -EBADMSG);     /* lone continuation */
        assert_parse_fails("{\"version\":1,\"a\":\"\xe2\x82\"}", -EBADMSG); /* truncated 3-byte */
        assert_parse_fails("{\"version\":1,\"a\":\"\xc3\x28\"}", -EBADMSG); /* bad continuation */
        assert_parse_fails("{\"version\":1,\"\xc3\":\"x\"}", -EBADMSG);     /* in a key */
        /* Valid multi-byte text is fine, raw or escaped. */
        json_object_put(
                parse_ok("{\"version\":1,\"a\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe6\x97\xa5\"}"));
}

static void test_parse_nul(void **state) {
        static const char raw_in_string[] = "{\"version\":1,\"a\":\"x\0y\"}";
        static const char raw_after[] = "{\"version\":1}\0";
        json_object *o = NULL;

        assert_int_equal(jit_message_parse(raw_in_string, sizeof(raw_in_string) - 1, &o), -EBADMSG);
        assert_int_equal(jit_message_parse(raw_after, sizeof(raw_after) - 1, &o), -EBADMSG);
        assert_int_equal(jit_message_parse("\0{\"version\":1}", 14, &o), -EBADMSG);
        assert_null(o);
        /* "\u0000" is well-formed JSON; the field accessor refuses it (test_get_string_unsafe). */
}

static void test_parse_version(void **state) {
        json_object_put(parse_ok("{\"version\":1}"));
        json_object_put(parse_ok("{\"op\":\"x\",\"version\":1}"));

        assert_parse_fails("{}", -EBADMSG);
        assert_parse_fails("{\"op\":\"status\"}", -EBADMSG);
        assert_parse_fails("{\"Version\":1}", -EBADMSG);
        assert_parse_fails("{\"version\":\"1\"}", -EBADMSG);
        assert_parse_fails("{\"version\":1.0}", -EBADMSG);
        assert_parse_fails("{\"version\":1e0}", -EBADMSG);
        assert_parse_fails("{\"version\":true}", -EBADMSG);
        assert_parse_fails("{\"version\":null}", -EBADMSG);
        assert_parse_fails("{\"version\":[1]}", -EBADMSG);
        assert_parse_fails("{\"version\":{}}", -EBADMSG);
        assert_parse_fails("{\"a\":{\"version\":1}}", -EBADMSG); /* only the top level counts */

        assert_parse_fails("{\"version\":2}", -EPROTONOSUPPORT);
        assert_parse_fails("{\"version\":0}", -EPROTONOSUPPORT);
        assert_parse_fails("{\"version\":-1}", -EPROTONOSUPPORT);
        assert_parse_fails("{\"version\":4294967297}",
                           -EPROTONOSUPPORT); /* 2^32 + 1: no truncation */
        assert_parse_fails("{\"version\":18446744073709551617}", -EPROTONOSUPPORT);
}

static void test_serialize(void **state) {
        json_object *o = json_object_new_object();
        size_t len = 0;
        char *s;

        json_object_object_add(o, "version", json_object_new_int(1));
        json_object_object_add(o, "path", json_object_new_string("/run/jit/broker.sock"));
        json_object_object_add(o, "text", json_object_new_string("caf\xc3\xa9 \"q\" \\ \n"));
        assert_serializes_to(o, "{\"version\":1,\"path\":\"/run/jit/broker.sock\","
                                "\"text\":\"caf\xc3\xa9 \\\"q\\\" \\\\ \\n\"}");
        /* ret_len may be NULL. */
        s = jit_message_serialize(o, NULL);
        assert_non_null(s);
        free(s);

        /* What is serialized parses back to the same thing. */
        s = jit_message_serialize(o, &len);
        json_object *back = NULL;
        assert_int_equal(jit_message_parse(s, len, &back), 0);
        assert_true(json_object_equal(o, back));
        json_object_put(back);
        free(s);
        json_object_put(o);
}

/* ---------------------------------------------------------------------------------------
 * Strict JSON: what json-c alone lets through is refused before it builds anything
 * (json-strict.h, PROTOCOL.md "Messages"). */

/* The string member "a" of a message that must parse, compared with expect (len bytes). */
static void assert_parses_a_to(const char *msg, const char *expect, size_t len) {
        json_object *o = parse_ok(msg), *v;

        assert_true(json_object_object_get_ex(o, "a", &v));
        assert_true(json_object_is_type(v, json_type_string));
        assert_int_equal(json_object_get_string_len(v), len);
        assert_memory_equal(json_object_get_string(v), expect, len);
        json_object_put(o);
}

static void test_strict_duplicate_names(void **state) {
        /* Last-wins would read this as root. */
        assert_parse_fails("{\"version\":1,\"user\":\"alice\",\"user\":\"root\"}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"version\":1}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"op\":\"check\",\"op\":\"check\"}", -EBADMSG);
        assert_parse_fails("{\"\":1,\"version\":1,\"\":2}", -EBADMSG); /* the empty name too */
        /* Equal once unescaped. */
        assert_parse_fails("{\"version\":1,\"a\":1,\"\\u0061\":2}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"\\u0075ser\":\"alice\",\"user\":\"root\"}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"us\\u0065r\":\"alice\",\"\\u0075\\u0073er\":\"root\"}",
                           -EBADMSG);
        assert_parse_fails("{\"version\":1,\"\\u0041\":1,\"A\":2}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a/b\":1,\"a\\/b\":2}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"\\n\":1,\"\\u000a\":2}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"\xc3\xa9\":1,\"\\u00e9\":2}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"\\u00E9\":1,\"\\u00e9\":2}", -EBADMSG); /* hex case */
        assert_parse_fails("{\"\\u0076ersion\":1,\"version\":2}", -EBADMSG);
        /* In nested objects, at any depth, and after a nested value in between. */
        assert_parse_fails("{\"version\":1,\"o\":{\"x\":1,\"x\":2}}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":[{\"k\":1,\"k\":1}]}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":[[[[[[{\"k\":1,\"\\u006b\":1}]]]]]]}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":{\"b\":{\"c\":1}},\"a\":2}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":{\"x\":1,\"y\":{\"z\":1},\"x\":3}}", -EBADMSG);
        /* Not next to each other. */
        assert_parse_fails(
                "{\"user\":\"alice\",\"version\":1,\"op\":\"check\",\"service\":\"sudo\","
                "\"user\":\"root\"}",
                -EBADMSG);
        /* json-c cuts names at a NUL: "user\u0000x" would be a second "user". */
        assert_parse_fails("{\"version\":1,\"user\":\"alice\",\"user\\u0000x\":\"root\"}",
                           -EBADMSG);
        assert_parse_fails("{\"version\":1,\"\\u0000\":1}", -EBADMSG);
}

static void test_strict_distinct_names(void **state) {
        json_object *o, *v, *w;

        /* The same name in sibling or nested objects is no duplicate. */
        o = parse_ok("{\"version\":1,\"a\":{\"x\":1},\"b\":{\"x\":2},\"c\":[{\"x\":1},{\"x\":1}]}");
        json_object_put(o);
        o = parse_ok("{\"version\":1,\"o\":{\"version\":2,\"o\":{\"version\":3}}}");
        assert_true(json_object_object_get_ex(o, "version", &v));
        assert_int_equal(json_object_get_int64(v), 1);
        assert_true(json_object_object_get_ex(o, "o", &v));
        assert_true(json_object_object_get_ex(v, "version", &w));
        assert_int_equal(json_object_get_int64(w), 2);
        json_object_put(o);
        /* After a nested object closes, its names are forgotten, the outer ones are not. */
        json_object_put(
                parse_ok("{\"version\":1,\"a\":{\"b\":1,\"c\":2},\"b\":3,\"c\":{\"a\":1}}"));
        /* Names that differ only a little. */
        json_object_put(parse_ok("{\"version\":1,\"a\":1,\"A\":2,\"a \":3,\"ab\":4,\"\":5,"
                                 "\"\\u0062\":6,\"\xc3\xa9\":7,\"e\\u0301\":8}"));
        /* Arrays may repeat anything. */
        json_object_put(parse_ok("{\"version\":1,\"a\":[\"x\",\"x\",{},{},[],[]]}"));
}

static void test_strict_key_limit(void **state) {
        size_t cap = 64 + 16 * (JSON_STRICT_KEYS_MAX + 1);
        char *s = malloc(cap);
        size_t off;

        assert_non_null(s);
        /* "version" plus 255 more: exactly the limit. */
        off = (size_t) snprintf(s, cap, "{\"version\":1");
        for (unsigned k = 1; k < JSON_STRICT_KEYS_MAX; k++)
                off += (size_t) snprintf(s + off, cap - off, ",\"k%u\":%u", k, k);
        snprintf(s + off, cap - off, "}");
        json_object *o = parse_ok(s);
        assert_int_equal(json_object_object_length(o), JSON_STRICT_KEYS_MAX);
        json_object_put(o);
        /* One more is refused, even though every name is distinct. */
        off += (size_t) snprintf(s + off, cap - off, ",\"one-more\":0}");
        assert_parse_fails(s, -EBADMSG);
        free(s);
}

static void test_strict_non_finite_numbers(void **state) {
        static const char *const bad[] = {
                "NaN", "-NaN", "Infinity", "-Infinity", "+Infinity", "nan", "inf", "-inf", "Inf",
                "1e",  "1e+",  "1E-",      ".5",        "1.",        "-",   "-.5", "1.e5",
        };
        char msg[64];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(msg, sizeof(msg), "{\"version\":1,\"a\":%s}", bad[i]);
                assert_parse_fails(msg, -EBADMSG);
                snprintf(msg, sizeof(msg), "{\"version\":1,\"a\":[%s]}", bad[i]);
                assert_parse_fails(msg, -EBADMSG);
        }
}

static void test_strict_number_grammar(void **state) {
        static const char *const bad[] = {
                "01",    "00",   "-01",   "-00",   "007", "+1",
                "+0",    "0x10", "0X1f",  "1_000", "1,5", "--1",
                "1e5.5", "1ee5", "0.5.5", "1 2",   "- 1", "\xef\xbc\x91" /* fullwidth 1 */,
        };
        static const char *const good[] = {
                "0",     "-0",        "1",    "-1",        "10",       "1e10",
                "1E10",  "1e+2",      "1E-2", "1.5E-3",    "-0.0",     "0.0e0",
                "-0e-0", "123456789", "1.25", "-1.5e+300", "0.000001", "9223372036854775807",
        };
        char msg[64];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(msg, sizeof(msg), "{\"version\":1,\"a\":%s}", bad[i]);
                assert_parse_fails(msg, -EBADMSG);
        }
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                snprintf(msg, sizeof(msg), "{\"version\":1,\"a\":%s}", good[i]);
                json_object_put(parse_ok(msg));
                snprintf(msg, sizeof(msg), "{\"version\":1,\"a\":[%s,%s]}", good[i], good[i]);
                json_object_put(parse_ok(msg));
        }
        /* -0 is still an integer for the accessors. */
        json_object *o = parse_ok("{\"version\":1,\"a\":-0}");
        int64_t n = 99;
        assert_int_equal(jit_message_get_int(o, "a", -1, 1, true, &n, NULL), 0);
        assert_int_equal(n, 0);
        json_object_put(o);
}

static void test_strict_raw_controls_in_strings(void **state) {
        char msg[64];

        /* Every C0 control byte, raw, in a value and in a name. */
        for (unsigned c = 1; c < 0x20; c++) {
                snprintf(msg, sizeof(msg), "{\"version\":1,\"a\":\"x%cy\"}", (char) c);
                assert_parse_fails(msg, -EBADMSG);
                snprintf(msg, sizeof(msg), "{\"version\":1,\"a%c\":\"x\"}", (char) c);
                assert_parse_fails(msg, -EBADMSG);
        }
        assert_parse_fails("{\"version\":1,\"a\":\"x\ty\"}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":\"x\ny\"}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":\"x\x01y\"}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":\"\t\"}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":\"\r\n\"}", -EBADMSG);
        /* The same characters escaped are fine (the text accessors judge them). */
        assert_parses_a_to("{\"version\":1,\"a\":\"x\\ty\\n\\u0001\"}", "x\ty\n\x01", 5);
        /* DEL is not a JSON control character. */
        assert_parses_a_to("{\"version\":1,\"a\":\"\x7f\"}", "\x7f", 1);
}

static void test_strict_surrogates(void **state) {
        static const char *const bad[] = {
                "\\ud800",        "\\udc00",         "\\udfff",        "\\udbff",
                "\\ud800\\u0041", "\\ud800x",        "\\ud800\\ud800", "\\ude00\\ud83d",
                "x\\ud83d",       "\\ud83d \\ude00", "\\ud83d\\n",     "\\ud83d\\",
                "\\ud83d\\u",     "\\ud83d\\ude0",   "\\ud83d\\Ude00", "\\udc00\\udc00",
                "\\uD800",        "\\uDFFF",
        };
        char msg[64];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(msg, sizeof(msg), "{\"version\":1,\"a\":\"%s\"}", bad[i]);
                assert_parse_fails(msg, -EBADMSG);
                snprintf(msg, sizeof(msg), "{\"version\":1,\"%s\":1}", bad[i]);
                assert_parse_fails(msg, -EBADMSG);
        }
        /* Pairs, in either hex case, at the ends of the plane. */
        assert_parses_a_to("{\"version\":1,\"a\":\"\\ud83d\\ude00\"}", "\xf0\x9f\x98\x80", 4);
        assert_parses_a_to("{\"version\":1,\"a\":\"\\uD83D\\uDE00\"}", "\xf0\x9f\x98\x80", 4);
        assert_parses_a_to("{\"version\":1,\"a\":\"\\ud800\\udc00\"}", "\xf0\x90\x80\x80", 4);
        assert_parses_a_to("{\"version\":1,\"a\":\"\\udbff\\udfff\"}", "\xf4\x8f\xbf\xbf", 4);
        assert_parses_a_to("{\"version\":1,\"a\":\"x\\ud83d\\ude00y\"}", "x\xf0\x9f\x98\x80y", 6);
        /* Right next to the surrogates. */
        assert_parses_a_to("{\"version\":1,\"a\":\"\\ud7ff\\ue000\"}", "\xed\x9f\xbf\xee\x80\x80",
                           6);
}

static void test_strict_escapes(void **state) {
        assert_parses_a_to("{\"version\":1,\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
                           "\"\\/\b\f\n\r\t", 8);
        assert_parses_a_to("{\"version\":1,\"a\":\"\\u0041\\u00e9\\u00E9\\u20ac\\uffff\"}",
                           "A\xc3\xa9\xc3\xa9\xe2\x82\xac\xef\xbf\xbf", 11);
        /* "\u0000" in a value parses; the text accessors refuse it (test_get_string_unsafe). */
        assert_parses_a_to("{\"version\":1,\"a\":\"\\u0000\"}", "", 1);

        static const char *const bad[] = {
                "\\a", "\\x41", "\\U0041", "\\u41", "\\u004", "\\u00g1", "\\'",
                "\\0", "\\v",   "\\ ",     "\\",    "\\u",    "\\e",
        };
        char msg[64];
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(msg, sizeof(msg), "{\"version\":1,\"a\":\"%s\"}", bad[i]);
                assert_parse_fails(msg, -EBADMSG);
        }
}

static void test_strict_structure(void **state) {
        /* Trailing commas, missing ones, stray separators. */
        assert_parse_fails("{\"version\":1,}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":[1,2,]}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":{\"b\":1,}}", -EBADMSG);
        assert_parse_fails("{,\"version\":1}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":[,1]}", -EBADMSG);
        assert_parse_fails("{\"version\":1,,\"a\":1}", -EBADMSG);
        assert_parse_fails("{\"version\":1 \"a\":1}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":[1 2]}", -EBADMSG);
        assert_parse_fails("{\"version\"1}", -EBADMSG);
        assert_parse_fails("{\"version\"::1}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\"}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":[}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":{]}", -EBADMSG);
        assert_parse_fails("{\"version\":1,1:2}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":tru}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":truex}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":True}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":undefined}", -EBADMSG);
        /* Trailing garbage, of any kind. */
        assert_parse_fails("{\"version\":1}garbage", -EBADMSG);
        assert_parse_fails("{\"version\":1},", -EBADMSG);
        assert_parse_fails("{\"version\":1}]", -EBADMSG);
        assert_parse_fails("{\"version\":1} \"x\"", -EBADMSG);
        assert_parse_fails("{\"version\":1}\t\n\r x", -EBADMSG);
        assert_parse_fails("{\"version\":1}\xc2\xa0", -EBADMSG); /* NBSP is no JSON whitespace */
        assert_parse_fails("\xef\xbb\xbf{\"version\":1}", -EBADMSG); /* nor is a BOM */
        /* Whitespace is space, tab, LF and CR, anywhere between tokens. */
        json_object_put(parse_ok("\t{\t\"version\"\t:\t1\t,\t\"a\"\t:\t[\t1\t,\t{\t}\t]\t}\t"));
        json_object_put(parse_ok("\r\n{\r\n\"version\"\r\n:\r\n1\r\n}\r\n"));
        assert_parse_fails("{\"version\":1,\"a\":\f1}", -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":\v1}", -EBADMSG);
}

static void test_strict_depth(void **state) {
        char *s;

        /* Exactly JIT_JSON_DEPTH_MAX: arrays under the top-level object, or objects only. */
        s = nested(JIT_JSON_DEPTH_MAX);
        json_object_put(parse_ok(s));
        free(s);
        json_object_put(parse_ok(
                "{\"version\":1,\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}"));
        json_object_put(parse_ok("{\"version\":1,\"a\":[[[[[[[]]]]]]]}"));
        /* One deeper. */
        s = nested(JIT_JSON_DEPTH_MAX + 1);
        assert_parse_fails(s, -EBADMSG);
        free(s);
        assert_parse_fails(
                "{\"version\":1,\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}",
                -EBADMSG);
        assert_parse_fails("{\"version\":1,\"a\":[[[[[[[[]]]]]]]]}", -EBADMSG);
        /* Depth is nesting, not the number of containers. */
        json_object_put(parse_ok("{\"version\":1,\"a\":[[[[[[[1]]]]]]],\"b\":[[[[[[[2]]]]]]]}"));
}

/* The checker itself, below jit_message_parse(). */
static void test_json_strict_validate(void **state) {
#define V(lit, depth) json_strict_validate(lit, sizeof(lit) - 1, depth)
        /* Any JSON value at the top; the protocol's "an object" is jit_message_parse()'s. */
        assert_int_equal(V("1", 1), 0);
        assert_int_equal(V(" \"x\" ", 1), 0);
        assert_int_equal(V("null", 1), 0);
        assert_int_equal(V("[]", 1), 0);
        assert_int_equal(V("{}", 1), 0);
        assert_int_equal(V("", 1), -EBADMSG);
        assert_int_equal(V(" \t", 1), -EBADMSG);
        assert_int_equal(V("1 2", 1), -EBADMSG);
        /* Depth as asked, within what the checker can follow. */
        assert_int_equal(V("[[1]]", 2), 0);
        assert_int_equal(V("[[1]]", 1), -EBADMSG);
        assert_int_equal(V("[{\"a\":[]}]", 3), 0);
        assert_int_equal(V("[{\"a\":[]}]", 2), -EBADMSG);
        assert_int_equal(V("1", 0), -EINVAL);
        assert_int_equal(V("1", JSON_STRICT_DEPTH_MAX + 1), -EINVAL);
        assert_int_equal(json_strict_validate(NULL, 0, 1), -EBADMSG);
        /* Only len bytes are read: a cut-off value is incomplete, whatever follows. */
        assert_int_equal(json_strict_validate("{\"a\":1}", 6, 1), -EBADMSG);
        assert_int_equal(json_strict_validate("\"ab\"", 3, 1), -EBADMSG);
        assert_int_equal(json_strict_validate("\"\\u0041\"", 6, 1), -EBADMSG);
        assert_int_equal(json_strict_validate("\"\\ud83d\\ude00\"", 13, 1), -EBADMSG);
        assert_int_equal(json_strict_validate("\"\xc3\xa9\"", 2, 1), -EBADMSG);
        assert_int_equal(json_strict_validate("true", 3, 1), -EBADMSG);
        assert_int_equal(json_strict_validate("12", 1, 1), 0);
        assert_int_equal(json_strict_validate("1.5", 2, 1), -EBADMSG);
        /* Raw NUL anywhere. */
        assert_int_equal(json_strict_validate("\"a\0b\"", 5, 1), -EBADMSG);
        assert_int_equal(json_strict_validate("1\0", 2, 1), -EBADMSG);
#undef V
}

/* A message at the size limit made of many objects with many names each is checked in
 * bounded time (the duplicate check is per object, capped at JSON_STRICT_KEYS_MAX). */
static void test_strict_many_names_bounded(void **state) {
        char *s = malloc(JIT_REQUEST_MAX + 1);
        size_t off = 0;
        uint64_t start = now_usec(CLOCK_MONOTONIC);

        assert_non_null(s);
        off += (size_t) snprintf(s, JIT_REQUEST_MAX, "{\"version\":1,\"a\":[");
        for (unsigned obj = 0; off < JIT_REQUEST_MAX - 4096; obj++) {
                s[off++] = obj ? ',' : '{';
                if (obj)
                        s[off++] = '{';
                for (unsigned k = 0; k < 200; k++)
                        off += (size_t) snprintf(s + off, JIT_REQUEST_MAX - off, "%s\"%u\":0",
                                                 k ? "," : "", k);
                s[off++] = '}';
        }
        off += (size_t) snprintf(s + off, JIT_REQUEST_MAX - off, "]}");
        assert_true(off <= JIT_REQUEST_MAX);
        json_object_put(parse_ok(s));
        assert_true(now_usec(CLOCK_MONOTONIC) - start < 5 * USEC_PER_SEC);
        free(s);
}

/* ---------------------------------------------------------------------------------------
 * Text safety */

#define SAFE(lit) jit_text_is_safe(lit, sizeof(lit) - 1)

static void test_text_safe_accepts(void **state) {
        assert_true(jit_text_is_safe("", 0));
        assert_true(SAFE("hello, world"));
        assert_true(SAFE("OPS-1234"));
        assert_true(SAFE(" ~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./"));
        assert_true(SAFE("caf\xc3\xa9"));                      /* é, 2 bytes */
        assert_true(SAFE("\xc2\xa0"));                         /* U+00A0, first after C1 */
        assert_true(SAFE("\xe6\x97\xa5\xe6\x9c\xac"));         /* 日本, 3 bytes */
        assert_true(SAFE("\xf0\x9f\x98\x80"));                 /* 😀, 4 bytes */
        assert_true(SAFE("\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd")); /* emoji + skin tone modifier */
        assert_true(SAFE("\xef\xbf\xbd"));                     /* U+FFFD */
        assert_true(SAFE("\xed\x9f\xbf"));                     /* U+D7FF, just below surrogates */
        assert_true(SAFE("\xee\x80\x80"));                     /* U+E000, just above */
        assert_true(SAFE("\xf4\x8f\xbf\xbf"));                 /* U+10FFFF, the last code point */
        assert_true(SAFE("\xdf\xbf"));                         /* U+07FF, longest 2-byte */
        assert_true(SAFE("\xe0\xa0\x80"));                     /* U+0800, shortest 3-byte */
        assert_true(SAFE("\xf0\x90\x80\x80"));                 /* U+10000, shortest 4-byte */
        /* Only len bytes are examined. */
        assert_true(jit_text_is_safe("ab\ncd", 2));
        assert_true(jit_text_is_safe("\xc3\xa9\xff", 2));
}

static void test_text_safe_refuses_controls(void **state) {
        /* Every C0 control, and DEL. */
        for (unsigned c = 0; c < 0x20; c++) {
                char s[3] = { 'a', (char) c, 'b' };
                if (jit_text_is_safe(s, 3))
                        fail_msg("C0 control 0x%02x accepted", c);
        }
        assert_false(SAFE("\x7f"));
        assert_false(SAFE("a\tb"));
        assert_false(SAFE("line\nbreak"));
        assert_false(SAFE("\r"));
        assert_false(SAFE("\x1b[31mred"));
        assert_false(jit_text_is_safe("a\0b", 3));
        /* Every C1 control (U+0080..U+009F), NEL (U+0085) and CSI (U+009B) among them. */
        for (unsigned cp = 0x80; cp <= 0x9f; cp++) {
                char s[2] = { (char) (0xc0 | (cp >> 6)), (char) (0x80 | (cp & 0x3f)) };
                if (jit_text_is_safe(s, 2))
                        fail_msg("C1 control U+%04X accepted", cp);
        }
        assert_false(SAFE("x\xc2\x85y"));
        assert_false(SAFE("\xc2\x9b"
                          "31m"));
        /* Raw C1 bytes are not UTF-8 at all. */
        assert_false(SAFE("\x85"));
        assert_false(SAFE("\x9b"));
}

static void test_text_safe_refuses_bad_utf8(void **state) {
        assert_false(SAFE("\xc0\xaf"));                 /* overlong '/' */
        assert_false(SAFE("\xc0\x80"));                 /* overlong NUL */
        assert_false(SAFE("\xc1\xbf"));                 /* overlong U+007F */
        assert_false(SAFE("\xe0\x80\xaf"));             /* 3-byte overlong */
        assert_false(SAFE("\xe0\x9f\xbf"));             /* 3-byte overlong U+07FF */
        assert_false(SAFE("\xf0\x80\x80\xaf"));         /* 4-byte overlong */
        assert_false(SAFE("\xf0\x8f\xbf\xbf"));         /* 4-byte overlong U+FFFF */
        assert_false(SAFE("\xed\xa0\x80"));             /* U+D800 surrogate */
        assert_false(SAFE("\xed\xbf\xbf"));             /* U+DFFF surrogate */
        assert_false(SAFE("\xed\xa0\xbd\xed\xb8\x80")); /* CESU-8 pair */
        assert_false(SAFE("\xf4\x90\x80\x80"));         /* U+110000 */
        assert_false(SAFE("\xf7\xbf\xbf\xbf"));
        assert_false(SAFE("\xf8\x88\x80\x80\x80")); /* 5-byte form */
        assert_false(SAFE("\xfc\x84\x80\x80\x80\x80"));
        assert_false(SAFE("\xfe"));
        assert_false(SAFE("\xff"));
        assert_false(SAFE("\x80")); /* lone continuation */
        assert_false(SAFE("\xbf"));
        assert_false(SAFE("\xc3")); /* truncated at end */
        assert_false(SAFE("\xe6\x97"));
        assert_false(SAFE("\xf0\x9f\x98"));
        assert_false(SAFE("\xc3(")); /* continuation missing */
        assert_false(SAFE("\xe6\x97("));
        assert_false(SAFE("\xf0\x9f\x98("));
        /* The length bound is respected: a sequence cut by len is refused, not read past. */
        assert_false(jit_text_is_safe("\xc3\xa9", 1));
        assert_false(jit_text_is_safe("\xf0\x9f\x98\x80", 3));
}

/* ---------------------------------------------------------------------------------------
 * Text a person reads: invisible, reordering and stacking characters (text-escape.h) */

/* The UTF-8 form of cp (cp is a valid scalar value). */
static size_t utf8_encode(uint32_t cp, char out[4]) {
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xc0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char) (0xe0 | (cp >> 12));
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
                out[2] = (char) (0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (char) (0xf0 | (cp >> 18));
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char) (0x80 | (cp & 0x3f));
        return 4;
}

/* "ok " + cp + " text": what jit_text_check() says, and the code point it names. */
static JitTextProblem check_cp(uint32_t cp, uint32_t *ret_cp) {
        char s[16] = "ok ";
        size_t n = 3 + utf8_encode(cp, s + 3);
        memcpy(s + n, " text", 5);
        *ret_cp = 0xdeadbeef;
        return jit_text_check(s, n + 5, ret_cp);
}

/* Every class the issue names, by a code point of each range and its ends. */
static const uint32_t invisible_samples[] = {
        0x00ad,                                      /* soft hyphen */
        0x034f,                                      /* combining grapheme joiner */
        0x061c,  0x200e,  0x200f,                    /* ALM, LRM, RLM */
        0x202a,  0x202b,  0x202c,  0x202d,  0x202e,  /* embeddings, overrides */
        0x2066,  0x2067,  0x2068,  0x2069,           /* isolates */
        0x200b,  0x200c,  0x200d,                    /* ZWSP, ZWNJ, ZWJ */
        0x2060,  0x2061,  0x2062,  0x2063,  0x2064,  /* word joiner, invisible operators */
        0x2065,  0x206a,  0x206f,                    /* reserved, deprecated format */
        0xfeff,                                      /* BOM */
        0x2028,  0x2029,                             /* line and paragraph separators */
        0x115f,  0x1160,  0x3164,  0xffa0,           /* Hangul fillers */
        0x17b4,  0x17b5,                             /* Khmer inherent vowels */
        0x180b,  0x180c,  0x180d,  0x180e,  0x180f,  /* Mongolian FVS, MVS */
        0xfe00,  0xfe0e,  0xfe0f,                    /* variation selectors 1-16 */
        0xe0100, 0xe01ef,                            /* variation selectors 17-256 */
        0xe0000, 0xe0001, 0xe0020, 0xe0041, 0xe007f, /* tags */
        0xe0080, 0xe0fff,                            /* reserved ignorables */
        0xfff0,  0xfff9,  0xfffa,  0xfffb,           /* interlinear annotation */
        0x1bca0, 0x1bca3,                            /* shorthand format controls */
        0x1d173, 0x1d17a,                            /* musical format controls */
        0x0600,  0x0605,  0x06dd,  0x070f,  0x0890,  0x0891, 0x08e2, /* other Cf */
        0x110bd, 0x110cd, 0x13430, 0x1343f,
};

/* Their neighbours and look-alikes a person can see. */
static const uint32_t visible_samples[] = {
        0x00ac,  0x00ae,  0x034e,  0x0350,  0x0606,   0x061b,  0x061d,  0x06de,  0x08e3,
        0x115e,  0x1161,  0x17b3,  0x17b6,  0x180a,   0x1810,  0x200a,  0x2010,  0x2027,
        0x202f,  0x205f,  0x2070,  0x3163,  0x3165,   0xfdff,  0xfe10,  0xfefe,  0xff9f,
        0xffa1,  0xffef,  0xfffc,  0xfffd,  0x110be,  0x1342f, 0x13440, 0x1bc9f, 0x1bca4,
        0x1d172, 0x1d17b, 0xdffff, 0xe1000, 0x10ffff, 0x00a0,  0x3000,  0x1f600,
};

static void test_text_refuses_invisible(void **state) {
        uint32_t cp;

        for (size_t i = 0; i < ELEMENTSOF(invisible_samples); i++) {
                JitTextProblem p = check_cp(invisible_samples[i], &cp);
                if (p != JIT_TEXT_INVISIBLE || cp != invisible_samples[i])
                        fail_msg("U+%04X: problem %d at U+%04X, expected invisible",
                                 invisible_samples[i], p, cp);
                assert_true(jit_codepoint_is_invisible(invisible_samples[i]));
        }
        for (size_t i = 0; i < ELEMENTSOF(visible_samples); i++) {
                JitTextProblem p = check_cp(visible_samples[i], &cp);
                if (p != JIT_TEXT_OK)
                        fail_msg("U+%04X refused (problem %d)", visible_samples[i], p);
                assert_false(jit_codepoint_is_invisible(visible_samples[i]));
        }
        /* Controls keep their own problem, and come first. */
        assert_int_equal(check_cp(0x1b, &cp), JIT_TEXT_CONTROL);
        assert_int_equal(cp, 0x1b);
        assert_int_equal(check_cp(0x85, &cp), JIT_TEXT_CONTROL);
        assert_int_equal(jit_text_check("a\0b", 3, &cp), JIT_TEXT_CONTROL);
        assert_int_equal(cp, 0);
        assert_int_equal(jit_text_check("a\xff", 2, &cp), JIT_TEXT_NOT_UTF8);
        assert_int_equal(cp, 0xff);
        /* The first problem is the one named. */
        assert_int_equal(jit_text_check("x\xe2\x80\xae y\x1b", 7, &cp), JIT_TEXT_INVISIBLE);
        assert_int_equal(cp, 0x202e);
        assert_int_equal(jit_text_check("ok", 2, NULL), JIT_TEXT_OK);
        assert_int_equal(jit_text_check("\xe2\x80\x8b", 3, NULL), JIT_TEXT_INVISIBLE);
        /* A name with one of them is no name a person can check (PAM_USER, NSS names). */
        assert_false(SAFE("jit-\xc2\xad"
                          "alice"));
        assert_false(SAFE("jit-alice\xe2\x80\x8b"));
        assert_false(SAFE("root\xf3\xa0\x81\x81"));
        assert_true(SAFE("jit-alice"));
}

/* e followed by n copies of the mark cp. */
static size_t stack_marks(char *s, size_t size, uint32_t cp, unsigned n) {
        size_t len = 0;
        s[len++] = 'e';
        for (unsigned i = 0; i < n; i++) {
                assert_true(len + 4 < size);
                len += utf8_encode(cp, s + len);
        }
        return len;
}

static void test_text_combining_runs(void **state) {
        /* The main blocks, and marks outside them (Hebrew, Thai, Me, musical symbols). */
        static const uint32_t marks[] = { 0x0300, 0x036f, 0x1ab0,  0x1ace, 0x1dc0, 0x1dff,
                                          0x20d0, 0x20dd, 0x20f0,  0xfe20, 0xfe2f, 0x0591,
                                          0x0e31, 0x0489, 0x1d167, 0x101fd };
        char s[64];
        uint32_t cp;

        assert_int_equal(JIT_COMBINING_RUN_MAX, 4);
        for (size_t i = 0; i < ELEMENTSOF(marks); i++) {
                assert_true(jit_codepoint_is_combining(marks[i]));
                size_t len = stack_marks(s, sizeof(s), marks[i], 4);
                if (jit_text_check(s, len, &cp) != JIT_TEXT_OK)
                        fail_msg("4 x U+%04X refused", marks[i]);
                len = stack_marks(s, sizeof(s), marks[i], 5);
                if (jit_text_check(s, len, &cp) != JIT_TEXT_COMBINING || cp != marks[i])
                        fail_msg("5 x U+%04X accepted", marks[i]);
        }
        assert_false(jit_codepoint_is_combining('e'));
        assert_false(jit_codepoint_is_combining(0x02ff));
        assert_false(jit_codepoint_is_combining(0x0370));
        assert_false(jit_codepoint_is_combining(0x0903)); /* Mc: spacing, not stacked */

        /* A base character ends a run; different marks count together. */
        assert_true(SAFE("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81"
                         "a\xcc\x81\xcc\x81\xcc\x81\xcc\x81"));
        assert_int_equal(
                jit_text_check("e\xcc\x81\xcc\x80\xe1\xaa\xb0\xe2\x83\x90\xef\xb8\xa0", 15, &cp),
                JIT_TEXT_COMBINING);
        assert_int_equal(cp, 0xfe20);
        /* A mark with no base at all is still text; five are not. */
        assert_true(SAFE("\xcc\x81"));
        assert_false(SAFE("\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81"));
        /* Hundreds on one letter ("Zalgo") are refused at the fifth. */
        char zalgo[1 + 300 * 2 + 8];
        size_t len = stack_marks(zalgo, sizeof(zalgo), 0x0334, 300);
        assert_int_equal(jit_text_check(zalgo, len, &cp), JIT_TEXT_COMBINING);
}

static void test_text_problem_message(void **state) {
        char buf[160];

        jit_text_problem_message("reason", JIT_TEXT_INVISIBLE, 0x202e, buf, sizeof(buf));
        assert_string_equal(
                buf, "reason contains an invisible or reordering character (U+202E); remove it");
        jit_text_problem_message("ticket", JIT_TEXT_INVISIBLE, 0xe0041, buf, sizeof(buf));
        assert_string_equal(
                buf, "ticket contains an invisible or reordering character (U+E0041); remove it");
        jit_text_problem_message("reason", JIT_TEXT_INVISIBLE, 0xad, buf, sizeof(buf));
        assert_string_equal(
                buf, "reason contains an invisible or reordering character (U+00AD); remove it");
        jit_text_problem_message("comment", JIT_TEXT_CONTROL, 0x1b, buf, sizeof(buf));
        assert_string_equal(
                buf,
                "comment contains a control character (U+001B); remove it (no newlines or tabs)");
        jit_text_problem_message("reason", JIT_TEXT_COMBINING, 0x301, buf, sizeof(buf));
        assert_string_equal(
                buf, "reason has more than 4 combining marks in a row (U+0301); remove some");
        jit_text_problem_message("user", JIT_TEXT_NOT_UTF8, 0xff, buf, sizeof(buf));
        assert_string_equal(buf, "user is not valid UTF-8 (byte 0xFF)");
        /* Cut, never overrun. */
        char small[8];
        jit_text_problem_message("reason", JIT_TEXT_INVISIBLE, 0x202e, small, sizeof(small));
        assert_string_equal(small, "reason ");
}

static void test_get_string_invisible(void **state) {
        json_object *o = parse_ok(
                "{\"version\":1,\"reason\":\"update \\u202etxt.exe\",\"ticket\":\"OPS-1\\udb40\\udc41\","
                "\"comment\":\"ok\\u00ad\",\"user\":\"jit-\\u200balice\",\"zalgo\":"
                "\"e\\u0301\\u0301\\u0301\\u0301\\u0301\",\"four\":\"e\\u0301\\u0301\\u0301\\u0301\","
                "\"nul\":\"a\\u0000b\",\"n\":1}");
        static const struct {
                const char *key, *why;
        } cases[] = {
                { "reason",
                  "reason contains an invisible or reordering character (U+202E); remove it" },
                { "ticket",
                  "ticket contains an invisible or reordering character (U+E0041); remove it" },
                { "comment",
                  "comment contains an invisible or reordering character (U+00AD); remove it" },
                { "user",
                  "user contains an invisible or reordering character (U+200B); remove it" },
                { "zalgo", "zalgo has more than 4 combining marks in a row (U+0301); remove some" },
                { "nul",
                  "nul contains a control character (U+0000); remove it (no newlines or tabs)" },
        };
        const char *s;
        char buf[160];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                s = "sentinel";
                assert_int_equal(jit_message_get_string(o, cases[i].key, 1024, true, &s), -EBADMSG);
                assert_null(s);
                jit_message_string_problem(o, cases[i].key, buf, sizeof(buf));
                assert_string_equal(buf, cases[i].why);
        }
        assert_int_equal(jit_message_get_string(o, "four", 1024, true, &s), 0);
        assert_string_equal(s, "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81");
        jit_message_string_problem(o, "n", buf, sizeof(buf));
        assert_string_equal(buf, "n is missing or of the wrong type");
        jit_message_string_problem(o, "absent", buf, sizeof(buf));
        assert_string_equal(buf, "absent is missing or of the wrong type");
        json_object_put(o);
}

/* jit_text_escape(): what the broker writes as journald's MESSAGE, and jitctl on a
 * terminal (test-text.c checks jitctl's side with widths and cuts). */
static void assert_escapes(const char *in, size_t len, const char *expect) {
        char *r = jit_text_escape(in, len);
        assert_non_null(r);
        if (!STREQ(r, expect))
                fail_msg("jit_text_escape(\"%s\") = \"%s\", expected \"%s\"", in, r, expect);
        /* What comes out is safe text itself. */
        assert_true(jit_text_is_safe(r, strlen(r)));
        free(r);
}
#define ESCAPES(lit, expect) assert_escapes(lit, sizeof(lit) - 1, expect)

static void test_text_escape(void **state) {
        ESCAPES("", "");
        ESCAPES("plain text, caf\xc3\xa9 \xe6\x97\xa5\xf0\x9f\x98\x80",
                "plain text, caf\xc3\xa9 \xe6\x97\xa5\xf0\x9f\x98\x80");
        ESCAPES("a\x1b[31mb\x7f\n", "a\\x1b[31mb\\x7f\\x0a");
        ESCAPES("a\0b", "a\\x00b");
        ESCAPES("\xff\xc3", "\\xff\\xc3");
        ESCAPES("\xc2\x85\xc2\x9b", "\\u0085\\u009b");
        /* Trojan Source: the override and its pop shown, the order kept. */
        ESCAPES("user \xe2\x80\xae"
                "exe.txt\xe2\x80\xac",
                "user \\u202eexe.txt\\u202c");
        ESCAPES("\xe2\x81\xa6x\xe2\x81\xa9", "\\u2066x\\u2069");
        ESCAPES("\xe2\x80\x8b\xe2\x80\x8c\xe2\x80\x8d\xef\xbb\xbf", "\\u200b\\u200c\\u200d\\ufeff");
        ESCAPES("\xc2\xad\xcd\x8f\xe3\x85\xa4\xef\xbe\xa0", "\\u00ad\\u034f\\u3164\\uffa0");
        ESCAPES("\xe2\x80\xa8\xe2\x80\xa9", "\\u2028\\u2029");
        ESCAPES("ok\xef\xb8\x8f", "ok\\ufe0f");
        ESCAPES("\xef\xbf\xb9\xef\xbf\xbb", "\\ufff9\\ufffb");
        /* Tags hide text ("ok" + tag "A"): shown as the 8-digit escape. */
        ESCAPES("ok\xf3\xa0\x81\x81", "ok\\U000e0041");
        ESCAPES("\xf3\xa0\x84\x80", "\\U000e0100");
        /* Four marks in a row are shown, the fifth and later escaped; a base resets. */
        ESCAPES("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81", "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81");
        ESCAPES("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x80",
                "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\\u0301\\u0300");
        ESCAPES("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81"
                "a\xcc\x81",
                "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81"
                "a\xcc\x81");
        /* Only len bytes are read. */
        char *r = jit_text_escape("ab\x1b", 2);
        assert_string_equal(r, "ab");
        free(r);

        /* Any bytes at all come out as safe text, within 4 bytes per byte. */
        unsigned seed = 1;
        for (int round = 0; round < 2000; round++) {
                unsigned char in[32];
                size_t len = (size_t) (rand_r(&seed) % sizeof(in));
                for (size_t i = 0; i < len; i++)
                        in[i] = (unsigned char) rand_r(&seed);
                r = jit_text_escape((const char *) in, len);
                assert_non_null(r);
                assert_true(strlen(r) <= len * 4);
                assert_true(jit_text_is_safe(r, strlen(r)));
                free(r);
        }
}

/* The tables against the Unicode data files they were made from, when they are installed
 * (Debian: unicode-data). Skipped otherwise, or for another Unicode version. */
static bool read_property_file(const char *path, const char *version, const char *const *names,
                               uint8_t *set) {
        FILE *f = fopen(path, "re");
        char line[512];

        if (!f)
                return false;
        if (!fgets(line, sizeof(line), f) || !strstr(line, version)) {
                fclose(f);
                return false;
        }
        while (fgets(line, sizeof(line), f)) {
                unsigned first, last;
                char name[64];
                if (sscanf(line, "%x..%x ; %63[A-Za-z_]", &first, &last, name) == 3)
                        ;
                else if (sscanf(line, "%x ; %63[A-Za-z_]", &first, name) == 2)
                        last = first;
                else
                        continue;
                if (last > 0x10ffff || first > last)
                        continue;
                for (const char *const *n = names; *n; n++)
                        if (STREQ(name, *n))
                                memset(set + first, 1, last - first + 1);
        }
        fclose(f);
        return true;
}

static void test_text_tables_match_unicode_data(void **state) {
        static const char *const ignorable[] = { "Default_Ignorable_Code_Point", NULL };
        static const char *const format[] = { "Cf", "Zl", "Zp", NULL };
        static const char *const marks[] = { "Mn", "Me", NULL };
        uint8_t *invisible = calloc(0x110000, 1), *combining = calloc(0x110000, 1);

        assert_non_null(invisible);
        assert_non_null(combining);
        if (!read_property_file("/usr/share/unicode/DerivedCoreProperties.txt",
                                "DerivedCoreProperties-15.0.0.txt", ignorable, invisible) ||
            !read_property_file("/usr/share/unicode/extracted/DerivedGeneralCategory.txt",
                                "DerivedGeneralCategory-15.0.0.txt", format, invisible) ||
            !read_property_file("/usr/share/unicode/extracted/DerivedGeneralCategory.txt",
                                "DerivedGeneralCategory-15.0.0.txt", marks, combining)) {
                free(invisible);
                free(combining);
                skip();
        }
        size_t n_invisible = 0, n_combining = 0;
        for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
                if (jit_codepoint_is_invisible(cp) != (bool) invisible[cp])
                        fail_msg("U+%04X: invisible is %d, the Unicode data says %d", cp,
                                 jit_codepoint_is_invisible(cp), invisible[cp]);
                if (jit_codepoint_is_combining(cp) != (bool) combining[cp])
                        fail_msg("U+%04X: combining is %d, the Unicode data says %d", cp,
                                 jit_codepoint_is_combining(cp), combining[cp]);
                n_invisible += invisible[cp];
                n_combining += combining[cp];
        }
        /* The files were read, not found empty. */
        assert_true(n_invisible > 4000);
        assert_true(n_combining > 1900);
        free(invisible);
        free(combining);
}

/* ---------------------------------------------------------------------------------------
 * Field accessors */

static void test_get_string(void **state) {
        json_object *o =
                parse_ok("{\"version\":1,\"reason\":\"deploy fix\",\"n\":5,\"nul\":null,"
                         "\"arr\":[\"x\"],\"empty\":\"\",\"utf\":\"\\u00e9\\ud83d\\ude00\"}");
        const char *s = "sentinel";

        assert_int_equal(jit_message_get_string(o, "reason", 1024, true, &s), 0);
        assert_string_equal(s, "deploy fix");
        assert_int_equal(jit_message_get_string(o, "empty", 1024, true, &s), 0);
        assert_string_equal(s, "");
        assert_int_equal(jit_message_get_string(o, "utf", 1024, true, &s), 0);
        assert_string_equal(s, "\xc3\xa9\xf0\x9f\x98\x80");

        /* Absent or null. */
        s = "sentinel";
        assert_int_equal(jit_message_get_string(o, "ticket", 128, false, &s), 0);
        assert_null(s);
        s = "sentinel";
        assert_int_equal(jit_message_get_string(o, "nul", 128, false, &s), 0);
        assert_null(s);
        assert_int_equal(jit_message_get_string(o, "ticket", 128, true, &s), -EINVAL);
        assert_null(s);
        assert_int_equal(jit_message_get_string(o, "nul", 128, true, &s), -EINVAL);

        /* Another type. */
        assert_int_equal(jit_message_get_string(o, "n", 128, false, &s), -EINVAL);
        assert_null(s);
        assert_int_equal(jit_message_get_string(o, "arr", 128, false, &s), -EINVAL);
        assert_int_equal(jit_message_get_string(o, "version", 128, true, &s), -EINVAL);
        json_object_put(o);
}

static void test_get_string_length(void **state) {
        json_object *o = parse_ok("{\"version\":1,\"t\":\"abcd\",\"e\":\"\xc3\xa9\xc3\xa9\"}");
        const char *s;

        assert_int_equal(jit_message_get_string(o, "t", 4, true, &s), 0);
        assert_string_equal(s, "abcd");
        assert_int_equal(jit_message_get_string(o, "t", 3, true, &s), -E2BIG);
        assert_null(s);
        /* The limit is in bytes, not characters. */
        assert_int_equal(jit_message_get_string(o, "e", 4, true, &s), 0);
        assert_int_equal(jit_message_get_string(o, "e", 3, true, &s), -E2BIG);
        json_object_put(o);

        /* At a protocol limit and one past it. */
        char *msg = malloc(JIT_REASON_MAX + 64);
        assert_non_null(msg);
        int n = snprintf(msg, JIT_REASON_MAX + 64, "{\"version\":1,\"reason\":\"");
        memset(msg + n, 'r', JIT_REASON_MAX);
        strcpy(msg + n + JIT_REASON_MAX, "\"}");
        o = parse_ok(msg);
        assert_int_equal(jit_message_get_string(o, "reason", JIT_REASON_MAX, true, &s), 0);
        assert_int_equal(strlen(s), JIT_REASON_MAX);
        assert_int_equal(jit_message_get_string(o, "reason", JIT_REASON_MAX - 1, true, &s), -E2BIG);
        json_object_put(o);
        free(msg);
}

static void test_get_string_unsafe(void **state) {
        static const char *const keys[] = { "nul", "nul_end", "tab", "nl",  "esc",
                                            "del", "nel",     "csi", "bell" };
        json_object *o =
                parse_ok("{\"version\":1,\"nul\":\"a\\u0000b\",\"nul_end\":\"ab\\u0000\","
                         "\"tab\":\"a\\tb\",\"nl\":\"a\\nb\",\"esc\":\"\\u001b[2J\","
                         "\"del\":\"\\u007f\",\"nel\":\"a\\u0085b\",\"csi\":\"\\u009b31m\","
                         "\"bell\":\"\\u0007\"}");
        const char *s;

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                s = "sentinel";
                int r = jit_message_get_string(o, keys[i], 1024, true, &s);
                if (r != -EBADMSG)
                        fail_msg("field \"%s\": %d, expected -EBADMSG", keys[i], r);
                assert_null(s);
        }
        json_object_put(o);

        /* Overlong UTF-8 that slips past the tokenizer is caught here. */
        o = json_object_new_object();
        json_object_object_add(o, "x", json_object_new_string("\xc0\xaf"));
        json_object_object_add(o, "y", json_object_new_string("\xed\xa0\x80"));
        assert_int_equal(jit_message_get_string(o, "x", 1024, true, &s), -EBADMSG);
        assert_int_equal(jit_message_get_string(o, "y", 1024, true, &s), -EBADMSG);
        json_object_put(o);
}

static void test_get_int(void **state) {
        json_object *o = parse_ok(
                "{\"version\":1,\"id\":42,\"neg\":-7,\"zero\":0,\"big\":9223372036854775807,"
                "\"min\":-9223372036854775808,\"dbl\":42.0,\"exp\":1e2,\"str\":\"42\","
                "\"t\":true,\"nul\":null,\"obj\":{}}");
        int64_t n = -99;
        bool present = true;

        assert_int_equal(jit_message_get_int(o, "id", 1, INT64_MAX, true, &n, &present), 0);
        assert_int_equal(n, 42);
        assert_true(present);
        assert_int_equal(jit_message_get_int(o, "id", 42, 42, true, &n, NULL),
                         0); /* bounds inclusive */
        assert_int_equal(jit_message_get_int(o, "neg", -7, -7, true, &n, NULL), 0);
        assert_int_equal(n, -7);
        assert_int_equal(jit_message_get_int(o, "big", 1, INT64_MAX, true, &n, NULL), 0);
        assert_true(n == INT64_MAX);
        assert_int_equal(jit_message_get_int(o, "min", INT64_MIN, 0, true, &n, NULL), 0);
        assert_true(n == INT64_MIN);

        /* Out of range. */
        n = -99;
        assert_int_equal(jit_message_get_int(o, "id", 1, 41, true, &n, &present), -EINVAL);
        assert_int_equal(jit_message_get_int(o, "id", 43, 100, true, &n, &present), -EINVAL);
        assert_int_equal(jit_message_get_int(o, "zero", 1, INT64_MAX, true, &n, &present), -EINVAL);
        assert_int_equal(jit_message_get_int(o, "neg", 1, INT64_MAX, true, &n, &present), -EINVAL);
        assert_int_equal(n, -99);
        assert_false(present);

        /* Other types, even when they look like the number. */
        static const char *const wrong[] = { "dbl", "exp", "str", "t", "obj" };
        for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
                assert_int_equal(
                        jit_message_get_int(o, wrong[i], INT64_MIN, INT64_MAX, false, &n, &present),
                        -EINVAL);
        assert_int_equal(n, -99);

        /* Absent or null. */
        present = true;
        assert_int_equal(jit_message_get_int(o, "duration", 1, 100, false, &n, &present), 0);
        assert_false(present);
        assert_int_equal(n, -99);
        present = true;
        assert_int_equal(jit_message_get_int(o, "nul", 1, 100, false, &n, &present), 0);
        assert_false(present);
        assert_int_equal(jit_message_get_int(o, "duration", 1, 100, true, &n, &present), -EINVAL);
        assert_int_equal(jit_message_get_int(o, "nul", 1, 100, true, &n, NULL), -EINVAL);
        json_object_put(o);
}

static void test_get_bool(void **state) {
        json_object *o = parse_ok(
                "{\"version\":1,\"yes\":true,\"no\":false,\"one\":1,\"s\":\"true\",\"nul\":null}");
        bool b;

        b = false;
        assert_int_equal(jit_message_get_bool(o, "yes", &b), 0);
        assert_true(b);
        b = true;
        assert_int_equal(jit_message_get_bool(o, "no", &b), 0);
        assert_false(b);
        b = true;
        assert_int_equal(jit_message_get_bool(o, "absent", &b), 0);
        assert_false(b);
        b = true;
        assert_int_equal(jit_message_get_bool(o, "nul", &b), 0);
        assert_false(b);
        assert_int_equal(jit_message_get_bool(o, "one", &b), -EINVAL);
        assert_int_equal(jit_message_get_bool(o, "s", &b), -EINVAL);
        assert_int_equal(jit_message_get_bool(o, "version", &b), -EINVAL);
        json_object_put(o);
}

/* ---------------------------------------------------------------------------------------
 * Replies */

static void test_reply_ok(void **state) {
        json_object *o = jit_reply_ok(NULL);
        assert_non_null(o);
        assert_serializes_to(o, "{\"version\":1,\"ok\":true}");
        json_object_put(o);

        json_object *result = json_object_new_object();
        json_object_object_add(result, "allowed", json_object_new_boolean(true));
        json_object_object_add(result, "request_id", json_object_new_int64(7));
        o = jit_reply_ok(result); /* consumes result */
        assert_serializes_to(
                o, "{\"version\":1,\"ok\":true,\"result\":{\"allowed\":true,\"request_id\":7}}");

        /* A reply is a valid message for the client's parser. */
        char *s = jit_message_serialize(o, NULL);
        json_object *back = NULL;
        assert_int_equal(parse(s, &back), 0);
        json_object_put(back);
        free(s);
        json_object_put(o);

        o = jit_reply_ok(json_object_new_array());
        assert_serializes_to(o, "{\"version\":1,\"ok\":true,\"result\":[]}");
        json_object_put(o);
}

static void test_reply_error(void **state) {
        static const struct {
                JitError e;
                const char *code;
        } codes[] = {
                { JIT_ERROR_BAD_REQUEST, "bad-request" }, { JIT_ERROR_REFUSED, "refused" },
                { JIT_ERROR_NOT_FOUND, "not-found" },     { JIT_ERROR_CONFLICT, "conflict" },
                { JIT_ERROR_INTERNAL, "internal" },
        };
        json_object *o, *v;
        char expect[256];

        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
                o = jit_reply_error(codes[i].e, "request %d: %s", 42, "nope");
                snprintf(
                        expect, sizeof(expect),
                        "{\"version\":1,\"ok\":false,\"error\":\"%s\",\"message\":\"request 42: nope\"}",
                        codes[i].code);
                assert_serializes_to(o, expect);
                json_object_put(o);
        }

        /* A long message is cut, not overflowed. */
        char long_text[2000];
        memset(long_text, 'm', sizeof(long_text) - 1);
        long_text[sizeof(long_text) - 1] = '\0';
        o = jit_reply_error(JIT_ERROR_INTERNAL, "%s", long_text);
        assert_true(json_object_object_get_ex(o, "message", &v));
        assert_int_equal(json_object_get_string_len(v), 511);
        json_object_put(o);

        /* The message is data, never a format string of its own. */
        o = jit_reply_error(JIT_ERROR_BAD_REQUEST, "%s", "%s%n%x");
        assert_true(json_object_object_get_ex(o, "message", &v));
        assert_string_equal(json_object_get_string(v), "%s%n%x");
        json_object_put(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_error_strings),
                cmocka_unit_test(test_limit_constants),
                cmocka_unit_test(test_frame_header_big_endian),
                cmocka_unit_test_setup_teardown(test_reader_whole_frame, pair_setup, pair_teardown),
                cmocka_unit_test_setup_teardown(test_reader_byte_by_byte, pair_setup,
                                                pair_teardown),
                cmocka_unit_test_setup_teardown(test_one_frame_reader, pair_setup, pair_teardown),
                cmocka_unit_test_setup_teardown(test_reader_does_not_read_past_frame, pair_setup,
                                                pair_teardown),
                cmocka_unit_test_setup_teardown(test_reader_zero_length, pair_setup, pair_teardown),
                cmocka_unit_test_setup_teardown(test_reader_oversized_before_allocation, pair_setup,
                                                pair_teardown),
                cmocka_unit_test_setup_teardown(test_reader_exact_max, pair_setup, pair_teardown),
                cmocka_unit_test_setup_teardown(test_reader_eof, pair_setup, pair_teardown),
                cmocka_unit_test_setup_teardown(test_reader_eof_mid_header, pair_setup,
                                                pair_teardown),
                cmocka_unit_test_setup_teardown(test_reader_eof_mid_body, pair_setup,
                                                pair_teardown),
                cmocka_unit_test(test_reader_bad_fd),
                cmocka_unit_test_setup_teardown(test_send_recv_round_trip, pair_setup,
                                                pair_teardown),
                cmocka_unit_test_setup_teardown(test_recv_two_frames_in_order, pair_setup,
                                                pair_teardown),
                cmocka_unit_test_setup_teardown(test_send_refuses_empty, pair_setup, pair_teardown),
                cmocka_unit_test_setup_teardown(test_send_to_closed_peer, pair_setup,
                                                pair_teardown),
                cmocka_unit_test_setup_teardown(test_send_timeout, pair_setup, pair_teardown),
                cmocka_unit_test_setup_teardown(test_recv_timeout, pair_setup, pair_teardown),
                cmocka_unit_test_setup_teardown(test_recv_timeout_mid_frame, pair_setup,
                                                pair_teardown),
                cmocka_unit_test_setup_teardown(test_recv_deadline_in_past, pair_setup,
                                                pair_teardown),
                cmocka_unit_test_setup_teardown(test_recv_eof_and_oversize, pair_setup,
                                                pair_teardown),
                cmocka_unit_test_setup_teardown(test_send_recv_max_reply, pair_setup,
                                                pair_teardown),
                cmocka_unit_test(test_parse_valid),
                cmocka_unit_test(test_parse_empty_and_truncated),
                cmocka_unit_test(test_parse_trailing_data),
                cmocka_unit_test(test_parse_top_level_not_object),
                cmocka_unit_test(test_parse_not_strict_json),
                cmocka_unit_test(test_parse_depth),
                cmocka_unit_test(test_parse_invalid_utf8),
                cmocka_unit_test(test_parse_nul),
                cmocka_unit_test(test_parse_version),
                cmocka_unit_test(test_serialize),
                cmocka_unit_test(test_strict_duplicate_names),
                cmocka_unit_test(test_strict_distinct_names),
                cmocka_unit_test(test_strict_key_limit),
                cmocka_unit_test(test_strict_non_finite_numbers),
                cmocka_unit_test(test_strict_number_grammar),
                cmocka_unit_test(test_strict_raw_controls_in_strings),
                cmocka_unit_test(test_strict_surrogates),
                cmocka_unit_test(test_strict_escapes),
                cmocka_unit_test(test_strict_structure),
                cmocka_unit_test(test_strict_depth),
                cmocka_unit_test(test_json_strict_validate),
                cmocka_unit_test(test_strict_many_names_bounded),
                cmocka_unit_test(test_text_safe_accepts),
                cmocka_unit_test(test_text_safe_refuses_controls),
                cmocka_unit_test(test_text_safe_refuses_bad_utf8),
                cmocka_unit_test(test_text_refuses_invisible),
                cmocka_unit_test(test_text_combining_runs),
                cmocka_unit_test(test_text_problem_message),
                cmocka_unit_test(test_get_string_invisible),
                cmocka_unit_test(test_text_escape),
                cmocka_unit_test(test_text_tables_match_unicode_data),
                cmocka_unit_test(test_get_string),
                cmocka_unit_test(test_get_string_length),
                cmocka_unit_test(test_get_string_unsafe),
                cmocka_unit_test(test_get_int),
                cmocka_unit_test(test_get_bool),
                cmocka_unit_test(test_reply_ok),
                cmocka_unit_test(test_reply_error),
        };
        return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}
