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

/* One piece of output: a character as it is, or its escape. */
typedef struct Unit {
        char text[16];
        size_t len;
        size_t width;
        size_t consumed; /* input bytes */
} Unit;

/* Decodes one UTF-8 sequence; returns its length, or 0 when it is not valid (truncated,
 * overlong, a surrogate, beyond U+10FFFF). */
static size_t utf8_decode(const unsigned char *p, size_t left, uint32_t *ret) {
        size_t n;
        uint32_t cp;

        if (p[0] < 0x80) {
                *ret = p[0];
                return 1;
        }
        if ((p[0] & 0xe0) == 0xc0) {
                n = 2;
                cp = p[0] & 0x1f;
        } else if ((p[0] & 0xf0) == 0xe0) {
                n = 3;
                cp = p[0] & 0x0f;
        } else if ((p[0] & 0xf8) == 0xf0) {
                n = 4;
                cp = p[0] & 0x07;
        } else
                return 0;
        if (n > left)
                return 0;
        for (size_t k = 1; k < n; k++) {
                if ((p[k] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[k] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        *ret = cp;
        return n;
}

/* Code points a terminal acts on (C1) or that hide or reorder the text around them
 * ("Trojan Source"): an approver must read what was typed, in the order it was typed. */
static bool codepoint_is_unsafe(uint32_t cp) {
        return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x180e ||
               (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
               (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff;
}

static void next_unit(const char *s, size_t left, Unit *u) {
        const unsigned char *p = (const unsigned char *) s;
        uint32_t cp;
        size_t n = utf8_decode(p, left, &cp);

        if (n == 0 || cp < 0x20 || cp == 0x7f) {
                u->len = (size_t) snprintf(u->text, sizeof(u->text), "\\x%02x", p[0]);
                u->width = u->len;
                u->consumed = 1;
                return;
        }
        u->consumed = n;
        if (codepoint_is_unsafe(cp)) {
                u->len = (size_t) snprintf(u->text, sizeof(u->text), "\\u%04x", (unsigned) cp);
                u->width = u->len;
                return;
        }
        memcpy(u->text, s, n);
        u->len = n;
        /* glibc's wchar_t is UCS-4 in every locale; outside a UTF-8 locale wcwidth() knows
         * nothing beyond ASCII, so count one column. */
        int w = n == 1 ? 1 : wcwidth((wchar_t) cp);
        u->width = w < 0 ? 1 : (size_t) w;
}

const char *glyph_ellipsis(void) {
        return STREQ(nl_langinfo(CODESET), "UTF-8") ? "\u2026" : "...";
}

size_t text_width(const char *s) {
        size_t len = strlen(s), width = 0;
        Unit u;

        for (size_t i = 0; i < len; i += u.consumed) {
                next_unit(s + i, len - i, &u);
                width += u.width;
        }
        return width;
}

char *escape_text_len(const char *s, size_t len, size_t max_width, size_t *ret_width) {
        const char *ellipsis = glyph_ellipsis();
        size_t total = 0, width = 0, keep = 0, ell_width = text_width(ellipsis);
        Unit u;

        if (!s) {
                s = "";
                len = 0;
        }
        for (size_t i = 0; i < len; i += u.consumed) {
                next_unit(s + i, len - i, &u);
                total += u.width;
        }
        bool cut = max_width > 0 && total > max_width;
        if (cut)
                keep = max_width > ell_width ? max_width - ell_width : 0;

        /* No unit is longer than 4 bytes per input byte ("\xNN"). */
        char *buf = malloc(len * 4 + strlen(ellipsis) + 1), *o = buf;
        if (!buf)
                return NULL;
        for (size_t i = 0; i < len; i += u.consumed) {
                next_unit(s + i, len - i, &u);
                if (cut && width + u.width > keep)
                        break;
                o = mempcpy(o, u.text, u.len);
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
        Unit u;

        for (size_t i = 0; i < len; i += u.consumed) {
                next_unit(s + i, len - i, &u);
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
         * string, where \uNNNN means the same character. */
        const unsigned char *p = (const unsigned char *) s;
        for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t n = utf8_decode(p + i, len - i, &cp);
                if (n == 0) {
                        /* Cannot happen: json-c writes back what it parsed as valid UTF-8. */
                        fputs("\\ufffd", f);
                        n = 1;
                } else if (cp == 0x7f || codepoint_is_unsafe(cp)) {
                        fprintf(f, "\\u%04x", (unsigned) cp);
                } else {
                        fwrite(p + i, 1, n, f);
                }
                i += n;
        }
        fputc('\n', f);
        return 0;
}
