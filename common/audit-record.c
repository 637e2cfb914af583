/* SPDX-License-Identifier: MIT */
#include "audit-record.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

int audit_record_hash(const AuditRecord *r, char ret[AUDIT_HASH_LEN + 1]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        char head[256];

        if (!ctx)
                return -ENOMEM;
        int len = snprintf(head, sizeof(head), "jit-audit-v1\n%s\n%" PRIu64 "\n", r->prev_hash,
                           r->at);
        char ids[64];
        int ids_len = snprintf(ids, sizeof(ids), "\n%" PRId64 "\n%" PRId64 "\n", r->actor_uid,
                               r->request_id);
        bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
                  EVP_DigestUpdate(ctx, head, (size_t) len) == 1 &&
                  EVP_DigestUpdate(ctx, r->event, strlen(r->event)) == 1 &&
                  EVP_DigestUpdate(ctx, "\n", 1) == 1 &&
                  EVP_DigestUpdate(ctx, r->actor, strlen(r->actor)) == 1 &&
                  EVP_DigestUpdate(ctx, ids, (size_t) ids_len) == 1 &&
                  EVP_DigestUpdate(ctx, r->details, strlen(r->details)) == 1 &&
                  EVP_DigestFinal_ex(ctx, md, &n) == 1 && n * 2 == AUDIT_HASH_LEN;
        EVP_MD_CTX_free(ctx);
        if (!ok)
                return -EIO;
        for (unsigned i = 0; i < n; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

void audit_record_done(AuditRecord *r) {
        free(r->event);
        free(r->actor);
        free(r->details);
        *r = (AuditRecord){};
}
