-- SPDX-License-Identifier: MIT
-- The fleet's store, version 5 (docs/fleet.md, "A fleet request's time"): when a fleet
-- request's time to be answered is over, written by its origin host at filing from its
-- policy's pending_ttl. Every target host refuses to grant it after that instant, by its
-- own clock; the origin then marks it timed_out. The requester may withdraw it on its origin
-- host. A filing's state leaves 'pending' once and never comes back: whoever updates it.
-- Independent of version 4: it touches only the requests table.

ALTER TABLE jit_fleet.requests ADD COLUMN expires_at timestamptz
        CHECK (expires_at IS NULL OR expires_at <= created_at + interval '367 days');

CREATE FUNCTION jit_fleet.settle_state() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog
        AS $$
        BEGIN
                IF OLD.state <> 'pending' AND NEW.state IS DISTINCT FROM OLD.state THEN
                        RAISE EXCEPTION 'fleet request % is % already', OLD.id, OLD.state
                                USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
        END
        $$;
REVOKE ALL ON FUNCTION jit_fleet.settle_state() FROM PUBLIC;
CREATE TRIGGER settle_state BEFORE UPDATE OF state ON jit_fleet.requests
        FOR EACH ROW EXECUTE FUNCTION jit_fleet.settle_state();

-- The origin's sweep of its own pending requests whose time is over.
CREATE INDEX requests_pending_expiry ON jit_fleet.requests (origin_host, expires_at)
        WHERE state = 'pending';
