// Every SQL text of the catalog, in one place: the schema (docs/catalog.md
// describes it for users) and the statements catalog.cpp and query.cpp run.
// Positional parameters are numbered (?1, ?2, ...) so each call site binds by
// the number written here.
#pragma once

namespace simsink::catalog::sql {

// Bumped with every schema change; stored in PRAGMA user_version.
inline constexpr int kSchemaVersion = 1;

// Per connection. foreign_keys is off by default in SQLite and must be set
// outside a transaction. WAL lets readers (the CLI, Python) read while the
// daemon writes; synchronous=FULL makes a commit durable before the daemon
// acknowledges the rows it records.
inline constexpr const char* kPragmasReadWrite =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = FULL;"
    "PRAGMA foreign_keys = ON;";
inline constexpr const char* kPragmasReadOnly = "PRAGMA foreign_keys = ON;";

inline constexpr const char* kGetUserVersion = "PRAGMA user_version";
inline constexpr const char* kSetUserVersionPrefix = "PRAGMA user_version = ";

// `value` columns of params and results have no declared type on purpose:
// without a column affinity SQLite keeps each value in the storage class it
// was bound with (INTEGER, REAL or TEXT), which `type` then names exactly.
inline constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS campaigns (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    status      TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'lost')),
    host        TEXT NOT NULL DEFAULT '',
    pid         INTEGER NOT NULL DEFAULT 0,
    started     REAL NOT NULL,
    ended       REAL,
    reason      TEXT NOT NULL DEFAULT '',
    client_id   TEXT NOT NULL DEFAULT '',
    attrs       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_by_campaign ON runs(campaign_id, id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, id);

CREATE TABLE IF NOT EXISTS params (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    name   TEXT NOT NULL,
    type   TEXT NOT NULL CHECK (type IN ('int', 'float', 'bool', 'str', 'json')),
    value,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS params_by_name ON params(name, value);

CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    name   TEXT NOT NULL,
    type   TEXT NOT NULL CHECK (type IN ('int', 'float', 'bool', 'str', 'json')),
    value,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS results_by_name ON results(name, value);

CREATE TABLE IF NOT EXISTS streams (
    id     INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    key    TEXT NOT NULL,
    kind   TEXT NOT NULL CHECK (kind IN ('stream', 'array')),
    dtype  TEXT NOT NULL,
    shape  TEXT NOT NULL,
    rows   INTEGER NOT NULL DEFAULT 0,
    attrs  TEXT NOT NULL DEFAULT '{}',
    UNIQUE (run_id, key)
);

CREATE TABLE IF NOT EXISTS key_attrs (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    key    TEXT NOT NULL,
    attrs  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS segments (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    file        TEXT NOT NULL UNIQUE,
    bytes       INTEGER NOT NULL,
    created     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_by_campaign ON segments(campaign_id, id);

CREATE TABLE IF NOT EXISTS extents (
    segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    stream_id  INTEGER NOT NULL REFERENCES streams(id),
    dataset    TEXT NOT NULL,
    src_row    INTEGER NOT NULL,
    dst_row    INTEGER NOT NULL,
    rows       INTEGER NOT NULL,
    crc32      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS extents_by_segment ON extents(segment_id);
CREATE INDEX IF NOT EXISTS extents_by_stream ON extents(stream_id, dst_row);

CREATE TABLE IF NOT EXISTS clients (
    id            TEXT PRIMARY KEY,
    committed_seq INTEGER NOT NULL,
    host          TEXT NOT NULL DEFAULT '',
    pid           INTEGER NOT NULL DEFAULT 0,
    last_seen     REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS client_handles (
    client_id TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('run', 'stream')),
    handle    INTEGER NOT NULL,
    target    INTEGER NOT NULL,
    PRIMARY KEY (client_id, kind, handle)
) WITHOUT ROWID;
)sql";

// ---- record_commit ----------------------------------------------------------

inline constexpr const char* kCampaignId = "SELECT id FROM campaigns WHERE name = ?1";
inline constexpr const char* kCampaignInsert =
    "INSERT INTO campaigns (name, created) VALUES (?1, ?2)";

inline constexpr const char* kRunInsert =
    "INSERT INTO runs (id, campaign_id, status, host, pid, started, ended, reason, client_id, "
    "attrs) VALUES (?1, ?2, 'running', ?3, ?4, ?5, NULL, '', ?6, ?7)";
inline constexpr const char* kParamInsert =
    "INSERT INTO params (run_id, name, type, value) VALUES (?1, ?2, ?3, ?4)";
inline constexpr const char* kHandleUpsert =
    "INSERT INTO client_handles (client_id, kind, handle, target) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (client_id, kind, handle) DO UPDATE SET target = excluded.target";

inline constexpr const char* kStreamInsert =
    "INSERT INTO streams (id, run_id, key, kind, dtype, shape, rows, attrs) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7) "
    // A second client handle bound to an existing stream (the daemon checked
    // that kind, dtype and shape agree) only adds the handle.
    "ON CONFLICT (id) DO NOTHING";
inline constexpr const char* kIntegrityCheck = "PRAGMA integrity_check";
inline constexpr const char* kPendingAttrsGet =
    "SELECT attrs FROM key_attrs WHERE run_id = ?1 AND key = ?2";
inline constexpr const char* kPendingAttrsDelete =
    "DELETE FROM key_attrs WHERE run_id = ?1 AND key = ?2";
inline constexpr const char* kPendingAttrsSet =
    "INSERT INTO key_attrs (run_id, key, attrs) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (run_id, key) DO UPDATE SET attrs = excluded.attrs";

inline constexpr const char* kSegmentInsert =
    "INSERT INTO segments (id, campaign_id, file, bytes, created) VALUES (?1, ?2, ?3, ?4, ?5)";
inline constexpr const char* kExtentInsert =
    "INSERT INTO extents (segment_id, stream_id, dataset, src_row, dst_row, rows, crc32) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
inline constexpr const char* kStreamGrow = "UPDATE streams SET rows = max(rows, ?2) WHERE id = ?1";
inline constexpr const char* kSegmentDelete = "DELETE FROM segments WHERE id = ?1";

inline constexpr const char* kRunAttrsGet = "SELECT attrs FROM runs WHERE id = ?1";
inline constexpr const char* kRunAttrsSet = "UPDATE runs SET attrs = ?2 WHERE id = ?1";
inline constexpr const char* kStreamAttrsGet =
    "SELECT id, attrs FROM streams WHERE run_id = ?1 AND key = ?2";
inline constexpr const char* kStreamAttrsSet = "UPDATE streams SET attrs = ?2 WHERE id = ?1";

inline constexpr const char* kRunClose =
    "UPDATE runs SET status = ?2, reason = ?3, ended = ?4 WHERE id = ?1";
inline constexpr const char* kResultUpsert =
    "INSERT INTO results (run_id, name, type, value) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (run_id, name) DO UPDATE SET type = excluded.type, value = excluded.value";

// A retried or reordered commit must never move a client's acknowledged
// position backwards: the client would resend (and the daemon re-record)
// batches it already has.
inline constexpr const char* kClientUpsert =
    "INSERT INTO clients (id, committed_seq, host, pid, last_seen) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (id) DO UPDATE SET committed_seq = max(committed_seq, excluded.committed_seq), "
    "host = excluded.host, pid = excluded.pid, last_seen = excluded.last_seen";

// ---- reads --------------------------------------------------------------------

inline constexpr const char* kLoadRuns =
    "SELECT r.id, c.name, r.status, r.client_id, r.started "
    "FROM runs r JOIN campaigns c ON c.id = r.campaign_id ORDER BY r.id";
inline constexpr const char* kRunningRuns =
    "SELECT r.id, c.name, r.status, r.client_id, r.started "
    "FROM runs r JOIN campaigns c ON c.id = r.campaign_id "
    "WHERE r.status = 'running' ORDER BY r.id";
inline constexpr const char* kLoadStreams =
    "SELECT id, run_id, key, kind, dtype, shape, rows FROM streams ORDER BY id";
inline constexpr const char* kLoadClients =
    "SELECT id, committed_seq, last_seen FROM clients ORDER BY id";
inline constexpr const char* kLoadHandles =
    "SELECT client_id, kind, handle, target FROM client_handles ORDER BY client_id";
inline constexpr const char* kMaxIds =
    "SELECT (SELECT coalesce(max(id), 0) FROM runs), (SELECT coalesce(max(id), 0) FROM streams), "
    "(SELECT coalesce(max(id), 0) FROM segments)";

inline constexpr const char* kSegmentsAll =
    "SELECT s.id, c.name, s.file, s.bytes, s.created "
    "FROM segments s JOIN campaigns c ON c.id = s.campaign_id ORDER BY s.id";
inline constexpr const char* kSegmentsOfCampaign =
    "SELECT s.id, c.name, s.file, s.bytes, s.created "
    "FROM segments s JOIN campaigns c ON c.id = s.campaign_id WHERE c.name = ?1 ORDER BY s.id";
inline constexpr const char* kSegmentExtents =
    "SELECT stream_id, dataset, src_row, dst_row, rows, crc32 FROM extents "
    "WHERE segment_id = ?1 ORDER BY stream_id, dst_row";

inline constexpr const char* kCampaignNames = "SELECT name FROM campaigns ORDER BY id";
inline constexpr const char* kCampaignRuns =
    "SELECT r.id FROM runs r JOIN campaigns c ON c.id = r.campaign_id "
    "WHERE c.name = ?1 ORDER BY r.id";

inline constexpr const char* kRunGet =
    "SELECT c.name, r.status, r.host, r.pid, r.started, r.ended, r.reason, r.attrs "
    "FROM runs r JOIN campaigns c ON c.id = r.campaign_id WHERE r.id = ?1";
inline constexpr const char* kRunParams =
    "SELECT name, type, value FROM params WHERE run_id = ?1 ORDER BY name";
inline constexpr const char* kRunResults =
    "SELECT name, type, value FROM results WHERE run_id = ?1 ORDER BY name";
inline constexpr const char* kRunStreams =
    "SELECT id, key, kind, dtype, shape, rows, attrs FROM streams WHERE run_id = ?1 ORDER BY key";
inline constexpr const char* kStreamExtents =
    "SELECT s.file, e.dataset, e.src_row, e.dst_row, e.rows "
    "FROM extents e JOIN segments s ON s.id = e.segment_id "
    "WHERE e.stream_id = ?1 ORDER BY e.dst_row, e.src_row";

// ---- find_runs (query.cpp) ------------------------------------------------------
// The --where translation assembles its SQL only from these fixed pieces; the
// user's names and literals are always bound.

inline constexpr const char* kFindRunsSelect =
    "SELECT r.id, c.name, r.status, r.host, r.pid, r.started, r.ended, r.reason "
    "FROM runs r JOIN campaigns c ON c.id = r.campaign_id WHERE 1";
inline constexpr const char* kFindRunsCampaign = " AND c.name = ?";
inline constexpr const char* kFindRunsStatus = " AND r.status = ?";
inline constexpr const char* kFindRunsOrder = " ORDER BY r.id";
inline constexpr const char* kFindRunsLimit = " LIMIT ?";

inline constexpr const char* kParamNameExists = "SELECT 1 FROM params WHERE name = ?1 LIMIT 1";
inline constexpr const char* kResultNameExists = "SELECT 1 FROM results WHERE name = ?1 LIMIT 1";

// Open an EXISTS over the run's field (bound name); the caller appends a
// type condition, " AND f.value <op> ?" and the closing ")".
inline constexpr const char* kParamField =
    "EXISTS (SELECT 1 FROM params f WHERE f.run_id = r.id AND f.name = ?";
inline constexpr const char* kResultField =
    "EXISTS (SELECT 1 FROM results f WHERE f.run_id = r.id AND f.name = ?";
inline constexpr const char* kParamPresent =
    "EXISTS (SELECT 1 FROM params f WHERE f.run_id = r.id AND f.name = ?)";

inline constexpr const char* kTypesNumber = " AND f.type IN ('int', 'float')";
inline constexpr const char* kTypesBool = " AND f.type = 'bool'";
inline constexpr const char* kTypesString = " AND f.type = 'str'";

}  // namespace simsink::catalog::sql
