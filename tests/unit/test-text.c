/* SPDX-License-Identifier: MIT */
/* jitctl/jitctl-text.[ch]: what jitctl puts on a terminal from broker text (docs/security.md,
 * rules 13 and 17). Proves, with exact expected bytes, that C0 controls, DEL and invalid UTF-8
 * come out as \xNN, C1 controls, bidi/invisible/format characters, tags, variation
 * selectors, fillers and combining marks past the fourth in a row as \uNNNN (\UNNNNNNNN
 * beyond U+FFFF), ordinary text unchanged; that a width cut ends in an ellipsis within max_width
 * and never splits an escape or a character; that fputs_escaped writes what escape_text returns;
 * and that print_json writes the dangerous characters of a string as \u escapes while the JSON
 * still parses back to the same value. Runs in C.UTF-8. */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <json-c/json.h>

#include "jitctl-text.h"

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, the ellipsis in a UTF-8 locale */

/* ---------------------------------------------------------------------------------------
 * Helpers */

/* s with everything but printable ASCII as \xNN, for failure messages only; does not use
 * the code under test. */
static const char *show(const char *s, size_t len, char *buf, size_t size) {
        size_t o = 0;

        for (size_t i = 0; i < len && o + 5 < size; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c >= 0x20 && c < 0x7f && c != '\\')
                        buf[o++] = (char) c;
                else
                        o += (size_t) snprintf(buf + o, size - o, "<%02x>", c);
        }
        buf[o] = '\0';
        return buf;
}

/* What fputs_escaped writes for s, malloc'd. */
static char *fputs_escaped_to_string(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        fputs_escaped(s, f);
        assert_int_equal(fclose(f), 0);
        return buf;
}

/* Escapes len bytes at in without a width limit and asserts the exact result and width;
 * when in has no NUL also asserts that escape_text, fputs_escaped and text_width agree. */
static void check_len(const char *in, size_t len, const char *expect, size_t expect_width) {
        char a[512], b[512];
        size_t w = (size_t) -1;
        char *r = escape_text_len(in, len, 0, &w);

        assert_non_null(r);
        if (strcmp(r, expect) != 0)
                fail_msg("escape_text_len(\"%s\") = \"%s\", expected \"%s\"",
                         show(in, len, a, sizeof(a)), show(r, strlen(r), b, sizeof(b)), expect);
        if (w != expect_width)
                fail_msg("escape_text_len(\"%s\") width %zu, expected %zu",
                         show(in, len, a, sizeof(a)), w, expect_width);
        free(r);

        if (strlen(in) != len)
                return;
        w = (size_t) -1;
        r = escape_text(in, 0, &w);
        assert_non_null(r);
        assert_string_equal(r, expect);
        assert_int_equal(w, expect_width);
        /* The escaped text measures what escape_text said it measures. */
        assert_int_equal(text_width(r), expect_width);
        free(r);

        r = fputs_escaped_to_string(in);
        if (strcmp(r, expect) != 0)
                fail_msg("fputs_escaped(\"%s\") wrote \"%s\", expected \"%s\"",
                         show(in, len, a, sizeof(a)), show(r, strlen(r), b, sizeof(b)), expect);
        free(r);
}

static void check(const char *in, const char *expect, size_t expect_width) {
        check_len(in, strlen(in), expect, expect_width);
}

/* escape_text(in, max_width) must be exactly expect, of width expect_width. */
static void check_cut(const char *in, size_t max_width, const char *expect, size_t expect_width) {
        char a[512], b[512];
        size_t w = (size_t) -1;
        char *r = escape_text(in, max_width, &w);

        assert_non_null(r);
        if (strcmp(r, expect) != 0)
                fail_msg("escape_text(\"%s\", %zu) = \"%s\", expected \"%s\"",
                         show(in, strlen(in), a, sizeof(a)), max_width,
                         show(r, strlen(r), b, sizeof(b)), expect);
        assert_int_equal(w, expect_width);
        assert_int_equal(text_width(r), expect_width);
        free(r);
}

/* ---------------------------------------------------------------------------------------
 * Cases */

static void test_null_input(void **state) {
        size_t w = (size_t) -1;
        char *r = escape_text(NULL, 0, &w);

        assert_non_null(r);
        assert_string_equal(r, "");
        assert_int_equal(w, 0);
        free(r);

        r = escape_text(NULL, 10, NULL);
        assert_non_null(r);
        assert_string_equal(r, "");
        free(r);

        check("", "", 0);
}

static void test_c0_controls_and_del(void **state) {
        /* A colour sequence is shown, not obeyed. */
        check("a\x1b[31mb", "a\\x1b[31mb", 10);
        check("\x1b", "\\x1b", 4);
        check("\r", "\\x0d", 4);
        check("\n", "\\x0a", 4);
        check("\t", "\\x09", 4);
        check("\x01", "\\x01", 4);
        check("\x1f", "\\x1f", 4);
        check("\x7f", "\\x7f", 4);
        check("ok\x7f", "ok\\x7f", 6);
        check("line1\nline2\r\n", "line1\\x0aline2\\x0d\\x0a", 22);
        /* Carriage return plus text that would overwrite what the approver read. */
        check("rm -rf /\rls", "rm -rf /\\x0dls", 14);
        /* A NUL inside the counted bytes is escaped too, not a terminator. */
        check_len("a\0b", 3, "a\\x00b", 6);
        /* Space and tilde are the printable ASCII bounds. */
        check(" ~", " ~", 2);
}

static void test_invalid_utf8(void **state) {
        check("\xff", "\\xff", 4);
        check("a\xff"
              "b",
              "a\\xffb", 6);
        check("\xfe", "\\xfe", 4);
        /* A lone continuation byte. */
        check("\x80", "\\x80", 4);
        /* Truncated sequences: at the end, and followed by ASCII. */
        check("\xe2\x80", "\\xe2\\x80", 8);
        check("\xe2\x80z", "\\xe2\\x80z", 9);
        check("\xf0\x9f\x98", "\\xf0\\x9f\\x98", 12);
        check("\xc3", "\\xc3", 4);
        /* Overlong encodings of '/' and NUL. */
        check("\xc0\xaf", "\\xc0\\xaf", 8);
        check("\xe0\x80\xaf", "\\xe0\\x80\\xaf", 12);
        check("\xc0\x80", "\\xc0\\x80", 8);
        /* UTF-16 surrogates encoded as UTF-8. */
        check("\xed\xa0\x80", "\\xed\\xa0\\x80", 12);
        check("\xed\xbf\xbf", "\\xed\\xbf\\xbf", 12);
        /* Beyond U+10FFFF. */
        check("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", 16);
        /* An overlong ESC must not slip through as a decoded C0 control either. */
        check("\xc0\x9b", "\\xc0\\x9b", 8);
}

static void test_c1_controls(void **state) {
        check("\xc2\x85", "\\u0085", 6);
        /* CSI: the 8-bit form of ESC [. */
        check("\xc2\x9b", "\\u009b", 6);
        check("\xc2\x9b"
              "31m",
              "\\u009b31m", 9);
        check("\xc2\x80", "\\u0080", 6);
        check("\xc2\x9f", "\\u009f", 6);
        /* U+00A0 is past the C1 block. */
        check("\xc2\xa0", "\xc2\xa0", 1);
}

static void test_bidi_and_invisible(void **state) {
        static const struct {
                const char *in;
                const char *expect;
        } cases[] = {
                { "\xe2\x80\xae", "\\u202e" }, /* RIGHT-TO-LEFT OVERRIDE */
                { "\xe2\x80\xaa", "\\u202a" }, /* LEFT-TO-RIGHT EMBEDDING */
                { "\xe2\x80\xab", "\\u202b" }, /* RIGHT-TO-LEFT EMBEDDING */
                { "\xe2\x80\xac", "\\u202c" }, /* POP DIRECTIONAL FORMATTING */
                { "\xe2\x80\xad", "\\u202d" }, /* LEFT-TO-RIGHT OVERRIDE */
                { "\xe2\x81\xa6", "\\u2066" }, /* LEFT-TO-RIGHT ISOLATE */
                { "\xe2\x81\xa7", "\\u2067" }, /* RIGHT-TO-LEFT ISOLATE */
                { "\xe2\x81\xa8", "\\u2068" }, /* FIRST STRONG ISOLATE */
                { "\xe2\x81\xa9", "\\u2069" }, /* POP DIRECTIONAL ISOLATE */
                { "\xe2\x80\x8b", "\\u200b" }, /* ZERO WIDTH SPACE */
                { "\xe2\x80\x8f", "\\u200f" }, /* RIGHT-TO-LEFT MARK */
                { "\xef\xbb\xbf", "\\ufeff" }, /* ZERO WIDTH NO-BREAK SPACE (BOM) */
                { "\xd8\x9c", "\\u061c" },     /* ARABIC LETTER MARK */
                { "\xe2\x80\xa8", "\\u2028" }, /* LINE SEPARATOR */
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                check(cases[i].in, cases[i].expect, 6);

        /* "Trojan Source": the override is shown where it was typed. */
        check("user\xe2\x80\xae"
              "nimda",
              "user\\u202enimda", 15);
}

/* What the broker now refuses in new text, escaped anyway: text stored before, names from
 * NSS. One code point of each class the issue names. */
static void test_hidden_and_filler_characters(void **state) {
        static const struct {
                const char *in;
                const char *expect;
        } cases[] = {
                { "\xc2\xad", "\\u00ad" },             /* SOFT HYPHEN */
                { "\xcd\x8f", "\\u034f" },             /* COMBINING GRAPHEME JOINER */
                { "\xe1\x85\x9f", "\\u115f" },         /* HANGUL CHOSEONG FILLER */
                { "\xe1\x85\xa0", "\\u1160" },         /* HANGUL JUNGSEONG FILLER */
                { "\xe3\x85\xa4", "\\u3164" },         /* HANGUL FILLER */
                { "\xef\xbe\xa0", "\\uffa0" },         /* HALFWIDTH HANGUL FILLER */
                { "\xe1\x9e\xb4", "\\u17b4" },         /* KHMER VOWEL INHERENT AQ */
                { "\xe1\xa0\x8b", "\\u180b" },         /* MONGOLIAN FVS ONE */
                { "\xe1\xa0\x8e", "\\u180e" },         /* MONGOLIAN VOWEL SEPARATOR */
                { "\xef\xb8\x80", "\\ufe00" },         /* VARIATION SELECTOR-1 */
                { "\xef\xb8\x8f", "\\ufe0f" },         /* VARIATION SELECTOR-16 */
                { "\xe2\x81\xa0", "\\u2060" },         /* WORD JOINER */
                { "\xe2\x81\xa4", "\\u2064" },         /* INVISIBLE PLUS */
                { "\xef\xbf\xb9", "\\ufff9" },         /* INTERLINEAR ANNOTATION ANCHOR */
                { "\xef\xbf\xbb", "\\ufffb" },         /* INTERLINEAR ANNOTATION TERMINATOR */
                { "\xd8\x80", "\\u0600" },             /* ARABIC NUMBER SIGN */
                { "\xdb\x9d", "\\u06dd" },             /* ARABIC END OF AYAH */
                { "\xdc\x8f", "\\u070f" },             /* SYRIAC ABBREVIATION MARK */
                { "\xe0\xa3\xa2", "\\u08e2" },         /* ARABIC DISPUTED END OF AYAH */
                { "\xe2\x80\xa9", "\\u2029" },         /* PARAGRAPH SEPARATOR */
                { "\xf3\xa0\x80\x81", "\\U000e0001" }, /* LANGUAGE TAG */
                { "\xf3\xa0\x81\x81", "\\U000e0041" }, /* TAG LATIN CAPITAL LETTER A */
                { "\xf3\xa0\x81\xbf", "\\U000e007f" }, /* CANCEL TAG */
                { "\xf3\xa0\x84\x80", "\\U000e0100" }, /* VARIATION SELECTOR-17 */
                { "\xf3\xa0\x87\xaf", "\\U000e01ef" }, /* VARIATION SELECTOR-256 */
                { "\xf0\x9b\xb2\xa0", "\\U0001bca0" }, /* SHORTHAND FORMAT LETTER OVERLAP */
                { "\xf0\x9d\x85\xb3", "\\U0001d173" }, /* MUSICAL SYMBOL BEGIN BEAM */
                { "\xf0\x91\x82\xbd", "\\U000110bd" }, /* KAITHI NUMBER SIGN */
                { "\xf0\x93\x90\xb0", "\\U00013430" }, /* EGYPTIAN HIEROGLYPH VERTICAL JOINER */
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                check(cases[i].in, cases[i].expect, strlen(cases[i].expect));

        /* Text hidden in tags ("approve" + tags spelling "rm"): every tag shown. */
        check("approve\xf3\xa0\x81\xb2\xf3\xa0\x81\xad", "approve\\U000e0072\\U000e006d", 27);
        /* A name padded with a filler and a soft hyphen looks like another name. */
        check("jit-\xc2\xad"
              "alice\xe3\x85\xa4",
              "jit-\\u00adalice\\u3164", 21);
}

/* Marks stacked on one letter draw over the rows around it: four are shown as they are
 * (width 0 each), the fifth and every later one of the run escaped. */
static void test_combining_runs(void **state) {
        check("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81", "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81", 1);
        check("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81",
              "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\\u0301", 7);
        check("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81",
              "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\\u0301\\u0301", 13);
        /* A base character starts a new run. */
        check("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81"
              "a\xcc\x81",
              "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81"
              "a\xcc\x81",
              2);
        /* Marks of other blocks count in the same run: U+1AB0, U+1DC0, U+20DD (Me),
         * U+FE20, then U+0483 (Cyrillic) as the fifth. */
        check("o\xe1\xaa\xb0\xe1\xb7\x80\xe2\x83\x9d\xef\xb8\xa0\xd2\x83",
              "o\xe1\xaa\xb0\xe1\xb7\x80\xe2\x83\x9d\xef\xb8\xa0\\u0483", 7);
        /* An escape in between (a control) ends the run too. */
        check("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\x1b\xcc\x81",
              "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\\x1b\xcc\x81", 5);
        /* Hundreds of marks on one letter: one column for the letter, the rest escapes. */
        char zalgo[1 + 200 * 2 + 1];
        zalgo[0] = 'Z';
        for (size_t i = 0; i < 200; i++)
                memcpy(zalgo + 1 + 2 * i, "\xcc\xb4", 2);
        zalgo[sizeof(zalgo) - 1] = '\0';
        size_t w;
        char *r = escape_text(zalgo, 0, &w);
        assert_non_null(r);
        assert_int_equal(w, 1 + 196 * 6);
        assert_non_null(strstr(r, "Z\xcc\xb4\xcc\xb4\xcc\xb4\xcc\xb4\\u0334\\u0334"));
        free(r);
        /* A cut never keeps more than the four marks it would show uncut. */
        check_cut("e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81xyz", 8,
                  "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\\u0301" ELLIPSIS, 8);
}

static void test_ordinary_text_unchanged(void **state) {
        check("hello", "hello", 5);
        check("caf\xc3\xa9", "caf\xc3\xa9", 4);
        /* Two double-width CJK characters. */
        check("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac", 4);
        /* A four-byte emoji (U+1F600) passes, width 2. */
        check("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", 2);
        check("sudo -u root systemctl restart nginx", "sudo -u root systemctl restart nginx", 36);
        assert_int_equal(text_width("caf\xc3\xa9"), 4);
        assert_int_equal(text_width("\xe6\x97\xa5\xe6\x9c\xac"), 4);
}

static void test_width_cut(void **state) {
        assert_string_equal(glyph_ellipsis(), ELLIPSIS);

        check_cut("abcdefghij", 5, "abcd" ELLIPSIS, 5);
        check_cut("abcdefghij", 1, ELLIPSIS, 1);
        /* It fits: no cut, no ellipsis. */
        check_cut("abcde", 5, "abcde", 5);
        check_cut("abcdefghij", 10, "abcdefghij", 10);
        check_cut("abcdefghij", 0, "abcdefghij", 10);
        /* An escape is kept whole or dropped whole: "ab" + "\x1b" is 6 columns. */
        check_cut("ab\x1b", 4, "ab" ELLIPSIS, 3);
        check_cut("ab\x1b", 6, "ab\\x1b", 6);
        check_cut("\x1b\x1b", 6, "\\x1b" ELLIPSIS, 5);
        check_cut("x\xe2\x80\xae"
                  "y",
                  6, "x" ELLIPSIS, 2);
        /* A double-width character is not split either. */
        check_cut("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 4, "\xe6\x97\xa5" ELLIPSIS, 3);
        check_cut("caf\xc3\xa9 au lait", 5, "caf\xc3\xa9" ELLIPSIS, 5);

        char *r = escape_text("ab\x1b", 4, NULL);
        assert_non_null(r);
        assert_null(strstr(r, "\\x1"));
        free(r);

        /* Every width: the result fits, ends with the ellipsis when cut, and what precedes
         * the ellipsis is a prefix of the full escaped text made of whole units. */
        static const char in[] = "ab\x1b\xe2\x80\xae\xe6\x97\xa5\xff"
                                 "c";
        static const char full[] = "ab\\x1b\\u202e\xe6\x97\xa5\\xffc";
        static const size_t bounds[] = { 0, 1, 2, 6, 12, 15, 19, 20 }; /* unit ends, bytes */
        for (size_t mw = 1; mw <= 21; mw++) {
                size_t w;
                r = escape_text(in, mw, &w);
                assert_non_null(r);
                assert_true(w <= mw);
                if (mw >= 19) {
                        assert_string_equal(r, full);
                        assert_int_equal(w, 19);
                } else {
                        size_t n = strlen(r);
                        assert_true(n >= strlen(ELLIPSIS));
                        n -= strlen(ELLIPSIS);
                        assert_string_equal(r + n, ELLIPSIS);
                        assert_memory_equal(r, full, n);
                        bool whole = false;
                        for (size_t k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++)
                                whole = whole || bounds[k] == n;
                        if (!whole)
                                fail_msg("width %zu cut inside a unit after %zu bytes", mw, n);
                }
                free(r);
        }
}

static void test_ret_width_counts_escapes(void **state) {
        size_t w;
        char *r = escape_text("\x1b", 0, &w);

        assert_string_equal(r, "\\x1b");
        assert_int_equal(w, 4);
        free(r);

        r = escape_text("\xe2\x80\xae", 0, &w);
        assert_string_equal(r, "\\u202e");
        assert_int_equal(w, 6);
        free(r);

        r = escape_text("a\x1b"
                        "b\xe2\x80\xae"
                        "c",
                        0, &w);
        assert_string_equal(r, "a\\x1bb\\u202ec");
        assert_int_equal(w, 13);
        free(r);

        /* text_width of raw input counts the escape it would become. */
        assert_int_equal(text_width("\x1b"), 4);
        assert_int_equal(text_width("\xe2\x80\xae"), 6);
}

static void test_fputs_escaped_matches_escape_text(void **state) {
        static const char *const inputs[] = {
                "a\x1b[31mb",
                "\xe2\x80\xae",
                "user\xe2\x80\xae"
                "nimda\x7f\n",
                "\xff\xc0\xaf\xed\xa0\x80",
                "\xc2\x85\xc2\x9b",
                "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
                "",
        };

        for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
                char *e = escape_text(inputs[i], 0, NULL);
                char *f = fputs_escaped_to_string(inputs[i]);
                assert_non_null(e);
                assert_string_equal(f, e);
                free(e);
                free(f);
        }

        char *f = fputs_escaped_to_string("a\x1b[31mb");
        assert_string_equal(f, "a\\x1b[31mb");
        free(f);
        f = fputs_escaped_to_string("\xe2\x80\xae");
        assert_string_equal(f, "\\u202e");
        free(f);
}

static void test_print_json(void **state) {
        static const char reason[] = "\xe2\x80\xaex\x7f";
        json_object *o = json_object_new_object();
        char *buf = NULL;
        size_t size = 0;

        assert_non_null(o);
        assert_int_equal(json_object_object_add(o, "reason", json_object_new_string(reason)), 0);

        FILE *f = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_int_equal(print_json(o, f), 0);
        assert_int_equal(fclose(f), 0);
        json_object_put(o);

        assert_non_null(strstr(buf, "\\u202e"));
        assert_non_null(strstr(buf, "\\u007f"));
        assert_null(strstr(buf, "\xe2\x80\xae"));
        assert_null(strchr(buf, 0x7f));
        for (size_t i = 0; i < size; i++)
                if ((unsigned char) buf[i] >= 0x80 ||
                    ((unsigned char) buf[i] < 0x20 && buf[i] != '\n'))
                        fail_msg("print_json wrote raw byte 0x%02x at %zu", (unsigned char) buf[i],
                                 i);
        assert_true(size > 0 && buf[size - 1] == '\n');

        /* The escapes leave the value unchanged. */
        json_object *back = json_tokener_parse(buf);
        assert_non_null(back);
        json_object *v;
        assert_true(json_object_object_get_ex(back, "reason", &v));
        assert_true(json_object_is_type(v, json_type_string));
        assert_int_equal(json_object_get_string_len(v), strlen(reason));
        assert_string_equal(json_object_get_string(v), reason);
        json_object_put(back);
        free(buf);

        /* Ordinary non-ASCII text is printed as it is. */
        o = json_object_new_object();
        assert_non_null(o);
        json_object_object_add(o, "r", json_object_new_string("caf\xc3\xa9"));
        buf = NULL;
        f = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_int_equal(print_json(o, f), 0);
        assert_int_equal(fclose(f), 0);
        json_object_put(o);
        assert_non_null(strstr(buf, "\"caf\xc3\xa9\""));
        free(buf);
}

/* Beyond U+FFFF, print_json writes the surrogate pair JSON needs; long runs of marks are
 * escaped after the fourth; the value reads back unchanged. */
static void test_print_json_tags_and_marks(void **state) {
        static const char reason[] = "ok\xf3\xa0\x81\x81\xc2\xad"
                                     "e\xcc\x81\xcc\x81\xcc\x81\xcc\x81\xcc\x81"
                                     "\xf0\x9f\x98\x80";
        json_object *o = json_object_new_object();
        char *buf = NULL;
        size_t size = 0;

        assert_non_null(o);
        assert_int_equal(json_object_object_add(o, "reason", json_object_new_string(reason)), 0);
        FILE *f = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_int_equal(print_json(o, f), 0);
        assert_int_equal(fclose(f), 0);
        json_object_put(o);

        assert_non_null(strstr(buf, "ok\\udb40\\udc41\\u00ade\xcc\x81\xcc\x81\xcc\x81\xcc\x81"
                                    "\\u0301\xf0\x9f\x98\x80"));
        json_object *back = json_tokener_parse(buf);
        assert_non_null(back);
        json_object *v;
        assert_true(json_object_object_get_ex(back, "reason", &v));
        assert_string_equal(json_object_get_string(v), reason);
        json_object_put(back);
        free(buf);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_null_input),
                cmocka_unit_test(test_c0_controls_and_del),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test(test_c1_controls),
                cmocka_unit_test(test_bidi_and_invisible),
                cmocka_unit_test(test_hidden_and_filler_characters),
                cmocka_unit_test(test_combining_runs),
                cmocka_unit_test(test_ordinary_text_unchanged),
                cmocka_unit_test(test_width_cut),
                cmocka_unit_test(test_ret_width_counts_escapes),
                cmocka_unit_test(test_fputs_escaped_matches_escape_text),
                cmocka_unit_test(test_print_json),
                cmocka_unit_test(test_print_json_tags_and_marks),
        };

        /* Widths and the ellipsis depend on the locale. */
        if (!setlocale(LC_ALL, "C.UTF-8")) {
                fprintf(stderr, "setlocale(LC_ALL, \"C.UTF-8\") failed\n");
                return 1;
        }
        return cmocka_run_group_tests_name("text", tests, NULL, NULL);
}
