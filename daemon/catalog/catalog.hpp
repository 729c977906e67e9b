// The catalog: catalog.sqlite, the source of truth of a data directory
// (docs/catalog.md has the schema). It knows every campaign, run, param,
// result, stream, segment and extent, and each client's highest committed
// sequence number with its handle maps, so a restarted daemon can resume
// every client exactly where its last commit left it.
//
// Ownership: the daemon's writer thread owns the only read-write Catalog and
// is the only code that writes. Readers (the CLI, verify, tests) open their
// own Catalog with Mode::read_only; SQLite's WAL mode lets them read while the
// daemon writes. A Catalog object is not thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "records.hpp"

struct sqlite3;

namespace simsink::catalog {

// Carries SQLite's (extended) result code and message, and what the catalog
// was doing. `system_errno` is the OS error behind an SQLITE_IOERR (from
// sqlite3_system_errno), 0 otherwise.
class CatalogError : public std::runtime_error {
  public:
    CatalogError(const std::string& what, int sqlite_code, int system_errno = 0)
        : std::runtime_error(what), code_(sqlite_code), errno_(system_errno) {}
    int sqlite_code() const noexcept { return code_; }
    int system_errno() const noexcept { return errno_; }
    bool disk_full() const noexcept;  // SQLITE_FULL or an I/O error for ENOSPC

  private:
    int code_;
    int errno_;
};

// ---- what a commit records --------------------------------------------------

struct RunOpen {
    std::int64_t run_id = 0;
    std::string campaign;
    Json params = Json::object();
    Json attrs = Json::object();
    std::string host;
    std::int64_t pid = 0;
    double started = 0;
    std::string client_id;     // hex
    std::uint32_t handle = 0;  // the client's run handle
};

struct StreamDeclare {
    std::int64_t stream_id = 0;
    std::int64_t run_id = 0;
    std::string key;
    StreamKind kind = StreamKind::stream;
    DType dtype = DType::float64;
    Shape shape;
    std::string client_id;
    std::uint32_t handle = 0;  // the client's stream handle
};

// Merges `attrs` into the attributes of a run (key empty) or of the stream
// or array `key` of that run (which need not exist yet).
struct AttrUpdate {
    std::int64_t run_id = 0;
    std::string key;
    Json attrs = Json::object();
};

struct RunClose {
    std::int64_t run_id = 0;
    std::string status;  // finished | failed | lost
    Json results = Json::object();
    std::string reason;
    double ended = 0;
};

struct SegmentExtent {
    std::int64_t stream_id = 0;
    std::string dataset;
    std::uint64_t src_row = 0;
    std::uint64_t dst_row = 0;
    std::uint64_t rows = 0;
    std::uint32_t crc32 = 0;  // of the whole segment dataset
};

struct SegmentRecord {
    std::int64_t segment_id = 0;
    std::string campaign;
    std::string file;  // relative to the data directory
    std::uint64_t bytes = 0;
    std::vector<SegmentExtent> extents;
};

struct ClientProgress {
    std::string client_id;  // hex
    std::uint64_t committed_seq = 0;
    std::string host;
    std::int64_t pid = 0;
    double last_seen = 0;
};

// Everything one commit makes durable, applied in this order inside one
// transaction: opens, declares, segments (and the streams' row counts),
// attribute merges, closes, client progress.
struct CommitRecord {
    std::vector<RunOpen> opens;
    std::vector<StreamDeclare> declares;
    std::vector<SegmentRecord> segments;
    std::vector<AttrUpdate> attrs;
    std::vector<RunClose> closes;
    std::vector<ClientProgress> clients;
};

// ---- what a restarted daemon loads -------------------------------------------

struct LoadedStream {
    std::int64_t stream_id = 0;
    std::int64_t run_id = 0;
    std::string key;
    StreamKind kind = StreamKind::stream;
    DType dtype = DType::float64;
    Shape shape;
    std::uint64_t rows = 0;
};

struct LoadedRun {
    std::int64_t run_id = 0;
    std::string campaign;
    std::string status;
    std::string client_id;
    double started = 0;
};

struct LoadedClient {
    std::string client_id;
    std::uint64_t committed_seq = 0;
    double last_seen = 0;
    std::map<std::uint32_t, std::int64_t> runs;     // run handle -> run id
    std::map<std::uint32_t, std::int64_t> streams;  // stream handle -> stream id
};

struct LoadedState {
    std::vector<LoadedRun> runs;
    std::vector<LoadedStream> streams;
    std::vector<LoadedClient> clients;
    std::int64_t max_run_id = 0;
    std::int64_t max_stream_id = 0;
    std::int64_t max_segment_id = 0;
};

struct SegmentSummary {
    std::int64_t segment_id = 0;
    std::string campaign;
    std::string file;
    std::uint64_t bytes = 0;
    double created = 0;
};

// ---- the catalog ---------------------------------------------------------------

class Catalog {
  public:
    enum class Mode { read_write, read_only };

    // read_write creates the file and schema if missing (WAL, synchronous=FULL).
    // read_only fails with CatalogError if the file does not exist.
    explicit Catalog(const std::filesystem::path& path, Mode mode = Mode::read_write);
    ~Catalog();
    Catalog(Catalog&&) noexcept;
    Catalog& operator=(Catalog&&) noexcept;
    Catalog(const Catalog&) = delete;
    Catalog& operator=(const Catalog&) = delete;

    // One transaction; throws CatalogError and rolls back on failure.
    void record_commit(const CommitRecord& commit);

    // Compaction: in one transaction, adds `merged` and deletes the segments
    // `replaced` with their extents.
    void replace_segments(const std::vector<std::int64_t>& replaced, const SegmentRecord& merged);

    LoadedState load() const;

    std::vector<SegmentSummary> segments(const std::string& campaign = {}) const;
    // Extents of one segment (for compaction and verify).
    std::vector<SegmentExtent> segment_extents(std::int64_t segment_id) const;

    std::vector<std::string> campaigns() const;
    std::vector<std::int64_t> campaign_runs(const std::string& campaign) const;
    // The full description the view writer needs; extents ordered by dst_row.
    RunView run_view(std::int64_t run_id) const;
    // The views of several runs, in the order of `run_ids`, read in one
    // snapshot with each statement prepared once (the writer rewrites the
    // views of every run a commit touched: 64 and more in W3). Throws
    // CatalogError, naming the run, if one of them does not exist.
    std::vector<RunView> run_views(std::span<const std::int64_t> run_ids) const;

    // Runs whose status is "running", with the client that opened them.
    std::vector<LoadedRun> running_runs() const;

    // SQLite's PRAGMA integrity_check: "ok", or its findings joined by "; ".
    std::string integrity_check() const;

    // Raw handle for the read-side query module (catalog/query.hpp).
    sqlite3* handle() const noexcept;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace simsink::catalog
