/* SPDX-License-Identifier: MIT */
#include "audit-record.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

struct AuditHasher {
        EVP_MD *md; /* fetched once: EVP_sha256() is looked up again at every init */
        EVP_MD_CTX *ctx;
};

/* Decimal, as "%" PRIu64 and "%" PRId64 write it, without printf's cost per record. */
static char *put_u64(char *p, uint64_t v) {
        char digits[20];
        size_t n = 0;
        do
                digits[n++] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        while (n > 0)
                *p++ = digits[--n];
        return p;
}

static char *put_i64(char *p, int64_t v) {
        if (v >= 0)
                return put_u64(p, (uint64_t) v);
        *p++ = '-';
        return put_u64(p, -(uint64_t) v); /* INT64_MIN included */
}

static char *put_str(char *p, const char *s, size_t len) {
        memcpy(p, s, len);
        return p + len;
}

/* The hash definition, the one place it is written down: ctx is initialised here. */
static int hash_with(EVP_MD_CTX *ctx, const EVP_MD *md, const AuditRecord *r,
                     char ret[AUDIT_HASH_LEN + 1]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char md_out[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        size_t prev_len = strnlen(r->prev_hash, AUDIT_HASH_LEN + 1);
        /* "jit-audit-v1\n" PREV_HASH "\n" AT "\n"; prev_hash is a char[65], so at most 64. */
        char head[sizeof("jit-audit-v1\n") + AUDIT_HASH_LEN + 1 + 20 + 1];
        char *p = put_str(head, "jit-audit-v1\n", strlen("jit-audit-v1\n"));
        if (prev_len > AUDIT_HASH_LEN)
                return -EIO;
        p = put_str(p, r->prev_hash, prev_len);
        *p++ = '\n';
        p = put_u64(p, r->at);
        *p++ = '\n';
        size_t len = (size_t) (p - head);
        /* "\n" ACTOR_UID "\n" REQUEST_ID "\n" */
        char ids[1 + 20 + 1 + 20 + 1];
        p = ids;
        *p++ = '\n';
        p = put_i64(p, r->actor_uid);
        *p++ = '\n';
        p = put_i64(p, r->request_id);
        *p++ = '\n';
        size_t ids_len = (size_t) (p - ids);
        bool ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, head, len) == 1 &&
                  EVP_DigestUpdate(ctx, r->event, strlen(r->event)) == 1 &&
                  EVP_DigestUpdate(ctx, "\n", 1) == 1 &&
                  EVP_DigestUpdate(ctx, r->actor, strlen(r->actor)) == 1 &&
                  EVP_DigestUpdate(ctx, ids, ids_len) == 1 &&
                  EVP_DigestUpdate(ctx, r->details, strlen(r->details)) == 1 &&
                  EVP_DigestFinal_ex(ctx, md_out, &n) == 1 && n * 2 == AUDIT_HASH_LEN;
        if (!ok)
                return -EIO;
        /* Lowercase hex, as "%02x" writes it, without a printf per byte. */
        for (unsigned i = 0; i < n; i++) {
                ret[2 * i] = hex[md_out[i] >> 4];
                ret[2 * i + 1] = hex[md_out[i] & 0xf];
        }
        ret[2 * n] = '\0';
        return 0;
}

int audit_record_hash(const AuditRecord *r, char ret[AUDIT_HASH_LEN + 1]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        int k = hash_with(ctx, EVP_sha256(), r, ret);
        EVP_MD_CTX_free(ctx);
        return k;
}

int audit_hasher_new(AuditHasher **ret) {
        AuditHasher *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->ctx = EVP_MD_CTX_new();
        h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (!h->ctx || !h->md) {
                int r = h->ctx ? -EIO : -ENOMEM;
                audit_hasher_free(h);
                return r;
        }
        *ret = h;
        return 0;
}

AuditHasher *audit_hasher_free(AuditHasher *h) {
        if (h) {
                EVP_MD_CTX_free(h->ctx);
                EVP_MD_free(h->md);
                free(h);
        }
        return NULL;
}

int audit_hasher_hash(AuditHasher *h, const AuditRecord *r, char ret[AUDIT_HASH_LEN + 1]) {
        return hash_with(h->ctx, h->md, r, ret);
}

void audit_record_done(AuditRecord *r) {
        free(r->event);
        free(r->actor);
        free(r->details);
        *r = (AuditRecord){};
}
