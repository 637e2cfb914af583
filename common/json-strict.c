/* SPDX-License-Identifier: MIT */
#include "json-strict.h"

#include <errno.h>

/* One member name seen in an open object: where it starts in the buffer (the byte after
 * its opening quote; it is re-read from there when hashes agree) and a hash of the name
 * once unescaped. */
typedef struct Key {
        uint32_t start;
        uint32_t hash;
} Key;

typedef struct Level {
        bool object;
        uint16_t n_keys;
} Level;

/* All the state of one check: a fixed stack of open containers and, per level, the names
 * its object has had so far. Nothing is allocated. */
typedef struct Checker {
        const unsigned char *p;
        size_t len;
        size_t i;
        unsigned depth;
        unsigned max_depth;
        Level levels[JSON_STRICT_DEPTH_MAX];
        Key keys[JSON_STRICT_DEPTH_MAX][JSON_STRICT_KEYS_MAX];
} Checker;

bool utf8_next_strict(const unsigned char *p, size_t len, size_t *i, uint32_t *ret) {
        unsigned char c = p[*i];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
                *ret = c;
                (*i)++;
                return true;
        }
        if ((c & 0xe0) == 0xc0) {
                n = 2;
                cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
                n = 3;
                cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
                n = 4;
                cp = c & 0x07;
        } else
                return false;
        if (n > len - *i)
                return false;
        for (size_t k = 1; k < n; k++) {
                if ((p[*i + k] & 0xc0) != 0x80)
                        return false;
                cp = (cp << 6) | (p[*i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return false;
        *i += n;
        *ret = cp;
        return true;
}

static bool is_ws(unsigned char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(Checker *c) {
        while (c->i < c->len && is_ws(c->p[c->i]))
                c->i++;
}

static bool is_digit(unsigned char c) {
        return c >= '0' && c <= '9';
}

/* Reads the 4 hex digits of a \u escape at p[i]. */
static bool hex4(const unsigned char *p, size_t len, size_t i, uint32_t *ret) {
        uint32_t v = 0;

        if (i > len || len - i < 4)
                return false;
        for (size_t k = 0; k < 4; k++) {
                unsigned char h = p[i + k];
                v <<= 4;
                if (h >= '0' && h <= '9')
                        v |= (uint32_t) (h - '0');
                else if (h >= 'a' && h <= 'f')
                        v |= (uint32_t) (h - 'a' + 10);
                else if (h >= 'A' && h <= 'F')
                        v |= (uint32_t) (h - 'A' + 10);
                else
                        return false;
        }
        *ret = v;
        return true;
}

/* One character of a string whose opening quote is behind p[*i]: returns 1 with its code
 * point in *ret (escapes resolved, a surrogate pair joined), 0 at the closing quote
 * (consumed), -EBADMSG for anything strict JSON does not allow there. */
static int string_next(const unsigned char *p, size_t len, size_t *i, uint32_t *ret) {
        uint32_t u, lo;

        if (*i >= len)
                return -EBADMSG; /* unterminated */
        unsigned char c = p[*i];
        if (c == '"') {
                (*i)++;
                return 0;
        }
        if (c < 0x20)
                return -EBADMSG; /* raw control character: JSON wants it escaped */
        if (c != '\\')
                return utf8_next_strict(p, len, i, ret) ? 1 : -EBADMSG;

        if (len - *i < 2)
                return -EBADMSG;
        c = p[*i + 1];
        *i += 2;
        switch (c) {
        case '"':
        case '\\':
        case '/':
                *ret = c;
                return 1;
        case 'b':
                *ret = '\b';
                return 1;
        case 'f':
                *ret = '\f';
                return 1;
        case 'n':
                *ret = '\n';
                return 1;
        case 'r':
                *ret = '\r';
                return 1;
        case 't':
                *ret = '\t';
                return 1;
        case 'u':
                break;
        default:
                return -EBADMSG;
        }

        if (!hex4(p, len, *i, &u))
                return -EBADMSG;
        *i += 4;
        if (u >= 0xdc00 && u <= 0xdfff)
                return -EBADMSG; /* a low surrogate with no high one before it */
        if (u >= 0xd800 && u <= 0xdbff) {
                /* A high surrogate: the low one must follow at once, as an escape too. */
                if (len - *i < 6 || p[*i] != '\\' || p[*i + 1] != 'u' ||
                    !hex4(p, len, *i + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                        return -EBADMSG;
                *i += 6;
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
        *ret = u;
        return 1;
}

/* FNV-1a over the code points of a name. */
static uint32_t hash_step(uint32_t h, uint32_t cp) {
        for (unsigned k = 0; k < 4; k++) {
                h ^= (cp >> (8 * k)) & 0xff;
                h *= 16777619U;
        }
        return h;
}

/* Scans the string at c->p[c->i] (its opening quote). For a member name, *ret_hash gets
 * the hash of the unescaped name. */
static int scan_string(Checker *c, bool name, uint32_t *ret_hash) {
        uint32_t h = 2166136261U, cp;
        int r;

        if (c->i >= c->len || c->p[c->i] != '"')
                return -EBADMSG;
        c->i++;
        while ((r = string_next(c->p, c->len, &c->i, &cp)) > 0) {
                if (name && cp == 0)
                        return -EBADMSG;
                h = hash_step(h, cp);
        }
        if (r < 0)
                return r;
        if (ret_hash)
                *ret_hash = h;
        return 0;
}

/* Whether the names starting at a and b (both already checked) are equal once unescaped. */
static bool names_equal(const unsigned char *p, size_t len, size_t a, size_t b) {
        for (;;) {
                uint32_t ca = 0, cb = 0;
                int ra = string_next(p, len, &a, &ca);
                int rb = string_next(p, len, &b, &cb);

                if (ra < 0 || rb < 0 || ra != rb)
                        return false;
                if (ra == 0)
                        return true;
                if (ca != cb)
                        return false;
        }
}

/* The member name at c->p[c->i], in the object at the top of the stack: scanned,
 * compared with the earlier names of that object, and remembered. */
static int scan_name(Checker *c) {
        Level *l = &c->levels[c->depth - 1];
        Key *keys = c->keys[c->depth - 1];
        size_t start = c->i + 1;
        uint32_t h;
        int r;

        r = scan_string(c, true, &h);
        if (r < 0)
                return r;
        if (l->n_keys >= JSON_STRICT_KEYS_MAX)
                return -EBADMSG;
        for (unsigned k = 0; k < l->n_keys; k++)
                if (keys[k].hash == h && names_equal(c->p, c->len, keys[k].start, start))
                        return -EBADMSG; /* duplicate */
        keys[l->n_keys++] = (Key){ .start = (uint32_t) start, .hash = h };
        return 0;
}

static int scan_number(Checker *c) {
        const unsigned char *p = c->p;
        size_t len = c->len;

        if (c->i < len && p[c->i] == '-')
                c->i++;
        if (c->i >= len)
                return -EBADMSG;
        if (p[c->i] == '0')
                c->i++; /* a leading 0 stands alone: "01" fails on the '1' after the value */
        else if (p[c->i] >= '1' && p[c->i] <= '9')
                while (c->i < len && is_digit(p[c->i]))
                        c->i++;
        else
                return -EBADMSG;

        if (c->i < len && p[c->i] == '.') {
                c->i++;
                if (c->i >= len || !is_digit(p[c->i]))
                        return -EBADMSG;
                while (c->i < len && is_digit(p[c->i]))
                        c->i++;
        }
        if (c->i < len && (p[c->i] == 'e' || p[c->i] == 'E')) {
                c->i++;
                if (c->i < len && (p[c->i] == '+' || p[c->i] == '-'))
                        c->i++;
                if (c->i >= len || !is_digit(p[c->i]))
                        return -EBADMSG;
                while (c->i < len && is_digit(p[c->i]))
                        c->i++;
        }
        return 0;
}

static int scan_literal(Checker *c, const char *word, size_t n) {
        if (c->len - c->i < n)
                return -EBADMSG;
        for (size_t k = 0; k < n; k++)
                if (c->p[c->i + k] != (unsigned char) word[k])
                        return -EBADMSG;
        c->i += n;
        return 0;
}

static int push(Checker *c, bool object) {
        if (c->depth >= c->max_depth)
                return -EBADMSG;
        c->levels[c->depth++] = (Level){ .object = object };
        c->i++; /* the '{' or '[' */
        return 0;
}

int json_strict_validate(const char *buf, size_t len, unsigned max_depth) {
        enum {
                VALUE,       /* a value must come */
                NAME,        /* a member name must come, then ':' */
                AFTER_VALUE, /* a value ended: ',', a closing bracket or the end */
        } expect = VALUE;
        Checker c;
        int r;

        if (max_depth < 1 || max_depth > JSON_STRICT_DEPTH_MAX)
                return -EINVAL;
        if (!buf || len > UINT32_MAX) /* names are remembered by 32-bit offsets */
                return -EBADMSG;
        c.p = (const unsigned char *) buf;
        c.len = len;
        c.i = 0;
        c.depth = 0;
        c.max_depth = max_depth;

        for (;;) {
                skip_ws(&c);
                unsigned char ch = c.i < len ? c.p[c.i] : '\0';
                bool at_end = c.i >= len;

                switch (expect) {
                case VALUE:
                        if (at_end)
                                return -EBADMSG;
                        switch (ch) {
                        case '{':
                                r = push(&c, true);
                                if (r < 0)
                                        return r;
                                skip_ws(&c);
                                if (c.i < len && c.p[c.i] == '}') {
                                        c.i++;
                                        c.depth--;
                                        expect = AFTER_VALUE;
                                } else
                                        expect = NAME;
                                continue;
                        case '[':
                                r = push(&c, false);
                                if (r < 0)
                                        return r;
                                skip_ws(&c);
                                if (c.i < len && c.p[c.i] == ']') {
                                        c.i++;
                                        c.depth--;
                                        expect = AFTER_VALUE;
                                } else
                                        expect = VALUE;
                                continue;
                        case '"':
                                r = scan_string(&c, false, NULL);
                                break;
                        case 't':
                                r = scan_literal(&c, "true", 4);
                                break;
                        case 'f':
                                r = scan_literal(&c, "false", 5);
                                break;
                        case 'n':
                                r = scan_literal(&c, "null", 4);
                                break;
                        default:
                                r = scan_number(&c); /* refuses anything else */
                                break;
                        }
                        if (r < 0)
                                return r;
                        expect = AFTER_VALUE;
                        continue;

                case NAME:
                        r = scan_name(&c);
                        if (r < 0)
                                return r;
                        skip_ws(&c);
                        if (c.i >= len || c.p[c.i] != ':')
                                return -EBADMSG;
                        c.i++;
                        expect = VALUE;
                        continue;

                case AFTER_VALUE: {
                        if (c.depth == 0)
                                return at_end ? 0 : -EBADMSG; /* nothing after the value */
                        if (at_end)
                                return -EBADMSG;
                        bool object = c.levels[c.depth - 1].object;
                        if (ch == ',') {
                                c.i++;
                                expect = object ? NAME : VALUE; /* "[1,]" then fails there */
                        } else if (ch == (object ? '}' : ']')) {
                                c.i++;
                                c.depth--;
                        } else
                                return -EBADMSG;
                        continue;
                }
                }
        }
}
