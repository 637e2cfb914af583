-- SPDX-License-Identifier: MIT
-- The fleet's store, version 1 (docs/fleet.md): hosts, requests, approvals, revocations
-- and the fleet's audit records. Every row names the host it came from (origin_host); a
-- host's database role may write only its own rows and read only what concerns it.
-- Applied by `jitctl fleet migrate` as the fleet's administrator role, in one transaction
-- with the others it applies; the schema jit_fleet and its schema_version table exist.

-- Roles are cluster-wide: another database of the same cluster may have made them.
DO $roles$
BEGIN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jit_fleet_host') THEN
                CREATE ROLE jit_fleet_host NOLOGIN;
        END IF;
END
$roles$;

REVOKE ALL ON SCHEMA jit_fleet FROM PUBLIC;
GRANT USAGE ON SCHEMA jit_fleet TO jit_fleet_host;

-- Labels as a JSON object of at most 16 key: "value" pairs, each as a host selector may
-- name them (common/host-selector.h).
CREATE FUNCTION jit_fleet.valid_labels(labels jsonb) RETURNS boolean
        LANGUAGE sql IMMUTABLE SET search_path = pg_catalog
        AS $$
        SELECT jsonb_typeof(labels) = 'object'
               AND (SELECT count(*) FROM jsonb_each(labels)) <= 16
               AND NOT EXISTS (
                       SELECT 1 FROM jsonb_each(labels) AS l
                       WHERE l.key !~ '^[a-z][a-z0-9_-]{0,62}$'
                          OR jsonb_typeof(l.value) <> 'string'
                          OR (l.value #>> '{}') !~ '^[A-Za-z0-9._-]{1,63}$')
        $$;

CREATE FUNCTION jit_fleet.valid_host_name(name text) RETURNS boolean
        LANGUAGE sql IMMUTABLE SET search_path = pg_catalog
        AS $$
        SELECT length(name) BETWEEN 1 AND 54
               AND name ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$'
        $$;

-- The fleet's hosts, registered by the administrator (`jitctl fleet add-host`): a host
-- cannot give itself labels, so it cannot widen what it may read.
CREATE TABLE jit_fleet.hosts (
        name text PRIMARY KEY CHECK (jit_fleet.valid_host_name(name)),
        role_name name NOT NULL UNIQUE,
        labels jsonb NOT NULL DEFAULT '{}' CHECK (jit_fleet.valid_labels(labels)),
        -- A review host reads every request, so that approvers may act from it.
        reviews boolean NOT NULL DEFAULT false,
        added_at timestamptz NOT NULL DEFAULT now()
);

-- The host the current role is, or NULL for any other role.
CREATE FUNCTION jit_fleet.current_host() RETURNS text
        LANGUAGE sql STABLE SET search_path = pg_catalog
        AS $$ SELECT h.name FROM jit_fleet.hosts AS h WHERE h.role_name = current_user $$;

-- Whether a request for this selector concerns the current role's host: the host it
-- names, or labels the host has all of; every request concerns a review host.
CREATE FUNCTION jit_fleet.concerns_current_host(selector_host text, selector_labels jsonb)
        RETURNS boolean
        LANGUAGE sql STABLE SET search_path = pg_catalog
        AS $$
        SELECT EXISTS (
                SELECT 1 FROM jit_fleet.hosts AS h
                WHERE h.role_name = current_user
                  AND (h.reviews
                       OR (selector_host IS NOT NULL AND h.name = selector_host)
                       OR (selector_host IS NULL AND selector_labels <> '{}'
                           AND h.labels @> selector_labels)))
        $$;

-- A fleet request as its origin host filed it. Approvals, denials and revocations are
-- rows of their own, written by the hosts where they were made; the origin changes only
-- the filing's own state (withdrawn by the requester, timed out).
CREATE TABLE jit_fleet.requests (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        origin_host text NOT NULL REFERENCES jit_fleet.hosts (name),
        origin_id bigint NOT NULL CHECK (origin_id > 0), -- its id in the origin's database
        requester text NOT NULL CHECK (length(requester) BETWEEN 1 AND 256),
        service text NOT NULL CHECK (service ~ '^[A-Za-z0-9._-]{1,64}$'),
        reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1024),
        ticket text CHECK (length(ticket) BETWEEN 1 AND 128),
        duration_s integer NOT NULL CHECK (duration_s BETWEEN 1 AND 31622400),
        -- The selector as typed (canonical form), and parsed: one host, or labels.
        selector text NOT NULL CHECK (length(selector) BETWEEN 1 AND 512),
        selector_host text CHECK (jit_fleet.valid_host_name(selector_host)),
        selector_labels jsonb NOT NULL DEFAULT '{}' CHECK (jit_fleet.valid_labels(selector_labels)),
        rule text NOT NULL CHECK (length(rule) BETWEEN 1 AND 64),
        policy_version text NOT NULL CHECK (policy_version ~ '^[0-9a-f]{64}$'),
        state text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'cancelled', 'timed_out', 'withdrawn')),
        created_at timestamptz NOT NULL DEFAULT now(),
        state_changed_at timestamptz,
        UNIQUE (origin_host, origin_id),
        CHECK ((selector_host IS NULL) <> (selector_labels = '{}'))
);
CREATE INDEX requests_selector_labels ON jit_fleet.requests USING gin (selector_labels);

-- An approver's yes or no, made on origin_host. statement and signature are for
-- approvals signed with the approver's SSH key: the canonical text signed and the
-- signature over it, both absent until signing exists.
CREATE TABLE jit_fleet.approvals (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        request_id bigint NOT NULL REFERENCES jit_fleet.requests (id),
        origin_host text NOT NULL REFERENCES jit_fleet.hosts (name),
        approver text NOT NULL CHECK (length(approver) BETWEEN 1 AND 256),
        verdict text NOT NULL CHECK (verdict IN ('approve', 'deny')),
        comment text CHECK (length(comment) <= 1024),
        created_at timestamptz NOT NULL DEFAULT now(),
        statement text CHECK (length(statement) <= 4096),
        signature text CHECK (length(signature) <= 8192),
        UNIQUE (request_id, approver),
        CHECK ((statement IS NULL) = (signature IS NULL))
);

-- The end of a fleet grant everywhere, made on origin_host; signed like an approval.
CREATE TABLE jit_fleet.revocations (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        request_id bigint NOT NULL REFERENCES jit_fleet.requests (id),
        origin_host text NOT NULL REFERENCES jit_fleet.hosts (name),
        revoker text NOT NULL CHECK (length(revoker) BETWEEN 1 AND 256),
        reason text CHECK (length(reason) <= 1024),
        created_at timestamptz NOT NULL DEFAULT now(),
        statement text CHECK (length(statement) <= 4096),
        signature text CHECK (length(signature) <= 8192),
        CHECK ((statement IS NULL) = (signature IS NULL))
);
CREATE INDEX revocations_request ON jit_fleet.revocations (request_id);

-- The fleet's audit records, one hash chain per origin host: seq counts from 1 without
-- gaps, prev_hash is the hash of the host's previous record (64 zeros for the first).
CREATE TABLE jit_fleet.audit (
        origin_host text NOT NULL REFERENCES jit_fleet.hosts (name),
        seq bigint NOT NULL CHECK (seq > 0),
        at timestamptz NOT NULL,
        kind text NOT NULL CHECK (kind ~ '^[a-z][a-z_-]{0,31}$'),
        request_id bigint REFERENCES jit_fleet.requests (id),
        actor text CHECK (length(actor) <= 256),
        data jsonb NOT NULL DEFAULT '{}' CHECK (length(data::text) <= 8192),
        prev_hash text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
        hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
        PRIMARY KEY (origin_host, seq)
);

-- A record continues its host's chain, and no record changes or goes.
CREATE FUNCTION jit_fleet.audit_chain() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog
        AS $$
        DECLARE
                last record;
        BEGIN
                IF TG_OP <> 'INSERT' THEN
                        RAISE EXCEPTION 'fleet audit records are never changed or deleted';
                END IF;
                SELECT a.seq, a.hash INTO last FROM jit_fleet.audit AS a
                        WHERE a.origin_host = NEW.origin_host ORDER BY a.seq DESC LIMIT 1;
                IF last IS NULL THEN
                        IF NEW.seq <> 1 OR NEW.prev_hash <> repeat('0', 64) THEN
                                RAISE EXCEPTION 'the first fleet audit record of % must be seq 1 after 64 zeros', NEW.origin_host;
                        END IF;
                ELSIF NEW.seq <> last.seq + 1 OR NEW.prev_hash <> last.hash THEN
                        RAISE EXCEPTION 'fleet audit record % of % does not continue its chain at %', NEW.seq, NEW.origin_host, last.seq;
                END IF;
                RETURN NEW;
        END
        $$;
CREATE TRIGGER audit_chain BEFORE INSERT OR UPDATE OR DELETE ON jit_fleet.audit
        FOR EACH ROW EXECUTE FUNCTION jit_fleet.audit_chain();

-- What a host's role may do. Column grants keep a filed request's substance fixed.
GRANT SELECT ON jit_fleet.hosts TO jit_fleet_host;
GRANT SELECT, INSERT ON jit_fleet.requests TO jit_fleet_host;
GRANT UPDATE (state, state_changed_at) ON jit_fleet.requests TO jit_fleet_host;
GRANT SELECT, INSERT ON jit_fleet.approvals, jit_fleet.revocations, jit_fleet.audit
        TO jit_fleet_host;
GRANT EXECUTE ON FUNCTION jit_fleet.current_host(),
        jit_fleet.concerns_current_host(text, jsonb) TO jit_fleet_host;

ALTER TABLE jit_fleet.hosts ENABLE ROW LEVEL SECURITY;
ALTER TABLE jit_fleet.requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE jit_fleet.approvals ENABLE ROW LEVEL SECURITY;
ALTER TABLE jit_fleet.revocations ENABLE ROW LEVEL SECURITY;
ALTER TABLE jit_fleet.audit ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_row ON jit_fleet.hosts FOR SELECT TO jit_fleet_host
        USING (role_name = current_user);

CREATE POLICY read ON jit_fleet.requests FOR SELECT TO jit_fleet_host
        USING (origin_host = jit_fleet.current_host()
               OR jit_fleet.concerns_current_host(selector_host, selector_labels));
CREATE POLICY file ON jit_fleet.requests FOR INSERT TO jit_fleet_host
        WITH CHECK (origin_host = jit_fleet.current_host());
CREATE POLICY update_own ON jit_fleet.requests FOR UPDATE TO jit_fleet_host
        USING (origin_host = jit_fleet.current_host())
        WITH CHECK (origin_host = jit_fleet.current_host());

-- Approvals and revocations of a request the host may read (the subqueries see requests
-- through its policy above); written only as the host itself, for such a request.
CREATE POLICY read ON jit_fleet.approvals FOR SELECT TO jit_fleet_host
        USING (origin_host = jit_fleet.current_host()
               OR EXISTS (SELECT 1 FROM jit_fleet.requests AS r
                          WHERE r.id = approvals.request_id));
CREATE POLICY approve ON jit_fleet.approvals FOR INSERT TO jit_fleet_host
        WITH CHECK (origin_host = jit_fleet.current_host()
                    AND EXISTS (SELECT 1 FROM jit_fleet.requests AS r
                                WHERE r.id = approvals.request_id));
CREATE POLICY read ON jit_fleet.revocations FOR SELECT TO jit_fleet_host
        USING (origin_host = jit_fleet.current_host()
               OR EXISTS (SELECT 1 FROM jit_fleet.requests AS r
                          WHERE r.id = revocations.request_id));
CREATE POLICY revoke ON jit_fleet.revocations FOR INSERT TO jit_fleet_host
        WITH CHECK (origin_host = jit_fleet.current_host()
                    AND EXISTS (SELECT 1 FROM jit_fleet.requests AS r
                                WHERE r.id = revocations.request_id));

CREATE POLICY read_own ON jit_fleet.audit FOR SELECT TO jit_fleet_host
        USING (origin_host = jit_fleet.current_host());
CREATE POLICY append_own ON jit_fleet.audit FOR INSERT TO jit_fleet_host
        WITH CHECK (origin_host = jit_fleet.current_host());
