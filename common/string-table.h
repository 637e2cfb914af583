/* SPDX-License-Identifier: MIT */
/* Enum <-> string tables, in the style of systemd's DEFINE_STRING_TABLE_LOOKUP: one macro
 * writes both directions, bounds-checked, from one table. */
#pragma once

#include <stddef.h>
#include <string.h>

/* table is an array of exactly max names (`static const char *const t[_FOO_MAX] = {
 * [FOO_A] = "a", ... }`) indexed by the values 0..max-1 of type, an enum. Defines
 *
 *   const char *name_to_string(type v)
 *           the name of v; NULL when v is outside 0..max-1 (or its entry is a hole);
 *   type name_from_string(const char *s)
 *           the value whose name is exactly s; (type) -1 when none is, or s is NULL. Give
 *           the enum a `_FOO_INVALID = -1` to compare with.
 *
 * Both are global: declare them in the enum's header. Write it at file scope, with a
 * semicolon: DEFINE_STRING_TABLE(foo, Foo, foo_names, _FOO_MAX); */
#define DEFINE_STRING_TABLE(name, type, table, max)                                                \
        const char *name##_to_string(type v) {                                                     \
                if ((long long) v < 0 || (long long) v >= (long long) (max))                       \
                        return NULL;                                                               \
                return (table)[v];                                                                 \
        }                                                                                          \
        type name##_from_string(const char *s) {                                                   \
                for (size_t i_ = 0; s && i_ < (size_t) (max); i_++)                                \
                        if ((table)[i_] && strcmp((table)[i_], s) == 0)                            \
                                return (type) i_;                                                  \
                return (type) -1;                                                                  \
        }                                                                                          \
        _Static_assert(sizeof(table) / sizeof((table)[0]) == (size_t) (max),                       \
                       #table " must name every value below " #max)
