/* SPDX-License-Identifier: MIT */
/* The listening socket and its connections: one request, one reply, then close. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "broker-journal.h"
#include "broker.h"
#include "cleanup.h"
#include "protocol.h"
#include "timeutil.h"

typedef struct Connection {
        Broker *broker;
        int fd;
        struct ucred peer;
        JitFrameReader reader;
        sd_event_source *io;
        sd_event_source *timer;
        char *out; /* header + body of the reply, once there is one */
        size_t out_len;
        size_t out_off;
} Connection;

/* The slot count of a non-root uid: found, or added with 0 (NULL when the table is full,
 * which cannot happen while total connections are capped at the table's size). */
static unsigned *uid_slots(Broker *b, uid_t uid) {
        for (size_t i = 0; i < b->n_conn_uids; i++)
                if (b->conn_uids[i].uid == uid)
                        return &b->conn_uids[i].n;
        if (b->n_conn_uids == BROKER_CONNECTIONS_MAX)
                return NULL;
        b->conn_uids[b->n_conn_uids].uid = uid;
        b->conn_uids[b->n_conn_uids].n = 0;
        return &b->conn_uids[b->n_conn_uids++].n;
}

static void uid_release(Broker *b, uid_t uid) {
        for (size_t i = 0; i < b->n_conn_uids; i++)
                if (b->conn_uids[i].uid == uid) {
                        assert(b->conn_uids[i].n > 0); /* released once per counted connection */
                        if (--b->conn_uids[i].n == 0)
                                b->conn_uids[i] = b->conn_uids[--b->n_conn_uids];
                        return;
                }
}

/* Drops a table entry that uid_slots() added for a connection that was then refused. */
static void uid_release_empty(Broker *b, uid_t uid) {
        for (size_t i = 0; i < b->n_conn_uids; i++)
                if (b->conn_uids[i].uid == uid && b->conn_uids[i].n == 0) {
                        b->conn_uids[i] = b->conn_uids[--b->n_conn_uids];
                        return;
                }
}

static void connection_free(Connection *c) {
        if (!c)
                return;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        jit_frame_reader_done(&c->reader);
        free(c->out);
        if (c->fd >= 0)
                close(c->fd);
        if (c->peer.uid != 0) {
                assert(c->broker->n_connections > 0);
                c->broker->n_connections--;
                uid_release(c->broker, c->peer.uid);
        }
        free(c);
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

        c->out = malloc(JIT_FRAME_HEADER_SIZE + len);
        if (!c->out)
                return -ENOMEM;
        jit_frame_header(len, (uint8_t *) c->out);
        memcpy(c->out + JIT_FRAME_HEADER_SIZE, body, len);
        c->out_len = JIT_FRAME_HEADER_SIZE + len;
        c->out_off = 0;
        /* Nothing more is read from this peer: one request per connection. */
        return sd_event_source_set_io_events(c->io, EPOLLOUT);
}

static json_object *handle_frame(Connection *c) {
        json_object *msg = NULL;
        int r = jit_message_parse(c->reader.body, c->reader.body_len, &msg);
        if (r == -EPROTONOSUPPORT)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "unsupported protocol version (this broker speaks %d)",
                                       JIT_PROTOCOL_VERSION);
        if (r < 0)
                return jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                       "malformed message: expected one JSON object with "
                                       "\"version\": %d",
                                       JIT_PROTOCOL_VERSION);
        json_object *reply = broker_dispatch(c->broker, &c->peer, c->fd, msg);
        json_object_put(msg);
        return reply;
}

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;
        int r;

        if (c->out) {
                while (c->out_off < c->out_len) {
                        ssize_t n = send(fd, c->out + c->out_off, c->out_len - c->out_off,
                                         MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (n < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        return 0;
                                connection_free(c); /* the peer went away; nothing to tell it */
                                return 0;
                        }
                        c->out_off += (size_t) n;
                }
                connection_free(c);
                return 0;
        }

        r = jit_frame_reader_feed(&c->reader, fd);
        if (r == 0)
                return 0;
        if (r == -EMSGSIZE) {
                r = connection_queue_reply(
                        c, jit_reply_error(JIT_ERROR_BAD_REQUEST,
                                           "frame length out of bounds (1..%u bytes)",
                                           JIT_REQUEST_MAX));
                if (r < 0)
                        connection_free(c);
                return 0;
        }
        if (r < 0) {
                if (r != -ECONNRESET)
                        log_debug_errno(r, "reading from pid %d: %m", (int) c->peer.pid);
                connection_free(c);
                return 0;
        }

        r = connection_queue_reply(c, handle_frame(c));
        if (r < 0)
                connection_free(c);
        return 0;
}

static int on_connection_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Connection *c = userdata;
        log_debug("closing connection from pid %d: no complete exchange within 5 s",
                  (int) c->peer.pid);
        connection_free(c);
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Broker *b = userdata;

        for (;;) {
                _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (cfd < 0) {
                        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                                return 0;
                        log_error("accept: %m");
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
                unsigned *slots = peer.uid != 0 ? uid_slots(b, peer.uid) : NULL;
                if (peer.uid != 0 && (b->n_connections >= BROKER_CONNECTIONS_MAX || !slots ||
                                      *slots >= BROKER_CONNECTIONS_PER_UID)) {
                        /* One line per 10 s, not one per dropped connection: a flood must not flood
                         * the log. */
                        uint64_t now = now_usec(CLOCK_MONOTONIC);
                        if (now - b->flood_logged_at > 10 * USEC_PER_SEC) {
                                log_warning(
                                        "dropping connections of uid %u: %u open in all, %u of its own",
                                        (unsigned) peer.uid, b->n_connections, slots ? *slots : 0);
                                b->flood_logged_at = now;
                        }
                        if (slots && *slots == 0)
                                uid_release_empty(b, peer.uid);
                        continue;
                }

                Connection *c = calloc(1, sizeof(Connection));
                if (!c) {
                        log_error("out of memory accepting a connection");
                        continue;
                }
                c->broker = b;
                c->fd = TAKE_FD(cfd);
                c->peer = peer;
                jit_frame_reader_init(&c->reader, JIT_REQUEST_MAX);
                if (peer.uid != 0) {
                        b->n_connections++;
                        (*slots)++;
                }

                int r = sd_event_add_io(b->event, &c->io, c->fd, EPOLLIN, on_connection_io, c);
                if (r >= 0)
                        r = sd_event_add_time_relative(b->event, &c->timer, CLOCK_MONOTONIC,
                                                       BROKER_CONNECTION_TIMEOUT_USEC, 0,
                                                       on_connection_timeout, c);
                if (r < 0) {
                        log_error_errno(r, "watching a connection: %m");
                        connection_free(c);
                }
        }
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

        int r = sd_event_add_io(b->event, &b->listen_source, fd, EPOLLIN, on_accept, b);
        if (r < 0)
                return log_error_errno(r, "watching the listening socket: %m");
        return r;
}

void broker_stop_listening(Broker *b) {
        b->listen_source = sd_event_source_disable_unref(b->listen_source);
        if (b->listen_fd >= 0) {
                close(b->listen_fd);
                b->listen_fd = -EBADF;
        }
        if (b->bound_socket)
                (void) unlink(b->socket_path);
}
