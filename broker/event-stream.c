/* SPDX-License-Identifier: MIT */
#include "event-stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "audit-store.h"
#include "broker-audit.h"
#include "broker.h"
#include "cleanup.h"
#include "protocol.h"
#include "timeutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(Request *, request_free)

/* Records read from the log per query when sending what is new. */
#define PUBLISH_BATCH 256

typedef struct Stream Stream;

/* {"version": 1}, to which a frame adds its members. */
static json_object *stream_message(void) {
        json_object *m = json_object_new_object();
        if (m)
                json_object_object_add(m, "version", json_object_new_int(JIT_PROTOCOL_VERSION));
        return m;
}

struct Stream {
        EventStreams *owner;
        Stream *prev, *next;
        int fd;
        sd_event_source *io;
        sd_event_source *linger; /* closing: the time it has left to read the rest */
        bool wait;
        uid_t counted_uid;
        Identity caller; /* watch: whose view */
        bool sees_all;
        int64_t request_id; /* wait */
        bool cancel_on_close;
        Identity canceller;
        bool touched; /* wait: a record of its request went out in this batch */
        bool closing; /* its last frame is queued: no more, close once sent */
        char *out;    /* frames queued, out[off..len) not sent yet */
        size_t len, off, allocated;
        size_t frame_end; /* end of the frame out[off] is in (frames are length-prefixed) */
};

struct EventStreams {
        Broker *b;
        Stream *list;
        size_t n;
        int64_t seq; /* the last record sent out (or passed over) */
        sd_event_source *post;
};

static void stream_free(Stream *st) {
        if (!st)
                return;
        EventStreams *s = st->owner;
        if (st->prev)
                st->prev->next = st->next;
        else if (s->list == st)
                s->list = st->next;
        if (st->next)
                st->next->prev = st->prev;
        s->n--;
        sd_event_source_disable_unref(st->io);
        sd_event_source_disable_unref(st->linger);
        if (st->fd >= 0)
                close(st->fd);
        identity_done(&st->caller);
        identity_done(&st->canceller);
        free(st->out);
        free(st);
        if (s->n == 0 && s->post)
                (void) sd_event_source_set_enabled(s->post, SD_EVENT_OFF);
}

/* The peer closed (or sent something, which the protocol does not allow) while its wait's
 * request may still be pending: cancel_on_close ends the request. */
static void stream_peer_gone(Stream *st) {
        Broker *b = st->owner->b;

        if (st->wait && st->cancel_on_close && !st->closing) {
                GrantError e;
                int r = grant_end(&b->grants, &st->canceller, st->request_id, EVENT_CANCEL,
                                  "the wait for approval ended before an answer", &e);
                /* -EBUSY: answered meanwhile (no longer pending); nothing to do. */
                if (r < 0 && r != -EBUSY && r != -ENOENT)
                        log_warning_errno(r,
                                          "cancelling request %lld after its wait ended: %m (%s)",
                                          (long long) st->request_id, e.message);
        }
        stream_free(st);
}

/* Where the frame that starts at out[at] ends. */
static size_t frame_end_at(const Stream *st, size_t at) {
        if (at + JIT_FRAME_HEADER_SIZE > st->len)
                return st->len;
        const uint8_t *h = (const uint8_t *) st->out + at;
        uint32_t n =
                ((uint32_t) h[0] << 24) | ((uint32_t) h[1] << 16) | ((uint32_t) h[2] << 8) | h[3];
        return at + JIT_FRAME_HEADER_SIZE + n;
}

static int stream_watch_output(Stream *st, bool want) {
        return sd_event_source_set_io_events(st->io, want ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* Sends what the socket takes. Returns 0, or -errno when the stream is gone (freed). */
static int stream_flush(Stream *st) {
        while (st->off < st->len) {
                ssize_t n = send(st->fd, st->out + st->off, st->len - st->off,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return stream_watch_output(st, true) < 0 ? (stream_free(st), -EIO)
                                                                         : 0;
                        int r = -errno;
                        stream_peer_gone(st);
                        return r;
                }
                st->off += (size_t) n;
                while (st->off >= st->frame_end && st->frame_end < st->len)
                        st->frame_end = frame_end_at(st, st->frame_end);
        }
        st->off = st->len = st->frame_end = 0;
        if (st->closing) {
                stream_free(st);
                return -ECONNRESET;
        }
        return stream_watch_output(st, false) < 0 ? (stream_free(st), -EIO) : 0;
}

static int on_linger_end(sd_event_source *s, uint64_t usec, void *userdata) {
        stream_free(userdata);
        return 0;
}

static int append_frame(Stream *st, const char *body, size_t n) {
        if (n > JIT_REPLY_MAX)
                return -EMSGSIZE;
        size_t need = st->len + JIT_FRAME_HEADER_SIZE + n;
        if (need > st->allocated) {
                /* What was sent goes first. */
                if (st->off > 0) {
                        memmove(st->out, st->out + st->off, st->len - st->off);
                        st->len -= st->off;
                        st->frame_end -= st->off;
                        st->off = 0;
                        need = st->len + JIT_FRAME_HEADER_SIZE + n;
                }
                if (need > st->allocated) {
                        size_t a = st->allocated ? st->allocated : 4096;
                        while (a < need)
                                a *= 2;
                        char *p = realloc(st->out, a);
                        if (!p)
                                return -ENOMEM;
                        st->out = p;
                        st->allocated = a;
                }
        }
        bool empty = st->off == st->len;
        jit_frame_header(n, (uint8_t *) st->out + st->len);
        memcpy(st->out + st->len + JIT_FRAME_HEADER_SIZE, body, n);
        if (empty)
                st->frame_end = st->len + JIT_FRAME_HEADER_SIZE + n;
        st->len += JIT_FRAME_HEADER_SIZE + n;
        return 0;
}

/* Queues a frame and closes the stream after it: no more frames, a little time to read. */
static void stream_close_after(Stream *st, json_object *last) {
        size_t n;
        _cleanup_free_ char *body = last ? jit_message_serialize(last, &n) : NULL;
        json_object_put(last);
        if (!body || append_frame(st, body, n) < 0) {
                stream_free(st);
                return;
        }
        st->closing = true;
        if (sd_event_add_time_relative(st->owner->b->event, &st->linger, CLOCK_MONOTONIC,
                                       EVENT_STREAM_LINGER_USEC, 0, on_linger_end, st) < 0) {
                stream_free(st);
                return;
        }
        (void) stream_flush(st);
}

/* A frame for st; a peer too slow for it is dropped with "lost events". Returns 0, or
 * -errno when the stream is gone. */
static int stream_send(Stream *st, const char *body, size_t n) {
        if (st->closing)
                return 0;
        if (st->len - st->off + n > EVENT_STREAM_BUFFER_MAX) {
                /* Keep the frame being sent whole; drop what waits behind it. */
                st->len = st->off == st->len ? st->off : st->frame_end;
                log_debug("dropping the event stream of uid %u: more than %u bytes unread",
                          (unsigned) st->counted_uid, (unsigned) EVENT_STREAM_BUFFER_MAX);
                json_object *lost = stream_message();
                if (lost) {
                        json_object_object_add(lost, "ok", json_object_new_boolean(false));
                        json_object_object_add(lost, "error",
                                               json_object_new_string("lost-events"));
                        json_object_object_add(lost, "message",
                                               json_object_new_string("lost events, reconnect"));
                }
                stream_close_after(st, lost);
                return -ENOBUFS;
        }
        int r = append_frame(st, body, n);
        if (r < 0) {
                stream_free(st);
                return r;
        }
        return 0;
}

static int on_stream_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Stream *st = userdata;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                /* The peer sends nothing after its request: anything, or the end, means it
                 * is done with the stream. */
                char buf[64];
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                bool nothing = n < 0 && (errno == EAGAIN || errno == EINTR);
                if (!nothing || (revents & (EPOLLHUP | EPOLLERR))) {
                        stream_peer_gone(st);
                        return 0;
                }
        }
        if (revents & EPOLLOUT)
                (void) stream_flush(st);
        return 0;
}

static json_object *frame_of_record(const AuditRecord *rec) {
        json_object *m = stream_message(), *r = audit_record_to_json(rec, false);
        if (!m || !r) {
                json_object_put(m);
                json_object_put(r);
                return NULL;
        }
        json_object_object_add(m, "record", r);
        return m;
}

/* ---- sending what is new ---- */

typedef struct Batch {
        EventStreams *s;
        int64_t last_id; /* the request read last, kept for the records after it */
        Request *request;
        int error;
} Batch;

static const Request *batch_request(Batch *bt, int64_t id) {
        if (id <= 0)
                return NULL;
        if (bt->last_id != id) {
                request_free(bt->request);
                bt->request = NULL;
                bt->last_id = id;
                if (db_get_request(bt->s->b->db, id, &bt->request) < 0)
                        bt->request = NULL; /* gone (retention): only those who see all */
        }
        return bt->request;
}

static bool stream_sees(const Stream *st, Batch *bt, const AuditRecord *rec) {
        if (st->wait)
                return rec->request_id == st->request_id;
        if (st->sees_all)
                return true;
        const Request *r = batch_request(bt, rec->request_id);
        return r && grant_may_see(&bt->s->b->grants, &st->caller, r);
}

static int publish_record(const AuditRecord *rec, void *userdata) {
        Batch *bt = userdata;
        EventStreams *s = bt->s;
        _cleanup_free_ char *body = NULL;
        size_t n = 0;

        s->seq = rec->seq;
        for (Stream *st = s->list, *next; st; st = next) {
                next = st->next;
                if (st->closing || !stream_sees(st, bt, rec))
                        continue;
                if (!body) {
                        _cleanup_(json_object_putp) json_object *m = frame_of_record(rec);
                        body = m ? jit_message_serialize(m, &n) : NULL;
                        if (!body)
                                return -ENOMEM;
                }
                if (stream_send(st, body, n) >= 0 && st->wait)
                        st->touched = true;
        }
        return 0;
}

/* A wait whose request left pending gets the request as it is now, and ends. */
static void stream_wait_done(Stream *st, const Request *r) {
        json_object *m = stream_message();
        if (m) {
                json_object_object_add(m, "done", json_object_new_boolean(true));
                json_object_object_add(m, "request", broker_request_to_json(st->owner->b, r));
        }
        stream_close_after(st, m);
}

static void finish_waits(EventStreams *s) {
        for (Stream *st = s->list, *next; st; st = next) {
                next = st->next;
                if (!st->wait || !st->touched)
                        continue;
                st->touched = false;
                _cleanup_(request_freep) Request *r = NULL;
                if (db_get_request(s->b->db, st->request_id, &r) < 0)
                        continue;
                if (r->state != REQUEST_PENDING)
                        stream_wait_done(st, r);
        }
}

static void flush_all(EventStreams *s) {
        for (Stream *st = s->list, *next; st; st = next) {
                next = st->next;
                if (st->off < st->len && !st->closing)
                        (void) stream_flush(st);
        }
}

/* Sends the records committed since the last look. */
static int publish(EventStreams *s) {
        Batch bt = { .s = s };
        int r = 0;

        for (;;) {
                int64_t before = s->seq;
                AuditFilter f = {
                        .uid_only = -1,
                        .after_seq = s->seq,
                        .limit = PUBLISH_BATCH,
                        .oldest = true,
                };
                r = audit_store_foreach(db_sqlite(s->b->db), &f, publish_record, &bt);
                if (r < 0 || s->seq - before < PUBLISH_BATCH)
                        break;
        }
        request_free(bt.request);
        finish_waits(s);
        flush_all(s);
        return r;
}

static int on_post(sd_event_source *src, void *userdata) {
        EventStreams *s = userdata;
        int r = publish(s);
        if (r < 0)
                log_error_errno(r,
                                "sending new audit records to %zu streams: %m; retried after "
                                "the next change",
                                s->n);
        return 0;
}

/* The log's last seq now. */
static int head_seq(EventStreams *s, int64_t *ret) {
        AuditHead head;
        int r = audit_store_head(db_sqlite(s->b->db), &head, NULL);
        if (r < 0)
                return r;
        *ret = head.seq;
        return 0;
}

int event_streams_new(Broker *b, EventStreams **ret) {
        EventStreams *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->b = b;
        if ((r = sd_event_add_post(b->event, &s->post, on_post, s)) < 0 ||
            (r = sd_event_source_set_enabled(s->post, SD_EVENT_OFF)) < 0) {
                event_streams_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

EventStreams *event_streams_free(EventStreams *s) {
        if (!s)
                return NULL;
        while (s->list) {
                s->list->cancel_on_close = false; /* the broker stops, the user did not */
                stream_free(s->list);
        }
        sd_event_source_disable_unref(s->post);
        free(s);
        return NULL;
}

size_t event_streams_count(const EventStreams *s) {
        return s ? s->n : 0;
}

int event_streams_admit(const EventStreams *s, uid_t counted_uid) {
        size_t mine = 0;

        if (s->n >= EVENT_STREAMS_MAX)
                return -EUSERS;
        for (const Stream *st = s->list; st; st = st->next)
                if (st->counted_uid == counted_uid && !st->closing)
                        mine++;
        return mine >= EVENT_STREAMS_PER_UID ? -EUSERS : 0;
}

typedef struct Replay {
        Stream *st;
        Batch bt;
} Replay;

static int replay_record(const AuditRecord *rec, void *userdata) {
        Replay *rp = userdata;
        if (!stream_sees(rp->st, &rp->bt, rec))
                return 0;
        /* The replay is bounded like what follows it: past the buffer's limit the watcher
         * is told it lost events. */
        if (rp->st->len > EVENT_STREAM_BUFFER_MAX)
                return -ENOBUFS;
        _cleanup_(json_object_putp) json_object *m = frame_of_record(rec);
        size_t n;
        _cleanup_free_ char *body = m ? jit_message_serialize(m, &n) : NULL;
        if (!body)
                return -ENOMEM;
        return append_frame(rp->st, body, n);
}

int event_stream_start(EventStreams *s, int fd, const StreamSpec *spec, json_object *first) {
        _cleanup_(json_object_putp) json_object *m = jit_reply_ok(first);
        _cleanup_free_ char *body = NULL;
        Stream *st = NULL;
        size_t n;
        int r;

        if (!m)
                return -ENOMEM;
        /* Records committed before this stream was asked for, and not sent yet, are not
         * for it: catch up first. */
        if (s->n > 0 && (r = publish(s)) < 0)
                return r;
        int64_t seq;
        if ((r = head_seq(s, &seq)) < 0)
                return r;
        if (s->n == 0)
                s->seq = seq;

        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->owner = s;
        st->fd = -EBADF;
        st->wait = spec->wait;
        st->counted_uid = spec->counted_uid;
        st->sees_all = spec->sees_all;
        st->request_id = spec->request_id;
        st->cancel_on_close = spec->cancel_on_close;
        st->caller.uid = st->canceller.uid = (uid_t) -1;
        st->next = s->list;
        if (s->list)
                s->list->prev = st;
        s->list = st;
        s->n++;

        if (spec->caller && (r = identity_copy(spec->caller, &st->caller)) < 0)
                goto fail;
        if (spec->canceller) {
                st->canceller = *spec->canceller;
                *spec->canceller = (Identity){ .uid = (uid_t) -1 };
        }
        if ((st->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
                r = -errno;
                goto fail;
        }
        if ((r = sd_event_add_io(s->b->event, &st->io, st->fd, EPOLLIN, on_stream_io, st)) < 0)
                goto fail;

        /* The first frame says where the stream starts: the head, or the request. */
        if (!spec->wait) {
                json_object *res = json_object_new_object();
                if (!res)
                        goto nomem;
                json_object_object_add(res, "seq", json_object_new_int64(seq));
                json_object_object_add(m, "result", res);
        }
        body = jit_message_serialize(m, &n);
        if (!body)
                goto nomem;
        if ((r = append_frame(st, body, n)) < 0)
                goto fail;

        if (!spec->wait && spec->since) {
                Replay rp = { .st = st, .bt = { .s = s } };
                AuditFilter f = {
                        .uid_only = -1,
                        .since = spec->since,
                        .limit = EVENT_STREAM_REPLAY_MAX,
                };
                /* Not filtered by visibility in SQL: of the newest records since then, those
                 * this caller may see (a caller who sees few gets fewer than the limit). */
                r = audit_store_foreach(db_sqlite(s->b->db), &f, replay_record, &rp);
                request_free(rp.bt.request);
                if (r == -ENOBUFS) {
                        json_object *lost = stream_message();
                        if (lost) {
                                json_object_object_add(lost, "ok", json_object_new_boolean(false));
                                json_object_object_add(lost, "error",
                                                       json_object_new_string("lost-events"));
                                json_object_object_add(
                                        lost, "message",
                                        json_object_new_string("lost events, reconnect"));
                        }
                        (void) sd_event_source_set_enabled(s->post, SD_EVENT_ON);
                        stream_close_after(st, lost);
                        return 0;
                }
                if (r < 0)
                        goto fail;
        }
        (void) sd_event_source_set_enabled(s->post, SD_EVENT_ON);

        if (spec->wait) {
                _cleanup_(request_freep) Request *req = NULL;
                if ((r = db_get_request(s->b->db, spec->request_id, &req)) < 0)
                        goto fail;
                if (req->state != REQUEST_PENDING) {
                        stream_wait_done(st, req);
                        return 0;
                }
        }
        (void) stream_flush(st);
        return 0;

nomem:
        r = -ENOMEM;
fail:
        stream_free(st);
        return r;
}
