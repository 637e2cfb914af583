/* SPDX-License-Identifier: MIT */
/* Load for bench_socket.py: N clients, each a thread that connects, sends one frame, reads
 * the whole reply and closes, again and again for a given time, as pam_jit does once per
 * sudo. With GAP_US, each client waits that long after each exchange, as the server would
 * idle between two sudo runs (bench_sudo.py). Prints "exchanges seconds p50_us p99_us
 * errors max_us". Not part of the product.
 *
 *   bench-load SOCKET_PATH CLIENTS SECONDS JSON [GAP_US] */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SAMPLES_MAX (4u << 20)

static struct sockaddr_un addr = { .sun_family = AF_UNIX };
static const char *body;
static size_t body_len;
static uint64_t end_at;
static long gap_us;

typedef struct {
        pthread_t thread;
        uint32_t *samples; /* microseconds */
        size_t n, cap;
        unsigned long errors;
} Client;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int exchange(void) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &addr, sizeof(addr)) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        uint8_t h[4] = { (uint8_t) (body_len >> 24), (uint8_t) (body_len >> 16),
                         (uint8_t) (body_len >> 8), (uint8_t) body_len };
        struct iovec iov[2] = { { h, 4 }, { (void *) body, body_len } };
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
        int ok = -1;
        if (sendmsg(fd, &m, MSG_NOSIGNAL) == (ssize_t) (4 + body_len)) {
                uint8_t buf[8192];
                size_t got = 0, want = SIZE_MAX;
                for (;;) {
                        ssize_t k = recv(fd, buf + got, sizeof(buf) - got, 0);
                        if (k <= 0)
                                break;
                        got += (size_t) k;
                        if (got >= 4)
                                want = 4 + ((size_t) buf[0] << 24 | (size_t) buf[1] << 16 |
                                            (size_t) buf[2] << 8 | buf[3]);
                        if (got >= want || got == sizeof(buf)) {
                                ok = got >= want && memmem(buf, got, "\"ok\":true", 9) ? 0 : -1;
                                break;
                        }
                }
        }
        close(fd);
        return ok;
}

static void *client_main(void *userdata) {
        Client *c = userdata;
        while (c->n < c->cap) {
                uint64_t t = now_ns();
                if (t >= end_at)
                        break;
                if (exchange() < 0)
                        c->errors++;
                else
                        c->samples[c->n++] = (uint32_t) ((now_ns() - t) / 1000);
                if (gap_us > 0) {
                        struct timespec gap = { gap_us / 1000000, (gap_us % 1000000) * 1000 };
                        (void) clock_nanosleep(CLOCK_MONOTONIC, 0, &gap, NULL);
                }
        }
        return NULL;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
        if (argc != 5 && argc != 6) {
                fprintf(stderr, "usage: bench-load SOCKET_PATH CLIENTS SECONDS JSON [GAP_US]\n");
                return 2;
        }
        snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", argv[1]);
        int n = atoi(argv[2]);
        double seconds = atof(argv[3]);
        body = argv[4];
        body_len = strlen(body);
        gap_us = argc == 6 ? atol(argv[5]) : 0;
        if (n < 1 || n > 1024 || seconds <= 0 || gap_us < 0 || gap_us > 10000000) {
                fprintf(stderr, "bench-load: bad arguments\n");
                return 2;
        }
        Client *clients = calloc((size_t) n, sizeof(Client));
        uint64_t start = now_ns();
        end_at = start + (uint64_t) (seconds * 1e9);
        for (int i = 0; i < n; i++) {
                clients[i].cap = SAMPLES_MAX / (unsigned) n;
                clients[i].samples = malloc(clients[i].cap * sizeof(uint32_t));
                pthread_create(&clients[i].thread, NULL, client_main, &clients[i]);
        }
        size_t total = 0;
        unsigned long errors = 0;
        for (int i = 0; i < n; i++) {
                pthread_join(clients[i].thread, NULL);
                total += clients[i].n;
                errors += clients[i].errors;
        }
        double elapsed = (double) (now_ns() - start) / 1e9;
        uint32_t *all = malloc((total + 1) * sizeof(uint32_t));
        size_t k = 0;
        for (int i = 0; i < n; i++) {
                memcpy(all + k, clients[i].samples, clients[i].n * sizeof(uint32_t));
                k += clients[i].n;
        }
        qsort(all, total, sizeof(uint32_t), cmp_u32);
        printf("%zu %.3f %u %u %lu %u\n", total, elapsed, total ? all[total / 2] : 0,
               total ? all[(size_t) ((double) total * 0.99)] : 0, errors,
               total ? all[total - 1] : 0);
        return 0;
}
