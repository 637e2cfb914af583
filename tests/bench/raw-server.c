/* SPDX-License-Identifier: MIT */
/* The baseline of bench_socket.py: the least a server speaking jit's framing must do for a
 * check — accept, learn the peer from SO_PEERCRED, read one frame, send one reply, close —
 * on one epoll loop, with a fixed reply the size of the broker's. Not part of the product.
 *
 *   raw-server SOCKET_PATH        (runs until killed; prints "ready" once listening) */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HEADER 4
#define BODY_MAX 65536

typedef struct {
        int fd;
        size_t got;
        uint8_t buf[HEADER + 1024];
} Conn;

static const char reply_body[] =
        "{\"version\":1,\"ok\":true,\"result\":{\"allowed\":true,\"request_id\":1,"
        "\"expires_at\":\"2026-12-07T01:00:00.000000Z\"}}";

static void answer(int fd) {
        uint8_t out[HEADER + sizeof(reply_body)];
        size_t len = sizeof(reply_body) - 1;
        out[0] = 0, out[1] = 0, out[2] = (uint8_t) (len >> 8), out[3] = (uint8_t) len;
        memcpy(out + HEADER, reply_body, len);
        (void) send(fd, out, HEADER + len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "usage: raw-server SOCKET_PATH\n");
                return 2;
        }
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        (void) unlink(argv[1]);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(lfd, SOMAXCONN) < 0) {
                perror("raw-server: listen");
                return 1;
        }
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
                perror("raw-server: epoll");
                return 1;
        }
        printf("ready\n");
        fflush(stdout);

        for (;;) {
                struct epoll_event evs[64];
                int n = epoll_wait(ep, evs, 64, -1);
                if (n < 0 && errno != EINTR)
                        return 1;
                for (int i = 0; i < n; i++) {
                        Conn *c = evs[i].data.ptr;
                        if (!c) {
                                for (;;) {
                                        int fd = accept4(lfd, NULL, NULL,
                                                         SOCK_CLOEXEC | SOCK_NONBLOCK);
                                        if (fd < 0)
                                                break;
                                        struct ucred peer;
                                        socklen_t l = sizeof(peer);
                                        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &l) <
                                            0) {
                                                close(fd);
                                                continue;
                                        }
                                        c = calloc(1, sizeof(Conn));
                                        c->fd = fd;
                                        struct epoll_event cev = { .events = EPOLLIN,
                                                                   .data.ptr = c };
                                        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
                                                close(fd);
                                                free(c);
                                        }
                                }
                                continue;
                        }
                        ssize_t k =
                                recv(c->fd, c->buf + c->got, sizeof(c->buf) - c->got, MSG_DONTWAIT);
                        if (k > 0)
                                c->got += (size_t) k;
                        size_t want = c->got >= HEADER
                                              ? HEADER + ((size_t) c->buf[2] << 8 | c->buf[3])
                                              : SIZE_MAX;
                        if (k > 0 && c->got < want && c->got < sizeof(c->buf))
                                continue;
                        if (k > 0 || (k < 0 && errno != EAGAIN))
                                ;
                        else if (k < 0)
                                continue;
                        if (c->got >= want)
                                answer(c->fd);
                        close(c->fd); /* also leaves the epoll set */
                        free(c);
                }
        }
}
