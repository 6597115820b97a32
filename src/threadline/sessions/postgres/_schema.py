"""The PostgreSQL schema and its migrations, recorded in the database.

``MIGRATIONS`` is append-only: entry ``i`` takes a schema from version ``i`` to ``i + 1`` and
is recorded as a row of ``threadline_migrations`` (version, description, when). Never edit a
released entry; add a new one. Migrations run only through :func:`migrate` (``store.setup()``
or ``threadline db migrate --store URL``), never on open: :func:`check` refuses a schema that
is missing or older (:class:`SchemaMissingError`) or newer (:class:`SchemaVersionError`).

Layout (version 1). Every table's primary key starts with ``skey``, the SHA-256 of the
session id's UTF-8 bytes, so each table can be distributed by it (Citus ``create_distributed_table(
'threadline_items', 'skey')``, co-located); ``threadline_migrations`` is a small reference
table. The session id itself is data in ``threadline_sessions`` (its UTF-8 bytes, of any
length, never an index key; ``call_id`` is bytes too, as PostgreSQL text cannot hold NUL).

* ``threadline_sessions`` — one row per session: the id, item count, timestamps (Unix seconds,
  server clock) and ``tick``, from a sequence, that orders the listing (``threadline_sessions_recent``).
  Every write locks this row first, which serialises the writes of one session.
* ``threadline_items`` — one row per item, primary key ``(skey, seq)``: ``seq`` is the item's
  position, assigned inside the write transaction (items only leave from the end). ``kind``,
  ``call_id``, ``tokens`` choose a window without decoding ``data`` (the payload, bytes);
  ``batch`` marks the first row of each append (a retried append finds it and does nothing);
  ``search`` is the item's words as a ``tsvector`` (GIN index) for full-text search.
* ``threadline_records`` — a session's named records (payloads sealed by the codec like
  items), primary key ``(skey, key)``, keys in code point order (``COLLATE "C"``).
* ``threadline_leases`` — the fenced writer lease: holder token, epoch, expiry (server clock).
* Functions: ``threadline_check_fence`` (SQLSTATE ``TL001`` when a fence is stale; it takes a
  share lock on the lease row so a takeover waits for the write in flight),
  ``threadline_append`` (a whole append in one round trip) and ``threadline_lease_acquire`` /
  ``_renew`` / ``_release``, which commit without waiting for the WAL flush
  (``synchronous_commit = off`` for that transaction only): a lease change lost in a server
  crash only makes its holder's next write fail its fence check, and any item written under
  a lease is flushed after (so together with) the lease row that allowed it.
"""

from __future__ import annotations

from typing import Any

from ...errors import SchemaMissingError, SchemaVersionError

__all__ = ["FENCE_SQLSTATE", "MIGRATIONS", "SCHEMA_VERSION", "check", "migrate", "read_version"]

FENCE_SQLSTATE = "TL001"
"""What ``threadline_check_fence`` raises for a stale fence."""

_MIGRATION_LOCK = 0x7468726561646C6E  # "threadln": one migrator at a time per database

MIGRATIONS: list[tuple[str, tuple[str, ...]]] = [
    (
        "sessions, items, records, leases, full-text search, append and fence functions",
        (
            """
            CREATE TABLE threadline_sessions (
                skey bytea PRIMARY KEY,
                session_id bytea NOT NULL,
                item_count bigint NOT NULL DEFAULT 0,
                created_at double precision NOT NULL,
                updated_at double precision NOT NULL,
                tick bigint NOT NULL
            )
            """,
            "CREATE SEQUENCE threadline_tick",
            "CREATE INDEX threadline_sessions_recent ON threadline_sessions (tick)",
            """
            CREATE TABLE threadline_items (
                skey bytea NOT NULL,
                seq bigint NOT NULL,
                kind smallint NOT NULL,
                call_id bytea,
                tokens integer NOT NULL,
                data bytea NOT NULL,
                batch uuid,
                search tsvector,
                PRIMARY KEY (skey, seq)
            )
            """,
            "CREATE INDEX threadline_items_search ON threadline_items USING gin (search)",
            """
            CREATE TABLE threadline_leases (
                skey bytea PRIMARY KEY,
                owner text NOT NULL,
                epoch bigint NOT NULL,
                expires_at double precision NOT NULL
            )
            """,
            """
            CREATE TABLE threadline_records (
                skey bytea NOT NULL,
                key text COLLATE "C" NOT NULL,
                data bytea NOT NULL,
                PRIMARY KEY (skey, key)
            )
            """,
            """
            CREATE FUNCTION threadline_put_records(p_skey bytea, p_keys text[], p_data bytea[])
            RETURNS void LANGUAGE sql AS $$
                DELETE FROM threadline_records AS r USING unnest(p_keys, p_data) AS t(key, data)
                    WHERE r.skey = p_skey AND r.key = t.key AND t.data IS NULL;
                INSERT INTO threadline_records (skey, key, data)
                    SELECT p_skey, t.key, t.data FROM unnest(p_keys, p_data) AS t(key, data)
                    WHERE t.data IS NOT NULL
                    ON CONFLICT (skey, key) DO UPDATE SET data = EXCLUDED.data;
            $$
            """,
            """
            CREATE FUNCTION threadline_now() RETURNS double precision
            LANGUAGE sql VOLATILE AS $$ SELECT extract(epoch FROM clock_timestamp())::float8 $$
            """,
            f"""
            CREATE FUNCTION threadline_check_fence(p_skey bytea, p_owner text, p_epoch bigint)
            RETURNS void LANGUAGE plpgsql AS $$
            DECLARE v_epoch bigint;
            BEGIN
                SELECT epoch INTO v_epoch FROM threadline_leases
                    WHERE skey = p_skey AND owner = p_owner AND epoch = p_epoch FOR SHARE;
                IF NOT FOUND THEN
                    SELECT epoch INTO v_epoch FROM threadline_leases WHERE skey = p_skey;
                    RAISE EXCEPTION USING ERRCODE = '{FENCE_SQLSTATE}',
                        MESSAGE = 'this run held epoch ' || p_epoch ||
                        coalesce('; the session''s lease is now at epoch ' || v_epoch, '');
                END IF;
            END $$
            """,
            """
            CREATE FUNCTION threadline_lease_acquire(p_skey bytea, p_owner text, p_ttl float8)
            RETURNS TABLE (acquired boolean, epoch bigint, owner text, expires_in float8)
            LANGUAGE plpgsql AS $$
            DECLARE v_epoch bigint;
            BEGIN
                PERFORM set_config('synchronous_commit', 'off', true);
                INSERT INTO threadline_leases AS l (skey, owner, epoch, expires_at)
                    VALUES (p_skey, p_owner, 1, threadline_now() + p_ttl)
                    ON CONFLICT (skey) DO UPDATE SET owner = EXCLUDED.owner,
                        epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at
                    WHERE l.owner = '' OR l.owner = EXCLUDED.owner
                        OR l.expires_at <= threadline_now()
                    RETURNING l.epoch INTO v_epoch;
                IF v_epoch IS NOT NULL THEN
                    RETURN QUERY SELECT true, v_epoch, p_owner, p_ttl;
                ELSE
                    RETURN QUERY SELECT false, l.epoch, l.owner, l.expires_at - threadline_now()
                        FROM threadline_leases AS l WHERE l.skey = p_skey;
                END IF;
            END $$
            """,
            """
            CREATE FUNCTION threadline_lease_renew(
                p_skey bytea, p_owner text, p_epoch bigint, p_ttl float8
            ) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM set_config('synchronous_commit', 'off', true);
                UPDATE threadline_leases SET expires_at = threadline_now() + p_ttl
                    WHERE skey = p_skey AND owner = p_owner AND epoch = p_epoch;
                RETURN FOUND;
            END $$
            """,
            """
            CREATE FUNCTION threadline_lease_release(p_skey bytea, p_owner text, p_epoch bigint)
            RETURNS void LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM set_config('synchronous_commit', 'off', true);
                UPDATE threadline_leases SET owner = '', expires_at = 0
                    WHERE skey = p_skey AND owner = p_owner AND epoch = p_epoch;
            END $$
            """,
            """
            CREATE FUNCTION threadline_append(
                p_skey bytea, p_session_id bytea, p_owner text, p_epoch bigint, p_batch uuid,
                p_retry boolean, p_kinds smallint[], p_call_ids bytea[], p_tokens integer[],
                p_data bytea[], p_search text[], p_record_keys text[], p_record_data bytea[]
            ) RETURNS bigint LANGUAGE plpgsql AS $$
            DECLARE
                v_n bigint := cardinality(p_data);
                v_now double precision := threadline_now();
                v_start bigint;
            BEGIN
                IF p_owner IS NOT NULL THEN
                    PERFORM threadline_check_fence(p_skey, p_owner, p_epoch);
                END IF;
                INSERT INTO threadline_sessions AS s
                    (skey, session_id, item_count, created_at, updated_at, tick)
                    VALUES (p_skey, p_session_id, v_n, v_now, v_now, nextval('threadline_tick'))
                    ON CONFLICT (skey) DO UPDATE SET item_count = s.item_count + v_n,
                        updated_at = v_now, tick = nextval('threadline_tick')
                    RETURNING s.item_count - v_n INTO v_start;
                IF p_retry AND EXISTS (SELECT 1 FROM threadline_items
                        WHERE skey = p_skey AND batch = p_batch) THEN
                    RAISE EXCEPTION USING ERRCODE = 'TL002', MESSAGE = 'batch already stored';
                END IF;
                INSERT INTO threadline_items
                    (skey, seq, kind, call_id, tokens, data, batch, search)
                    SELECT p_skey, v_start + t.n - 1, t.kind, t.call_id, t.tokens, t.data,
                        CASE WHEN t.n = 1 THEN p_batch END, t.search::tsvector
                    FROM unnest(p_kinds, p_call_ids, p_tokens, p_data, p_search)
                        WITH ORDINALITY AS t(kind, call_id, tokens, data, search, n);
                IF p_record_keys IS NOT NULL THEN
                    PERFORM threadline_put_records(p_skey, p_record_keys, p_record_data);
                END IF;
                RETURN v_start;
            END $$
            """,
        ),
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS threadline_migrations (
    version integer PRIMARY KEY,
    description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def read_version(conn: Any) -> int | None:
    """The schema version recorded in the connection's schema, or ``None`` when it has none."""
    found = await conn.fetchval("SELECT to_regclass('threadline_migrations') IS NOT NULL")
    if not found:
        return None
    version = await conn.fetchval("SELECT max(version) FROM threadline_migrations")
    return 0 if version is None else int(version)


def _newer(where: str, version: int) -> SchemaVersionError:
    return SchemaVersionError(
        f"the session store {where} has schema version {version}, but this threadline only "
        f"knows up to version {SCHEMA_VERSION}: upgrade threadline to open it"
    )


async def check(conn: Any, where: str, url: str) -> None:
    """Refuse a schema that is missing, older or newer than this code (no migration here)."""
    version = await read_version(conn)
    if version == SCHEMA_VERSION:
        return
    if version is not None and version > SCHEMA_VERSION:
        raise _newer(where, version)
    state = "has no threadline schema" if not version else f"has schema version {version}"
    raise SchemaMissingError(
        f"the session store {where} {state} (this threadline needs version {SCHEMA_VERSION}): "
        f"run `threadline db migrate --store {url}` (or await store.setup()) once, then retry"
    )


async def migrate(conn: Any, where: str, schema: str) -> int:
    """Create ``schema`` if needed and apply the missing migrations, in one transaction.

    Concurrent migrators wait for each other (an advisory transaction lock). Returns how many
    migrations ran; a newer schema than this code raises :class:`SchemaVersionError`.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        await conn.execute(_MIGRATIONS_TABLE)
        version = await read_version(conn) or 0
        if version > SCHEMA_VERSION:
            raise _newer(where, version)
        for number, (description, steps) in enumerate(MIGRATIONS[version:], start=version + 1):
            for step in steps:
                await conn.execute(step)
            await conn.execute(
                "INSERT INTO threadline_migrations (version, description) VALUES ($1, $2)",
                number,
                description,
            )
        return SCHEMA_VERSION - version


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
