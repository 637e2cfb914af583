-- SPDX-License-Identifier: MIT
-- The fleet's store, version 2 (docs/fleet.md, "Propagation"): the change feed hosts poll
-- from a cursor. Every new request, change of a request's state, approval and revocation
-- adds a row naming the request and its selector, nothing else: no user names, reasons
-- or comments. Written only by triggers; readable by jit_fleet_watch, the role of the
-- cheap poll, which every host role is a member of.

DO $roles$
BEGIN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jit_fleet_watch') THEN
                CREATE ROLE jit_fleet_watch NOLOGIN;
        END IF;
END
$roles$;
GRANT jit_fleet_watch TO jit_fleet_host;
GRANT USAGE ON SCHEMA jit_fleet TO jit_fleet_watch;

CREATE TABLE jit_fleet.changes (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        -- The writing transaction: a reader moves its cursor past a row only once every
        -- transaction older than the reader's snapshot has ended (pg_snapshot_xmin), so a
        -- row committed late with a lower seq is not skipped.
        txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        kind text NOT NULL CHECK (kind IN ('request', 'state', 'approval', 'revocation')),
        request_id bigint NOT NULL,
        selector_host text,
        selector_labels jsonb NOT NULL
);

CREATE FUNCTION jit_fleet.record_change() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog
        AS $$
        DECLARE
                r jit_fleet.requests;
                change_kind text;
        BEGIN
                IF TG_TABLE_NAME = 'requests' THEN
                        r := NEW;
                        change_kind := CASE TG_OP WHEN 'INSERT' THEN 'request' ELSE 'state' END;
                ELSE
                        SELECT * INTO r FROM jit_fleet.requests WHERE id = NEW.request_id;
                        change_kind := CASE TG_TABLE_NAME WHEN 'approvals' THEN 'approval'
                                ELSE 'revocation' END;
                END IF;
                INSERT INTO jit_fleet.changes (kind, request_id, selector_host, selector_labels)
                        VALUES (change_kind, r.id, r.selector_host, r.selector_labels);
                RETURN NULL;
        END
        $$;
REVOKE ALL ON FUNCTION jit_fleet.record_change() FROM PUBLIC;

CREATE TRIGGER record_change AFTER INSERT ON jit_fleet.requests
        FOR EACH ROW EXECUTE FUNCTION jit_fleet.record_change();
CREATE TRIGGER record_state AFTER UPDATE OF state ON jit_fleet.requests
        FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
        EXECUTE FUNCTION jit_fleet.record_change();
CREATE TRIGGER record_change AFTER INSERT ON jit_fleet.approvals
        FOR EACH ROW EXECUTE FUNCTION jit_fleet.record_change();
CREATE TRIGGER record_change AFTER INSERT ON jit_fleet.revocations
        FOR EACH ROW EXECUTE FUNCTION jit_fleet.record_change();

-- What was there before this version, in the order it was written, so that a host
-- starting from cursor 0 learns of it.
INSERT INTO jit_fleet.changes (kind, request_id, selector_host, selector_labels, at)
SELECT c.kind, c.request_id, r.selector_host, r.selector_labels, coalesce(c.at, now())
FROM (SELECT 'request' AS kind, id AS request_id, created_at AS at, 0 AS o, id AS k
              FROM jit_fleet.requests
      UNION ALL
      SELECT 'state', id, state_changed_at, 1, id FROM jit_fleet.requests
              WHERE state <> 'pending'
      UNION ALL
      SELECT 'approval', request_id, created_at, 2, id FROM jit_fleet.approvals
      UNION ALL
      SELECT 'revocation', request_id, created_at, 3, id FROM jit_fleet.revocations) AS c
JOIN jit_fleet.requests AS r ON r.id = c.request_id
ORDER BY c.at NULLS LAST, c.o, c.k;

GRANT SELECT ON jit_fleet.changes TO jit_fleet_watch;
