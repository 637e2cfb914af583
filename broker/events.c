/* SPDX-License-Identifier: MIT */
#include "events.h"

#include <stddef.h>

/* Stable forever: sysadmins filter on them (journalctl MESSAGE_ID=...). */
static const struct {
        const char *id;
        const char *name;
} events[_JIT_EVENT_MAX] = {
        [JIT_EVENT_REQUESTED] = { "3d17c5d99a2240d8b53de7d674165a31", "requested" },
        [JIT_EVENT_APPROVAL] = { "c89f341f83b94090a7b8186e98daba90", "approval" },
        [JIT_EVENT_GRANTED] = { "7af6f08ed8994a94b326de3f3640d76a", "granted" },
        [JIT_EVENT_DENIED] = { "413870e2a01149ccba25e604289c3df8", "denied" },
        [JIT_EVENT_CANCELLED] = { "e52fba5aa3d7412f97dec795e2d6ce42", "cancelled" },
        [JIT_EVENT_EXPIRED] = { "be63582eef1c48be9b30e34cccc79dd7", "expired" },
        [JIT_EVENT_REVOKED] = { "243cf7456e2c41659c59a21e6a2b5e60", "revoked" },
        [JIT_EVENT_TIMED_OUT] = { "b4a87e5763e24b199dfc91c825894631", "timed-out" },
        [JIT_EVENT_ACCESS_ALLOWED] = { "6251860edf7f4864b90ddd40287520e0", "access-allowed" },
        [JIT_EVENT_ACCESS_DENIED] = { "ba8164ca72984b83aa7660c583c41248", "access-denied" },
        [JIT_EVENT_REFUSED] = { "e08745bd9e75402a94eb908519266237", "refused" },
        [JIT_EVENT_STARTED] = { "7f1180e72bce4309bd17104ef7537ddc", "broker-started" },
        [JIT_EVENT_STOPPING] = { "6fa2e5164a7746a2a6d50c3ecb346350", "broker-stopping" },
        [JIT_EVENT_POLICY_LOADED] = { "9ff86b74c8a54bbb8fd39af3e363fa4a", "policy-loaded" },
        [JIT_EVENT_POLICY_REJECTED] = { "64b30d5d4a61498aa296295af4f32452", "policy-rejected" },
        [JIT_EVENT_AUTO_APPROVED] = { "3fd877986e6c48c8a207eb0e1b3aef86", "auto-approved" },
        [JIT_EVENT_BREAK_GLASS] = { "0dfd07d236b245869b5cd60186ba73da", "break-glass" },
        [JIT_EVENT_ACKNOWLEDGED] = { "e2d36935ff0d4a4e8474152a0afa9385",
                                     "break-glass-acknowledged" },
        [JIT_EVENT_WITHDRAWN] = { "75a441a5980f4537ab21fa8ff4958a12", "withdrawn-by-policy" },
        [JIT_EVENT_AUDIT_ARCHIVED] = { "2fdd838a6ac343bcb157b192bd4263f6", "audit-archived" },
        [JIT_EVENT_SESSION_OPENED] = { "adeb1ff86942457c9a7d932e09599e3b", "session-opened" },
        [JIT_EVENT_SESSION_CLOSED] = { "98a54089f475432ab3bfc568f6d78a72", "session-closed" },
        [JIT_EVENT_SESSION_TERMINATED] = { "5ff16c65834e4a2d9b39c3636c22ee2f",
                                           "session-terminated" },
        [JIT_EVENT_CONSUMED] = { "26936a170d064182a5b8f3e5c6c702d4", "consumed" },
        [JIT_EVENT_REQUESTS_ARCHIVED] = { "62a59c9bd235444ba7a30c7835b997e3", "requests-archived" },
        [JIT_EVENT_INTEGRITY_FAILED] = { "8d65441d95e34a9a9eb6210dbac2defc",
                                         "database-integrity-failed" },
        [JIT_EVENT_NOTIFY_FAILED] = { "076a05fc8240404a846f70f8ee799951", "notify-failed" },
        [JIT_EVENT_NOTIFY_DELIVERED] = { "019e80befb34438e9fd77dd2eb32be23", "notify-delivered" },
        [JIT_EVENT_NOTIFY_DROPPED] = { "3bdc17a56d714de5bdddc930b918af53", "notify-dropped" },
        [JIT_EVENT_COMMAND_USED] = { "709c08e7a95148e6b8a064875304446f", "command-used" },
        [JIT_EVENT_FLEET_CONNECTED] = { "5327a86991fb424eb6e56673db36dfe8", "fleet-connected" },
        [JIT_EVENT_FLEET_UNREACHABLE] = { "6cd970a4a7924585b622241e98293095", "fleet-unreachable" },
        [JIT_EVENT_FLEET_SCHEMA_MISMATCH] = { "598aea4b1aab40988baed396a4b6d01c",
                                              "fleet-schema-mismatch" },
        [JIT_EVENT_FLEET_GRANTED] = { "853293422d7e457ab68194a24791f5d2", "fleet-granted" },
};

const char *jit_event_message_id(JitEvent e) {
        return e >= 0 && e < _JIT_EVENT_MAX ? events[e].id : NULL;
}

const char *jit_event_name(JitEvent e) {
        return e >= 0 && e < _JIT_EVENT_MAX ? events[e].name : NULL;
}
