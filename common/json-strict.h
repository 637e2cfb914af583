/* SPDX-License-Identifier: MIT */
/* A strict JSON syntax check (RFC 8259), the gate in front of json-c: json-c builds the
 * object tree, but even in its strict mode it takes duplicate member names (last one
 * wins), NaN and Infinity, raw control characters inside strings and lone surrogate
 * escapes (silently turned into U+FFFD). What passes json_strict_validate() has none of
 * these. The rules are listed in common/PROTOCOL.md, "Messages". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting the checker can follow: containers, the outermost one counting as 1. */
#define JSON_STRICT_DEPTH_MAX 8

/* Most members one object may have. The duplicate check compares each name with the
 * earlier names of its object (by a hash first, byte by byte only when the hashes agree),
 * so this bounds the work per member and the fixed table of names. No object of the
 * protocol comes near it (a request has about 25 members). */
#define JSON_STRICT_KEYS_MAX 256

/* Checks that buf[0..len) is exactly one JSON value, optionally surrounded by whitespace
 * (space, tab, LF, CR), in the grammar of RFC 8259 and no more:
 *   - literals true, false, null only (no NaN, Infinity, -Infinity); numbers
 *     -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? (no '+', no leading zeros, no hex);
 *     no trailing commas, no comments, no single quotes, nothing after the value;
 *   - strings: valid UTF-8 (shortest form, no surrogates, at most U+10FFFF), no raw byte
 *     below 0x20, only the escapes \" \\ \/ \b \f \n \r \t \uXXXX, and a \u escape of a
 *     surrogate only as a high one directly followed by a \u escape of a low one;
 *   - at most max_depth nested arrays and objects;
 *   - objects: at most JSON_STRICT_KEYS_MAX members, no two of them with the same name
 *     once unescaped ("a" and "\u0061" are the same name), and no "\u0000" in a name
 *     (json-c cuts names at a NUL, which would make "a\u0000b" another "a").
 * Returns 0, -EBADMSG when buf breaks any of these, -EINVAL when max_depth is not in
 * 1..JSON_STRICT_DEPTH_MAX. Allocates nothing (about 16 KiB of stack) and reads no byte
 * outside buf[0..len); a NUL byte is just a byte that JSON does not allow. */
int json_strict_validate(const char *buf, size_t len, unsigned max_depth);

/* Decodes one strictly valid UTF-8 sequence at p[*i] (i < len) into *ret and advances *i;
 * false for overlong forms, surrogates, values beyond U+10FFFF and sequences that are
 * malformed or cut by len. */
bool utf8_next_strict(const unsigned char *p, size_t len, size_t *i, uint32_t *ret);
