//! The journal's schema, and how an older journal is brought up to it.
//!
//! Both backends hold the same tables (releases, events, promotions, samples) at the same version numbers;
//! PostgreSQL's releases also say where a deploy runs (`host`, `ci_job`) and when it last showed life
//! (`heartbeat_at_ms`), since its runners are on many machines.
//!
//! SQLite's schema version is its `user_version`; PostgreSQL's is the `cutover_schema` table. A new journal gets the whole schema; one of an
//! older version gets the migrations from its version on, in one transaction; a newer one is refused
//! rather than misread (a journal outlives the cutover that wrote it: it sits beside the app, and
//! whoever deploys next may run another version). A migration only ever adds: a column a newer
//! cutover writes is one an older row simply lacks (e.g. the plan `cutover resume` needs).

/// Bumped when the schema changes; a newer journal is refused rather than misread, an older one is
/// brought up to date (see [`MIGRATIONS`]).
pub(crate) const SCHEMA_VERSION: i64 = 4;

/// What takes a journal of version `n` (the index plus one) to the next.
pub(crate) const MIGRATIONS: &[&str] = &[
    "ALTER TABLE releases ADD COLUMN plan TEXT;
     ALTER TABLE releases ADD COLUMN strategy_ref TEXT;",
    // The machines a succeeded deploy could not finish cleaning up, as JSON.
    "ALTER TABLE releases ADD COLUMN leftovers TEXT;",
    SAMPLES,
];

/// The driver's traffic readings (`traffic_sampled`), a table beside `events` rather than rows in it:
/// a reading comes at a wall-clock moment, and had it taken a number in `events` it would move every
/// later event's number, the numbers the crash tests kill at and a resume goes on from. Here it is
/// numbered by the row's own id (the order it was written in); `after_seq` is the number of the event
/// that followed it, which places it among the events. A row is one statement, so a process killed
/// while writing one leaves it whole or absent, and `events` untouched.
pub(crate) const SAMPLES: &str = "
CREATE TABLE IF NOT EXISTS samples (
    id         INTEGER PRIMARY KEY,
    release_id INTEGER NOT NULL REFERENCES releases (id),
    after_seq  INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    event      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_release ON samples (release_id, id);
";

/// PostgreSQL's [`SAMPLES`].
pub(crate) const PG_SAMPLES: &str = "
CREATE TABLE samples (
    id         BIGSERIAL PRIMARY KEY,
    release_id BIGINT NOT NULL REFERENCES releases (id),
    after_seq  BIGINT NOT NULL,
    at_ms      BIGINT NOT NULL,
    event      TEXT NOT NULL
);
CREATE INDEX samples_by_release ON samples (release_id, id);
";

/// The schema's first three tables; a new journal gets them and [`SAMPLES`].
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS releases (
    id               INTEGER PRIMARY KEY,
    app              TEXT NOT NULL,
    kind             TEXT NOT NULL,
    version          INTEGER NOT NULL,
    image            TEXT NOT NULL,
    previous_version INTEGER,
    previous_image   TEXT,
    strategy         TEXT NOT NULL,
    strategy_hash    TEXT NOT NULL,
    params           TEXT NOT NULL,
    platform         TEXT NOT NULL,
    status           TEXT NOT NULL,
    error            TEXT,
    started_at_ms    INTEGER NOT NULL,
    duration_ms      INTEGER,
    pid              INTEGER NOT NULL,
    waiting_gate     TEXT,
    plan             TEXT,
    strategy_ref     TEXT,
    leftovers        TEXT
);
CREATE INDEX IF NOT EXISTS releases_by_app ON releases (app, id);
CREATE TABLE IF NOT EXISTS events (
    release_id INTEGER NOT NULL REFERENCES releases (id),
    seq        INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    event      TEXT NOT NULL,
    PRIMARY KEY (release_id, seq)
);
CREATE TABLE IF NOT EXISTS promotions (
    id           INTEGER PRIMARY KEY,
    release_id   INTEGER NOT NULL REFERENCES releases (id),
    gate         TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    taken        INTEGER NOT NULL DEFAULT 0
);
";

/// What takes a PostgreSQL journal of version `n` (the index plus one) to the next.
pub(crate) const PG_MIGRATIONS: &[&str] = &[
    "ALTER TABLE releases ADD COLUMN plan TEXT,
     ADD COLUMN strategy_ref TEXT, ADD COLUMN host TEXT, ADD COLUMN ci_job TEXT,
     ADD COLUMN heartbeat_at_ms BIGINT;",
    // The machines a succeeded deploy could not finish cleaning up, as JSON.
    "ALTER TABLE releases ADD COLUMN leftovers TEXT;",
    PG_SAMPLES,
];

/// The PostgreSQL schema's first three tables; a new journal gets them and [`PG_SAMPLES`] (ids are
/// sequences, so `cutover journal migrate` can keep a copied journal's numbers and set them past the
/// last).
pub(crate) const PG_SCHEMA: &str = "
CREATE TABLE releases (
    id               BIGSERIAL PRIMARY KEY,
    app              TEXT NOT NULL,
    kind             TEXT NOT NULL,
    version          BIGINT NOT NULL,
    image            TEXT NOT NULL,
    previous_version BIGINT,
    previous_image   TEXT,
    strategy         TEXT NOT NULL,
    strategy_hash    TEXT NOT NULL,
    params           TEXT NOT NULL,
    platform         TEXT NOT NULL,
    status           TEXT NOT NULL,
    error            TEXT,
    started_at_ms    BIGINT NOT NULL,
    duration_ms      BIGINT,
    pid              BIGINT NOT NULL,
    waiting_gate     TEXT,
    plan             TEXT,
    strategy_ref     TEXT,
    host             TEXT,
    ci_job           TEXT,
    heartbeat_at_ms  BIGINT,
    leftovers        TEXT
);
CREATE INDEX releases_by_app ON releases (app, id);
CREATE TABLE events (
    release_id BIGINT NOT NULL REFERENCES releases (id),
    seq        BIGINT NOT NULL,
    at_ms      BIGINT NOT NULL,
    event      TEXT NOT NULL,
    PRIMARY KEY (release_id, seq)
);
CREATE TABLE promotions (
    id         BIGSERIAL PRIMARY KEY,
    release_id BIGINT NOT NULL REFERENCES releases (id),
    gate       TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    taken      BOOLEAN NOT NULL DEFAULT FALSE
);
";
