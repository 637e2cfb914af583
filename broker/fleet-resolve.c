/* SPDX-License-Identifier: MIT */
#include "fleet-resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cleanup.h"

/* Owned by the loop and by the thread: whoever lets go last frees it. The loop alone
 * touches the event source and the callback; the thread alone writes the answer, before it
 * signals the eventfd. */
struct FleetResolve {
        atomic_int refs;
        int efd;
        sd_event_source *source;
        FleetResolveDone done;
        void *userdata;
        char *names[FLEET_RESOLVE_NAMES_MAX];
        FleetResolved res;
};

static atomic_int threads_running;

static void unref(FleetResolve *r) {
        if (atomic_fetch_sub(&r->refs, 1) != 1)
                return;
        if (r->efd >= 0)
                close(r->efd);
        for (size_t i = 0; i < r->res.n_names; i++)
                free(r->names[i]);
        free(r);
}

bool fleet_host_is_literal(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];

        return !s || !*s || s[0] == '/' || s[0] == '@' || inet_pton(AF_INET, s, buf) == 1 ||
               inet_pton(AF_INET6, s, buf) == 1;
}

static void resolve_one(FleetResolved *res, size_t i) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
        struct addrinfo *list = NULL;

        /* No AI_ADDRCONFIG: it hides loopback addresses on a host with no other ones. */
        int k = getaddrinfo(res->names[i], NULL, &hints, &list);
        if (k != 0) {
                res->error[i] = gai_strerror(k);
                return;
        }
        for (struct addrinfo *a = list; a && res->n_addrs[i] < FLEET_RESOLVE_ADDRS_MAX;
             a = a->ai_next) {
                char text[INET6_ADDRSTRLEN];
                const void *addr =
                        a->ai_family == AF_INET
                                ? (const void *) &((struct sockaddr_in *) a->ai_addr)->sin_addr
                                : (const void *) &((struct sockaddr_in6 *) a->ai_addr)->sin6_addr;
                if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
                    !inet_ntop(a->ai_family, addr, text, sizeof(text)))
                        continue;
                bool seen = false;
                for (size_t j = 0; j < res->n_addrs[i] && !seen; j++)
                        seen = STREQ(res->addrs[i][j], text);
                if (!seen)
                        memcpy(res->addrs[i][res->n_addrs[i]++], text, sizeof(text));
        }
        freeaddrinfo(list);
        if (res->n_addrs[i] == 0)
                res->error[i] = "no IPv4 or IPv6 address";
}

static void *resolve_thread(void *userdata) {
        FleetResolve *r = userdata;
        uint64_t one = 1;

        for (size_t i = 0; i < r->res.n_names; i++)
                resolve_one(&r->res, i);
        /* The eventfd stays open until the last reference goes: this write never lands
         * elsewhere. */
        if (write(r->efd, &one, sizeof(one)) < 0) {
                /* An eventfd counter never overflows from one write: nothing to do. */
        }
        atomic_fetch_sub(&threads_running, 1);
        unref(r);
        return NULL;
}

static int on_answer(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        FleetResolve *r = userdata;
        FleetResolveDone done = r->done;
        uint64_t n;

        if (read(fd, &n, sizeof(n)) < 0 && errno == EAGAIN)
                return 0; /* not yet */
        r->source = sd_event_source_disable_unref(r->source);
        r->done = NULL;
        if (done)
                done(r->userdata, &r->res);
        unref(r);
        return 0;
}

int fleet_resolve_start(sd_event *event, const char *const *names, size_t n, FleetResolveDone done,
                        void *userdata, FleetResolve **ret) {
        pthread_attr_t attr;
        pthread_t thread;
        sigset_t all, saved;
        int k;

        if (n == 0 || n > FLEET_RESOLVE_NAMES_MAX)
                return -E2BIG;
        if (atomic_load(&threads_running) >= FLEET_RESOLVE_THREADS_MAX)
                return -EBUSY;
        FleetResolve *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        atomic_init(&r->refs, 1);
        r->done = done;
        r->userdata = userdata;
        r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (r->efd < 0) {
                k = -errno;
                unref(r);
                return k;
        }
        for (size_t i = 0; i < n; i++) {
                if (!(r->names[i] = strdup(names[i]))) {
                        unref(r);
                        return -ENOMEM;
                }
                r->res.names[i] = r->names[i];
                r->res.n_names = i + 1;
        }
        k = sd_event_add_io(event, &r->source, r->efd, EPOLLIN, on_answer, r);
        if (k < 0) {
                unref(r);
                return k;
        }
        (void) sd_event_source_set_description(r->source, "fleet-resolve");

        /* The thread takes no signals: the loop handles them. It needs little stack. */
        k = pthread_attr_init(&attr);
        if (k == 0)
                k = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (k == 0)
                k = pthread_attr_setstacksize(&attr, 256 * 1024);
        if (k != 0) {
                r->source = sd_event_source_disable_unref(r->source);
                unref(r);
                return -k;
        }
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved);
        atomic_fetch_add(&r->refs, 1);
        atomic_fetch_add(&threads_running, 1);
        k = pthread_create(&thread, &attr, resolve_thread, r);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        pthread_attr_destroy(&attr);
        if (k != 0) {
                atomic_fetch_sub(&threads_running, 1);
                atomic_fetch_sub(&r->refs, 1);
                r->source = sd_event_source_disable_unref(r->source);
                unref(r);
                return -k;
        }
        *ret = r;
        return 0;
}

FleetResolve *fleet_resolve_cancel(FleetResolve *r) {
        if (!r)
                return NULL;
        r->source = sd_event_source_disable_unref(r->source);
        r->done = NULL;
        unref(r);
        return NULL;
}
