/* SPDX-License-Identifier: MIT */
/* Putting text that came from the broker on a terminal: every byte that could move the
 * cursor, change colours, hide text or reorder what an approver reads is shown escaped
 * instead (docs/security.md, rules 13 and 17). The broker refuses such characters in new
 * text; this also covers what was stored before and names from NSS. The escapes are
 * common/text-escape.c's, the same as in the broker's journald MESSAGE. */
#pragma once

#include <json-c/json.h>
#include <stdio.h>

/* The escaped form of the len bytes at s: C0 controls, DEL and bytes that are not valid
 * UTF-8 become \xNN; C1 controls, invisible and reordering characters
 * (jit_codepoint_is_invisible(): bidi controls, zero-width and format characters, tags,
 * variation selectors, fillers, soft hyphen) and combining marks past the 4th in a row
 * become \uNNNN (\UNNNNNNNN beyond U+FFFF). When max_width > 0 and the text is wider, it
 * is cut and ends with an ellipsis, within max_width columns. Stores the display width in
 * *ret_width when not NULL. Returns a malloc'd string, or NULL on ENOMEM. */
char *escape_text_len(const char *s, size_t len, size_t max_width, size_t *ret_width);
char *escape_text(const char *s, size_t max_width, size_t *ret_width);

/* Writes s escaped as above; needs no memory. */
void fputs_escaped(const char *s, FILE *f);

/* Terminal columns taken by s, which must already be escaped or be our own text. */
size_t text_width(const char *s);

/* "…" where the locale can show it, "..." otherwise. */
const char *glyph_ellipsis(void);

/* Prints o as one pretty JSON document and a newline. Characters that a JSON parser
 * takes as they are but a terminal would act on or hide (DEL, C1, the invisible ones and
 * long runs of combining marks, as above) are written as \u escapes (surrogate pairs
 * beyond U+FFFF), which leaves the value unchanged. Returns 0 or -ENOMEM. */
int print_json(json_object *o, FILE *f);
