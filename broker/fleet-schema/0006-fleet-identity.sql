-- SPDX-License-Identifier: MIT
-- The fleet's store, version 6 (docs/signed-approvals.md): the fleet's identity, one row
-- made once when this version is applied, from 128 random bits. A signed approval names it
-- (the statement's `fleet` field), so that a signature made for one fleet's request never
-- counts in another fleet whose request has the same number. Nobody changes it afterwards.

CREATE TABLE jit_fleet.fleet_identity (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        id text NOT NULL CHECK (id ~ '^[0-9a-f]{32}$')
);
INSERT INTO jit_fleet.fleet_identity (id) VALUES (replace(gen_random_uuid()::text, '-', ''));
REVOKE ALL ON jit_fleet.fleet_identity FROM PUBLIC;
GRANT SELECT ON jit_fleet.fleet_identity TO jit_fleet_host;
