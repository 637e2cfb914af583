/* SPDX-License-Identifier: MIT */
/* Reading an armored OpenSSH signature ("-----BEGIN SSH SIGNATURE-----", the output of
 * ssh-keygen -Y sign) far enough to name its key and namespace in messages and records.
 * It proves nothing: ssh-keygen -Y verify decides whether the signature is good. */
#pragma once

#include <stddef.h>

/* Armored signatures longer than this are refused: an RSA 8192 key's is under 3 KiB. */
#define SSHSIG_ARMORED_MAX 8192
#define SSHSIG_FINGERPRINT_MAX 64 /* "SHA256:" and 43 base64 characters, with room */
#define SSHSIG_NAMESPACE_MAX 128
#define SSHSIG_KEY_TYPE_MAX 64

typedef struct SshSigInfo {
        char fingerprint[SSHSIG_FINGERPRINT_MAX]; /* "SHA256:..." as ssh-keygen -l shows it */
        char key_type[SSHSIG_KEY_TYPE_MAX];       /* "ssh-ed25519", "ecdsa-sha2-nistp256", ... */
        char namespace[SSHSIG_NAMESPACE_MAX];
} SshSigInfo;

/* -EBADMSG with *why when text is not one armored sshsig signature (version 1), with only
 * LF or CRLF line ends and nothing around it but a final newline. */
int sshsig_parse(const char *text, size_t len, SshSigInfo *ret, const char **why);
