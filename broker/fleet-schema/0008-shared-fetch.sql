-- SPDX-License-Identifier: MIT
-- The fleet's store, version 8 (docs/fleet.md, "Propagation"): the fetch through the shared
-- poll login. pgbouncer keeps one pool per role, so a fetch with each host's own role logs
-- in to PostgreSQL anew almost every time; this function lets the poll login fetch for a
-- host that proves who it is with its fetch key (derived from the host role's password:
-- the hex SHA-256 of "jit-fleet-fetch-key\n" and the password). The store keeps only the
-- key's hex SHA-256. The function reads what the host's own role may read under row-level
-- security (0001-core.sql), nothing more.
-- Its columns repeat the broker's fetch (FLEET_FETCH_SQL of broker/fleet-sql.h): a change
-- of the fetch is a new version of this function, in a new migration.

ALTER TABLE jit_fleet.hosts ADD COLUMN fetch_key_hash text
        CHECK (fetch_key_hash IS NULL OR fetch_key_hash ~ '^[0-9a-f]{64}$');

CREATE FUNCTION jit_fleet.fetch_for_host(p_host text, p_key text, p_ids bigint[])
        RETURNS TABLE (id bigint, origin_host text, requester text, service text, reason text,
                       ticket text, duration_s integer, selector text, state text,
                       created_at text, approvals json, revokers json, expires_at numeric)
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
        AS $$
        #variable_conflict use_column
        DECLARE
                h record;
        BEGIN
                -- A host without a key hash (registered before this version) never matches.
                SELECT x.name, x.labels, x.reviews INTO h FROM jit_fleet.hosts AS x
                        WHERE x.name = p_host AND x.fetch_key_hash IS NOT NULL
                          AND x.fetch_key_hash = encode(sha256(convert_to(p_key, 'UTF8')), 'hex');
                IF NOT FOUND THEN
                        RAISE EXCEPTION 'fleet fetch refused: wrong host or fetch key'
                                USING ERRCODE = 'invalid_authorization_specification';
                END IF;
                -- The broker asks for at most one poll's page of requests.
                IF cardinality(p_ids) > 1000 THEN
                        RAISE EXCEPTION 'fleet fetch refused: % ids, at most 1000', cardinality(p_ids)
                                USING ERRCODE = 'program_limit_exceeded';
                END IF;
                -- The requests the host's role may read (the read policy of requests), with
                -- every approval and revocation of each (which that role reads too).
                RETURN QUERY
                SELECT r.id, r.origin_host, r.requester, r.service, r.reason, r.ticket,
                       r.duration_s, r.selector,
                       CASE WHEN v.revoker IS NOT NULL THEN 'revoked' ELSE r.state END,
                       to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       (SELECT json_agg(json_build_object('approver', a.approver, 'verdict',
                               a.verdict, 'host', a.origin_host, 'at',
                               extract(epoch FROM a.created_at), 'id', a.id, 'statement',
                               a.statement, 'signature', a.signature) ORDER BY a.id)
                        FROM jit_fleet.approvals AS a WHERE a.request_id = r.id),
                       (SELECT json_agg(x.revoker ORDER BY x.id) FROM jit_fleet.revocations AS x
                        WHERE x.request_id = r.id),
                       extract(epoch FROM r.expires_at)
                FROM jit_fleet.requests AS r
                LEFT JOIN LATERAL (SELECT x.revoker FROM jit_fleet.revocations AS x
                                   WHERE x.request_id = r.id ORDER BY x.id LIMIT 1) AS v ON true
                WHERE r.id = ANY (p_ids)
                  AND (r.origin_host = h.name
                       OR h.reviews
                       OR (r.selector_host IS NOT NULL AND r.selector_host = h.name)
                       OR (r.selector_host IS NULL AND r.selector_labels <> '{}'
                           AND h.labels @> r.selector_labels))
                ORDER BY r.id;
        END
        $$;
REVOKE ALL ON FUNCTION jit_fleet.fetch_for_host(text, text, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jit_fleet.fetch_for_host(text, text, bigint[]) TO jit_fleet_watch;
