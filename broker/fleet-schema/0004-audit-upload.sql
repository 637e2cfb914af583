-- SPDX-License-Identifier: MIT
-- The fleet's store, version 4 (docs/fleet.md, "The fleet's audit records"): hosts upload
-- their fleet audit records, and a fleet request shows the hosts it covers.

-- A record's data is kept exactly as its host hashed it: json keeps the text as sent,
-- where jsonb would reorder keys and respace it, and `jitctl audit --verify --fleet` could
-- not recompute the hash. Nothing wrote the table before this version.
ALTER TABLE jit_fleet.audit ALTER COLUMN data DROP DEFAULT;
ALTER TABLE jit_fleet.audit ALTER COLUMN data TYPE json USING data::text::json;
ALTER TABLE jit_fleet.audit ALTER COLUMN data SET DEFAULT '{}';
CREATE INDEX audit_request ON jit_fleet.audit (request_id, origin_host);

-- The hosts a request covers (the registered hosts its selector picks by name or by their
-- registered labels, and any host that recorded a grant of it), with what each host
-- recorded of it: granted, first used, ended. A row exists only for a request the reading
-- host may read itself (the policy "read" of requests, written again here because the
-- view reads the tables with its owner's rights); a review host reads all of them.
CREATE VIEW jit_fleet.request_hosts WITH (security_barrier) AS
SELECT r.id AS request_id, h.name AS host,
       (SELECT min(a.at) FROM jit_fleet.audit AS a
        WHERE a.request_id = r.id AND a.origin_host = h.name AND a.kind = 'granted') AS granted_at,
       (SELECT min(a.at) FROM jit_fleet.audit AS a
        WHERE a.request_id = r.id AND a.origin_host = h.name AND a.kind = 'used') AS first_used_at,
       (SELECT min(a.at) FROM jit_fleet.audit AS a
        WHERE a.request_id = r.id AND a.origin_host = h.name AND a.kind = 'ended') AS ended_at,
       (SELECT a.data ->> 'state' FROM jit_fleet.audit AS a
        WHERE a.request_id = r.id AND a.origin_host = h.name AND a.kind = 'ended'
        ORDER BY a.seq LIMIT 1) AS end_state
FROM jit_fleet.requests AS r
JOIN jit_fleet.hosts AS h
  ON (r.selector_host IS NOT NULL AND h.name = r.selector_host)
     OR (r.selector_host IS NULL AND r.selector_labels <> '{}' AND h.labels @> r.selector_labels)
     OR EXISTS (SELECT 1 FROM jit_fleet.audit AS g
                WHERE g.request_id = r.id AND g.origin_host = h.name AND g.kind = 'granted')
WHERE r.origin_host = jit_fleet.current_host()
   OR jit_fleet.concerns_current_host(r.selector_host, r.selector_labels);
GRANT SELECT ON jit_fleet.request_hosts TO jit_fleet_host;
