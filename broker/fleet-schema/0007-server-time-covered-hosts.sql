-- SPDX-License-Identifier: MIT
-- The fleet's store, version 7 (docs/fleet.md, "Tables and rows"): the times the store
-- keeps are the server's, and a host reads in request_hosts only its own rows.
-- Independent of version 6; safe to apply before or after it.

-- A row's created_at is the server's clock when it was inserted, whoever inserts it: an
-- approval's time is when its grant's deadline counts from, and a host with a clock (or a
-- root) of its own would otherwise choose it. A request's time to be answered may not
-- end further from the server's now than the longest pending_ttl a policy takes (366 days).
CREATE FUNCTION jit_fleet.stamp_created_at() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog
        AS $$
        BEGIN
                NEW.created_at := now();
                -- Nested: only a request has the column.
                IF TG_TABLE_NAME = 'requests' THEN
                        IF NEW.expires_at > now() + interval '367 days' THEN
                                RAISE EXCEPTION 'a fleet request''s expires_at may be at most 367 days after the server''s time'
                                        USING ERRCODE = 'check_violation';
                        END IF;
                END IF;
                RETURN NEW;
        END
        $$;
REVOKE ALL ON FUNCTION jit_fleet.stamp_created_at() FROM PUBLIC;
CREATE TRIGGER stamp_created_at BEFORE INSERT ON jit_fleet.requests
        FOR EACH ROW EXECUTE FUNCTION jit_fleet.stamp_created_at();
CREATE TRIGGER stamp_created_at BEFORE INSERT ON jit_fleet.approvals
        FOR EACH ROW EXECUTE FUNCTION jit_fleet.stamp_created_at();
CREATE TRIGGER stamp_created_at BEFORE INSERT ON jit_fleet.revocations
        FOR EACH ROW EXECUTE FUNCTION jit_fleet.stamp_created_at();

-- Whether the current role is a review host's.
CREATE FUNCTION jit_fleet.current_host_reviews() RETURNS boolean
        LANGUAGE sql STABLE SET search_path = pg_catalog
        AS $$
        SELECT EXISTS (SELECT 1 FROM jit_fleet.hosts AS h
                       WHERE h.role_name = current_user AND h.reviews)
        $$;
GRANT EXECUTE ON FUNCTION jit_fleet.current_host_reviews() TO jit_fleet_host;

-- As in version 4, and a host that is no review host reads only its own row: a request
-- filed with a label selector of its choosing would otherwise list every host those labels
-- pick, with their grants and uses (the hosts table shows a host only its own row).
CREATE OR REPLACE VIEW jit_fleet.request_hosts WITH (security_barrier) AS
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
WHERE (r.origin_host = jit_fleet.current_host()
       OR jit_fleet.concerns_current_host(r.selector_host, r.selector_labels))
  AND (h.name = jit_fleet.current_host() OR jit_fleet.current_host_reviews());
