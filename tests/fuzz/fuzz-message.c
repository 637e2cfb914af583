/* SPDX-License-Identifier: MIT */
/* Messages (common/protocol.c, common/json-strict.c): the input is a frame's body.
 *
 * - json_strict_validate() at every depth bound, and jit_message_parse();
 * - what passes the strict check, json-c must read (the check is a gate in front of json-c,
 *   never a second grammar), and a parsed message must survive jit_message_serialize() and
 *   jit_message_parse() again (the broker writes replies that way, the client reads them);
 * - every field reader on every member of the message and of the objects nested in it,
 *   with the protocol's limits, checking what each promises: a string within its bound,
 *   safe text without NUL; an integer within its range. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-strict.h"
#include "protocol.h"

#include "fuzz-check.h"

static const size_t string_limits[] = {
        JIT_USER_MAX, JIT_SERVICE_MAX, JIT_REASON_MAX, JIT_TICKET_MAX,
        JIT_TTY_MAX,  JIT_RHOST_MAX,   JIT_OP_MAX,     0,
};

static const struct {
        int64_t min, max;
} int_ranges[] = {
        { 1, INT64_MAX },                   /* ids */
        { 1, JIT_AUDIT_LIMIT_MAX },         /* audit "limit" */
        { 0, INT64_MAX },                   /* seconds, times */
        { INT64_MIN, INT64_MAX },           /* anything */
        { JIT_PROTOCOL_VERSION, JIT_PROTOCOL_VERSION },
};

/* The fields every operation reads, whether the message has them or not. */
static const char *const known_keys[] = {
        "version", "op",      "user",   "service", "reason", "ticket",  "id",
        "for",     "once",    "comment", "tty",    "rhost",  "session", "limit",
        "since",   "until",   "request", "ok",     "error",  "message", "result",
        "allowed", "expires_at", "request_id", "",
};

static void read_field(json_object *o, const char *key) {
        for (size_t i = 0; i < sizeof(string_limits) / sizeof(string_limits[0]); i++)
                for (int required = 0; required <= 1; required++) {
                        const char *s = (const char *) 1;
                        int r = jit_message_get_string(o, key, string_limits[i], required, &s);
                        if (r == 0 && s) {
                                size_t len = strlen(s);
                                CHECK(len <= string_limits[i]);
                                CHECK(jit_text_is_safe(s, len));
                        } else if (r == 0)
                                CHECK(!required);
                        else {
                                CHECK(r == -EINVAL || r == -E2BIG || r == -EBADMSG);
                                CHECK(s == NULL);
                        }
                }

        for (size_t i = 0; i < sizeof(int_ranges) / sizeof(int_ranges[0]); i++)
                for (int required = 0; required <= 1; required++) {
                        int64_t v = 0x5a5a5a5a;
                        bool present = true;
                        int r = jit_message_get_int(o, key, int_ranges[i].min, int_ranges[i].max,
                                                    required, &v, &present);
                        if (r == 0 && present)
                                CHECK(v >= int_ranges[i].min && v <= int_ranges[i].max);
                        else if (r == 0)
                                CHECK(!required && v == 0x5a5a5a5a);
                        else
                                CHECK(r == -EINVAL && !present);
                        /* No out-parameter is optional but present. */
                        r = jit_message_get_int(o, key, int_ranges[i].min, int_ranges[i].max,
                                                required, &v, NULL);
                        CHECK(r == 0 || r == -EINVAL);
                }

        bool b;
        int r = jit_message_get_bool(o, key, &b);
        CHECK(r == 0 || r == -EINVAL);
}

/* Every member of o (and of the objects in it, arrays included) through every reader. */
static void read_all(json_object *o, unsigned depth) {
        if (json_object_is_type(o, json_type_array) || json_object_is_type(o, json_type_object))
                CHECK(depth <= JIT_JSON_DEPTH_MAX); /* containers, the message counting as 1 */
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        read_all(json_object_array_get_idx(o, i), depth + 1);
                return;
        }
        if (!json_object_is_type(o, json_type_object))
                return;
        for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
                read_field(o, known_keys[i]);
        json_object_object_foreach(o, key, value) {
                read_field(o, key);
                read_all(value, depth + 1);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *buf = (const char *) data;
        int strict[JSON_STRICT_DEPTH_MAX + 2];

        for (unsigned d = 0; d <= JSON_STRICT_DEPTH_MAX + 1; d++) {
                strict[d] = json_strict_validate(buf, size, d);
                if (d == 0 || d > JSON_STRICT_DEPTH_MAX)
                        CHECK(strict[d] == -EINVAL);
                else
                        CHECK(strict[d] == 0 || strict[d] == -EBADMSG);
                /* A deeper bound takes everything a shallower one takes. */
                if (d > 1 && d <= JSON_STRICT_DEPTH_MAX && strict[d - 1] == 0)
                        CHECK(strict[d] == 0);
        }

        /* The gate passed: json-c must read it (at the protocol's depth), to the end. Only
         * for a container or a string at the top: after a bare number or literal json-c
         * waits for more input (the token could go on), and a message is an object anyway. */
        size_t first = 0;
        while (first < size && memchr(" \t\r\n", buf[first], 4))
                first++;
        bool delimited = first < size && memchr("{[\"", buf[first], 3);
        if (strict[JIT_JSON_DEPTH_MAX] == 0 && delimited) {
                json_tokener *tok = json_tokener_new_ex(JIT_JSON_DEPTH_MAX + 1);
                CHECK(tok);
                json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
                json_object *o = json_tokener_parse_ex(tok, buf, (int) size);
                enum json_tokener_error jerr = json_tokener_get_error(tok);
                if (!o || jerr != json_tokener_success)
                        fprintf(stderr, "strict check passed, json-c: %s\n",
                                json_tokener_error_desc(jerr));
                CHECK(o && jerr == json_tokener_success);
                json_object_put(o);
                json_tokener_free(tok);
        }

        json_object *msg = NULL;
        int r = jit_message_parse(buf, size, &msg);
        if (r < 0) {
                CHECK(r == -EBADMSG || r == -EPROTONOSUPPORT);
                return 0;
        }
        CHECK(strict[JIT_JSON_DEPTH_MAX] == 0);
        CHECK(json_object_is_type(msg, json_type_object));

        read_all(msg, 1);

        /* What the broker writes, the client reads back the same. */
        size_t len = 0;
        char *out = jit_message_serialize(msg, &len);
        CHECK(out);
        CHECK(strlen(out) == len);
        json_object *again = NULL;
        r = jit_message_parse(out, len, &again);
        if (r != 0)
                fprintf(stderr, "serialized message not read back (%d): %s\n", r, out);
        CHECK(r == 0);
        CHECK(json_object_equal(msg, again));
        json_object_put(again);
        free(out);

        json_object_put(msg);
        return 0;
}
