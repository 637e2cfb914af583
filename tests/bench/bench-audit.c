/* SPDX-License-Identifier: MIT */
/* Benchmark: what the audit log adds to each state change, as a ratio against the same
 * transaction without its audit record, both measured in this run on the same database
 * settings the broker uses (WAL, synchronous=FULL: every commit reaches the disk).
 *
 *   meson test -C BUILD --benchmark bench-audit --verbose
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker-audit.h"
#include "broker.h"
#include "timeutil.h"

#define ROUNDS 300

static Request sample(void) {
        Request r = {
                .requester = (char *) "alice",
                .requester_uid = 1000,
                .service = (char *) "sudo",
                .duration = 3600,
                .reason = (char *) "rotate the certificates on the payment gateway",
                .rule = (char *) "sudo-with-approval",
                .approvals_required = 1,
                .state = REQUEST_PENDING,
                .created_at = now_usec(CLOCK_REALTIME),
                .boot_id = "bench",
        };
        return r;
}

static double run(Broker *b, bool audit) {
        /* The mean of a run: steady enough for a ratio, with the runs alternated below. */
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        for (int i = 0; i < ROUNDS; i++) {
                Request r = sample();
                if (db_begin(b->db) < 0 || db_insert_request(b->db, &r) < 0 ||
                    (audit && audit_append(b->db, JIT_EVENT_REQUESTED, "alice", 1000, r.id,
                                           audit_request_details(&r)) < 0) ||
                    db_commit(b->db) < 0) {
                        fprintf(stderr, "bench-audit: database error: %s\n", db_error(b->db));
                        exit(1);
                }
        }
        return (double) (now_usec(CLOCK_MONOTONIC) - start) / ROUNDS;
}

int main(void) {
        char dir[] = "/var/tmp/jit-bench-XXXXXX", path[128];
        Broker b = { .listen_fd = -1 };
        char *error = NULL;

        if (!mkdtemp(dir))
                return 1;
        snprintf(path, sizeof(path), "%s/jit.db", dir);
        if (db_open(path, &b.db, &error) < 0) {
                fprintf(stderr, "bench-audit: %s\n", error ? error : "cannot open the database");
                return 1;
        }
        /* Alternate the two kinds so that disk and cache drift hit both alike. */
        double plain = 0, audited = 0;
        for (int k = 0; k < 3; k++) {
                plain += run(&b, false);
                audited += run(&b, true);
        }
        plain /= 3;
        audited /= 3;
        printf("%d state changes per kind, WAL, synchronous=FULL, on %s\n", 3 * ROUNDS, dir);
        printf("change without audit record   %8.1f us\n", plain);
        printf("change with its audit record  %8.1f us   ratio %5.2f   (+%.1f us per event)\n",
               audited, audited / plain, audited - plain);
        db_close(b.db);
        snprintf(path, sizeof(path), "rm -rf '%s'", dir);
        return system(path) == 0 ? 0 : 1;
}
