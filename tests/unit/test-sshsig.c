/* SPDX-License-Identifier: MIT */
/* common/sshsig.[ch]: the key, its fingerprint and the namespace read from an armored
 * OpenSSH signature (the output of ssh-keygen -Y sign), and what is not one. The
 * fingerprints below are those ssh-keygen -l printed for the keys that signed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sshsig.h"

/* ed25519, namespace jit-approval */
static const char ed25519_sig[] =
        "-----BEGIN SSH SIGNATURE-----\n"
        "U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgFkZnn6tWeoo3RrJ20YRhp8YO86\n"
        "1lg1xESbGF1KZoLUcAAAAMaml0LWFwcHJvdmFsAAAAAAAAAAZzaGE1MTIAAABTAAAAC3Nz\n"
        "aC1lZDI1NTE5AAAAQJAhob27P8GwRGXJrS2LKOfEWueo4ZVeOkMkXaib7/oTjJ4qRK/28q\n"
        "GUKz/Eqj9t9rbeVFMJ/Bij6mQHNsXG7A0=\n"
        "-----END SSH SIGNATURE-----\n";
#define ED25519_FP "SHA256:s9BE1n7PMn2FTMK+ZDUI0k9sMzR4PUWE7wE91BXjih4"

/* the same key, namespace file */
static const char file_sig[] =
        "-----BEGIN SSH SIGNATURE-----\n"
        "U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgFkZnn6tWeoo3RrJ20YRhp8YO86\n"
        "1lg1xESbGF1KZoLUcAAAAEZmlsZQAAAAAAAAAGc2hhNTEyAAAAUwAAAAtzc2gtZWQyNTUx\n"
        "OQAAAEBU1fH/uAmY449Hb6kUv7jQ3qcv1bNM/jSYkhXoCtXMZiKGPKkdSq7Q/BVaI5YUgI\n"
        "Edd/RaQPvjn7uZ1G0+oQcB\n"
        "-----END SSH SIGNATURE-----\n";

/* ecdsa-sha2-nistp256, namespace jit-approval */
static const char ecdsa_sig[] =
        "-----BEGIN SSH SIGNATURE-----\n"
        "U1NIU0lHAAAAAQAAAGgAAAATZWNkc2Etc2hhMi1uaXN0cDI1NgAAAAhuaXN0cDI1NgAAAE\n"
        "EEnmoxjBdqMGQqVAfwWka3rwyF609txlZSd2tdWaIrWB7xDxYKPdbafQRSq3xTi/15k6t/\n"
        "7+fvGvcLVaGjC91ICgAAAAxqaXQtYXBwcm92YWwAAAAAAAAABnNoYTUxMgAAAGUAAAATZW\n"
        "Nkc2Etc2hhMi1uaXN0cDI1NgAAAEoAAAAhANdgA7EWmJdYvtJRDrJ1sRt7s2Og3tRQd/EP\n"
        "jxkXDpI0AAAAIQCFOmBfV0K2IRxUmclAPiMaoILcC32kOQ08qNeKQ/+4rQ==\n"
        "-----END SSH SIGNATURE-----\n";
#define ECDSA_FP "SHA256:SY/7P2QQv8N/24YJbVlwJJ0nOHOhJAVNrbw5em02AZA"

static void check_ok(const char *text, const char *fp, const char *type, const char *ns) {
        SshSigInfo info;
        const char *why = "sentinel";
        int r = sshsig_parse(text, strlen(text), &info, &why);
        if (r != 0)
                fail_msg("sshsig_parse: %d (%s)", r, why ? why : "?");
        assert_string_equal(info.fingerprint, fp);
        assert_string_equal(info.key_type, type);
        assert_string_equal(info.namespace, ns);
}

static void check_refused(const char *text, const char *expect_why) {
        SshSigInfo info;
        const char *why = NULL;
        assert_int_equal(sshsig_parse(text, strlen(text), &info, &why), -EBADMSG);
        if (!why || !strstr(why, expect_why))
                fail_msg("reason \"%s\", expected one with \"%s\"", why ? why : "", expect_why);
}

static void test_keys_and_namespaces(void **state) {
        (void) state;
        check_ok(ed25519_sig, ED25519_FP, "ssh-ed25519", "jit-approval");
        check_ok(file_sig, ED25519_FP, "ssh-ed25519", "file");
        check_ok(ecdsa_sig, ECDSA_FP, "ecdsa-sha2-nistp256", "jit-approval");
}

static void test_line_ends(void **state) {
        (void) state;
        char buf[2048];
        /* CRLF, and no final newline, are taken as they come from other tools. */
        size_t n = 0;
        for (const char *p = ed25519_sig; *p; p++) {
                if (*p == '\n')
                        buf[n++] = '\r';
                buf[n++] = *p;
        }
        buf[n] = 0;
        check_ok(buf, ED25519_FP, "ssh-ed25519", "jit-approval");
        snprintf(buf, sizeof(buf), "%s", ed25519_sig);
        buf[strlen(buf) - 1] = 0;
        check_ok(buf, ED25519_FP, "ssh-ed25519", "jit-approval");
}

static void test_refused(void **state) {
        (void) state;
        char buf[2048];
        check_refused("", "not an SSH signature");
        check_refused("hello\n", "not an SSH signature");
        /* Text before or after the armor. */
        snprintf(buf, sizeof(buf), "x\n%s", ed25519_sig);
        check_refused(buf, "not an SSH signature");
        snprintf(buf, sizeof(buf), "%sx\n", ed25519_sig);
        check_refused(buf, "not an SSH signature");
        /* No end line. */
        snprintf(buf, sizeof(buf), "%.*s", (int) (strlen(ed25519_sig) - 28), ed25519_sig);
        check_refused(buf, "not an SSH signature");
        /* A character outside base64. */
        snprintf(buf, sizeof(buf), "%s", ed25519_sig);
        buf[40] = '*';
        check_refused(buf, "not an SSH signature");
        /* Another magic ("SSHSIG" -> "SSHSIH"): the first base64 group changes. */
        snprintf(buf, sizeof(buf), "%s", ed25519_sig);
        memcpy(strchr(buf, '\n') + 1, "U1NIU0lI", 8);
        check_refused(buf, "malformed");
        /* Cut short: the last line dropped. */
        const char *last = strstr(ed25519_sig, "GUKz");
        snprintf(buf, sizeof(buf), "%.*s-----END SSH SIGNATURE-----\n", (int) (last - ed25519_sig),
                 ed25519_sig);
        check_refused(buf, "malformed");
        /* Too long. */
        char *big = malloc(SSHSIG_ARMORED_MAX + 2);
        assert_non_null(big);
        memset(big, 'A', SSHSIG_ARMORED_MAX + 1);
        big[SSHSIG_ARMORED_MAX + 1] = 0;
        check_refused(big, "longer than 8 KiB");
        free(big);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys_and_namespaces),
                cmocka_unit_test(test_line_ends),
                cmocka_unit_test(test_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
