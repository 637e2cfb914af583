/* SPDX-License-Identifier: MIT */
/* The watch and wait streams (common/PROTOCOL.md, "Streams"): connections that stay open and
 * get every new audit record their caller may see, as it is committed. They live on the main
 * loop, where every record is written; a post source sends what is new after each iteration
 * of the loop while any stream is open. A stream whose peer reads too slowly is dropped with
 * a last "lost events" frame, never waited for. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "users.h"

typedef struct Broker Broker;
typedef struct EventStreams EventStreams;

/* Per uid (for a wait that root asks for on a requester's behalf: per requester) and in
 * all. */
#define EVENT_STREAMS_PER_UID 4
#define EVENT_STREAMS_MAX 1024
/* Bytes queued for one stream past which it is dropped ("lost events, reconnect"). */
#define EVENT_STREAM_BUFFER_MAX (256 * 1024)
/* Records a watch replays with since=, the newest kept. */
#define EVENT_STREAM_REPLAY_MAX 1000
/* How long a stream that is closing may take to read its last frames. */
#define EVENT_STREAM_LINGER_USEC (10 * 1000000ULL)

typedef struct StreamSpec {
        bool wait;              /* else watch */
        uid_t counted_uid;      /* the uid its limit counts against */
        const Identity *caller; /* watch: whose view (copied) */
        bool sees_all;          /* watch: root or an auditor */
        uint64_t since;         /* watch: replay records from this realtime usec (0: none) */
        int64_t request_id;     /* wait */
        bool cancel_on_close;
        Identity *canceller; /* wait with cancel_on_close: who cancels (taken) */
} StreamSpec;

int event_streams_new(Broker *b, EventStreams **ret);
/* Closes every stream (the broker stops); a wait's cancel_on_close does not apply then:
 * its request stays pending for the next start. */
EventStreams *event_streams_free(EventStreams *s);
size_t event_streams_count(const EventStreams *s);

/* -EUSERS when the limits say no. */
int event_streams_admit(const EventStreams *s, uid_t counted_uid);
/* Takes a duplicate of fd for a new stream, sends first (the first frame's result, taken)
 * and, for a watch with since, the records it replays. For a wait on a request that is not
 * pending any more, the done frame follows at once. Returns 0 or -errno (first is freed). */
int event_stream_start(EventStreams *s, int fd, const StreamSpec *spec, json_object *first);
