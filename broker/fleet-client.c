/* SPDX-License-Identifier: MIT */
#include "fleet-client.h"

#include "fleet-libpq.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "broker-journal.h"
#include "cleanup.h"
#include "fleet-credentials.h"
#include "fleet-fetch-key.h"
#include "fleet-poll.h"
#include "fleet-resolve.h"
#include "fleet-schema.h"
#include "fleet-sql.h"
#include "store-fleet.h"
#include "timeutil.h"

/* What the connection is doing; one timer serves each phase (its deadline or its wait). */
typedef enum Phase {
        PHASE_OFF,          /* disabled: no connection, no timer */
        PHASE_WAIT_RETRY,   /* the timer starts the next attempt */
        PHASE_RESOLVING,    /* the URI's host names, off the loop; the timer is the deadline */
        PHASE_CONNECTING,   /* PQconnectPoll() on the socket; the timer is the deadline */
        PHASE_CHECK_SCHEMA, /* the queries: the timer is the deadline of the answer */
        PHASE_CHECK_HOST,
        PHASE_POLL,
        PHASE_IDLE,  /* connected; the timer starts the next poll */
        PHASE_QUERY, /* one of the broker's own queries (FleetQuery) */
} Phase;

typedef struct FleetQuery {
        struct FleetQuery *next;
        char *sql;
        int n;
        char *params[FLEET_QUERY_PARAMS_MAX];
        FleetQueryDone done;
        void *userdata;
        /* The fetch after a poll (params[0] the ids): sent through the shared poll login
         * when it may be (fetch_shared()), else as sql on the host's connection. */
        bool fetch;
        bool sent_shared;
} FleetQuery;

/* One connection to the store: the host's own role's, or the shared poll login's. */
typedef struct Link {
        struct FleetClient *fc;
        PGconn *conn;
        sd_event_source *io; /* its socket */
        const char *name;    /* for the event source */
} Link;

struct FleetClient {
        sd_event *event;
        BrokerDb *db;

        /* The policy's fleet section in use (copies). */
        bool enabled;
        char *database;
        char *host;
        char *credentials;
        char *poll_credentials; /* NULL: the poll runs on the host's own connection */

        /* The host's role's connection (checks, fetches, writes, and the poll without a
         * poll login), the poll login's, and the one the phase's query runs on. */
        Link host_link;
        Link poll_link;
        Link *cur;
        /* The addresses connected to (resolved from the URI), for the poll login's
         * connection; NULL: the URI's own. */
        char *conn_host, *conn_hostaddr, *conn_port;
        FleetResolve *resolve; /* the URI's host names being resolved */
        char *uri_hosts;       /* the URI's host and port lists, while they are */
        char *uri_ports;
        sd_event_source *timer;
        Phase phase;
        PGresult *result; /* the first result of the query in flight */
        char *role;       /* the role the credentials name */
        char *poll_role;  /* the poll login's */
        /* The fetch key derived from the host role's password (never logged; wiped when
         * the connection goes); "": none. */
        char fetch_key[FLEET_FETCH_KEY_HEX_LEN + 1];
        bool shared_fetch_off;    /* the store refused it: the own role's fetch until the
                                   * next connection */
        bool shared_fetch_warned; /* said so once for this fleet section */

        FleetState state;
        uint64_t since; /* CLOCK_REALTIME usec the state began */
        char *last_error;
        uint64_t last_poll; /* CLOCK_REALTIME usec of the last successful poll; 0: none */
        /* CLOCK_BOOTTIME usec the last successful poll was sent (before its snapshot, so
         * max_offline never counts from later than the store was heard); 0: none since
         * start */
        uint64_t last_poll_boot;
        uint64_t poll_sent_boot;
        uint64_t backoff;   /* the last wait before an attempt; 0 after a success */
        int schema_version; /* the store's, as last read; 0: not read */
        char fleet_id[33];  /* jit_fleet.fleet_identity, read at connect; "": not read */
        /* Two cursors: the one kept in the local database moves only once the changes up
         * to it are applied (fleet_client_applied()), so that a broker stopped between a
         * poll and its fetch, or a fetch that failed, reads them again; the poll goes on
         * from the one seen. */
        FleetCursor cursor;
        FleetCursor seen;

        FleetQuery *queries; /* waiting, the first one in flight in PHASE_QUERY */
        size_t n_queries;
        FleetChangesHook changes_hook;
        void *changes_userdata;
        FleetSyncHook sync_hook;
        FleetConnectedHook connected_hook;
};

static const char *const state_names[_FLEET_STATE_MAX] = {
        [FLEET_DISABLED] = "disabled",
        [FLEET_CONNECTING] = "connecting",
        [FLEET_CONNECTED] = "connected",
        [FLEET_UNREACHABLE] = "unreachable",
        [FLEET_SCHEMA_MISMATCH] = "schema-mismatch",
};

const char *fleet_state_to_string(FleetState s) {
        return s >= 0 && s < _FLEET_STATE_MAX ? state_names[s] : NULL;
}

FleetState fleet_client_state(const FleetClient *fc) {
        return fc ? fc->state : FLEET_DISABLED;
}

/* The schema version this broker was built for: the newest of its embedded migrations. */
static int schema_version_known(void) {
        return fleet_schema_newest();
}

/* The first built-in version missing from the store's list of versions ("1,2,3", as the
 * version query gives them), or 0 when it has them all. */
static int schema_version_lacking(const char *list) {
        for (size_t i = 0; i < fleet_migrations_n; i++) {
                bool found = false;
                for (const char *p = list; *p && !found;) {
                        char *end;
                        long v = strtol(p, &end, 10);
                        if (end == p)
                                break;
                        found = v == fleet_migrations[i].version;
                        p = *end == ',' ? end + 1 : end;
                }
                if (!found)
                        return fleet_migrations[i].version;
        }
        return 0;
}

static void connect_start(FleetClient *fc);
static void connect_now(FleetClient *fc, const char *credentials, char **ret_role, const char *host,
                        const char *hostaddr, const char *port);
static void become_connected(FleetClient *fc);
static void poll_send(FleetClient *fc);
static bool query_next(FleetClient *fc);

/* PostgreSQL's message on one line. */
static void pg_message(const char *text, char *buf, size_t len) {
        snprintf(buf, len, "%s", text && *text ? text : "unknown error");
        for (char *c = buf; *c; c++)
                if (*c == '\n' || *c == '\r')
                        *c = c[1] ? ' ' : '\0';
}

static void arm_timer(FleetClient *fc, uint64_t usec) {
        int r = sd_event_source_set_time_relative(fc->timer, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(fc->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                /* Nothing would ever run again: the watchdog notices a broker that cannot
                 * arm timers long before this matters. */
                log_error_errno(r, "fleet: cannot arm a timer: %m");
}

static void *mfree(void *p) {
        free(p);
        return NULL;
}

static void query_free(FleetQuery *q) {
        free(q->sql);
        for (int i = 0; i < q->n; i++)
                free(q->params[i]);
        free(q);
}

/* Every query waiting is told the connection is gone. */
static void queries_fail(FleetClient *fc, const char *error) {
        FleetQuery *q;
        while ((q = fc->queries)) {
                fc->queries = q->next;
                fc->n_queries--;
                q->done(q->userdata, NULL, error);
                query_free(q);
        }
}

static void drop_connection(FleetClient *fc) {
        fc->resolve = fleet_resolve_cancel(fc->resolve);
        fc->uri_hosts = mfree(fc->uri_hosts);
        fc->uri_ports = mfree(fc->uri_ports);
        fc->conn_host = mfree(fc->conn_host);
        fc->conn_hostaddr = mfree(fc->conn_hostaddr);
        fc->conn_port = mfree(fc->conn_port);
        explicit_bzero(fc->fetch_key, sizeof(fc->fetch_key));
        fc->shared_fetch_off = false;
        if (fc->result) {
                PQclear(fc->result);
                fc->result = NULL;
        }
        for (Link *l = &fc->host_link; l; l = l == &fc->host_link ? &fc->poll_link : NULL) {
                l->io = sd_event_source_disable_unref(l->io);
                if (l->conn) {
                        PQfinish(l->conn);
                        l->conn = NULL;
                }
        }
        fc->cur = &fc->host_link;
        (void) sd_event_source_set_enabled(fc->timer, SD_EVENT_OFF);
}

static void set_state(FleetClient *fc, FleetState s, const char *error) {
        char host_field[128], error_field[1100];
        const char *fields[] = { host_field, error ? error_field : NULL, NULL };
        bool changed = fc->state != s;

        if (error) {
                char *e = strdup(error);
                if (e) {
                        free(fc->last_error);
                        fc->last_error = e;
                }
        }
        if (!changed) {
                if (error)
                        log_debug("fleet: still %s: %s", state_names[s], error);
                return;
        }
        fc->state = s;
        fc->since = now_usec(CLOCK_REALTIME);
        snprintf(host_field, sizeof(host_field), "JIT_FLEET_HOST=%s", fc->host ?: "");
        snprintf(error_field, sizeof(error_field), "JIT_FLEET_ERROR=%s", error ?: "");
        switch (s) {
        case FLEET_CONNECTED:
                log_event(JIT_EVENT_FLEET_CONNECTED, LOG_INFO, NULL, "broker", fields,
                          "fleet store connected as host %s (role %s, schema version %d)", fc->host,
                          fc->role ?: "?", fc->schema_version);
                break;
        case FLEET_UNREACHABLE:
                log_event(JIT_EVENT_FLEET_UNREACHABLE, LOG_WARNING, NULL, "broker", fields,
                          "fleet store unreachable for host %s: %s", fc->host,
                          error ?: "unknown error");
                break;
        case FLEET_SCHEMA_MISMATCH:
                log_event(JIT_EVENT_FLEET_SCHEMA_MISMATCH, LOG_ERR, NULL, "broker", fields,
                          "fleet store refused for host %s: %s", fc->host,
                          error ?: "schema version mismatch");
                break;
        default:
                break;
        }
}

/* The attempt or the connection failed: state s with the reason, a new attempt after the
 * backoff. */
static void fail(FleetClient *fc, FleetState s, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void fail(FleetClient *fc, FleetState s, const char *fmt, ...) {
        char error[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(error, sizeof(error), fmt, ap);
        va_end(ap);
        drop_connection(fc);
        set_state(fc, s, error);
        queries_fail(fc, error);
        fc->backoff = fleet_backoff_next(fc->backoff);
        fc->phase = PHASE_WAIT_RETRY;
        log_debug("fleet: next attempt in %llu ms", (unsigned long long) (fc->backoff / 1000));
        arm_timer(fc, fc->backoff);
}

static void fail_pg(FleetClient *fc, const char *what) {
        char buf[900];
        pg_message(fc->cur->conn ? PQerrorMessage(fc->cur->conn) : NULL, buf, sizeof(buf));
        fail(fc, FLEET_UNREACHABLE, "%s: %s", what, buf);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Watches the connection's socket for events; while connecting libpq may change the
 * socket (another address, TLS refused), so the source is made again each time. */
static int watch(FleetClient *fc, uint32_t events, bool renew) {
        int fd = PQsocket(fc->cur->conn);
        int r;

        if (fd < 0)
                return -EBADF;
        if (fc->cur->io && !renew) {
                r = sd_event_source_set_io_events(fc->cur->io, events);
                return r < 0 ? r : 0;
        }
        fc->cur->io = sd_event_source_disable_unref(fc->cur->io);
        r = sd_event_add_io(fc->event, &fc->cur->io, fd, events, on_io, fc->cur);
        if (r >= 0)
                (void) sd_event_source_set_description(fc->cur->io, fc->cur->name);
        return r < 0 ? r : 0;
}

/* ---- queries ---- */

static void query_send(FleetClient *fc, Phase phase, const char *sql, int n,
                       const char *const *params) {
        int r;

        if (!PQsendQueryParams(fc->cur->conn, sql, n, NULL, params, NULL, NULL, 0))
                return fail_pg(fc, "cannot send a query");
        fc->phase = phase;
        r = PQflush(fc->cur->conn);
        if (r < 0)
                return fail_pg(fc, "cannot send a query");
        if ((r = watch(fc, EPOLLIN | (r > 0 ? EPOLLOUT : 0), false)) < 0)
                return fail(fc, FLEET_UNREACHABLE, "cannot watch the connection: %s", strerror(-r));
        arm_timer(fc, FLEET_QUERY_TIMEOUT_USEC);
}

static const char *result_error(const PGresult *res, char *buf, size_t len) {
        pg_message(PQresultErrorMessage(res), buf, len);
        return buf;
}

static void schema_checked(FleetClient *fc, PGresult *res) {
        char buf[900];
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int known = schema_version_known();

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                /* Before version 3 the host roles may not read the version table. */
                if (state && STREQ(state, "42501"))
                        return fail(fc, FLEET_SCHEMA_MISMATCH,
                                    "the fleet schema is older than version 3 (its host roles "
                                    "cannot read its version); this broker needs version %d: "
                                    "run jitctl fleet migrate",
                                    known);
                if (state && (STREQ(state, "42P01") || STREQ(state, "3F000")))
                        return fail(fc, FLEET_SCHEMA_MISMATCH,
                                    "the database holds no fleet schema; this broker needs "
                                    "version %d: run jitctl fleet migrate",
                                    known);
                return fail(fc, FLEET_UNREACHABLE, "cannot read the fleet schema's version: %s",
                            result_error(res, buf, sizeof(buf)));
        }
        if (PQntuples(res) != 1 || PQnfields(res) != 2)
                return fail(fc, FLEET_UNREACHABLE, "unexpected answer to the version query");
        char *end;
        long v = strtol(PQgetvalue(res, 0, 0), &end, 10);
        if (*end || v < 0 || v > 1000000)
                return fail(fc, FLEET_UNREACHABLE, "unexpected schema version \"%.32s\"",
                            PQgetvalue(res, 0, 0));
        fc->schema_version = (int) v;
        if (v > known)
                return fail(fc, FLEET_SCHEMA_MISMATCH,
                            "the fleet schema is at version %ld; this broker knows versions up "
                            "to %d: upgrade jit on this host",
                            v, known);
        if (v < known)
                return fail(fc, FLEET_SCHEMA_MISMATCH,
                            "the fleet schema is at version %ld; this broker needs version %d: "
                            "run jitctl fleet migrate",
                            v, known);
        /* Every version built in, not only the highest: a store migrated by a jitctl built
         * without one of them lacks it below its highest. */
        int lacking = schema_version_lacking(PQgetvalue(res, 0, 1));
        if (lacking > 0)
                return fail(fc, FLEET_SCHEMA_MISMATCH,
                            "the fleet schema lacks version %d; this broker needs every version "
                            "up to %d: run jitctl fleet migrate",
                            lacking, known);

        const char *params[] = { fc->host };
        /* Row-level security shows a host role its own row only: a row of this name under
         * another role is as good as none. */
        query_send(fc, PHASE_CHECK_HOST,
                   "SELECT count(*), (SELECT min(id) FROM jit_fleet.fleet_identity) FROM "
                   "jit_fleet.hosts WHERE name = $1 AND role_name = current_user",
                   1, params);
}

static void host_checked(FleetClient *fc, PGresult *res) {
        char buf[900];

        if (PQresultStatus(res) != PGRES_TUPLES_OK)
                return fail(fc, FLEET_UNREACHABLE, "cannot read the host's row: %s",
                            result_error(res, buf, sizeof(buf)));
        if (PQntuples(res) != 1 || !STREQ(PQgetvalue(res, 0, 0), "1"))
                return fail(fc, FLEET_UNREACHABLE,
                            "host %s is not registered in the fleet for role %s (jitctl fleet "
                            "add-host %s)",
                            fc->host, fc->role, fc->host);
        /* The fleet's identity: what a signed approval's statement names (schema version 6
         * made it; the version was checked above). */
        const char *id =
                PQnfields(res) == 2 && !PQgetisnull(res, 0, 1) ? PQgetvalue(res, 0, 1) : "";
        if (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)
                return fail(fc, FLEET_UNREACHABLE,
                            "the fleet store has no fleet identity (jit_fleet.fleet_identity)");
        memcpy(fc->fleet_id, id, sizeof(fc->fleet_id));
        if (fc->poll_credentials) {
                /* Then the shared poll login's connection, to the same addresses. */
                fc->cur = &fc->poll_link;
                return connect_now(fc, fc->poll_credentials, &fc->poll_role, fc->conn_host,
                                   fc->conn_hostaddr, fc->conn_port);
        }
        become_connected(fc);
}

/* Both connections made and checked: connected, the owner's catch-up, then the polls. */
static void become_connected(FleetClient *fc) {
        Phase phase = fc->phase;

        fc->backoff = 0;
        set_state(fc, FLEET_CONNECTED, NULL);
        /* What was seen and not applied before the connection went is read again. */
        fc->seen = fc->cursor;
        /* The owner's catch-up (revocations first) is asked before the first poll, so that
         * its answer comes before anything the change feed names. */
        if (fc->connected_hook)
                fc->connected_hook(fc->changes_userdata);
        if (fc->phase != phase)
                return; /* failed meanwhile */
        if (!query_next(fc))
                poll_send(fc);
}

static void poll_send(FleetClient *fc) {
        char cursor[32], limit[16];
        snprintf(cursor, sizeof(cursor), "%lld", (long long) fc->seen.seq);
        snprintf(limit, sizeof(limit), "%d", FLEET_POLL_ROWS_MAX);
        const char *params[] = { cursor, limit };
        fc->poll_sent_boot = now_usec(CLOCK_BOOTTIME);
        /* The shared poll login's connection when there is one: one pool for the fleet. */
        fc->cur = fc->poll_link.conn ? &fc->poll_link : &fc->host_link;
        /* One statement, one snapshot: the rows and the oldest transaction still running
         * are seen at the same instant (the cursor rule of docs/fleet.md). */
        query_send(fc, PHASE_POLL, FLEET_POLL_SQL, 2, params);
}

static void polled(FleetClient *fc, PGresult *res) {
        char buf[900];
        _cleanup_free_ FleetChangeRow *rows = NULL;
        _cleanup_free_ FleetChange *changes = NULL;
        int n;

        if (PQresultStatus(res) != PGRES_TUPLES_OK)
                return fail(fc, FLEET_UNREACHABLE, "cannot read the change feed: %s",
                            result_error(res, buf, sizeof(buf)));
        n = PQntuples(res);
        if (n < 0 || n > FLEET_POLL_ROWS_MAX || (n > 0 && PQnfields(res) != 5))
                return fail(fc, FLEET_UNREACHABLE, "unexpected answer from the change feed");
        if (n > 0 && (!(rows = calloc((size_t) n, sizeof(*rows))) ||
                      !(changes = calloc((size_t) n, sizeof(*changes)))))
                return fail(fc, FLEET_UNREACHABLE, "out of memory");
        for (int i = 0; i < n; i++) {
                char *end;
                long long seq = strtoll(PQgetvalue(res, i, 0), &end, 10);
                if (*end || PQgetisnull(res, i, 0))
                        return fail(fc, FLEET_UNREACHABLE, "unexpected seq in the change feed");
                rows[i] = (FleetChangeRow){ .seq = seq,
                                            .settled = STREQ(PQgetvalue(res, i, 1), "t") };
                /* What the change is about: its owner decides whether to fetch it. */
                changes[i] = (FleetChange){
                        .request_id = strtoll(PQgetvalue(res, i, 2), NULL, 10),
                        .selector_host = PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3),
                        .selector_labels = PQgetvalue(res, i, 4),
                };
        }

        FleetCursor next = fc->seen;
        int64_t from = fc->seen.seq;
        int passed = fleet_cursor_advance(&next.seq, rows, (size_t) n, &next.changes_seen);
        if (passed < 0)
                return fail(fc, FLEET_UNREACHABLE, "the change feed answered out of order");
        fc->last_poll = now_usec(CLOCK_REALTIME);
        fc->last_poll_boot = fc->poll_sent_boot;
        if (passed > 0) {
                next.updated_at = fc->last_poll;
                fc->seen = next;
                if (!fc->changes_hook)
                        fleet_client_applied(fc, from, next.seq); /* nothing to apply */
        }
        log_debug("fleet: polled from %lld: %d row%s, %d passed, seen %lld, applied %lld",
                  (long long) from, n, n == 1 ? "" : "s", passed, (long long) fc->seen.seq,
                  (long long) fc->cursor.seq);

        fc->phase = PHASE_IDLE;
        int r = watch(fc, EPOLLIN, false);
        if (r < 0)
                return fail(fc, FLEET_UNREACHABLE, "cannot watch the connection: %s", strerror(-r));
        if (fc->sync_hook)
                fc->sync_hook(fc->changes_userdata, fc->last_poll_boot);
        /* The hook may have asked a query (in flight now): the fetch queues behind it. */
        if (fc->phase != PHASE_IDLE && fc->phase != PHASE_QUERY)
                return;
        if (passed > 0 && fc->changes_hook)
                fc->changes_hook(fc->changes_userdata, from, fc->seen.seq, changes,
                                 (size_t) passed);
        if (fc->phase != PHASE_IDLE || query_next(fc))
                return;
        /* A full page that all moved the cursor: more is waiting, read it now. */
        if (n == FLEET_POLL_ROWS_MAX && passed == n) {
                arm_timer(fc, 0);
                return;
        }
        uint32_t jitter = 0;
        if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) != sizeof(jitter))
                jitter = UINT32_MAX / 2; /* no entropy yet: P exactly */
        arm_timer(fc, fleet_poll_delay(jitter));
}

/* Whether the fetch goes through the shared poll login: one pgbouncer pool for the fleet,
 * where the host's own role would be a pool (and a server login) of its own. */
static bool fetch_shared(const FleetClient *fc) {
        return fc->poll_credentials && fc->poll_link.conn && fc->fetch_key[0] &&
               !fc->shared_fetch_off;
}

/* Sends the first query waiting, if any: true when one is in flight. */
static bool query_next(FleetClient *fc) {
        FleetQuery *q = fc->queries;
        if (!q)
                return false;
        q->sent_shared = q->fetch && fetch_shared(fc);
        if (q->sent_shared) {
                /* The store's function reads for this host what its role may read, once
                 * the key proves the host. */
                const char *params[] = { fc->host, fc->fetch_key, q->params[0] };
                fc->cur = &fc->poll_link;
                query_send(fc, PHASE_QUERY, FLEET_FETCH_SHARED_SQL, 3, params);
                return true;
        }
        fc->cur = &fc->host_link; /* the host's own role: row-level security applies */
        query_send(fc, PHASE_QUERY, q->sql, q->n, (const char *const *) q->params);
        return true;
}

/* The store refused the shared fetch because it does not know this host's key (28000:
 * registered before schema version 8, or another password) or the function (42883). */
static bool shared_fetch_refused(const PGresult *res) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        return PQresultStatus(res) == PGRES_FATAL_ERROR && state &&
               (STREQ(state, "28000") || STREQ(state, "42883"));
}

/* The broker's query answered; the next one, or a poll at once (an approval just made
 * shows up without waiting for the poll's period). */
static void query_answered(FleetClient *fc, PGresult *res) {
        FleetQuery *q = fc->queries;
        if (q->sent_shared && shared_fetch_refused(res)) {
                /* Fetch as before, with the host's own role: slower through pgbouncer, as
                 * safe. The same query again, now on the host's connection. */
                fc->shared_fetch_off = true;
                if (!fc->shared_fetch_warned) {
                        char buf[900];
                        log_warning("fleet: the store refused host %s's fetch through the shared "
                                    "poll login (%s); fetching with the host's own role (jitctl "
                                    "fleet add-host %s --rekey gives the host a fetch key)",
                                    fc->host, result_error(res, buf, sizeof(buf)), fc->host);
                        fc->shared_fetch_warned = true;
                }
                fc->phase = PHASE_IDLE;
                query_next(fc);
                return;
        }
        fc->queries = q->next;
        fc->n_queries--;
        fc->phase = PHASE_IDLE;
        q->done(q->userdata, res, NULL);
        query_free(q);
        if (fc->phase != PHASE_IDLE)
                return; /* failed meanwhile, or the callback asked something */
        if (!query_next(fc))
                poll_send(fc);
}

static void query_done(FleetClient *fc) {
        PGresult *res = TAKE_PTR(fc->result);
        Phase phase = fc->phase;

        (void) sd_event_source_set_enabled(fc->timer, SD_EVENT_OFF);
        if (!res)
                fail_pg(fc, "no answer");
        else if (phase == PHASE_CHECK_SCHEMA)
                schema_checked(fc, res);
        else if (phase == PHASE_CHECK_HOST)
                host_checked(fc, res);
        else if (phase == PHASE_POLL)
                polled(fc, res);
        else if (phase == PHASE_QUERY)
                query_answered(fc, res);
        PQclear(res);
}

/* Keeps one of a query's results: the first, unless a later one is an error, which then
 * is the answer. A statement's rows may be followed by the error of the commit that
 * ends it (a deferred trigger): none of those rows is in the store. */
static void result_collect(PGresult **kept, PGresult *res) {
        ExecStatusType st = PQresultStatus(res);
        bool error = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;

        if (!*kept)
                *kept = res;
        else if (error && PQresultStatus(*kept) != PGRES_FATAL_ERROR &&
                 PQresultStatus(*kept) != PGRES_BAD_RESPONSE) {
                PQclear(*kept);
                *kept = res;
        } else
                PQclear(res);
}

/* Reads what the server sent; the query's results once they are all in. */
static void query_input(FleetClient *fc, uint32_t revents) {
        if (revents & EPOLLOUT) {
                int r = PQflush(fc->cur->conn);
                if (r < 0)
                        return fail_pg(fc, "cannot send a query");
                if (r == 0 && (r = watch(fc, EPOLLIN, false)) < 0)
                        return fail(fc, FLEET_UNREACHABLE, "cannot watch the connection: %s",
                                    strerror(-r));
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return;
        if (!PQconsumeInput(fc->cur->conn))
                return fail_pg(fc, "connection lost");
        while (!PQisBusy(fc->cur->conn)) {
                PGresult *res = PQgetResult(fc->cur->conn);
                if (!res)
                        return query_done(fc);
                result_collect(&fc->result, res);
        }
}

/* ---- connecting ---- */

static void connected(FleetClient *fc) {
        if (PQsetnonblocking(fc->cur->conn, 1) != 0)
                return fail_pg(fc, "cannot make the connection non-blocking");
        /* A fresh watch: the socket may be another than the one connecting ended on. */
        fc->cur->io = sd_event_source_disable_unref(fc->cur->io);
        if (fc->cur == &fc->poll_link) {
                /* Idle until the first poll; the host's connection was checked. */
                int r = watch(fc, EPOLLIN, true);
                if (r < 0)
                        return fail(fc, FLEET_UNREACHABLE, "cannot watch the connection: %s",
                                    strerror(-r));
                return become_connected(fc);
        }
        query_send(fc, PHASE_CHECK_SCHEMA,
                   "SELECT coalesce(max(version), 0), coalesce(string_agg(version::text, ',' "
                   "ORDER BY version), '') FROM jit_fleet.schema_version",
                   0, NULL);
}

static void connect_step(FleetClient *fc, PostgresPollingStatusType st) {
        int r;

        switch (st) {
        case PGRES_POLLING_OK:
                return connected(fc);
        case PGRES_POLLING_READING:
                r = watch(fc, EPOLLIN, true);
                break;
        case PGRES_POLLING_WRITING:
                r = watch(fc, EPOLLOUT, true);
                break;
        default:
                return fail_pg(fc, "cannot connect");
        }
        if (r < 0)
                fail(fc, FLEET_UNREACHABLE, "cannot watch the connection: %s", strerror(-r));
}

/* Connects, the URI first and then what follows overriding it: the role and password of
 * the credentials file, and the resolved addresses (host, hostaddr, port; NULL: the
 * URI's). */
static void connect_now(FleetClient *fc, const char *credentials, char **ret_role, const char *host,
                        const char *hostaddr, const char *port) {
        FleetCredentials cred = {};
        _cleanup_free_ char *error = NULL;
        int r;

        r = fleet_credentials_read(credentials, &cred, &error);
        if (r < 0)
                return fail(fc, FLEET_UNREACHABLE, "%s", error ?: strerror(-r));
        char *role = strdup(cred.role);
        if (!role) {
                fleet_credentials_done(&cred);
                return fail(fc, FLEET_UNREACHABLE, "out of memory");
        }
        free(*ret_role);
        *ret_role = role;
        /* The host's role's password makes the fetch key; a library failure leaves none
         * (the fetch then runs as the host's role). */
        if (ret_role == &fc->role && fleet_fetch_key_derive(cred.password, fc->fetch_key) < 0)
                explicit_bzero(fc->fetch_key, sizeof(fc->fetch_key));
        const char *keys[12] = { "dbname",
                                 "user",
                                 "password",
                                 "application_name",
                                 "keepalives",
                                 "keepalives_idle",
                                 "keepalives_interval",
                                 "keepalives_count" };
        const char *values[12] = { fc->database, cred.role, cred.password, "jit-brokerd",
                                   "1",          "30",      "10",          "3" };
        size_t n = 8;
        if (hostaddr) {
                /* libpq connects to these addresses and still checks the server's
                 * certificate against the names (sslmode=verify-full). */
                keys[n] = "host", values[n++] = host;
                keys[n] = "hostaddr", values[n++] = hostaddr;
                if (port)
                        keys[n] = "port", values[n++] = port;
        }
        fc->cur->conn = PQconnectStartParams(keys, values, 1);
        fleet_credentials_done(&cred);
        if (!fc->cur->conn)
                return fail(fc, FLEET_UNREACHABLE, "out of memory");
        if (PQstatus(fc->cur->conn) == CONNECTION_BAD)
                return fail_pg(fc, "cannot connect");
        fc->phase = PHASE_CONNECTING;
        log_debug("fleet: connecting to %s as %s%s%s", fc->database, *ret_role,
                  hostaddr ? " at " : "", hostaddr ?: "");
        arm_timer(fc, FLEET_CONNECT_TIMEOUT_USEC);
        /* libpq's rule: begin as if PQconnectPoll() had asked to write. */
        connect_step(fc, PGRES_POLLING_WRITING);
}

/* Appends s and a comma before it unless first. */
static bool list_add(char **list, size_t *len, const char *s) {
        size_t add = strlen(s) + 1;
        char *n = realloc(*list, *len + add + 1);
        if (!n)
                return false;
        *list = n;
        if (*len > 0)
                n[(*len)++] = ',';
        memcpy(n + *len, s, add);
        *len += add - 1;
        return true;
}

/* The i-th element of a comma list (in a copy the caller frees), "" past its end. */
static char *list_get(const char *list, size_t i) {
        const char *p = list ?: "";
        for (; i > 0 && p; i--)
                if ((p = strchr(p, ',')))
                        p++;
        if (!p)
                return strdup("");
        return strndup(p, strcspn(p, ","));
}

static size_t list_count(const char *list) {
        size_t n = 1;
        for (const char *c = list; c && *c; c++)
                n += *c == ',';
        return n;
}

/* The names are resolved: the URI's host list again, each name as many times as it has
 * addresses, each with one of them as hostaddr (a literal entry with none), and the ports
 * to match when the URI gives one per host. */
static void resolved(void *userdata, const FleetResolved *res) {
        FleetClient *fc = userdata;
        _cleanup_free_ char *hosts = NULL, *addrs = NULL, *ports = NULL;
        size_t hosts_len = 0, addrs_len = 0, ports_len = 0, entries = 0;
        size_t n = list_count(fc->uri_hosts);
        bool per_host_ports = fc->uri_ports && list_count(fc->uri_ports) == n && n > 1;
        const char *first_error = NULL, *failed = NULL;
        size_t k = 0;

        fc->resolve = NULL; /* it frees itself */
        (void) sd_event_source_set_enabled(fc->timer, SD_EVENT_OFF);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *h = list_get(fc->uri_hosts, i);
                _cleanup_free_ char *p = per_host_ports ? list_get(fc->uri_ports, i) : NULL;
                if (!h || (per_host_ports && !p))
                        return fail(fc, FLEET_UNREACHABLE, "out of memory");
                if (fleet_host_is_literal(h)) {
                        if (!list_add(&hosts, &hosts_len, h) || !list_add(&addrs, &addrs_len, "") ||
                            (p && !list_add(&ports, &ports_len, p)))
                                return fail(fc, FLEET_UNREACHABLE, "out of memory");
                        entries++;
                        continue;
                }
                /* The names were asked in the order of the list. */
                size_t at = k++;
                if (res->error[at]) {
                        /* Another host of the list may do. */
                        if (!first_error)
                                first_error = res->error[at], failed = res->names[at];
                        log_debug("fleet: cannot resolve %s: %s", res->names[at], res->error[at]);
                        continue;
                }
                for (size_t a = 0; a < res->n_addrs[at]; a++) {
                        if (!list_add(&hosts, &hosts_len, h) ||
                            !list_add(&addrs, &addrs_len, res->addrs[at][a]) ||
                            (p && !list_add(&ports, &ports_len, p)))
                                return fail(fc, FLEET_UNREACHABLE, "out of memory");
                        entries++;
                }
        }
        if (entries == 0)
                return fail(fc, FLEET_UNREACHABLE, "cannot resolve %s: %s", failed ?: "?",
                            first_error ?: "no address");
        fc->uri_hosts = mfree(fc->uri_hosts);
        fc->uri_ports = mfree(fc->uri_ports);
        fc->conn_host = TAKE_PTR(hosts);
        fc->conn_hostaddr = TAKE_PTR(addrs);
        fc->conn_port = TAKE_PTR(ports);
        connect_now(fc, fc->credentials, &fc->role, fc->conn_host, fc->conn_hostaddr,
                    fc->conn_port);
}

static void connect_start(FleetClient *fc) {
        _cleanup_free_ char *hosts = NULL, *ports = NULL;
        bool has_hostaddr = false;
        char *error = NULL;

        drop_connection(fc);
        /* Loaded at the first attempt: checks and local requests never need it. */
        const char *why = NULL;
        if (fleet_libpq_load(&why) < 0)
                return fail(fc, FLEET_UNREACHABLE, "%s", why ?: "libpq cannot be loaded");

        /* The URI's host names: resolved here, off the loop, because libpq would resolve
         * them with the blocking resolver inside PQconnectPoll(). */
        PQconninfoOption *opts = PQconninfoParse(fc->database, &error);
        if (!opts) {
                char buf[512];
                pg_message(error, buf, sizeof(buf));
                if (error)
                        PQfreemem(error);
                return fail(fc, FLEET_UNREACHABLE, "fleet.database: %s", buf);
        }
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (!o->val || !*o->val)
                        continue;
                if (STREQ(o->keyword, "host"))
                        hosts = strdup(o->val);
                else if (STREQ(o->keyword, "port"))
                        ports = strdup(o->val);
                else if (STREQ(o->keyword, "hostaddr"))
                        has_hostaddr = true;
        }
        PQconninfoFree(opts);

        const char *names[FLEET_RESOLVE_NAMES_MAX];
        size_t n_names = 0, n = hosts ? list_count(hosts) : 0;
        _cleanup_free_ char *entries[FLEET_RESOLVE_NAMES_MAX] = {};
        if (hosts && !has_hostaddr) {
                if (n > FLEET_RESOLVE_NAMES_MAX)
                        return fail(fc, FLEET_UNREACHABLE,
                                    "fleet.database names %zu hosts; at most %d", n,
                                    FLEET_RESOLVE_NAMES_MAX);
                for (size_t i = 0; i < n; i++) {
                        if (!(entries[i] = list_get(hosts, i)))
                                return fail(fc, FLEET_UNREACHABLE, "out of memory");
                        if (!fleet_host_is_literal(entries[i]))
                                names[n_names++] = entries[i];
                }
        }
        if (n_names == 0)
                /* A socket, addresses, or hostaddr given: nothing to resolve. */
                return connect_now(fc, fc->credentials, &fc->role, NULL, NULL, NULL);

        int r = fleet_resolve_start(fc->event, names, n_names, resolved, fc, &fc->resolve);
        if (r == -EBUSY)
                return fail(fc, FLEET_UNREACHABLE,
                            "cannot resolve %s: earlier resolutions have not returned yet",
                            names[0]);
        if (r < 0)
                return fail(fc, FLEET_UNREACHABLE, "cannot resolve %s: %s", names[0], strerror(-r));
        fc->uri_hosts = TAKE_PTR(hosts);
        fc->uri_ports = TAKE_PTR(ports);
        fc->phase = PHASE_RESOLVING;
        log_debug("fleet: resolving %s", fc->uri_hosts);
        arm_timer(fc, FLEET_RESOLVE_TIMEOUT_USEC);
}

/* An event on the connection that runs nothing now (the host's during a poll on the poll
 * login's, or the other way round): the server says something only when it ends the
 * session. */
static void idle_input(FleetClient *fc, Link *l, uint32_t revents) {
        PGresult *res;

        if (!PQconsumeInput(l->conn) || PQstatus(l->conn) != CONNECTION_OK) {
                fc->cur = l; /* its error message */
                return fail_pg(fc, "connection lost");
        }
        if (revents & (EPOLLHUP | EPOLLERR))
                return fail(fc, FLEET_UNREACHABLE, "connection lost");
        while (!PQisBusy(l->conn) && (res = PQgetResult(l->conn)))
                PQclear(res);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Link *l = userdata;
        FleetClient *fc = l->fc;

        if (l != fc->cur) {
                idle_input(fc, l, revents);
                return 0;
        }
        switch (fc->phase) {
        case PHASE_CONNECTING:
                connect_step(fc, PQconnectPoll(fc->cur->conn));
                break;
        case PHASE_CHECK_SCHEMA:
        case PHASE_CHECK_HOST:
        case PHASE_POLL:
        case PHASE_QUERY:
                query_input(fc, revents);
                break;
        case PHASE_IDLE:
                /* Between polls the server says something only when it ends the session
                 * (a shutdown, a terminated backend): notice it now, not at the poll. */
                if (!PQconsumeInput(fc->cur->conn) || PQstatus(fc->cur->conn) != CONNECTION_OK)
                        fail_pg(fc, "connection lost");
                else if (revents & (EPOLLHUP | EPOLLERR))
                        fail(fc, FLEET_UNREACHABLE, "connection lost");
                else {
                        PGresult *res;
                        /* Nothing is asked: anything the server sends unasked is dropped. */
                        while (!PQisBusy(fc->cur->conn) && (res = PQgetResult(fc->cur->conn)))
                                PQclear(res);
                }
                break;
        default:
                fc->cur->io = sd_event_source_disable_unref(fc->cur->io);
                break;
        }
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        FleetClient *fc = userdata;

        switch (fc->phase) {
        case PHASE_WAIT_RETRY:
                connect_start(fc);
                break;
        case PHASE_RESOLVING:
                fail(fc, FLEET_UNREACHABLE, "cannot resolve %s: no answer within %llu s",
                     fc->uri_hosts ?: "?",
                     (unsigned long long) (FLEET_RESOLVE_TIMEOUT_USEC / USEC_PER_SEC));
                break;
        case PHASE_CONNECTING:
                fail(fc, FLEET_UNREACHABLE, "no connection within %llu s",
                     (unsigned long long) (FLEET_CONNECT_TIMEOUT_USEC / USEC_PER_SEC));
                break;
        case PHASE_CHECK_SCHEMA:
        case PHASE_CHECK_HOST:
        case PHASE_POLL:
        case PHASE_QUERY:
                fail(fc, FLEET_UNREACHABLE, "no answer within %llu s",
                     (unsigned long long) (FLEET_QUERY_TIMEOUT_USEC / USEC_PER_SEC));
                break;
        case PHASE_IDLE:
                poll_send(fc);
                break;
        default:
                break;
        }
        return 0;
}

/* ---- the policy's section ---- */

static bool same_string(const char *a, const char *b) {
        return (!a && !b) || (a && b && STREQ(a, b));
}

static void forget_section(FleetClient *fc) {
        drop_connection(fc);
        queries_fail(fc, "the fleet section was changed or removed");
        fc->phase = PHASE_OFF;
        fc->enabled = false;
        fc->database = mfree(fc->database);
        fc->host = mfree(fc->host);
        fc->credentials = mfree(fc->credentials);
        fc->poll_credentials = mfree(fc->poll_credentials);
        fc->role = mfree(fc->role);
        fc->poll_role = mfree(fc->poll_role);
        fc->shared_fetch_warned = false;
        fc->last_error = mfree(fc->last_error);
        fc->last_poll = fc->last_poll_boot = 0;
        fc->backoff = 0;
        fc->schema_version = 0;
        fc->cursor = fc->seen = (FleetCursor){};
        fc->state = FLEET_DISABLED;
        fc->since = now_usec(CLOCK_REALTIME);
}

int fleet_client_set_policy(FleetClient *fc, const PolicyFleet *f) {
        bool enable = f && f->enabled;
        int r;

        if (enable == fc->enabled &&
            (!enable || (same_string(f->database, fc->database) && same_string(f->host, fc->host) &&
                         same_string(f->credentials, fc->credentials) &&
                         same_string(f->poll_credentials, fc->poll_credentials)))) {
                /* Unchanged: a reload is also how an administrator says "try again now". */
                if (enable && fc->state != FLEET_CONNECTED && fc->phase == PHASE_WAIT_RETRY) {
                        fc->backoff = 0;
                        connect_start(fc);
                }
                return 0;
        }
        if (fc->enabled)
                log_info("fleet: %s, leaving the fleet store as host %s",
                         enable ? "the policy's fleet section changed" : "no fleet section",
                         fc->host);
        forget_section(fc);
        if (!enable)
                return 0;

        fc->database = strdup(f->database);
        fc->host = strdup(f->host);
        fc->credentials = strdup(f->credentials);
        fc->poll_credentials = f->poll_credentials ? strdup(f->poll_credentials) : NULL;
        if (!fc->database || !fc->host || !fc->credentials ||
            (f->poll_credentials && !fc->poll_credentials)) {
                forget_section(fc);
                return -ENOMEM;
        }
        fc->enabled = true;
        fc->state = FLEET_CONNECTING;
        fc->since = now_usec(CLOCK_REALTIME);
        r = db_fleet_cursor_load(fc->db, fc->host, &fc->cursor);
        if (r < 0) {
                /* Without its cursor the client would read the whole feed again and count
                 * it twice: it stays away until the database answers. */
                log_error_errno(r, "fleet: cannot read the change cursor: %m");
                fail(fc, FLEET_UNREACHABLE,
                     "cannot read the change cursor from the local "
                     "database");
                return 0;
        }
        connect_start(fc);
        return 0;
}

/* ---- life ---- */

int fleet_client_new(sd_event *event, BrokerDb *db, FleetClient **ret) {
        _cleanup_free_ FleetClient *fc = calloc(1, sizeof(*fc));
        int r;

        if (!fc)
                return -ENOMEM;
        fc->event = event;
        fc->db = db;
        fc->host_link = (Link){ .fc = fc, .name = "fleet-connection" };
        fc->poll_link = (Link){ .fc = fc, .name = "fleet-poll-connection" };
        fc->cur = &fc->host_link;
        fc->state = FLEET_DISABLED;
        r = sd_event_add_time(event, &fc->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_timer, fc);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(fc->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(fc->timer, "fleet-timer");
        *ret = TAKE_PTR(fc);
        return 0;
}

FleetClient *fleet_client_free(FleetClient *fc) {
        if (!fc)
                return NULL;
        forget_section(fc);
        fc->timer = sd_event_source_disable_unref(fc->timer);
        free(fc);
        return NULL;
}

json_object *fleet_client_status_json(const FleetClient *fc) {
        char t[RFC3339_BUF_MAX];

        if (!fc || !fc->enabled)
                return NULL;
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "host", json_object_new_string(fc->host));
        json_object_object_add(o, "database", json_object_new_string(fc->database));
        json_object_object_add(o, "state", json_object_new_string(state_names[fc->state]));
        json_object_object_add(o, "since",
                               json_object_new_string(format_rfc3339(fc->since, t, sizeof(t))));
        json_object_object_add(o, "last_error",
                               fc->last_error ? json_object_new_string(fc->last_error) : NULL);
        json_object_object_add(
                o, "last_poll",
                fc->last_poll ? json_object_new_string(format_rfc3339(fc->last_poll, t, sizeof(t)))
                              : NULL);
        uint64_t last_sync =
                fc->last_poll > fc->cursor.last_sync ? fc->last_poll : fc->cursor.last_sync;
        json_object_object_add(
                o, "last_sync",
                last_sync ? json_object_new_string(format_rfc3339(last_sync, t, sizeof(t))) : NULL);
        json_object_object_add(o, "schema_version", json_object_new_int(fc->schema_version));
        json_object_object_add(o, "fleet_id",
                               fc->fleet_id[0] ? json_object_new_string(fc->fleet_id) : NULL);
        /* The role the poll runs as: the shared poll login's, or the host's own. */
        json_object_object_add(o, "poll_role",
                               fc->poll_role && fc->poll_credentials
                                       ? json_object_new_string(fc->poll_role)
                                       : (fc->role ? json_object_new_string(fc->role) : NULL));
        /* The role the fetch runs as: the poll login's while the store accepts the host's
         * fetch key, or the host's own. */
        json_object_object_add(o, "fetch_role",
                               fetch_shared(fc)
                                       ? json_object_new_string(fc->poll_role)
                                       : (fc->role ? json_object_new_string(fc->role) : NULL));
        json_object_object_add(o, "cursor", json_object_new_int64(fc->cursor.seq));
        json_object_object_add(o, "changes_seen",
                               json_object_new_int64((int64_t) fc->cursor.changes_seen));
        return o;
}

const char *fleet_client_host(const FleetClient *fc) {
        return fc && fc->enabled ? fc->host : NULL;
}

const char *fleet_client_fleet_id(const FleetClient *fc) {
        return fc && fc->enabled && fc->fleet_id[0] ? fc->fleet_id : NULL;
}

void fleet_client_applied(FleetClient *fc, int64_t from, int64_t to) {
        if (!fc || to <= fc->cursor.seq)
                return;
        if (from != fc->cursor.seq) {
                /* A range before this one was not applied: not past it. */
                fleet_client_rewind(fc);
                return;
        }
        FleetCursor next = fc->seen.seq == to ? fc->seen : fc->cursor;
        next.seq = to;
        next.updated_at = now_usec(CLOCK_REALTIME);
        if (fc->last_poll > next.last_sync)
                next.last_sync = fc->last_poll;
        int r = db_fleet_cursor_save(fc->db, fc->host, &next);
        if (r < 0)
                /* The kept cursor stays: the next start reads these changes again. */
                log_warning_errno(r, "fleet: cannot keep the change cursor: %m");
        else
                fc->cursor = next;
}

void fleet_client_rewind(FleetClient *fc) {
        if (fc)
                fc->seen = fc->cursor; /* the next poll reads again what was not applied */
}

void fleet_client_set_changes_hook(FleetClient *fc, FleetChangesHook hook, void *userdata) {
        fc->changes_hook = hook;
        fc->changes_userdata = userdata;
}

void fleet_client_set_sync_hooks(FleetClient *fc, FleetSyncHook synced,
                                 FleetConnectedHook on_connected) {
        fc->sync_hook = synced;
        fc->connected_hook = on_connected;
}

uint64_t fleet_client_last_sync_boot(const FleetClient *fc) {
        return fc && fc->enabled ? fc->last_poll_boot : 0;
}

void fleet_client_keep_sync(FleetClient *fc) {
        if (!fc || !fc->enabled || fc->last_poll <= fc->cursor.last_sync)
                return;
        FleetCursor next = fc->cursor;
        next.last_sync = fc->last_poll;
        int r = db_fleet_cursor_save(fc->db, fc->host, &next);
        if (r < 0)
                log_warning_errno(r, "fleet: cannot keep the time of the last poll: %m");
        else
                fc->cursor = next;
}

static int query_queue(FleetClient *fc, bool fetch, const char *sql, int n,
                       const char *const *params, FleetQueryDone done, void *userdata) {
        if (!fc || fc->state != FLEET_CONNECTED)
                return -ENOTCONN;
        if (n < 0 || n > FLEET_QUERY_PARAMS_MAX)
                return -EINVAL;
        if (fc->n_queries >= FLEET_QUERIES_MAX)
                return -EBUSY;
        FleetQuery *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->done = done;
        q->userdata = userdata;
        q->fetch = fetch;
        q->sql = strdup(sql);
        bool oom = !q->sql;
        for (int i = 0; i < n; i++) {
                q->params[i] = params[i] ? strdup(params[i]) : NULL;
                oom = oom || (params[i] && !q->params[i]);
        }
        q->n = n;
        if (oom) {
                query_free(q);
                return -ENOMEM;
        }
        FleetQuery **tail = &fc->queries;
        while (*tail)
                tail = &(*tail)->next;
        *tail = q;
        fc->n_queries++;
        /* Between polls the connection is free: now. Otherwise after what is in flight. */
        if (fc->phase == PHASE_IDLE) {
                (void) sd_event_source_set_enabled(fc->timer, SD_EVENT_OFF);
                query_next(fc);
        }
        return 0;
}

int fleet_client_query(FleetClient *fc, const char *sql, int n, const char *const *params,
                       FleetQueryDone done, void *userdata) {
        return query_queue(fc, false, sql, n, params, done, userdata);
}

int fleet_client_fetch(FleetClient *fc, const char *ids, FleetQueryDone done, void *userdata) {
        const char *params[] = { ids };
        return query_queue(fc, true, FLEET_FETCH_SQL, 1, params, done, userdata);
}
