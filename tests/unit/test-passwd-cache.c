/* SPDX-License-Identifier: MIT */
/* The user name cache of the PAM check (common/passwd-cache.c): answers only what NSS would
 * answer from the password file, and never an answer the files no longer give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "passwd-cache.h"

typedef struct Files {
        char dir[64];
        char passwd[96], nsswitch[96];
} Files;

static void write_file(const char *path, const char *text) {
        /* A new file renamed over the old one, as useradd and vipw do. */
        char tmp[128];
        snprintf(tmp, sizeof(tmp), "%s+", path);
        FILE *f = fopen(tmp, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(rename(tmp, path), 0);
}

static void rewrite_in_place(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static int setup(void **state) {
        Files *f = calloc(1, sizeof(Files));
        strcpy(f->dir, "/tmp/jit-passwd-cache-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->passwd, sizeof(f->passwd), "%s/passwd", f->dir);
        snprintf(f->nsswitch, sizeof(f->nsswitch), "%s/nsswitch.conf", f->dir);
        write_file(f->nsswitch, "# comment\npasswd:         files systemd\ngroup: files\n");
        write_file(f->passwd, "root:x:0:0:root:/root:/bin/bash\n"
                              "alice:x:1001:100::/home/alice:/bin/sh\n"
                              "bob:x:1002:100::/home/bob:/bin/sh\n");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Files *f = *state;
        unlink(f->passwd);
        unlink(f->nsswitch);
        rmdir(f->dir);
        free(f);
        return 0;
}

static void lookup_finds_names_in_the_file(void **state) {
        Files *f = *state;
        PasswdCache *c;
        uid_t uid = 7;
        assert_int_equal(passwd_cache_new(f->passwd, f->nsswitch, &c), 0);
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 1);
        assert_int_equal(uid, 1001);
        assert_int_equal(passwd_cache_lookup(c, "bob", &uid), 1);
        assert_int_equal(uid, 1002);
        assert_int_equal(passwd_cache_lookup(c, "root", &uid), 1);
        assert_int_equal(uid, 0);
        /* Not in the file: NSS asks its other sources. */
        uid = 7;
        assert_int_equal(passwd_cache_lookup(c, "carol", &uid), 0);
        assert_int_equal(passwd_cache_lookup(c, "alic", &uid), 0);
        assert_int_equal(passwd_cache_lookup(c, "alicee", &uid), 0);
        assert_int_equal(uid, 7);
        passwd_cache_free(c);
}

static void a_replaced_file_is_read_again(void **state) {
        Files *f = *state;
        PasswdCache *c;
        uid_t uid;
        assert_int_equal(passwd_cache_new(f->passwd, f->nsswitch, &c), 0);
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 1);
        assert_int_equal(uid, 1001);
        /* alice removed, and her name given to someone else. */
        write_file(f->passwd, "root:x:0:0:root:/root:/bin/bash\n"
                              "alice:x:2001:100::/home/alice:/bin/sh\n");
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 1);
        assert_int_equal(uid, 2001);
        assert_int_equal(passwd_cache_lookup(c, "bob", &uid), 0);
        passwd_cache_free(c);
}

static void a_file_rewritten_in_place_is_read_again(void **state) {
        Files *f = *state;
        PasswdCache *c;
        uid_t uid;
        assert_int_equal(passwd_cache_new(f->passwd, f->nsswitch, &c), 0);
        assert_int_equal(passwd_cache_lookup(c, "bob", &uid), 1);
        rewrite_in_place(f->passwd, "bob:x:3002:100::/home/bob:/bin/sh\n");
        assert_int_equal(passwd_cache_lookup(c, "bob", &uid), 1);
        assert_int_equal(uid, 3002);
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 0);
        passwd_cache_free(c);
}

static void the_first_of_duplicates_wins(void **state) {
        Files *f = *state;
        PasswdCache *c;
        uid_t uid;
        write_file(f->passwd, "zed:x:5:5::/:/bin/sh\ndup:x:1500:100::/:/bin/sh\n"
                              "+nis\n-gone\ndup:x:1600:100::/:/bin/sh\na:x:6:6::/:/bin/sh\n");
        assert_int_equal(passwd_cache_new(f->passwd, f->nsswitch, &c), 0);
        assert_int_equal(passwd_cache_lookup(c, "dup", &uid), 1);
        assert_int_equal(uid, 1500);
        /* Compat markers are not accounts. */
        assert_int_equal(passwd_cache_lookup(c, "+nis", &uid), 0);
        assert_int_equal(passwd_cache_lookup(c, "-gone", &uid), 0);
        passwd_cache_free(c);
}

static void only_when_files_answer_first(void **state) {
        Files *f = *state;
        PasswdCache *c;
        uid_t uid;
        assert_int_equal(passwd_cache_new(f->passwd, f->nsswitch, &c), 0);
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 1);
        /* A directory service put first: its answer would win, so NSS must be asked. */
        write_file(f->nsswitch, "passwd: sss files\n");
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 0);
        write_file(f->nsswitch, "passwd: files\n");
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 1);
        unlink(f->nsswitch);
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 0);
        write_file(f->nsswitch, "passwd: files\n");
        unlink(f->passwd);
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 0);
        passwd_cache_free(c);
}

/* A symlinked password file is outside what the directory watch sees: both files are then
 * stat()ed at every lookup, and a change through the link is still seen. */
static void a_symlinked_file_is_followed(void **state) {
        Files *f = *state;
        char target[128];
        PasswdCache *c;
        uid_t uid;
        snprintf(target, sizeof(target), "%s/real-passwd", f->dir);
        assert_int_equal(rename(f->passwd, target), 0);
        assert_int_equal(symlink("real-passwd", f->passwd), 0);
        assert_int_equal(passwd_cache_new(f->passwd, f->nsswitch, &c), 0);
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 1);
        assert_int_equal(uid, 1001);
        write_file(target, "alice:x:4001:100::/home/alice:/bin/sh\n");
        assert_int_equal(passwd_cache_lookup(c, "alice", &uid), 1);
        assert_int_equal(uid, 4001);
        passwd_cache_free(c);
        unlink(target);
}

static void nsswitch_lines(void **state) {
        assert_true(nsswitch_passwd_files_first("passwd: files\n"));
        assert_true(nsswitch_passwd_files_first("passwd:files systemd"));
        assert_true(nsswitch_passwd_files_first(
                "group: sss\n  passwd:\tfiles [NOTFOUND=return] ldap\n"));
        assert_false(nsswitch_passwd_files_first("passwd: compat\n"));
        assert_false(nsswitch_passwd_files_first("passwd: filesx\n"));
        assert_false(nsswitch_passwd_files_first("passwd: ldap files\n"));
        assert_false(nsswitch_passwd_files_first("passwd:\n"));
        assert_false(nsswitch_passwd_files_first("group: files\n"));
        assert_false(nsswitch_passwd_files_first(""));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(lookup_finds_names_in_the_file, setup, teardown),
                cmocka_unit_test_setup_teardown(a_replaced_file_is_read_again, setup, teardown),
                cmocka_unit_test_setup_teardown(a_file_rewritten_in_place_is_read_again, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(the_first_of_duplicates_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(only_when_files_answer_first, setup, teardown),
                cmocka_unit_test_setup_teardown(a_symlinked_file_is_followed, setup, teardown),
                cmocka_unit_test(nsswitch_lines),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
