/* SPDX-License-Identifier: MIT */
/* Text a person reads (reasons, comments, tickets, names): which code points cannot be
 * shown as they are, and what is shown instead. One implementation for the broker, which
 * refuses them in text fields (jit_text_check() in protocol.c), for jitctl, which escapes
 * them on a terminal (jitctl-text.c), and for the broker's journald MESSAGE (log_event()),
 * which escapes them so that no line can be hidden or reordered (docs/security.md, rules 13
 * and 17).
 *
 * The tables are Unicode 15.0 (Debian's unicode-data package, DerivedCoreProperties.txt and
 * extracted/DerivedGeneralCategory.txt); tests/unit/test-protocol.c compares them with those
 * files when they are installed. Nothing here reads them at run time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most combining marks allowed in a row: more draw over the rows around them. */
#define JIT_COMBINING_RUN_MAX 4

/* C0 controls (NUL included), DEL and C1 controls. */
bool jit_codepoint_is_control(uint32_t cp);

/* Code points that are not seen, or that change how the text around them reads:
 * Default_Ignorable_Code_Point (soft hyphen, combining grapheme joiner, Hangul fillers,
 * Khmer inherent vowels, Mongolian and other variation selectors, zero-width characters,
 * bidi controls and isolates, tags, reserved ignorables), General_Category Cf (format
 * characters such as U+0600..0605, U+06DD, U+070F, U+08E2, U+110BD, U+13430..1343F,
 * interlinear annotation U+FFF9..FFFB) and the line and paragraph separators U+2028, U+2029
 * (Zl, Zp), which end a line where nothing shows it. */
bool jit_codepoint_is_invisible(uint32_t cp);

/* Combining marks: General_Category Mn or Me (all of them, not only the main blocks). */
bool jit_codepoint_is_combining(uint32_t cp);

/* One piece of escaped text: a character as it is, or its escape. */
typedef struct JitTextUnit {
        char text[16]; /* NUL-terminated */
        size_t len;
        size_t consumed; /* input bytes */
        uint32_t cp;     /* the code point; for an invalid byte, the byte */
        bool escaped;
} JitTextUnit;

/* Reads the first unit of the left (> 0) bytes at s. Escaped are: bytes that are not
 * valid UTF-8, C0 controls and DEL, as \xNN; C1 controls, jit_codepoint_is_invisible()
 * and every combining mark after the first JIT_COMBINING_RUN_MAX of a row, as \uXXXX
 * (\UXXXXXXXX beyond U+FFFF). *combining_run counts the combining marks in a row so far:
 * start it at 0 and pass the same counter for the whole text. */
void jit_text_next_unit(const char *s, size_t left, unsigned *combining_run, JitTextUnit *u);

/* The len bytes at s with every unit escaped as above, NUL-terminated; NULL on ENOMEM. */
char *jit_text_escape(const char *s, size_t len);
