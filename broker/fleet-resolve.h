/* SPDX-License-Identifier: MIT */
/* Host names of the fleet store resolved off the main loop (docs/fleet.md, "Name
 * resolution"): libpq resolves a name with the blocking resolver while it connects, so the
 * broker resolves the URI's names first, on a thread of its own through the system's
 * resolver (getaddrinfo(3), so /etc/hosts and nsswitch.conf apply), and hands libpq the
 * addresses. The answer comes back to the sd-event loop through an eventfd; nothing on the
 * loop waits for it. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

/* Names one resolution takes at most (the hosts of a libpq URI), and addresses kept per
 * name. */
#define FLEET_RESOLVE_NAMES_MAX 8
#define FLEET_RESOLVE_ADDRS_MAX 8
/* Resolutions whose thread may still run at once (one asked, and those given up after a
 * timeout whose resolver has not returned yet). */
#define FLEET_RESOLVE_THREADS_MAX 4

typedef struct FleetResolved {
        size_t n_names;
        const char *names[FLEET_RESOLVE_NAMES_MAX];
        /* For each name: its addresses, numeric, in the resolver's order, without
         * repeats; none when error[i] (a gai_strerror() text) is set. */
        size_t n_addrs[FLEET_RESOLVE_NAMES_MAX];
        char addrs[FLEET_RESOLVE_NAMES_MAX][FLEET_RESOLVE_ADDRS_MAX][INET6_ADDRSTRLEN];
        const char *error[FLEET_RESOLVE_NAMES_MAX];
} FleetResolved;

typedef struct FleetResolve FleetResolve;

/* Called once, on the loop, when every name has an answer. */
typedef void (*FleetResolveDone)(void *userdata, const FleetResolved *res);

/* Starts resolving names (1 to FLEET_RESOLVE_NAMES_MAX). 0 with *ret, -EBUSY when
 * FLEET_RESOLVE_THREADS_MAX resolutions still run, -E2BIG, or -errno. */
int fleet_resolve_start(sd_event *event, const char *const *names, size_t n, FleetResolveDone done,
                        void *userdata, FleetResolve **ret);

/* Gives the resolution up: done is not called; its thread ends on its own. NULL is fine.
 * Returns NULL. */
FleetResolve *fleet_resolve_cancel(FleetResolve *r);

/* Whether s names a host without resolving it: empty, a Unix socket directory ('/' or
 * '@' first), or a numeric IPv4 or IPv6 address. */
bool fleet_host_is_literal(const char *s);
