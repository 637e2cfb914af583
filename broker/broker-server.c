/* SPDX-License-Identifier: MIT */
/* The listening socket and its connections: one request, one reply, then close. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "access-log.h"
#include "broker-journal.h"
#include "broker-sessions.h"
#include "broker.h"
#include "check-cache.h"
#include "cleanup.h"
#include "event-stream.h"
#include "passwd-cache.h"
#include "protocol.h"
#include "timeutil.h"

/* Connections are taken by the front thread, which owns the listening socket: it answers
 * root's checks (the PAM stack's question) itself, on its own read-only database connection,
 * and hands every other connection to the main loop. So no operation of another user, nor a
 * flood of connections, stands between sudo and its answer; root's other operations (session
 * registration) go first at every turn of the main loop. Priorities within one loop were not
 * enough: root's check still waited for whatever operation the loop was in, and a stream of
 * new connections kept other users' requests from ever being read (tests/bench/bench_flood.py
 * measured root's p99 at 9 to 70 times its p99 without a flood). */
typedef struct Connection Connection;

typedef struct BrokerFront {
        Broker *broker;

        /* The front thread and what only it touches once it runs. */
        pthread_t thread;
        bool running;
        sd_event *event;
        sd_event_source *listen_source;
        sd_event_source *resume_accept; /* out of file descriptors: accept again later */
        int stop_fd;                    /* eventfd: the main thread asks it to end */
        sd_event_source *stop_source;
        BrokerDb *db;            /* its own connection, for check */
        Broker view;             /* the broker as check sees it there: db and boot_id */
        Connection *front_conns; /* root's, until answered or handed over */

        /* Shared by both threads. */
        pthread_mutex_t lock;
        /* Open connections per non-root uid: for up to BROKER_CONNECTIONS_MAX uids with
         * shared slots, and BROKER_UIDS_RESERVED more with their first connection. */
        struct {
                uid_t uid;
                unsigned n;
        } slots[BROKER_CONNECTIONS_MAX + BROKER_UIDS_RESERVED];
        size_t n_slots;
        unsigned n_connections;   /* non-root */
        uint64_t flood_logged_at; /* CLOCK_MONOTONIC usec of the last "dropping" warning */
        Connection *handoff;      /* to the main loop, newest first */
        SessionEarly *early;      /* sessions opened here, for the main loop, newest first */
        int handoff_fd;           /* eventfd: there is some */

        /* The main loop's. */
        sd_event_source *handoff_source;
        Connection *main_conns;
        /* The rate limit of expensive operations, per uid: when its bucket would be full
         * again (a bucket at or before now is full, the same as none). */
        struct {
                uid_t uid;
                uint64_t full_at;
        } buckets[BROKER_CONNECTIONS_MAX + BROKER_UIDS_RESERVED];
        size_t n_buckets;
} BrokerFront;

struct Connection {
        BrokerFront *front;
        sd_event *event; /* the loop it is on: the front thread's, the main one, or none yet */
        bool main_loop;  /* handed to the main loop: its ops are answered there */
        Connection *prev, *next;
        int fd;
        struct ucred peer;
        uint64_t accepted_at; /* CLOCK_MONOTONIC usec */
        bool past_idle;       /* the idle check is done; the timer is at the whole deadline */
        JitFrameReader reader;
        sd_event_source *io;
        sd_event_source *timer;
        char *out; /* header + body of the reply, once there is one */
        size_t out_len;
        size_t out_off;
};

static Connection **conn_list(Connection *c) {
        return c->event == c->front->event ? &c->front->front_conns : &c->front->main_conns;
}

static void conn_link(Connection *c) {
        Connection **head = conn_list(c);
        c->prev = NULL;
        c->next = *head;
        if (*head)
                (*head)->prev = c;
        *head = c;
}

static void conn_unlink(Connection *c) {
        if (c->prev)
                c->prev->next = c->next;
        else if (*conn_list(c) == c)
                *conn_list(c) = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->prev = c->next = NULL;
}

/* The slot count of a non-root uid: found, or added with 0; NULL when the table is full.
 * Under the lock. */
static unsigned *uid_slots(BrokerFront *f, uid_t uid) {
        for (size_t i = 0; i < f->n_slots; i++)
                if (f->slots[i].uid == uid)
                        return &f->slots[i].n;
        if (f->n_slots == ELEMENTSOF(f->slots))
                return NULL;
        f->slots[f->n_slots].uid = uid;
        f->slots[f->n_slots].n = 0;
        return &f->slots[f->n_slots++].n;
}

static void uid_release(BrokerFront *f, uid_t uid) {
        pthread_mutex_lock(&f->lock);
        assert(f->n_connections > 0);
        f->n_connections--;
        for (size_t i = 0; i < f->n_slots; i++)
                if (f->slots[i].uid == uid) {
                        assert(f->slots[i].n > 0); /* released once per counted connection */
                        if (--f->slots[i].n == 0)
                                f->slots[i] = f->slots[--f->n_slots];
                        break;
                }
        pthread_mutex_unlock(&f->lock);
}

/* Takes a slot for a new connection of a non-root uid, or refuses (false). */
static bool uid_admit(BrokerFront *f, uid_t uid) {
        bool ok = false, warn = false;
        unsigned n_all, n_own = 0;

        pthread_mutex_lock(&f->lock);
        unsigned *slots = uid_slots(f, uid);
        /* A uid with no connection open gets one, shared slots left or not. */
        if (slots && (*slots == 0 || (f->n_connections < BROKER_CONNECTIONS_MAX &&
                                      *slots < BROKER_CONNECTIONS_PER_UID))) {
                (*slots)++;
                f->n_connections++;
                ok = true;
        } else {
                /* One line per 10 s, not one per dropped connection: a flood must not flood
                 * the log. */
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                if (now - f->flood_logged_at > 10 * USEC_PER_SEC) {
                        f->flood_logged_at = now;
                        warn = true;
                }
                n_own = slots ? *slots : 0;
        }
        n_all = f->n_connections;
        pthread_mutex_unlock(&f->lock);
        if (warn)
                log_warning("dropping connections of uid %u: %u open in all, %u of its own",
                            (unsigned) uid, n_all, n_own);
        return ok;
}

int broker_rate_limit(Broker *b, uid_t uid, uint64_t *ret_retry_usec) {
        const uint64_t interval = USEC_PER_SEC / BROKER_RATE_PER_SEC;
        BrokerFront *f = b->front;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        size_t i, oldest = 0;

        if (uid == 0 || !f)
                return 0;
        for (i = 0; i < f->n_buckets; i++) {
                if (f->buckets[i].uid == uid)
                        break;
                if (f->buckets[i].full_at < f->buckets[oldest].full_at)
                        oldest = i;
        }
        if (i == f->n_buckets) {
                /* A full bucket is as good as none: reuse the one nearest to full when the
                 * table is. */
                if (f->n_buckets < ELEMENTSOF(f->buckets))
                        i = f->n_buckets++;
                else
                        i = oldest;
                f->buckets[i].uid = uid;
                f->buckets[i].full_at = now;
        }
        uint64_t full_at = f->buckets[i].full_at > now ? f->buckets[i].full_at : now;
        /* Each operation moves the time the bucket is full again by one interval; a bucket
         * more than the burst behind is empty. */
        if (full_at + interval - now > BROKER_RATE_BURST * interval) {
                *ret_retry_usec = full_at + interval - now - BROKER_RATE_BURST * interval;
                return -EAGAIN;
        }
        f->buckets[i].full_at = full_at + interval;
        return 0;
}

/* Leaves the loop it is on: sources and list. */
static void connection_detach(Connection *c) {
        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->event)
                conn_unlink(c);
        c->event = NULL;
}

static void connection_free(Connection *c) {
        if (!c)
                return;
        connection_detach(c);
        jit_frame_reader_done(&c->reader);
        free(c->out);
        if (c->fd >= 0)
                close(c->fd);
        if (c->peer.uid != 0)
                uid_release(c->front, c->peer.uid);
        free(c);
}

static int connection_attach(Connection *c, sd_event *e, int64_t priority);

/* Nothing more is read from a peer that has its reply: one request per connection. */
static int connection_watch_output(Connection *c) {
        if (c->io)
                return sd_event_source_set_io_events(c->io, EPOLLOUT);
        return connection_attach(c, c->front->event, SD_EVENT_PRIORITY_NORMAL);
}

/* Sends what it can of the reply; frees the connection once all is sent or the peer is
 * gone. */
static void connection_flush(Connection *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                /* The rest when EPOLLOUT says so. */
                                if (connection_watch_output(c) < 0)
                                        break;
                                return;
                        }
                        break; /* the peer went away; nothing to tell it */
                }
                c->out_off += (size_t) n;
        }
        connection_free(c);
}

/* Queues body, a reply already serialized. */
static int connection_queue_text(Connection *c, const char *body, size_t len) {
        c->out = malloc(JIT_FRAME_HEADER_SIZE + len);
        if (!c->out)
                return -ENOMEM;
        jit_frame_header(len, (uint8_t *) c->out);
        memcpy(c->out + JIT_FRAME_HEADER_SIZE, body, len);
        c->out_len = JIT_FRAME_HEADER_SIZE + len;
        c->out_off = 0;
        return 0;
}

static int connection_queue_reply(Connection *c, json_object *reply) {
        _cleanup_free_ char *body = NULL;
        size_t len = 0;

        if (reply)
                body = jit_message_serialize(reply, &len);
        json_object_put(reply);
        if (!body || len > JIT_REPLY_MAX) {
                free(body);
                json_object *e = jit_reply_error(JIT_ERROR_INTERNAL, "reply could not be built");
                body = e ? jit_message_serialize(e, &len) : NULL;
                json_object_put(e);
                if (!body)
                        return -ENOMEM;
        }

        return connection_queue_text(c, body, len);
}

/* The request of a whole frame, parsed, or NULL with *ret_reply the error to answer. */
static json_object *parse_frame(Connection *c, json_object **ret_reply) {
        json_object *msg = NULL;
        int r = jit_message_parse(c->reader.body, c->reader.body_len, &msg);
        if (r == -EPROTONOSUPPORT)
                *ret_reply = jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                             "unsupported protocol version (this broker speaks %d)",
                                             JIT_PROTOCOL_VERSION);
        else if (r < 0)
                *ret_reply = jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                             "malformed message: expected one JSON object with "
                                             "\"version\": %d",
                                             JIT_PROTOCOL_VERSION);
        return r < 0 ? NULL : msg;
}

static void handoff(Connection *c);
static void handoff_session(BrokerFront *f, SessionEarly *e);

/* The answer to a whole frame, or NULL when it was handed to the main loop or (*ret_queued
 * set: 1, or -errno) its reply is queued already. */
static json_object *handle_frame(Connection *c, int *ret_queued) {
        BrokerFront *f = c->front;
        json_object *reply = NULL, *msg = parse_frame(c, &reply);
        const char *op;

        *ret_queued = 0;
        if (!msg)
                return reply;
        if (c->main_loop) {
                bool taken = false;
                reply = broker_dispatch(f->broker, &c->peer, c->fd, msg, &taken);
                if (taken) {
                        /* A stream holds its own duplicate of the socket and answers there;
                         * this connection ends without a word (and frees its slot: streams
                         * have limits of their own). */
                        json_object_put(msg);
                        *ret_queued = -ECONNRESET;
                        return NULL;
                }
        } else if (jit_message_get_string(msg, "op", JIT_OP_MAX, true, &op) < 0)
                handoff(c); /* the main loop says what is wrong with it */
        else if (STREQ(op, "check")) {
                /* Its own database connection and the boot id; the rest of the broker that
                 * check consults is locked (broker_ops_share()). The reply is written as text:
                 * the PAM stack's question is the one asked most. */
                char text[512];
                size_t len;
                reply = broker_check_text(&f->view, &c->peer, msg, text, sizeof(text), &len);
                if (!reply)
                        *ret_queued = connection_queue_text(c, text, len) ?: 1;
        } else if (c->peer.uid == 0 && STREQ(op, "session-open")) {
                /* sudo waits for it between its account check and its command: answered
                 * here, the session handed to the main loop before the answer goes. */
                char text[256];
                size_t len;
                SessionEarly *early = NULL;
                if (broker_session_open_text(&f->view, &c->peer, c->fd, msg, text, sizeof(text),
                                             &len, &early) > 0) {
                        if (early)
                                handoff_session(f, early);
                        *ret_queued = connection_queue_text(c, text, len) ?: 1;
                } else
                        handoff(c);
        } else
                handoff(c); /* not c's any more */
        json_object_put(msg);
        return reply;
}

/* Reads what has arrived and answers a whole request; may free c or hand it over. */
static void connection_read(Connection *c) {
        int r = jit_frame_reader_feed(&c->reader, c->fd);
        if (r == 0) {
                /* Not all there yet: wait for the rest on the front loop (the main loop's
                 * connections are on it already). */
                if (!c->event &&
                    connection_attach(c, c->front->event, SD_EVENT_PRIORITY_NORMAL) < 0)
                        connection_free(c);
                return;
        }
        if (r == -EMSGSIZE)
                r = connection_queue_reply(
                        c, jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                           "frame length out of bounds (1..%u bytes)",
                                           JIT_REQUEST_MAX));
        else if (r < 0) {
                if (r != -ECONNRESET)
                        log_debug_errno(r, "reading from pid %d: %m", (int) c->peer.pid);
        } else {
                int queued;
                json_object *reply = handle_frame(c, &queued);
                if (queued != 0)
                        r = queued < 0 ? queued : 0;
                else if (!reply)
                        return; /* the main loop's now */
                else
                        r = connection_queue_reply(c, reply);
        }
        if (r < 0)
                connection_free(c);
        else
                connection_flush(c); /* most replies fit the socket buffer at once */
}

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;

        if (c->out)
                connection_flush(c);
        else
                connection_read(c);
        return 0;
}

static int on_connection_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Connection *c = userdata;
        int pending = 0;

        if (!c->past_idle) {
                c->past_idle = true;
                /* Sent nothing: an idle connection only holds a slot. Unless its request did
                 * arrive and the loop has not read it yet. */
                if (c->reader.header_got == 0 && !c->out &&
                    (ioctl(c->fd, FIONREAD, &pending) < 0 || pending == 0)) {
                        log_debug("closing connection from pid %d: nothing sent within 1 s",
                                  (int) c->peer.pid);
                        connection_free(c);
                        return 0;
                }
                if (sd_event_source_set_time(s, c->accepted_at + BROKER_CONNECTION_TIMEOUT_USEC) >=
                            0 &&
                    sd_event_source_set_enabled(s, SD_EVENT_ONESHOT) >= 0)
                        return 0;
        }
        log_debug("closing connection from pid %d: no complete exchange within 5 s",
                  (int) c->peer.pid);
        connection_free(c);
        return 0;
}

/* Puts c on loop e: watched for input (or output, when it has a reply), with its timer. */
static int connection_attach(Connection *c, sd_event *e, int64_t priority) {
        int r;

        c->event = e;
        conn_link(c);
        r = sd_event_add_io(e, &c->io, c->fd, c->out ? EPOLLOUT : EPOLLIN, on_connection_io, c);
        if (r >= 0)
                r = sd_event_source_set_priority(c->io, priority);
        if (r >= 0)
                r = sd_event_add_time(e, &c->timer, CLOCK_MONOTONIC,
                                      c->accepted_at + (c->past_idle
                                                                ? BROKER_CONNECTION_TIMEOUT_USEC
                                                                : BROKER_IDLE_TIMEOUT_USEC),
                                      0, on_connection_timeout, c);
        if (r < 0)
                log_error_errno(r, "watching a connection: %m");
        return r;
}

/* ---- the main loop's side ---- */

static int on_handoff(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BrokerFront *f = userdata;
        eventfd_t n;

        (void) eventfd_read(fd, &n);
        pthread_mutex_lock(&f->lock);
        Connection *newest = f->handoff, *list = NULL;
        SessionEarly *early = f->early, *opened = NULL;
        f->handoff = NULL;
        f->early = NULL;
        pthread_mutex_unlock(&f->lock);
        /* Sessions first: a close or a look at one comes after its open. */
        while (early) { /* oldest first */
                SessionEarly *e = early;
                early = session_early_next(e);
                session_early_set_next(e, opened);
                opened = e;
        }
        while (opened) {
                SessionEarly *e = opened;
                opened = session_early_next(e);
                sessions_attach_early(f->broker, e);
        }
        while (newest) { /* oldest first */
                Connection *c = newest;
                newest = c->next;
                c->next = list;
                list = c;
        }

        while (list) {
                Connection *c = list;
                list = c->next;
                c->next = NULL;
                bool root = c->peer.uid == 0;
                c->main_loop = true;
                /* Root's exchanges go first at every turn of the loop; other users' wait
                 * behind the broker's own timers too. */
                if (connection_attach(c, f->broker->event,
                                      root ? SD_EVENT_PRIORITY_IMPORTANT : SD_EVENT_PRIORITY_IDLE) <
                    0) {
                        connection_free(c);
                        continue;
                }
                /* Root's request was read by the front thread: answer it now. */
                if (c->reader.body && c->reader.body_got == c->reader.body_len) {
                        int queued;
                        json_object *reply = handle_frame(c, &queued);
                        if ((queued != 0 ? queued : connection_queue_reply(c, reply)) < 0)
                                connection_free(c);
                        else
                                connection_flush(c);
                }
        }
        return 0;
}

/* ---- the front thread's side ---- */

/* Gives a session opened here to the main loop. */
static void handoff_session(BrokerFront *f, SessionEarly *e) {
        pthread_mutex_lock(&f->lock);
        session_early_set_next(e, f->early);
        f->early = e;
        pthread_mutex_unlock(&f->lock);
        (void) eventfd_write(f->handoff_fd, 1);
}

/* Gives c to the main loop. */
static void handoff(Connection *c) {
        BrokerFront *f = c->front;

        connection_detach(c);
        pthread_mutex_lock(&f->lock);
        c->next = f->handoff;
        f->handoff = c;
        pthread_mutex_unlock(&f->lock);
        /* Fails only when the counter is full, which wakes the loop all the same. */
        (void) eventfd_write(f->handoff_fd, 1);
}

static int on_resume_accept(sd_event_source *s, uint64_t usec, void *userdata) {
        BrokerFront *f = userdata;
        (void) sd_event_source_set_enabled(f->listen_source, SD_EVENT_ON);
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BrokerFront *f = userdata;

        for (;;) {
                _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (cfd < 0) {
                        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                                return 0;
                        log_error("accept: %m");
                        /* Out of file descriptors: the connection stays queued and epoll would
                         * wake us for it at once, again and again. Pause instead. */
                        if (errno == EMFILE || errno == ENFILE) {
                                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                                (void) sd_event_source_set_time_relative(f->resume_accept,
                                                                         100 * 1000);
                                (void) sd_event_source_set_enabled(f->resume_accept,
                                                                   SD_EVENT_ONESHOT);
                        }
                        return 0;
                }
                struct ucred peer;
                socklen_t l = sizeof(peer);
                if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &peer, &l) < 0 || l != sizeof(peer)) {
                        log_error("SO_PEERCRED: %m");
                        continue; /* no identity, no service */
                }

                /* Root, the PAM stack inside sudo and sshd, is always served: no user can
                 * crowd it out. Everyone else shares the slots, a few per uid. */
                if (peer.uid != 0 && !uid_admit(f, peer.uid))
                        continue;

                Connection *c = calloc(1, sizeof(Connection));
                if (!c) {
                        log_error("out of memory accepting a connection");
                        if (peer.uid != 0)
                                uid_release(f, peer.uid);
                        continue;
                }
                c->front = f;
                c->fd = TAKE_FD(cfd);
                c->peer = peer;
                c->accepted_at = now_usec(CLOCK_MONOTONIC);
                jit_frame_reader_init(&c->reader, JIT_REQUEST_MAX);
                c->reader.one_frame = true; /* one request per connection */

                if (peer.uid != 0) {
                        handoff(c);
                        continue;
                }
                /* The PAM stack sends its request with the connect: answer it now, without
                 * watching the connection at all when it is all there (it mostly is). */
                connection_read(c);
        }
}

static int on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BrokerFront *f = userdata;
        return sd_event_exit(f->event, 0);
}

static void *front_thread(void *userdata) {
        BrokerFront *f = userdata;
        /* sudo waits for this thread: it goes before the rest of the machine's work (a reload
         * of a large policy on the main thread, a user's busy loops). The unit starts the
         * broker at this nice value already (it has no CAP_SYS_NICE to set it here). */
        if (setpriority(PRIO_PROCESS, (id_t) gettid(), BROKER_FRONT_NICE) < 0)
                log_debug("cannot set the front thread's nice value to %d: %m", BROKER_FRONT_NICE);
        int r = sd_event_loop(f->event);
        if (r < 0)
                log_error_errno(r, "the front thread's loop failed: %m");
        return NULL;
}

static void front_free(BrokerFront *f) {
        if (!f)
                return;
        if (f->running) {
                (void) eventfd_write(f->stop_fd, 1);
                pthread_join(f->thread, NULL);
        }
        /* The thread is gone: what it held, and what it handed over and the main loop has
         * not taken yet, is ours to end. */
        while (f->front_conns)
                connection_free(f->front_conns);
        while (f->handoff) {
                Connection *c = f->handoff;
                f->handoff = c->next;
                connection_free(c);
        }
        /* Answered, but the loop is over: their lines stay for the next start. */
        for (SessionEarly *e = f->early, *next; e; e = next) {
                next = session_early_next(e);
                sessions_early_keep(e);
        }
        f->early = NULL;
        while (f->main_conns)
                connection_free(f->main_conns);
        sd_event_source_disable_unref(f->listen_source);
        sd_event_source_disable_unref(f->resume_accept);
        sd_event_source_disable_unref(f->stop_source);
        sd_event_source_disable_unref(f->handoff_source);
        sd_event_unref(f->event);
        db_close(f->db);
        passwd_cache_free(f->view.passwd_cache);
        free(f->view.access_log);
        check_cache_free(f->view.check_cache);
        if (f->stop_fd >= 0)
                close(f->stop_fd);
        if (f->handoff_fd >= 0)
                close(f->handoff_fd);
        pthread_mutex_destroy(&f->lock);
        free(f);
}

/* Sets up the front thread on the listening socket and starts it. */
static int front_start(Broker *b, int listen_fd) {
        BrokerFront *f = calloc(1, sizeof(BrokerFront));
        int r;

        if (!f)
                return -ENOMEM;
        f->broker = b;
        f->stop_fd = f->handoff_fd = -EBADF;
        pthread_mutex_init(&f->lock, NULL);
        b->front = f;

        if ((r = db_open_reader(b->db_path, &f->db)) < 0)
                return log_error_errno(r, "opening the database for checks: %m");
        f->view.db = f->db;
        if ((r = passwd_cache_new(NULL, NULL, &f->view.passwd_cache)) < 0)
                return log_error_errno(r, "setting up the user name cache: %m");
        const volatile void *wal_index = NULL;
        if ((r = db_wal_index(f->db, &wal_index)) < 0)
                log_warning_errno(r, "the database's WAL index cannot be read: %m; every check "
                                     "reads the database");
        if ((r = check_cache_new(wal_index, &f->view.check_cache)) < 0)
                return log_error_errno(r, "setting up the check cache: %m");
        f->view.access_log = calloc(1, sizeof(AccessLog));
        if (!f->view.access_log)
                return log_error_errno(-ENOMEM, "setting up the access log: %m");
        memcpy(f->view.boot_id, b->boot_id, sizeof(f->view.boot_id));

        f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        f->handoff_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (f->stop_fd < 0 || f->handoff_fd < 0)
                return log_error_errno(-errno, "creating an eventfd: %m");
        if ((r = sd_event_add_io(b->event, &f->handoff_source, f->handoff_fd, EPOLLIN, on_handoff,
                                 f)) < 0 ||
            (r = sd_event_source_set_priority(f->handoff_source, SD_EVENT_PRIORITY_IMPORTANT)) <
                    0 ||
            (r = sd_event_new(&f->event)) < 0 ||
            (r = sd_event_add_io(f->event, &f->listen_source, listen_fd, EPOLLIN, on_accept, f)) <
                    0 ||
            (r = sd_event_add_time(f->event, &f->resume_accept, CLOCK_MONOTONIC, UINT64_MAX, 0,
                                   on_resume_accept, f)) < 0 ||
            (r = sd_event_add_io(f->event, &f->stop_source, f->stop_fd, EPOLLIN, on_stop, f)) < 0)
                return log_error_errno(r, "watching the listening socket: %m");

        /* The thread inherits the blocked signals: they stay the main loop's. */
        if ((r = -pthread_create(&f->thread, NULL, front_thread, f)) < 0)
                return log_error_errno(r, "starting the front thread: %m");
        f->running = true;
        /* Only the front thread keeps a raised priority: the rest of the broker's work
         * (other users' operations, reloads, the integrity check) takes its turn with
         * everyone else's. */
        errno = 0;
        int nice_now = getpriority(PRIO_PROCESS, (id_t) gettid());
        if (errno == 0 && nice_now < 0 && setpriority(PRIO_PROCESS, (id_t) gettid(), 0) < 0)
                log_debug("cannot set the main thread's nice value to 0: %m");
        return 0;
}

/* Without socket activation: create the directory and bind the socket ourselves. */
static int bind_socket(Broker *b) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *dir = strdup(b->socket_path);

        if (!dir)
                return -ENOMEM;
        if (strlen(b->socket_path) >= sizeof(sa.sun_path)) {
                log_error("socket path %s is too long", b->socket_path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, b->socket_path);

        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                /* chmod too: the broker's umask (0077) would leave it unreachable for users. */
                if (mkdir(dir, 0755) < 0) {
                        if (errno != EEXIST) {
                                log_error("creating %s: %m", dir);
                                return -errno;
                        }
                } else if (chmod(dir, 0755) < 0) {
                        log_error("setting the mode of %s: %m", dir);
                        return -errno;
                }
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        /* A leftover socket file from a broker that died is replaced; a live broker is not. */
        struct stat st;
        if (lstat(b->socket_path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        log_error("%s exists and is not a socket; refusing to replace it",
                                  b->socket_path);
                        return -EEXIST;
                }
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
                        log_error("another broker is already listening on %s", b->socket_path);
                        return -EADDRINUSE;
                }
                (void) unlink(b->socket_path);
        }

        /* Anyone may connect: every operation is authorized from SO_PEERCRED. The mode comes
         * from the umask at bind time, not a chmod by path afterwards. */
        mode_t saved = umask(0111);
        int k = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(saved);
        if (k < 0) {
                log_error("binding %s: %m", b->socket_path);
                return -errno;
        }
        if (listen(fd, SOMAXCONN) < 0) {
                log_error("setting up %s: %m", b->socket_path);
                (void) unlink(b->socket_path);
                return -errno;
        }
        b->bound_socket = true;
        return TAKE_FD(fd);
}

int broker_listen(Broker *b) {
        int n = sd_listen_fds(true);
        int fd;

        if (n < 0)
                return log_error_errno(n, "reading the sockets passed by systemd: %m");
        if (n > 1) {
                log_error("systemd passed %d sockets, expected one", n);
                return -EINVAL;
        }
        if (n == 1) {
                fd = SD_LISTEN_FDS_START;
                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
                        log_error(
                                "the socket passed by systemd is not a listening AF_UNIX stream socket");
                        return -EINVAL;
                }
                int flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
                    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                        return -errno;
        } else {
                fd = bind_socket(b);
                if (fd < 0)
                        return fd;
        }
        b->listen_fd = fd;

        /* The main loop resolves names too (session registration asks for the grant). */
        int r = passwd_cache_new(NULL, NULL, &b->passwd_cache);
        if (r < 0)
                return log_error_errno(r, "setting up the user name cache: %m");
        if ((r = event_streams_new(b, &b->streams)) < 0)
                return log_error_errno(r, "setting up the event streams: %m");
        return front_start(b, fd);
}

void broker_stop_listening(Broker *b) {
        front_free(b->front);
        b->front = NULL;
        b->streams = event_streams_free(b->streams);
        passwd_cache_free(b->passwd_cache);
        b->passwd_cache = NULL;
        if (b->listen_fd >= 0) {
                close(b->listen_fd);
                b->listen_fd = -EBADF;
        }
        if (b->bound_socket)
                (void) unlink(b->socket_path);
}
