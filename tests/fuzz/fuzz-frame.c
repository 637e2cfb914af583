/* SPDX-License-Identifier: MIT */
/* The frame reader (common/protocol.c) on a real socket: the bytes a peer sends, in the
 * pieces it sends them in.
 *
 * Input: one control byte, then the bytes on the wire.
 *   bit 0-1  the reader's bound: JIT_REQUEST_MAX (the broker), JIT_REPLY_MAX (a client),
 *            16, or 1 (small bounds reach the size check with short inputs)
 *   bit 2    jit_frame_recv (the client's blocking reader, all bytes and then EOF) instead of
 *            jit_frame_reader_feed (the broker's incremental reader)
 *   bit 3-7  feed: the size of each piece written before the reader runs, 1..31 bytes
 *            (0: everything at once)
 * A complete frame's body then goes through jit_message_parse(), as the broker and the
 * client do with it. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol.h"
#include "timeutil.h"

#include "fuzz-check.h"

static const size_t bounds[4] = { JIT_REQUEST_MAX, JIT_REPLY_MAX, 16, 1 };

static size_t header_length(const uint8_t *p) {
        return ((size_t) p[0] << 24) | ((size_t) p[1] << 16) | ((size_t) p[2] << 8) | p[3];
}

/* What a reader that said "whole frame" must hold: the header's length, within bounds, and
 * exactly the bytes that followed the header. */
static void check_frame(const uint8_t *wire, size_t wire_len, size_t max, const char *body,
                        size_t body_len) {
        CHECK(wire_len >= JIT_FRAME_HEADER_SIZE);
        CHECK(body_len == header_length(wire));
        CHECK(body_len >= 1 && body_len <= max);
        CHECK(wire_len - JIT_FRAME_HEADER_SIZE >= body_len);
        CHECK(memcmp(body, wire + JIT_FRAME_HEADER_SIZE, body_len) == 0);
        CHECK(body[body_len] == '\0');

        json_object *o = NULL;
        if (jit_message_parse(body, body_len, &o) == 0)
                json_object_put(o);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (k < 0)
                        return -errno;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int sv[2];

        if (size < 1)
                return 0;
        uint8_t control = data[0];
        const uint8_t *wire = data + 1;
        size_t wire_len = size - 1;
        size_t max = bounds[control & 3];
        bool blocking_reader = control & 4;
        size_t piece = control >> 3;

        /* Stream sockets, as the broker's; buffers far above what an input can hold. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        int sndbuf = 1 << 20;
        (void) setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
        (void) setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf));

        if (blocking_reader) {
                char *body = NULL;
                size_t body_len = 0;

                if (write_all(sv[1], wire, wire_len) < 0)
                        goto out; /* more than the socket holds: not the reader's business */
                shutdown(sv[1], SHUT_WR);
                if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
                        abort();
                /* Everything is there, then EOF: the reader never waits for the deadline. */
                int r = jit_frame_recv(sv[0], max, now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC,
                                       &body, &body_len);
                if (r == 0) {
                        check_frame(wire, wire_len, max, body, body_len);
                        free(body);
                } else
                        CHECK(r == -EMSGSIZE || r == -ECONNRESET);
                goto out;
        }

        JitFrameReader reader;
        size_t sent = 0;
        int r = 0;

        jit_frame_reader_init(&reader, max);
        for (;;) {
                size_t n = piece == 0 ? wire_len - sent : piece;
                if (n > wire_len - sent)
                        n = wire_len - sent;
                if (n > 0 && write_all(sv[1], wire + sent, n) < 0) {
                        r = 2; /* more than the socket holds: not the reader's business */
                        break;
                }
                sent += n;
                if (sent == wire_len)
                        shutdown(sv[1], SHUT_WR);

                r = jit_frame_reader_feed(&reader, sv[0]);
                if (r != 0)
                        break;
                /* 0 means "more is needed": only true while bytes are still to come. */
                CHECK(sent < wire_len);
        }
        if (r == 1)
                check_frame(wire, wire_len, max, reader.body, reader.body_len);
        else if (r != 2)
                CHECK(r == -EMSGSIZE || r == -ECONNRESET);
        jit_frame_reader_done(&reader);
out:
        close(sv[0]);
        close(sv[1]);
        return 0;
}
