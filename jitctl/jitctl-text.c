/* SPDX-License-Identifier: MIT */
#include "jitctl-text.h"

#include <errno.h>
#include <langinfo.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "cleanup.h"
#include "json-strict.h"
#include "text-escape.h"

/* One piece of output: a character as it is, or its escape (common/text-escape.c, the
 * same escapes the broker writes into journald's MESSAGE), and the columns it takes. */
typedef struct Unit {
        JitTextUnit u;
        size_t width;
} Unit;

static void next_unit(const char *s, size_t left, unsigned *combining_run, Unit *unit) {
        const JitTextUnit *u = &unit->u;

        jit_text_next_unit(s, left, combining_run, &unit->u);
        if (u->escaped) {
                unit->width = u->len;
                return;
        }
        /* glibc's wchar_t is UCS-4 in every locale; outside a UTF-8 locale wcwidth() knows
         * nothing beyond ASCII, so count one column. */
        int w = u->consumed == 1 ? 1 : wcwidth((wchar_t) u->cp);
        unit->width = w < 0 ? 1 : (size_t) w;
}

const char *glyph_ellipsis(void) {
        return STREQ(nl_langinfo(CODESET), "UTF-8") ? "\u2026" : "...";
}

size_t text_width(const char *s) {
        size_t len = strlen(s), width = 0;
        unsigned run = 0;
        Unit u;

        for (size_t i = 0; i < len; i += u.u.consumed) {
                next_unit(s + i, len - i, &run, &u);
                width += u.width;
        }
        return width;
}

char *escape_text_len(const char *s, size_t len, size_t max_width, size_t *ret_width) {
        const char *ellipsis = glyph_ellipsis();
        size_t total = 0, width = 0, keep = 0, ell_width = text_width(ellipsis);
        unsigned run = 0;
        Unit u;

        if (!s) {
                s = "";
                len = 0;
        }
        for (size_t i = 0; i < len; i += u.u.consumed) {
                next_unit(s + i, len - i, &run, &u);
                total += u.width;
        }
        bool cut = max_width > 0 && total > max_width;
        if (cut)
                keep = max_width > ell_width ? max_width - ell_width : 0;

        /* No unit is longer than 4 bytes per input byte ("\xNN", "\U000e0041"). */
        char *buf = malloc(len * 4 + strlen(ellipsis) + 1), *o = buf;
        if (!buf)
                return NULL;
        run = 0;
        for (size_t i = 0; i < len; i += u.u.consumed) {
                next_unit(s + i, len - i, &run, &u);
                if (cut && width + u.width > keep)
                        break;
                o = mempcpy(o, u.u.text, u.u.len);
                width += u.width;
        }
        if (cut) {
                o = stpcpy(o, ellipsis);
                width += ell_width;
        }
        *o = '\0';
        if (ret_width)
                *ret_width = width;
        return buf;
}

char *escape_text(const char *s, size_t max_width, size_t *ret_width) {
        return escape_text_len(s, s ? strlen(s) : 0, max_width, ret_width);
}

void fputs_escaped(const char *s, FILE *f) {
        size_t len = strlen(s);
        unsigned run = 0;
        JitTextUnit u;

        for (size_t i = 0; i < len; i += u.consumed) {
                jit_text_next_unit(s + i, len - i, &run, &u);
                fwrite(u.text, 1, u.len, f);
        }
}

int print_json(json_object *o, FILE *f) {
        size_t len;
        const char *s = json_object_to_json_string_length(
                o,
                JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
                &len);
        if (!s)
                return -ENOMEM;

        /* Outside strings JSON is plain ASCII, so anything rewritten here is inside a
         * string, where \uNNNN (a surrogate pair beyond U+FFFF) means the same character. */
        const unsigned char *p = (const unsigned char *) s;
        unsigned run = 0;
        for (size_t i = 0; i < len;) {
                size_t at = i;
                uint32_t cp;
                if (!utf8_next_strict(p, len, &i, &cp)) {
                        /* Cannot happen: json-c writes back what it parsed as valid UTF-8. */
                        fputs("\\ufffd", f);
                        i = at + 1;
                        run = 0;
                        continue;
                }
                if (!jit_codepoint_is_combining(cp))
                        run = 0;
                else if (run <= JIT_COMBINING_RUN_MAX)
                        run++;
                if (cp == 0x7f || (cp >= 0x80 && jit_codepoint_is_control(cp)) ||
                    jit_codepoint_is_invisible(cp) || run > JIT_COMBINING_RUN_MAX) {
                        if (cp > 0xffff)
                                fprintf(f, "\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10),
                                        0xdc00 + ((cp - 0x10000) & 0x3ff));
                        else
                                fprintf(f, "\\u%04x", (unsigned) cp);
                } else
                        fwrite(p + at, 1, i - at, f);
        }
        fputc('\n', f);
        return 0;
}
