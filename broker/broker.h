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

#define BROKER_CONNECTIONS_MAX 256
/* Per non-root uid; root (the PAM stack) is never turned away. */
#define BROKER_CONNECTIONS_PER_UID 8
#define BROKER_CONNECTION_TIMEOUT_USEC (5 * 1000000ULL)

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
        sd_event_source *listen_source;
        unsigned n_connections;
        /* Open connections per non-root uid, so that one user cannot take every slot. */
        struct {
                uid_t uid;
                unsigned n;
        } conn_uids[BROKER_CONNECTIONS_MAX];
        size_t n_conn_uids;
        uint64_t flood_logged_at; /* CLOCK_MONOTONIC usec of the last "dropping" warning */

        sd_event_source *deadline_timer;
        sd_event_source *warning_timer; /* "your grant ends in N minutes" */
        struct Session *sessions;       /* open sessions, held by pidfd (broker-sessions.c) */
        struct sd_bus *bus;             /* the system bus for logind, attached when first needed */
        sd_event_source *audit_head_timer;
        Grants grants;                   /* the lifecycle core (grant.c) */
        EffectQueue effects;             /* what follows its commits */
        sd_event_source *effects_source; /* runs them once per loop iteration */
        int64_t audit_logged_seq;        /* the audit head last sent to journald */
} Broker;

/* broker-server.c */
int broker_listen(Broker *b);
void broker_stop_listening(Broker *b);

/* broker-ops.c: handles one parsed request from a peer, returns the reply. */
struct ucred;
json_object *broker_dispatch(Broker *b, const struct ucred *peer, int peer_fd,
                             json_object *request);

/* brokerd.c */
/* Re-arms the timer for the next deadline and refreshes the STATUS line. */
void broker_state_changed(Broker *b);
