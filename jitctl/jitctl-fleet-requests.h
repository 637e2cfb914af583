/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "jitctl-command.h"

/* "f:ID", a fleet request's id: true and *ret. */
bool fleet_id_parse(const char *s, int64_t *ret);
/* request --hosts SELECTOR. */
int fleet_request_file(Context *c, const char *hosts, const char *service, const char *reason,
                       const char *ticket, uint64_t duration);
/* show, approve, deny, revoke of f:id; text is the comment or reason (may be NULL). */
/* The same, with a signed approval's statement and signature (NULL: unsigned). */
int fleet_request_act_signed(Context *c, const char *op, int64_t id, const char *text_option,
                             const char *text, const char *statement, const char *signature);
int fleet_request_act(Context *c, const char *op, int64_t id, const char *text_option,
                      const char *text);
/* The fleet requests pending; quiet: after the local list, nothing without a fleet. */
int fleet_request_list(Context *c, bool quiet);
