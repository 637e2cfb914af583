/* SPDX-License-Identifier: MIT */
/* jitctl's terminal escaping (jitctl/jitctl-text.c, compiled in): text from other people
 * (reasons, comments, names in broker replies) on an approver's terminal.
 *
 * Input: one control byte, then the text.
 *   bit 0    print_json() mode: the rest is a JSON document, as jitctl --json gets it from
 *            the broker (strictly valid, parsed by json-c), printed and read back
 *   bit 1-7  max_width for escape_text_len() (0: no cut)
 * Otherwise the text goes through escape_text_len(), escape_text(), fputs_escaped() and
 * text_width(), and the output must hold no byte a terminal acts on: valid UTF-8, no C0
 * control, no DEL, no C1 control, no bidi or invisible character (what jit_text_is_safe()
 * in common/protocol.c refuses), within the width. */
#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-strict.h"
#include "jitctl-text.h"
#include "protocol.h"

#include "fuzz-check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        /* jitctl runs with the user's LC_CTYPE; a UTF-8 one is where width and the
         * ellipsis matter. */
        if (!setlocale(LC_CTYPE, "C.UTF-8"))
                (void) setlocale(LC_CTYPE, "");
        return 0;
}

/* Output for a terminal: text the protocol itself would take as safe (jit_text_is_safe():
 * valid UTF-8, no control character, nothing invisible or reordering), line by line where
 * newlines are allowed (print_json()'s own layout). */
static void check_terminal_safe(const char *s, size_t len, bool newlines) {
        for (size_t i = 0; i <= len;) {
                size_t n = len - i;
                if (newlines) {
                        const char *nl = memchr(s + i, '\n', len - i);
                        if (nl)
                                n = (size_t) (nl - (s + i));
                }
                if (!jit_text_is_safe(s + i, n))
                        fprintf(stderr, "unsafe output at byte %zu: \"%.*s\"\n", i, (int) n, s + i);
                CHECK(jit_text_is_safe(s + i, n));
                i += n + 1;
        }
}

static void fuzz_escape(const char *s, size_t len, size_t max_width) {
        size_t width = SIZE_MAX;
        char *out = escape_text_len(s, len, max_width, &width);
        CHECK(out);
        size_t out_len = strlen(out);
        check_terminal_safe(out, out_len, false);
        CHECK(width == text_width(out));
        if (max_width > 0)
                CHECK(width <= max_width);
        free(out);

        /* The C-string functions see the text up to its first NUL, and agree. */
        size_t clen = strnlen(s, len);
        char *full = escape_text(s, 0, &width);
        CHECK(full);
        char *full_len = escape_text_len(s, clen, 0, NULL);
        CHECK(full_len && strcmp(full, full_len) == 0);
        free(full_len);

        char *written = NULL;
        size_t written_len = 0;
        FILE *f = open_memstream(&written, &written_len);
        CHECK(f);
        fputs_escaped(s, f);
        CHECK(fclose(f) == 0);
        CHECK(written_len == strlen(full) && memcmp(written, full, written_len) == 0);
        free(written);
        free(full);
}

static void fuzz_json(const char *s, size_t len) {
        /* What jitctl prints with --json passed jit_message_parse()'s strict gate. */
        if (json_strict_validate(s, len, JSON_STRICT_DEPTH_MAX) < 0)
                return;
        json_tokener *tok = json_tokener_new_ex(JSON_STRICT_DEPTH_MAX + 1);
        CHECK(tok);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        json_object *o = json_tokener_parse_ex(tok, s, (int) len);
        json_tokener_free(tok);
        if (!o)
                return; /* null, or what json-c cannot read: fuzz-message's business */

        char *written = NULL;
        size_t written_len = 0;
        FILE *f = open_memstream(&written, &written_len);
        CHECK(f);
        CHECK(print_json(o, f) == 0);
        CHECK(fclose(f) == 0);
        check_terminal_safe(written, written_len, true);

        /* The escapes leave the value unchanged. */
        tok = json_tokener_new_ex(JSON_STRICT_DEPTH_MAX + 1);
        CHECK(tok);
        json_object *back = json_tokener_parse_ex(tok, written, (int) written_len);
        json_tokener_free(tok);
        if (!back || !json_object_equal(o, back))
                fprintf(stderr, "print_json changed the value: %s\n", written);
        CHECK(back && json_object_equal(o, back));
        json_object_put(back);
        json_object_put(o);
        free(written);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1 || size > 1 << 20)
                return 0;
        uint8_t control = data[0];
        /* A copy of exactly the text, NUL-terminated after it: the C-string functions need
         * one, and ASan sees any read past len in the _len one. */
        size_t len = size - 1;
        char *s = malloc(len + 1);
        if (!s)
                return 0;
        memcpy(s, data + 1, len);
        s[len] = '\0';

        if (control & 1)
                fuzz_json(s, len);
        else
                fuzz_escape(s, len, control >> 1);
        free(s);
        return 0;
}
