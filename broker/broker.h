/* SPDX-License-Identifier: MIT */
/* The daemon's state, shared by its parts: server (socket), ops (one per protocol
 * operation), expiry (timers) and brokerd.c (setup and signals). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "effects.h"
#include "grant.h"
#include "policy.h"
#include "store.h"

/* Non-root uids share BROKER_CONNECTIONS_MAX connections, BROKER_CONNECTIONS_PER_UID at
 * most each. Past the shared ones, a uid with none open still gets one (for up to
 * BROKER_UIDS_RESERVED uids): a few users holding every shared slot lock nobody else out.
 * Root (the PAM stack) is never turned away. */
#define BROKER_CONNECTIONS_MAX 256
#define BROKER_CONNECTIONS_PER_UID 8
#define BROKER_UIDS_RESERVED 256
/* A connection that has sent nothing for this long is closed; its whole request must be in
 * within BROKER_CONNECTION_TIMEOUT_USEC. */
#define BROKER_IDLE_TIMEOUT_USEC (1 * 1000000ULL)
#define BROKER_CONNECTION_TIMEOUT_USEC (5 * 1000000ULL)
/* Operations that read much (audit, list --all, status, explain; and check, which only root
 * may ask), per non-root uid: a burst of BROKER_RATE_BURST, then BROKER_RATE_PER_SEC a
 * second. */
#define BROKER_RATE_BURST 20
#define BROKER_RATE_PER_SEC 2
/* The nice value of the thread that answers root's checks (the unit's Nice=). */
#define BROKER_FRONT_NICE (-10)
/* The CPU time the statements of one non-root read may take (db_set_budget()). */
#define BROKER_READ_BUDGET_USEC (25 * 1000ULL)

typedef struct Broker {
        sd_event *event;
        char *socket_path;
        char *db_path;
        char *policy_path;
        Policy *policy;
        BrokerDb *db;
        char boot_id[BOOT_ID_MAX];

        int listen_fd;
        bool bound_socket; /* we created the socket file (no socket activation) */
        /* Connection slots per uid, rate limits, and the thread that answers root's checks
         * (broker-server.c). */
        struct BrokerFront *front;
        /* Names to uids for check, where the front thread answers it (NULL: NSS each time). */
        struct PasswdCache *passwd_cache;
        /* The answers of the checks answered there, while the database is unchanged (NULL:
         * none kept). */
        struct CheckCache *check_cache;
        /* Which allowed checks are logged there (NULL: each one). */
        struct AccessLog *access_log;

        sd_event_source *deadline_timer;
        sd_event_source *warning_timer; /* "your grant ends in N minutes" */
        struct Session *sessions;       /* open sessions, held by pidfd (broker-sessions.c) */
        struct sd_bus *bus;             /* the system bus for logind, attached when first needed */
        sd_event_source *audit_head_timer;
        Grants grants;                    /* the lifecycle core (grant.c) */
        EffectQueue effects;              /* what follows its commits */
        sd_event_source *effects_source;  /* runs them once per loop iteration */
        int64_t audit_logged_seq;         /* the audit head last sent to journald */
        sd_event_source *retry_timer;     /* writes the ends the core holds (grant.h) */
        unsigned held_kept;               /* grants.held_changes as last kept in a file */
        sd_event_source *log_flush_timer; /* summaries of refusals held back (effects.h) */
        struct EventStreams *streams;     /* watch and wait (event-stream.c) */
        struct Notifier *notifier;        /* runs the policy's notify hooks (notify.h) */
        struct FleetClient *fleet;        /* the fleet store's connection (fleet-client.h) */
        /* CLOCK_BOOTTIME usec until which the fleet grants are honoured without a poll, as
         * last written (fleet.max_offline; INT64_MAX: no limit; 0: not written yet) */
        uint64_t fleet_honoured_until;
        /* CLOCK_REALTIME usec when this host's own pending fleet requests next need marking
         * timed_out (0: at the next poll; UINT64_MAX: none known) */
        uint64_t fleet_next_sweep;
        bool fleet_uploading;      /* an upload of fleet audit records is asked */
        bool fleet_upload_soon;    /* broker_fleet_upload_soon() is pending */
        bool fleet_grant_deferred; /* the fetch left a grant for later (records wait) */
        /* The signed fleet approvals verified here, by a key of what was verified, so that
         * ssh-keygen runs once per approval and a refusal is logged once
         * (broker-fleet.c; a ring, allocated at first use) */
        struct FleetVerdict *fleet_verdicts;
        size_t fleet_verdicts_next;
        unsigned fleet_verify_left;     /* ssh-keygen checks the current fetch may still run */
        char fleet_upload_error[256];   /* why the last upload failed, as logged; "": none */
        uint64_t fleet_upload_retry_at; /* CLOCK_MONOTONIC usec: no upload before (a failure) */
} Broker;

/* broker-server.c */
int broker_listen(Broker *b);
void broker_stop_listening(Broker *b);
/* Takes one of uid's tokens for an expensive operation: 0, or -EAGAIN and in
 * *ret_retry_usec how long until the next one. Root is never limited. */
int broker_rate_limit(Broker *b, uid_t uid, uint64_t *ret_retry_usec);

/* broker-ops.c: handles one parsed request from a peer, returns the reply. */
struct ucred;
/* The check, its reply written into buf (*ret_len bytes, NULL returned) without building it
 * as objects: the PAM hot path. Any other reply (an error) is returned as an object. */
json_object *broker_check_text(Broker *b, const struct ucred *peer, json_object *msg, char *buf,
                               size_t size, size_t *ret_len);
/* Root's session-open answered where root's checks are: 1 with the reply in buf (*ret_len
 * bytes) and, when a session was opened, *ret_early for the main loop
 * (sessions_attach_early()); 0 when the main loop must answer it. */
struct SessionEarly;
int broker_session_open_text(Broker *view, const struct ucred *peer, int peer_fd, json_object *msg,
                             char *buf, size_t size, size_t *ret_len,
                             struct SessionEarly **ret_early);
/* *ret_taken (may be NULL: no streams) is set when a stream (watch, wait) took the
 * connection: it answers there itself, and NULL is returned. */
json_object *broker_dispatch(Broker *b, const struct ucred *peer, int peer_fd, json_object *request,
                             bool *ret_taken);
/* A request as show, list and the wait stream give it. */
json_object *broker_request_to_json(const Broker *b, const Request *r);
/* The broker whose core (ends held in memory) and journal rate limits the check consults,
 * also where it is answered on another thread with a view of the broker. Set once, at start. */
void broker_ops_share(Broker *b);

/* broker-fleet.c: the fleet operations (fleet-request, fleet-list, fleet-show, fleet-approve,
 * fleet-deny, fleet-revoke, fleet-cancel), answered on the connection once the fleet store
 * has answered (*taken set, NULL returned), or at once with an error; and the poll's hook,
 * which reads the fleet requests among the changes (from, to] that concern this host (their
 * selector picks it, or it holds their grant) and grants or ends them here. */
json_object *broker_fleet_op(Broker *b, const char *name, const Identity *caller, int peer_fd,
                             json_object *msg, bool *taken);
struct FleetChange;
void broker_fleet_changes(void *userdata, int64_t from, int64_t to,
                          const struct FleetChange *changes, size_t n);

/* broker-bundle.c: grant-export (who may see the request) and grant-import (root). */
json_object *broker_bundle_op(Broker *b, const char *name, const Identity *caller,
                              json_object *msg);
/* After each successful poll: fleet.max_offline counts from sync_boot (the fleet grants'
 * deadlines are pushed forward). */
void broker_fleet_synced(void *userdata, uint64_t sync_boot);
/* Once connected, before the first poll: the catch-up, revocations first. */
void broker_fleet_connected(void *userdata);

/* fleet-upload.c: sends this host's fleet audit records the store does not have yet, in
 * chain order, on the fleet connection's queue (once connected, after the catch-up, and
 * after each poll); nothing when not connected, one upload at a time. */
void broker_fleet_upload(Broker *b);
/* The same from the main loop's next turn: for the poll's hooks, which must not ask a
 * query themselves (the poll's fetch goes first). */
void broker_fleet_upload_soon(Broker *b);

/* brokerd.c */
/* The file name in the runtime directory (the socket's): malloc'd, NULL when out of memory. */
char *broker_runtime_file(const Broker *b, const char *name);
/* Re-arms the timer for the next deadline and refreshes the STATUS line. */
void broker_state_changed(Broker *b);
/* Re-reads the policy file (SIGHUP, the reload op): 0, or -errno with the old policy kept
 * and *ret_error (if given) the reason, file:line when the parser gave one. */
int broker_reload(Broker *b, char **ret_error);
