/* SPDX-License-Identifier: MIT */
#include "fleet-fetch-key.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>

static int sha256_hex(const char *a, const char *b, char out[FLEET_FETCH_KEY_HEX_LEN + 1]) {
        static const char digits[] = "0123456789abcdef";
        unsigned char d[EVP_MAX_MD_SIZE] = {};
        unsigned dlen = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
                  EVP_DigestUpdate(ctx, a, strlen(a)) == 1 &&
                  (!b || EVP_DigestUpdate(ctx, b, strlen(b)) == 1) &&
                  EVP_DigestFinal_ex(ctx, d, &dlen) == 1 && dlen == 32;
        EVP_MD_CTX_free(ctx);
        if (!ok)
                memset(d, 0, sizeof(d));
        for (size_t i = 0; i < 32; i++) {
                out[2 * i] = digits[d[i] >> 4];
                out[2 * i + 1] = digits[d[i] & 15];
        }
        out[FLEET_FETCH_KEY_HEX_LEN] = 0;
        /* The digest of a password is as secret as the key it makes. */
        explicit_bzero(d, sizeof(d));
        return ok ? 0 : -EIO;
}

int fleet_fetch_key_derive(const char *password, char out[FLEET_FETCH_KEY_HEX_LEN + 1]) {
        return sha256_hex(FLEET_FETCH_KEY_CONTEXT, password, out);
}

int fleet_fetch_key_hash(const char *key, char out[FLEET_FETCH_KEY_HEX_LEN + 1]) {
        return sha256_hex(key, NULL, out);
}
