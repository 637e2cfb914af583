/* SPDX-License-Identifier: MIT */
/* Names jit checks the shape of, the same way everywhere: in pam_jit.so, the broker, the
 * policy parser and jitctl. */
#pragma once

#include <stdbool.h>

/* A PAM service name as jit takes it (pam_jit's service=, the policy's services, a
 * request's service): 1 to JIT_SERVICE_MAX (protocol.h) bytes of [A-Za-z0-9._-]. Short,
 * portable and without spaces, slashes or anything a terminal or a log would read
 * differently. false for NULL. */
bool jit_service_name_is_valid(const char *s);

/* A plausible user or group name: portable characters only, at most 256 bytes. */
bool valid_account_name(const char *s);
