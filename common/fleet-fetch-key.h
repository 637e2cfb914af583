/* SPDX-License-Identifier: MIT */
/* A host's fleet fetch key (docs/fleet.md, "Propagation"): derived from the host role's
 * password, so that nothing new is distributed. The broker sends the key with the fetch it
 * runs as the shared poll login; the store keeps only the key's hash (hosts.fetch_key_hash)
 * and answers only for the host whose hash matches. */
#pragma once

#define FLEET_FETCH_KEY_HEX_LEN 64
/* What the password is hashed after: the key is good for nothing else. */
#define FLEET_FETCH_KEY_CONTEXT "jit-fleet-fetch-key\n"

/* out = lowercase hex SHA-256 of (FLEET_FETCH_KEY_CONTEXT password). 0, or -EIO when the
 * library fails (out is then all zeros, which no stored hash is the hash of). */
int fleet_fetch_key_derive(const char *password, char out[FLEET_FETCH_KEY_HEX_LEN + 1]);

/* out = lowercase hex SHA-256 of key: what hosts.fetch_key_hash holds. 0 or -EIO. */
int fleet_fetch_key_hash(const char *key, char out[FLEET_FETCH_KEY_HEX_LEN + 1]);
