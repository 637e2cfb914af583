-- SPDX-License-Identifier: MIT
-- The fleet's store, version 3: every role that polls the change feed may read the
-- schema's version, so that a host's broker can refuse a store whose schema is not the
-- one it was built for (docs/fleet.md, "The broker's connection").
GRANT SELECT ON jit_fleet.schema_version TO jit_fleet_watch;
