/* SPDX-License-Identifier: MIT */
/* How jitctl shows requests to people: tables, the detail view, one-line outcomes. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cleanup.h"

/* A request as the broker returned it, with every string already escaped for the
 * terminal, so that nothing below can print broker text raw by mistake. Strings are NULL
 * when the key is absent or null; integers are -1. */
typedef struct RequestView {
        int64_t id;
        char *state;
        char *requester;
        char *service;
        char *reason;
        char *ticket;
        char *rule;
        char *created_at;
        char *activated_at;
        char *expires_at;
        char *ended_at;
        char *ended_by;
        char *end_reason;
        char *requester_now; /* the requester's uid's name now, as the broker resolved it */
        char *command;      /* a grant for one command: the program's path */
        char *command_line; /* ... its words as a shell would read them back */
        char *run_as_user;
        char *run_as_group;
        char *cwd;
        int64_t requester_uid;
        /* 1 when the stored name no longer maps to requester_uid (renamed, reused, removed),
         * 0 when it does, -1 when the broker did not say. */
        int requester_renamed;
        int64_t duration;
        int64_t seconds_left;
        int64_t approvals_required;
        bool once;
        json_object *json;      /* borrowed: the whole object */
        json_object *approvals; /* borrowed; NULL when absent */
        size_t n_approvals;
} RequestView;

/* Fills v from o. -EBADMSG when o is not a request (not an object, no positive id, no
 * state), -ENOMEM. On failure v needs no cleanup. */
int request_view_init(RequestView *v, json_object *o);
void request_view_done(RequestView *v);

/* "1h 5m" left for an active grant; NULL when the broker said nothing about it. */
const char *request_time_left(const RequestView *v, char *buf, size_t len);

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

/* What `request` prints: the new request and what happens next. */
void print_filed(const RequestView *v, FILE *f);

/* What `approve` prints: how many approvals there are now, or the grant they made. */
void print_approval(const RequestView *v, FILE *f);

/* One line saying where the request now stands, e.g. "Request 12 denied by bob: no." */
void print_outcome(const RequestView *v, FILE *f);

/* The `show` view: every field, approvals, approvers and the host's profile (from the
 * whole show result). */
int print_request_details(json_object *result, FILE *f);

/* The `list` table, or "No requests." -EBADMSG when result is not an array of requests. */
int print_request_table(json_object *result, FILE *f);
/* Whether request tables print their header line and "No requests." (--no-legend). */
void format_set_legend(bool shown);

/* The `status` view. -EBADMSG when result does not look like a status. */
int print_status(json_object *result, FILE *f);

/* JSON getters that tolerate absent keys and wrong types (the broker is trusted to be
 * root, not to be bug-free). */
const char *json_get_string(json_object *o, const char *key);
int64_t json_get_int(json_object *o, const char *key, int64_t fallback);
