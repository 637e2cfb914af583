/* SPDX-License-Identifier: MIT */
/* The fleet's load generator (docs/fleet.md, "Propagation"; driven by bench_fleet.py): one
 * process playing N host brokers against the fleet store through pgbouncer, with the
 * connection pattern and the statements of the design:
 *
 *   - each host holds two client connections: one as the shared poll login, opened at
 *     start, and one as its own role (jit_host_NAME), opened at its first fetch and kept
 *     (opened at start, 10,000 of them cost 10,000 server logins at once: pgbouncer needs
 *     one per pool before it lets a client in);
 *   - every 2 s with the broker's jitter (fleet_poll_delay()) it polls from its cursor with
 *     FLEET_POLL_SQL, moves the cursor by the broker's rule
 *     (fleet_cursor_advance()), and matches each change's selector against its own name and
 *     labels (host_selector_matches());
 *   - when a change concerns it, it sends the broker's fetch (FLEET_FETCH_SQL) over its own
 *     role for the requests among the changes that concern it, checks that the request is in the
 * answer, and polls again at once (as the broker does after each answer); a full page is followed
 * by the next poll at once;
 *   - a query not answered within 2 s, or a connection lost, drops that connection, which is
 *     made again after 1 s, and the host reads again from its applied cursor (as the broker).
 *
 * Host i (counting from --first) is named h%05d, with labels owner=o(i % 100) and
 * environment=e(i % 10), so that a selector owner=oK picks 1% of the hosts and
 * environment=eK 10%.
 *
 * Writes, for every change that concerned a host, "seq host usec" to --events (usec: the
 * CLOCK_REALTIME at which the host had the fetch's answer), prints "ready" once every host
 * is connected (--ramp: hosts start at that rate, as brokers start at their own moments,
 * not all in the same millisecond), "window" when SIGUSR1 starts the measured window (the counters
 * restart), and at SIGTERM or SIGINT a summary line of the window's counters and round trips.
 *
 * --fetch-shared PASSWORD: the fetch goes through the poll login, as the broker sends it when
 * fleet.poll_credentials is set (FLEET_FETCH_SHARED_SQL: the store's jit_fleet.fetch_for_host,
 * schema version 8), with the fetch key derived from PASSWORD (every host's: bench_fleet.py
 * registers the hash of that key for all of them), instead of the host's own role.
 *
 * --baseline K: instead, K sequential `SELECT 1` round trips on one connection (the poll
 * conninfo): their p50 and p99, the latency floor of the same pgbouncer. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fleet-fetch-key.h"
#include "fleet-poll.h"
#include "fleet-sql.h"
#include "host-selector.h"

#define QUERY_TIMEOUT_USEC (2 * 1000000ULL) /* the broker's FLEET_QUERY_TIMEOUT_USEC */
#define CONNECT_TIMEOUT_USEC (5 * 1000000ULL)
#define RETRY_USEC (1 * 1000000ULL)
#define POLL_ROWS 1000 /* the broker's FLEET_POLL_ROWS_MAX */
#define CONCERNED_MAX 1000

typedef enum ConnState {
        CONN_DOWN,
        CONN_CONNECTING,
        CONN_IDLE,
        CONN_BUSY
} ConnState;

struct Host;

typedef struct Conn {
        struct Host *host;
        bool own_role; /* the host's own role (fetch) rather than the shared poll login */
        PGconn *pg;
        ConnState state;
        int fd;
        uint32_t events;
        uint64_t deadline; /* CLOCK_MONOTONIC usec: connect or query deadline */
        uint64_t sent;     /* when the query in flight was sent */
        PGresult *result;
        bool queued; /* waiting for a connection slot */
} Conn;

typedef struct Host {
        unsigned idx;
        char name[16];
        char role[32];
        char owner[8], environment[8];
        HostLabel labels[2];
        Conn poll, fetch;
        int64_t cursor; /* applied: the broker's kept cursor */
        int64_t seen;   /* the next poll goes on from here */
        int64_t fetch_from, fetch_to;
        bool fetching;                    /* a shared fetch is in flight on the poll connection */
        int64_t concerned[CONCERNED_MAX]; /* seqs of the fetch in flight that concern us */
        int64_t concerned_req[CONCERNED_MAX];
        size_t n_concerned;
        uint64_t due; /* CLOCK_MONOTONIC usec of the next poll; UINT64_MAX: none */
        size_t heap_at;
        bool up;
} Host;

static Host *hosts;
static unsigned n_hosts;
static int epfd;
static const char *poll_conninfo, *fetch_conninfo;
static FILE *events_out;
/* --fetch-shared: the fetch through the poll login (FLEET_FETCH_SHARED_SQL) with this key */
static bool fetch_shared;
static char fetch_key[FLEET_FETCH_KEY_HEX_LEN + 1];
static volatile sig_atomic_t stopping, window_start;
static unsigned n_up;

/* Connection attempts in flight at most, and the queue of those waiting. */
static unsigned connecting_max = 64, connecting_now;
static Conn **connect_queue;
static size_t connect_queue_head, connect_queue_len, connect_queue_cap;

static struct {
        uint64_t polls, polls_rows, fetches, fetch_rows, concerned, missing, query_errors, timeouts,
                connect_timeouts, connection_losses, connects;
} stats;

/* Round trips: a histogram in 10 µs steps up to 10 s. */
#define HIST_STEP_USEC 10
#define HIST_BINS 1000000
static uint32_t *poll_hist, *fetch_hist;

static uint64_t now_mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t now_real(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

static uint32_t random32(void) {
        uint32_t r;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r))
                r = (uint32_t) rand();
        return r;
}

static void hist_add(uint32_t *h, uint64_t usec) {
        uint64_t bin = usec / HIST_STEP_USEC;
        h[bin < HIST_BINS ? bin : HIST_BINS - 1]++;
}

static double hist_quantile(const uint32_t *h, double q) {
        uint64_t total = 0, seen = 0;
        for (size_t i = 0; i < HIST_BINS; i++)
                total += h[i];
        if (total == 0)
                return 0;
        uint64_t want = (uint64_t) (q * (double) total);
        for (size_t i = 0; i < HIST_BINS; i++) {
                seen += h[i];
                if (seen > want)
                        return (double) (i * HIST_STEP_USEC) / 1000.0;
        }
        return (double) (HIST_BINS * HIST_STEP_USEC) / 1000.0;
}

/* ---- the poll schedule: a binary heap of hosts by due time ---- */

static Host **heap;
static size_t heap_len;

static void heap_swap(size_t a, size_t b) {
        Host *t = heap[a];
        heap[a] = heap[b];
        heap[b] = t;
        heap[a]->heap_at = a;
        heap[b]->heap_at = b;
}

static void heap_up(size_t i) {
        while (i > 0 && heap[(i - 1) / 2]->due > heap[i]->due) {
                heap_swap(i, (i - 1) / 2);
                i = (i - 1) / 2;
        }
}

static void heap_down(size_t i) {
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < heap_len && heap[l]->due < heap[m]->due)
                        m = l;
                if (r < heap_len && heap[r]->due < heap[m]->due)
                        m = r;
                if (m == i)
                        return;
                heap_swap(i, m);
                i = m;
        }
}

static void schedule(Host *h, uint64_t due) {
        h->due = due;
        if (h->heap_at == SIZE_MAX) {
                h->heap_at = heap_len;
                heap[heap_len++] = h;
        }
        heap_up(h->heap_at);
        heap_down(h->heap_at);
}

static void unschedule(Host *h) {
        size_t i = h->heap_at;
        if (i == SIZE_MAX)
                return;
        h->heap_at = SIZE_MAX;
        heap_len--;
        if (i == heap_len)
                return;
        heap[i] = heap[heap_len];
        heap[i]->heap_at = i;
        heap_up(i);
        heap_down(heap[i]->heap_at);
}

/* ---- connections ---- */

static void conn_watch(Conn *c, uint32_t events) {
        int fd = PQsocket(c->pg);
        struct epoll_event ev = { .events = events, .data.ptr = c };

        if (fd != c->fd) {
                if (c->fd >= 0)
                        (void) epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                c->fd = fd;
                c->events = 0;
                if (fd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                        fprintf(stderr, "epoll_ctl: %m\n");
                        exit(EXIT_FAILURE);
                }
                c->events = events;
                return;
        }
        if (fd >= 0 && events != c->events) {
                if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
                        fprintf(stderr, "epoll_ctl: %m\n");
                        exit(EXIT_FAILURE);
                }
                c->events = events;
        }
}

static void conn_start(Conn *c);
static void host_poll(Host *h);

static void connect_slot_free(void) {
        connecting_now--;
        while (connecting_now < connecting_max && connect_queue_head < connect_queue_len) {
                Conn *c = connect_queue[connect_queue_head++];
                c->queued = false;
                conn_start(c);
        }
}

static void conn_drop(Conn *c, bool lost) {
        if (c->state == CONN_CONNECTING)
                connect_slot_free();
        if (c->fd >= 0)
                (void) epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        c->fd = -1;
        c->events = 0;
        if (c->result) {
                PQclear(c->result);
                c->result = NULL;
        }
        if (c->pg)
                PQfinish(c->pg);
        c->pg = NULL;
        c->state = CONN_DOWN;
        if (lost)
                stats.connection_losses++;
}

/* A failure on either connection: that one is made again (the poll's after RETRY_USEC, the
 * fetch's at the next fetch) and the host reads again from its applied cursor, as the
 * broker does. */
static void host_fail(Host *h, Conn *c) {
        conn_drop(c, true);
        if (!c->own_role && h->up) {
                n_up--;
                h->up = false;
        }
        h->seen = h->cursor;
        h->n_concerned = 0;
        h->fetching = false;
        schedule(h, now_mono() + RETRY_USEC);
}

static void conn_queue_start(Conn *c) {
        if (connecting_now >= connecting_max) {
                if (connect_queue_len == connect_queue_cap) {
                        /* Compact first; grow only when full. */
                        memmove(connect_queue, connect_queue + connect_queue_head,
                                (connect_queue_len - connect_queue_head) * sizeof(*connect_queue));
                        connect_queue_len -= connect_queue_head;
                        connect_queue_head = 0;
                }
                connect_queue[connect_queue_len++] = c;
                c->queued = true;
                return;
        }
        conn_start(c);
}

static void conn_start(Conn *c) {
        /* The poll login's role is in its conninfo; the host's own role is given here. */
        const char *poll_keys[] = { "dbname", "application_name", NULL };
        const char *poll_values[] = { poll_conninfo, "jit-brokerd", NULL };
        const char *own_keys[] = { "dbname", "user", "application_name", NULL };
        const char *own_values[] = { fetch_conninfo, c->host->role, "jit-brokerd", NULL };
        const char *const *keys = c->own_role ? own_keys : poll_keys;
        const char *const *values = c->own_role ? own_values : poll_values;

        connecting_now++;
        stats.connects++;
        c->pg = PQconnectStartParams(keys, values, 1);
        c->state = CONN_CONNECTING;
        c->fd = -1;
        c->deadline = now_mono() + CONNECT_TIMEOUT_USEC;
        if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
                fprintf(stderr, "connect %s: %s", c->host->name,
                        c->pg ? PQerrorMessage(c->pg) : "out of memory\n");
                host_fail(c->host, c);
                return;
        }
        conn_watch(c, EPOLLOUT);
}

static void host_fetch_send(Host *h);

static void host_connected(Host *h, Conn *c) {
        if (c->own_role) {
                /* Opened for a fetch that waits for it. */
                if (h->n_concerned > 0)
                        host_fetch_send(h);
                return;
        }
        if (h->up)
                return;
        h->up = true;
        n_up++;
        /* Hosts start at random moments: spread the first polls over one period. */
        schedule(h, now_mono() + (uint64_t) random32() % FLEET_POLL_INTERVAL_USEC);
}

static void conn_connect_step(Conn *c) {
        switch (PQconnectPoll(c->pg)) {
        case PGRES_POLLING_OK:
                if (PQsetnonblocking(c->pg, 1) != 0) {
                        host_fail(c->host, c);
                        return;
                }
                c->state = CONN_IDLE;
                connect_slot_free();
                conn_watch(c, EPOLLIN);
                host_connected(c->host, c);
                return;
        case PGRES_POLLING_READING:
                conn_watch(c, EPOLLIN);
                return;
        case PGRES_POLLING_WRITING:
                conn_watch(c, EPOLLOUT);
                return;
        default:
                fprintf(stderr, "connect %s as %s: %s", c->host->name,
                        c->own_role ? c->host->role : "the poll login", PQerrorMessage(c->pg));
                host_fail(c->host, c);
        }
}

static bool conn_send(Conn *c, const char *sql, int n, const char *const *params) {
        if (!PQsendQueryParams(c->pg, sql, n, NULL, params, NULL, NULL, 0)) {
                stats.query_errors++;
                host_fail(c->host, c);
                return false;
        }
        int r = PQflush(c->pg);
        if (r < 0) {
                host_fail(c->host, c);
                return false;
        }
        c->state = CONN_BUSY;
        c->sent = now_mono();
        c->deadline = c->sent + QUERY_TIMEOUT_USEC;
        conn_watch(c, EPOLLIN | (r > 0 ? EPOLLOUT : 0));
        return true;
}

/* ---- the host's logic ---- */

static void host_poll(Host *h) {
        char cursor[32], limit[16];
        snprintf(cursor, sizeof(cursor), "%lld", (long long) h->seen);
        snprintf(limit, sizeof(limit), "%d", POLL_ROWS);
        const char *params[] = { cursor, limit };
        unschedule(h);
        conn_send(&h->poll, FLEET_POLL_SQL, 2, params);
}

/* Whether a change with this selector concerns host h. */
static bool concerns(const Host *h, const char *selector_host, bool host_null,
                     const char *labels_json) {
        HostSelector s = {};
        HostSelectorTerm terms[HOST_SELECTOR_TERMS_MAX];

        if (!host_null) {
                s.host = (char *) selector_host;
                return host_selector_matches(&s, h->name, h->labels, 2);
        }
        json_object *o = json_tokener_parse(labels_json);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return false;
        }
        json_object_object_foreach (o, key, val) {
                if (s.n_terms == HOST_SELECTOR_TERMS_MAX)
                        break;
                terms[s.n_terms++] =
                        (HostSelectorTerm){ .key = key,
                                            .value = (char *) json_object_get_string(val) };
        }
        s.terms = terms;
        bool match = host_selector_matches(&s, h->name, h->labels, 2);
        json_object_put(o);
        return match;
}

static void host_polled(Host *h, PGresult *res) {
        FleetChangeRow rows[POLL_ROWS];
        int n;

        if (PQresultStatus(res) != PGRES_TUPLES_OK || (n = PQntuples(res)) > POLL_ROWS ||
            (n > 0 && PQnfields(res) != 5)) {
                fprintf(stderr, "poll %s: %s", h->name, PQresultErrorMessage(res));
                stats.query_errors++;
                host_fail(h, &h->poll);
                return;
        }
        stats.polls++;
        stats.polls_rows += (uint64_t) n;
        for (int i = 0; i < n; i++)
                rows[i] = (FleetChangeRow){ .seq = strtoll(PQgetvalue(res, i, 0), NULL, 10),
                                            .settled = strcmp(PQgetvalue(res, i, 1), "t") == 0 };
        int64_t from = h->seen, next = h->seen;
        uint64_t seen_count = 0;
        int passed = fleet_cursor_advance(&next, rows, (size_t) n, &seen_count);
        if (passed < 0) {
                host_fail(h, &h->poll);
                return;
        }
        h->n_concerned = 0;
        for (int i = 0; i < passed; i++)
                if (concerns(h, PQgetvalue(res, i, 3), PQgetisnull(res, i, 3),
                             PQgetvalue(res, i, 4)) &&
                    h->n_concerned < CONCERNED_MAX) {
                        h->concerned[h->n_concerned] = rows[i].seq;
                        h->concerned_req[h->n_concerned++] =
                                strtoll(PQgetvalue(res, i, 2), NULL, 10);
                }
        h->seen = next;
        if (h->n_concerned > 0) {
                h->fetch_from = from;
                h->fetch_to = next;
                stats.concerned += h->n_concerned;
                if (fetch_shared)
                        host_fetch_send(h);
                else if (h->fetch.state == CONN_IDLE)
                        host_fetch_send(h);
                else if (h->fetch.state == CONN_DOWN && !h->fetch.queued)
                        conn_queue_start(&h->fetch); /* the fetch follows the connection */
                return;
        }
        h->cursor = h->seen; /* nothing to apply */
        if (n == POLL_ROWS && passed == n)
                schedule(h, now_mono());
        else
                schedule(h, now_mono() + fleet_poll_delay(random32()));
}

static void host_fetch_send(Host *h) {
        /* As the broker: the ids of the requests that concern this host, '{1,2,3}'. */
        char ids[CONCERNED_MAX * 21 + 3];
        size_t at = 0;
        ids[at++] = '{';
        for (size_t k = 0; k < h->n_concerned; k++)
                at += (size_t) snprintf(ids + at, sizeof(ids) - at, "%s%lld", k ? "," : "",
                                        (long long) h->concerned_req[k]);
        ids[at++] = '}';
        ids[at] = '\0';
        if (fetch_shared) {
                const char *shared_params[] = { h->name, fetch_key, ids };
                h->fetching = true;
                conn_send(&h->poll, FLEET_FETCH_SHARED_SQL, 3, shared_params);
                return;
        }
        const char *params[] = { ids };
        conn_send(&h->fetch, FLEET_FETCH_SQL, 1, params);
}

static void host_fetched(Host *h, PGresult *res) {
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                fprintf(stderr, "fetch %s: %s", h->name, PQresultErrorMessage(res));
                stats.query_errors++;
                host_fail(h, &h->fetch);
                return;
        }
        uint64_t t = now_real();
        int n = PQntuples(res);
        stats.fetches++;
        stats.fetch_rows += (uint64_t) n;
        for (size_t k = 0; k < h->n_concerned; k++) {
                bool found = false;
                char want[32];
                snprintf(want, sizeof(want), "%lld", (long long) h->concerned_req[k]);
                for (int i = 0; i < n && !found; i++)
                        found = strcmp(PQgetvalue(res, i, 0), want) == 0;
                if (!found)
                        stats.missing++;
                fprintf(events_out, "%lld %u %llu\n", (long long) h->concerned[k], h->idx,
                        (unsigned long long) t);
        }
        h->n_concerned = 0;
        h->cursor = h->fetch_to;
        /* The broker polls again at once after each answer. */
        schedule(h, now_mono());
}

static void conn_input(Conn *c, uint32_t revents) {
        Host *h = c->host;

        if (c->state == CONN_CONNECTING) {
                conn_connect_step(c);
                return;
        }
        if (revents & EPOLLOUT) {
                int r = PQflush(c->pg);
                if (r < 0) {
                        host_fail(h, c);
                        return;
                }
                if (r == 0)
                        conn_watch(c, EPOLLIN);
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return;
        if (!PQconsumeInput(c->pg)) {
                fprintf(stderr, "%s: connection lost: %s", h->name, PQerrorMessage(c->pg));
                host_fail(h, c);
                return;
        }
        if (c->state != CONN_BUSY) {
                PGresult *res;
                while (!PQisBusy(c->pg) && (res = PQgetResult(c->pg)))
                        PQclear(res);
                if (PQstatus(c->pg) != CONNECTION_OK)
                        host_fail(h, c);
                return;
        }
        while (!PQisBusy(c->pg)) {
                PGresult *res = PQgetResult(c->pg);
                if (!res) {
                        res = c->result;
                        c->result = NULL;
                        c->state = CONN_IDLE;
                        uint64_t rtt = now_mono() - c->sent;
                        if (!res) {
                                host_fail(h, c);
                                return;
                        }
                        if (c->own_role || h->fetching) {
                                h->fetching = false;
                                hist_add(fetch_hist, rtt);
                                host_fetched(h, res);
                        } else {
                                hist_add(poll_hist, rtt);
                                host_polled(h, res);
                        }
                        PQclear(res);
                        return;
                }
                if (!c->result)
                        c->result = res;
                else
                        PQclear(res);
        }
}

/* Deadlines of connections and queries, checked every 100 ms. */
static void sweep(uint64_t now) {
        for (unsigned i = 0; i < n_hosts; i++) {
                Conn *cs[] = { &hosts[i].poll, &hosts[i].fetch };
                for (size_t k = 0; k < 2; k++) {
                        Conn *c = cs[k];
                        if ((c->state == CONN_CONNECTING || c->state == CONN_BUSY) &&
                            now > c->deadline) {
                                if (c->state == CONN_CONNECTING)
                                        stats.connect_timeouts++;
                                stats.timeouts++;
                                host_fail(&hosts[i], c);
                        }
                }
        }
}

static void host_due(Host *h) {
        unschedule(h);
        if (h->poll.state == CONN_DOWN && !h->poll.queued)
                conn_queue_start(&h->poll);
        if (h->up && h->poll.state == CONN_IDLE && h->n_concerned == 0)
                host_poll(h);
}

/* ---- the baseline ---- */

static int baseline(unsigned rounds) {
        PGconn *pg = PQconnectdb(poll_conninfo);
        if (PQstatus(pg) != CONNECTION_OK) {
                fprintf(stderr, "baseline: %s", PQerrorMessage(pg));
                return EXIT_FAILURE;
        }
        uint64_t *v = calloc(rounds, sizeof(*v));
        if (!v)
                return EXIT_FAILURE;
        for (unsigned i = 0; i < rounds; i++) {
                uint64_t t = now_mono();
                PGresult *res = PQexecParams(pg, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0);
                v[i] = now_mono() - t;
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        fprintf(stderr, "baseline: %s", PQresultErrorMessage(res));
                        return EXIT_FAILURE;
                }
                PQclear(res);
        }
        for (unsigned i = 1; i < rounds; i++) /* insertion sort: a few thousand values */
                for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
                        uint64_t t = v[j];
                        v[j] = v[j - 1];
                        v[j - 1] = t;
                }
        printf("{\"select1_p50_ms\": %.3f, \"select1_p99_ms\": %.3f, \"rounds\": %u}\n",
               (double) v[rounds / 2] / 1000.0, (double) v[rounds * 99 / 100] / 1000.0, rounds);
        free(v);
        PQfinish(pg);
        return EXIT_SUCCESS;
}

/* ---- main ---- */

static void on_signal(int sig) {
        if (sig == SIGUSR1)
                window_start = 1;
        else
                stopping = 1;
}

static void usage(void) {
        fprintf(stderr,
                "usage: bench-fleet --poll-conninfo STR --fetch-conninfo STR --hosts N "
                "--cursor SEQ --events FILE [--first I] [--connecting K] [--ramp HOSTS_PER_S]\n"
                "                   [--fetch-shared HOST_PASSWORD]\n"
                "       bench-fleet --poll-conninfo STR --baseline ROUNDS\n");
        exit(EXIT_FAILURE);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "poll-conninfo", required_argument, NULL, 'p' },
                { "fetch-conninfo", required_argument, NULL, 'f' },
                { "hosts", required_argument, NULL, 'n' },
                { "first", required_argument, NULL, 'F' },
                { "cursor", required_argument, NULL, 'c' },
                { "events", required_argument, NULL, 'e' },
                { "connecting", required_argument, NULL, 'k' },
                { "baseline", required_argument, NULL, 'b' },
                { "ramp", required_argument, NULL, 'r' },
                { "fetch-shared", required_argument, NULL, 'S' },
                {},
        };
        const char *events_path = NULL;
        long long start_cursor = 0;
        unsigned rounds = 0, first = 0;
        unsigned long ramp = 0; /* hosts started a second; 0: all at once */
        int opt;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1)
                switch (opt) {
                case 'p':
                        poll_conninfo = optarg;
                        break;
                case 'f':
                        fetch_conninfo = optarg;
                        break;
                case 'n':
                        n_hosts = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'F':
                        first = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'c':
                        start_cursor = strtoll(optarg, NULL, 10);
                        break;
                case 'e':
                        events_path = optarg;
                        break;
                case 'k':
                        connecting_max = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'S':
                        fetch_shared = true;
                        if (fleet_fetch_key_derive(optarg, fetch_key) < 0) {
                                fprintf(stderr, "cannot derive the fetch key\n");
                                return EXIT_FAILURE;
                        }
                        break;
                case 'r':
                        ramp = strtoul(optarg, NULL, 10);
                        break;
                case 'b':
                        rounds = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                default:
                        usage();
                }
        if (!poll_conninfo)
                usage();
        if (rounds > 0)
                return baseline(rounds);
        if (!fetch_conninfo || !events_path || n_hosts == 0 || n_hosts > 100000 || first > 100000 ||
            connecting_max == 0)
                usage();

        /* Two connections a host, and epoll's. */
        struct rlimit rl = { .rlim_cur = 2 * (rlim_t) n_hosts + 256,
                             .rlim_max = 2 * (rlim_t) n_hosts + 256 };
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                fprintf(stderr, "cannot raise the file descriptor limit to %llu: %m\n",
                        (unsigned long long) rl.rlim_cur);
                return EXIT_FAILURE;
        }
        events_out = fopen(events_path, "we");
        hosts = calloc(n_hosts, sizeof(*hosts));
        heap = calloc(n_hosts, sizeof(*heap));
        connect_queue_cap = 2 * (size_t) n_hosts;
        connect_queue = calloc(connect_queue_cap, sizeof(*connect_queue));
        poll_hist = calloc(HIST_BINS, sizeof(*poll_hist));
        fetch_hist = calloc(HIST_BINS, sizeof(*fetch_hist));
        if (!events_out || !hosts || !heap || !connect_queue || !poll_hist || !fetch_hist) {
                fprintf(stderr, "out of memory or cannot open %s: %m\n", events_path);
                return EXIT_FAILURE;
        }
        setvbuf(events_out, NULL, _IOFBF, 1 << 20);
        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0)
                return EXIT_FAILURE;
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        signal(SIGUSR1, on_signal);

        for (unsigned i = 0; i < n_hosts; i++) {
                Host *h = &hosts[i];
                unsigned idx = first + i;
                h->idx = idx;
                snprintf(h->name, sizeof(h->name), "h%05u", idx);
                snprintf(h->role, sizeof(h->role), FLEET_HOST_ROLE_PREFIX "%s", h->name);
                snprintf(h->owner, sizeof(h->owner), "o%u", idx % 100);
                snprintf(h->environment, sizeof(h->environment), "e%u", idx % 10);
                h->labels[0] = (HostLabel){ "owner", h->owner };
                h->labels[1] = (HostLabel){ "environment", h->environment };
                h->cursor = h->seen = start_cursor;
                h->heap_at = SIZE_MAX;
                h->poll = (Conn){ .host = h, .own_role = false, .fd = -1 };
                h->fetch = (Conn){ .host = h, .own_role = true, .fd = -1 };
                /* Brokers start at their own moments: host_due() connects them. */
                schedule(h, now_mono() + (ramp ? (uint64_t) i * 1000000ULL / ramp : 0));
        }

        bool ready = false;
        uint64_t last_sweep = now_mono(), last_progress = last_sweep;
        struct epoll_event evs[256];
        while (!stopping) {
                uint64_t now = now_mono();
                int timeout = 100;
                if (heap_len > 0) {
                        uint64_t due = heap[0]->due;
                        timeout = due <= now ? 0 : (int) ((due - now + 999) / 1000);
                        if (timeout > 100)
                                timeout = 100;
                }
                int n = epoll_wait(epfd, evs, (int) (sizeof(evs) / sizeof(evs[0])), timeout);
                if (n < 0 && errno != EINTR) {
                        fprintf(stderr, "epoll_wait: %m\n");
                        return EXIT_FAILURE;
                }
                for (int i = 0; i < n; i++)
                        conn_input(evs[i].data.ptr, evs[i].events);
                now = now_mono();
                while (heap_len > 0 && heap[0]->due <= now)
                        host_due(heap[0]);
                if (now - last_sweep >= 100000) {
                        sweep(now);
                        last_sweep = now;
                }
                if (!ready && now - last_progress >= 5000000) {
                        fprintf(stderr,
                                "connecting: %u of %u hosts up, %llu attempts, %llu timeouts "
                                "(%llu connecting), %llu lost\n",
                                n_up, n_hosts, (unsigned long long) stats.connects,
                                (unsigned long long) stats.timeouts,
                                (unsigned long long) stats.connect_timeouts,
                                (unsigned long long) stats.connection_losses);
                        last_progress = now;
                }
                if (!ready && n_up == n_hosts) {
                        ready = true;
                        printf("ready\n");
                        fflush(stdout);
                }
                if (window_start) {
                        /* The measured window begins: the counters count from here. */
                        window_start = 0;
                        memset(&stats, 0, sizeof(stats));
                        memset(poll_hist, 0, HIST_BINS * sizeof(*poll_hist));
                        memset(fetch_hist, 0, HIST_BINS * sizeof(*fetch_hist));
                        printf("window\n");
                        fflush(stdout);
                }
        }

        unsigned up = n_up;
        fflush(events_out);
        printf("{\"hosts\": %u, \"up\": %u, \"polls\": %llu, \"poll_rows\": %llu, "
               "\"fetches\": %llu, \"fetch_rows\": %llu, \"concerned\": %llu, \"missing\": %llu, "
               "\"query_errors\": %llu, \"timeouts\": %llu, \"connection_losses\": %llu, "
               "\"connects\": %llu, \"poll_p50_ms\": %.3f, \"poll_p99_ms\": %.3f, "
               "\"fetch_p50_ms\": %.3f, \"fetch_p99_ms\": %.3f}\n",
               n_hosts, up, (unsigned long long) stats.polls, (unsigned long long) stats.polls_rows,
               (unsigned long long) stats.fetches, (unsigned long long) stats.fetch_rows,
               (unsigned long long) stats.concerned, (unsigned long long) stats.missing,
               (unsigned long long) stats.query_errors, (unsigned long long) stats.timeouts,
               (unsigned long long) stats.connection_losses, (unsigned long long) stats.connects,
               hist_quantile(poll_hist, 0.5), hist_quantile(poll_hist, 0.99),
               hist_quantile(fetch_hist, 0.5), hist_quantile(fetch_hist, 0.99));
        fflush(stdout);
        return EXIT_SUCCESS;
}
