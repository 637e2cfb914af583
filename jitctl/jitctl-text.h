/* SPDX-License-Identifier: MIT */
/* Putting text that came from the broker on a terminal: every byte that could move the
 * cursor, change colours or reorder what an approver reads is shown escaped instead
 * (SECURITY.md item 12). */
#pragma once

#include <json-c/json.h>
#include <stdio.h>

/* The escaped form of the len bytes at s: C0 controls, DEL and bytes that are not valid
 * UTF-8 become \xNN; C1 controls and invisible reordering characters (bidi overrides,
 * zero-width marks) become \uNNNN. When max_width > 0 and the text is wider, it is cut
 * and ends with an ellipsis, within max_width columns. Stores the display width in
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
 * takes as they are but a terminal would act on (DEL, C1, bidi overrides) are written
 * as \u escapes, which leaves the value unchanged. Returns 0 or -ENOMEM. */
int print_json(json_object *o, FILE *f);
