/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "sshsig.h"

#define BEGIN "-----BEGIN SSH SIGNATURE-----"
#define END "-----END SSH SIGNATURE-----"
#define MAGIC "SSHSIG"

typedef struct Reader {
        const unsigned char *p;
        size_t left;
} Reader;

static bool read_u32(Reader *r, uint32_t *ret) {
        if (r->left < 4)
                return false;
        *ret = (uint32_t) r->p[0] << 24 | (uint32_t) r->p[1] << 16 | (uint32_t) r->p[2] << 8 |
               r->p[3];
        r->p += 4, r->left -= 4;
        return true;
}

static bool read_string(Reader *r, const unsigned char **ret, size_t *ret_len) {
        uint32_t n;
        if (!read_u32(r, &n) || n > r->left)
                return false;
        *ret = r->p, *ret_len = n;
        r->p += n, r->left -= n;
        return true;
}

static bool copy_text(const unsigned char *s, size_t n, char *out, size_t max) {
        if (n >= max)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x21 || s[i] > 0x7e)
                        return false;
        memcpy(out, s, n);
        out[n] = 0;
        return true;
}

int sshsig_parse(const char *text, size_t len, SshSigInfo *ret, const char **why) {
        unsigned char b64[SSHSIG_ARMORED_MAX], blob[SSHSIG_ARMORED_MAX];
        size_t n = 0;

        *why = "not an SSH signature (-----BEGIN SSH SIGNATURE-----)";
        if (len > SSHSIG_ARMORED_MAX) {
                *why = "longer than 8 KiB";
                return -EBADMSG;
        }
        /* Lines: BEGIN, base64 ..., END, then at most one final newline. */
        const char *p = text, *end = text + len;
        bool began = false, ended = false;
        while (p < end && !ended) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t l = (size_t) ((nl ? nl : end) - p);
                if (l > 0 && p[l - 1] == '\r')
                        l--;
                if (!began) {
                        if (l != strlen(BEGIN) || memcmp(p, BEGIN, l) != 0)
                                return -EBADMSG;
                        began = true;
                } else if (l == strlen(END) && memcmp(p, END, l) == 0)
                        ended = true;
                else {
                        for (size_t i = 0; i < l; i++) {
                                char c = p[i];
                                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                      (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
                                        return -EBADMSG;
                                b64[n++] = (unsigned char) c;
                        }
                }
                p = nl ? nl + 1 : end;
        }
        if (!ended || p != end)
                return -EBADMSG;
        *why = "a malformed SSH signature";
        if (n == 0 || n % 4 != 0)
                return -EBADMSG;

        int m = EVP_DecodeBlock(blob, b64, (int) n);
        if (m < 0)
                return -EBADMSG;
        size_t blen = (size_t) m;
        for (size_t i = n; i > 0 && b64[i - 1] == '='; i--) /* EVP_DecodeBlock keeps padding */
                blen--;

        Reader r = { blob, blen };
        const unsigned char *key, *ns, *reserved, *hash, *sig, *type;
        size_t key_len, ns_len, reserved_len, hash_len, sig_len, type_len;
        uint32_t version;
        if (r.left < 6 || memcmp(r.p, MAGIC, 6) != 0)
                return -EBADMSG;
        r.p += 6, r.left -= 6;
        if (!read_u32(&r, &version) || version != 1) {
                *why = "an SSH signature of an unknown version";
                return -EBADMSG;
        }
        if (!read_string(&r, &key, &key_len) || !read_string(&r, &ns, &ns_len) ||
            !read_string(&r, &reserved, &reserved_len) || !read_string(&r, &hash, &hash_len) ||
            !read_string(&r, &sig, &sig_len) || r.left != 0)
                return -EBADMSG;
        Reader kr = { key, key_len };
        if (!read_string(&kr, &type, &type_len) ||
            !copy_text(type, type_len, ret->key_type, sizeof(ret->key_type)) ||
            !copy_text(ns, ns_len, ret->namespace, sizeof(ret->namespace)))
                return -EBADMSG;

        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned dlen = 0;
        if (EVP_Digest(key, key_len, d, &dlen, EVP_sha256(), NULL) != 1)
                return -ENOMEM;
        unsigned char fp[64];
        int fl = EVP_EncodeBlock(fp, d, (int) dlen);
        while (fl > 0 && fp[fl - 1] == '=') /* ssh-keygen shows it without padding */
                fl--;
        memcpy(ret->fingerprint, "SHA256:", 7);
        memcpy(ret->fingerprint + 7, fp, (size_t) fl);
        ret->fingerprint[7 + fl] = 0;
        *why = NULL;
        return 0;
}
