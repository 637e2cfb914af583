/* SPDX-License-Identifier: MIT */
/* Fleet requests in jitctl (docs/fleet.md): `request --hosts SELECTOR` files one, and
 * `list`, `show`, `approve`, `deny`, `revoke` act on them by their id in the fleet, written
 * "f:ID" so that it never reads as a local request id. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "client.h"
#include "jitctl-command.h"
#include "jitctl-exit.h"
#include "jitctl-fleet-requests.h"
#include "jitctl-format.h"
#include "jitctl-text.h"
#include "protocol.h"

bool fleet_id_parse(const char *s, int64_t *ret) {
        return s && strncmp(s, "f:", 2) == 0 && parse_positive(s + 2, INT64_MAX, ret) >= 0;
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static int64_t get_int(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

/* The hosts a request covers, as a table: what each recorded of it (its uploaded fleet
 * audit records), "-" for what it has not. */
static void print_covered_hosts(json_object *hosts, int64_t total, FILE *f) {
        size_t n =
                json_object_is_type(hosts, json_type_array) ? json_object_array_length(hosts) : 0;
        int width = 4;
        for (size_t i = 0; i < n; i++) {
                const char *h = get_str(json_object_array_get_idx(hosts, i), "host");
                if (h && (int) strlen(h) > width)
                        width = (int) strlen(h);
        }
        fprintf(f, "  covers %" PRIi64 " host%s%s\n", total, total == 1 ? "" : "s",
                total > (int64_t) n ? " (the first listed)" : "");
        if (n == 0)
                return;
        fprintf(f, "  %-*s  %-20s  %-20s  %s\n", width, "HOST", "GRANTED", "FIRST USED", "ENDED");
        for (size_t i = 0; i < n; i++) {
                json_object *x = json_object_array_get_idx(hosts, i);
                fprintf(f, "  %-*s  %-20s  %-20s  %s", width, get_str(x, "host") ?: "?",
                        get_str(x, "granted_at") ?: "-", get_str(x, "first_used_at") ?: "-",
                        get_str(x, "ended_at") ?: "-");
                if (get_str(x, "end_state")) {
                        fputs(" (", f);
                        fputs_escaped(get_str(x, "end_state"), f);
                        fputc(')', f);
                }
                fputc('\n', f);
        }
}

static void print_fleet_request(json_object *r, FILE *f) {
        json_object *a;
        fprintf(f, "Fleet request %s: %s for %s on hosts %s, %" PRIi64 " s (filed on %s, %s)\n",
                get_str(r, "id") ?: "?", get_str(r, "requester") ?: "?",
                get_str(r, "service") ?: "?", get_str(r, "hosts") ?: "?", get_int(r, "duration"),
                get_str(r, "origin_host") ?: "?", get_str(r, "state") ?: "?");
        fprintf(f, "  reason: %s\n", get_str(r, "reason") ?: "");
        if (get_str(r, "expires_at") && STREQ(get_str(r, "state") ?: "", "pending"))
                fprintf(f, "  to be answered by: %s\n", get_str(r, "expires_at"));
        if (get_str(r, "ticket"))
                fprintf(f, "  ticket: %s\n", get_str(r, "ticket"));
        if (json_object_object_get_ex(r, "approvals", &a) &&
            json_object_is_type(a, json_type_array))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *x = json_object_array_get_idx(a, i);
                        fprintf(f, "  %s by %s on %s\n",
                                (get_str(x, "verdict") && STREQ(get_str(x, "verdict"), "deny"))
                                        ? "denied"
                                        : "approved",
                                get_str(x, "approver") ?: "?", get_str(x, "host") ?: "?");
                }
        if (json_object_object_get_ex(r, "revoked_by", &a) &&
            json_object_is_type(a, json_type_array))
                for (size_t i = 0; i < json_object_array_length(a); i++)
                        fprintf(f, "  revoked by %s\n",
                                json_object_get_string(json_object_array_get_idx(a, i)));
        if (json_object_object_get_ex(r, "covered_hosts", &a))
                print_covered_hosts(a, get_int(r, "covered_hosts_total"), f);
}

int fleet_request_file(Context *c, const char *hosts, const char *service, const char *reason,
                       const char *ticket, uint64_t duration) {
        _cleanup_(json_object_putp) json_object *request = jit_request_new("fleet-request"),
                                                *reply = NULL;
        json_object *result;

        if (!request || add_string(request, "hosts", hosts) < 0 ||
            add_string(request, "service", service) < 0 ||
            add_string(request, "reason", reason) < 0 ||
            (ticket && add_string(request, "ticket", ticket) < 0) ||
            (duration > 0 && add_int(request, "duration", (int64_t) duration) < 0))
                return fail_oom(c);
        int r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (c->json)
                return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;
        printf("Fleet request %s filed for hosts %s: waiting for approval.\n",
               get_str(result, "id") ?: "?", get_str(result, "hosts") ?: "?");
        return JIT_EXIT_OK;
}

int fleet_request_act(Context *c, const char *op, int64_t id, const char *text_option,
                      const char *text) {
        return fleet_request_act_signed(c, op, id, text_option, text, NULL, NULL);
}

int fleet_request_act_signed(Context *c, const char *op, int64_t id, const char *text_option,
                             const char *text, const char *statement, const char *signature) {
        _cleanup_(json_object_putp) json_object *request = NULL, *reply = NULL;
        char fleet_op[32];
        json_object *result;

        snprintf(fleet_op, sizeof(fleet_op), "fleet-%s", op);
        request = request_with_id(fleet_op, id);
        if (!request || (text && add_string(request, text_option, text) < 0) ||
            (signature && (add_string(request, "statement", statement) < 0 ||
                           add_string(request, "signature", signature) < 0)))
                return fail_oom(c);
        int r = broker_call(c, request, &reply, &result);
        if (r != JIT_EXIT_OK)
                return r;
        if (c->json)
                return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;
        if (!STREQ(op, "show"))
                printf("Fleet request f:%" PRIi64 " %s.\n", id,
                       STREQ(op, "approve")  ? "approved"
                       : STREQ(op, "deny")   ? "denied"
                       : STREQ(op, "cancel") ? "withdrawn"
                                             : "revoked");
        print_fleet_request(result, stdout);
        return JIT_EXIT_OK;
}

int fleet_request_list(Context *c, bool quiet) {
        _cleanup_(json_object_putp) json_object *request = jit_request_new("fleet-list"),
                                                *reply = NULL;
        json_object *result, *list, *ok;

        if (!request)
                return fail_oom(c);
        if (quiet) {
                /* After the local list: a host without a fleet says nothing more. */
                if (jit_client_call(c->socket_path, c->timeout_ms, request, &reply) < 0 ||
                    !json_object_object_get_ex(reply, "ok", &ok))
                        return JIT_EXIT_OK;
                if (!json_object_get_boolean(ok)) {
                        json_object *m;
                        if (json_object_object_get_ex(reply, "message", &m) &&
                            strstr(json_object_get_string(m), "unreachable"))
                                fprintf(stderr, "Fleet requests: %s\n", json_object_get_string(m));
                        return JIT_EXIT_OK;
                }
                (void) json_object_object_get_ex(reply, "result", &result);
        } else {
                int r = broker_call(c, request, &reply, &result);
                if (r != JIT_EXIT_OK)
                        return r;
                if (c->json)
                        return print_json(result, stdout) < 0 ? fail_oom(c) : JIT_EXIT_OK;
        }
        if (!result || !json_object_object_get_ex(result, "requests", &list))
                return JIT_EXIT_OK;
        size_t n = json_object_array_length(list);
        if (n == 0 && quiet)
                return JIT_EXIT_OK;
        printf("%sFleet requests pending: %zu\n", quiet ? "\n" : "", n);
        for (size_t i = 0; i < n; i++)
                print_fleet_request(json_object_array_get_idx(list, i), stdout);
        return JIT_EXIT_OK;
}
