#include "catalog.hpp"
#include "unix_time.hpp"

#include <cassert>
#include <chrono>
#include <limits>
#include <string>
#include <utility>

#include "sql.hpp"
#include "sqlite.hpp"

namespace simsink::catalog {

using sqlite::Statement;

struct Catalog::Impl {
    // Read-write: owned by the daemon's writer thread, the only writer of
    // the data directory. Read-only: owned by whichever reader opened it.
    sqlite::Db db;
};

namespace {

// Long enough to ride out a reader's checkpoint or another reader's lock,
// short enough that a stuck daemon is noticed.
constexpr int kBusyTimeoutMs = 5000;

// Runs `f`; a CatalogError from it is rethrown with `context` in front, so a
// failure names the run, stream or segment being recorded.
template <typename F>
void in_context(const std::string& context, F&& f) {
    try {
        f();
    } catch (const CatalogError& e) {
        throw CatalogError(context + ": " + e.what(), e.sqlite_code(), e.system_errno());
    }
}

const char* kind_name(StreamKind k) noexcept {
    return k == StreamKind::array ? "array" : "stream";
}

StreamKind parse_kind(const std::string& s) {
    if (s == "stream") return StreamKind::stream;
    if (s == "array") return StreamKind::array;
    throw CatalogError("catalog holds an unknown stream kind '" + s + "'", SQLITE_CORRUPT);
}

DType parse_stored_dtype(const std::string& s) {
    if (auto t = proto::parse_dtype(s)) return *t;
    throw CatalogError("catalog holds an unknown dtype '" + s + "'", SQLITE_CORRUPT);
}

Json shape_json(const Shape& shape) {
    Json j = Json::array();
    for (auto d : shape) j.push_back(d);
    return j;
}

Shape parse_shape(const Json& j) {
    Shape shape;
    if (!j.is_array())
        throw CatalogError("catalog holds a shape that is not an array", SQLITE_CORRUPT);
    for (const auto& d : j) {
        if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<std::int64_t>() >= 0))
            throw CatalogError("catalog holds a shape with a bad dimension " + d.dump(),
                               SQLITE_CORRUPT);
        shape.push_back(d.get<std::uint64_t>());
    }
    return shape;
}

void require_object(const Json& j, const std::string& what) {
    if (!j.is_object()) throw CatalogError(what + " must be a JSON object", SQLITE_MISMATCH);
}

// Shallow merge: members of `update` replace those of `target` of the same
// name. Attribute values are scalars or flat arrays (proto::check_fields),
// so there is nothing deeper to merge.
void merge_attrs(Json& target, const Json& update) {
    if (!target.is_object()) target = Json::object();
    for (const auto& [name, value] : update.items()) target[name] = value;
}

void check_changed(sqlite3* db, const std::string& what) {
    if (sqlite3_changes(db) == 0) throw CatalogError(what + ": no such row", SQLITE_NOTFOUND);
}

// Campaign ids by name, created on first use inside the current transaction.
class CampaignIds {
  public:
    explicit CampaignIds(sqlite3* db)
        : get_(db, sql::kCampaignId, "looking up a campaign"),
          insert_(db, sql::kCampaignInsert, "creating a campaign") {}

    std::int64_t id(const std::string& name) {
        if (auto it = cache_.find(name); it != cache_.end()) return it->second;
        get_.bind(1, name);
        std::int64_t id = 0;
        if (get_.step()) {
            id = get_.column_int64(0);
        } else {
            insert_.bind(1, name);
            insert_.bind(2, unix_now());
            insert_.run();
            id = sqlite3_last_insert_rowid(sqlite3_db_handle(insert_.get()));
        }
        get_.reset();
        cache_.emplace(name, id);
        return id;
    }

  private:
    Statement get_;
    Statement insert_;
    std::map<std::string, std::int64_t> cache_;
};

// A client's handle for a run or stream (kHandleUpsert), kept so that a
// restarted daemon maps the client's resent messages; none without a client.
void record_handle(Statement& upsert, const std::string& client_id, const char* kind,
                   std::uint32_t handle, std::int64_t target) {
    if (client_id.empty()) return;
    upsert.bind(1, client_id);
    upsert.bind(2, kind);
    upsert.bind(3, std::int64_t{handle});
    upsert.bind(4, target);
    upsert.run();
}

void record_opens(sqlite3* db, CampaignIds& campaigns, const std::vector<RunOpen>& opens) {
    if (opens.empty()) return;
    Statement run(db, sql::kRunInsert, "inserting a run");
    Statement param(db, sql::kParamInsert, "inserting a param");
    Statement handle(db, sql::kHandleUpsert, "recording a client's run handle");
    for (const auto& o : opens) {
        in_context("opening run " + std::to_string(o.run_id), [&] {
            require_object(o.params, "params");
            require_object(o.attrs, "run attributes");
            run.bind(1, o.run_id);
            run.bind(2, campaigns.id(o.campaign));
            run.bind(3, o.host);
            run.bind(4, o.pid);
            run.bind(5, o.started);
            run.bind(6, o.client_id);
            run.bind_json_text(7, o.attrs);
            run.run();
            for (const auto& [name, value] : o.params.items()) {
                param.bind(1, o.run_id);
                param.bind(2, name);
                param.bind(3, param.bind_typed(4, value));
                param.run();
            }
            record_handle(handle, o.client_id, "run", o.handle, o.run_id);
        });
    }
}

void record_declares(sqlite3* db, const std::vector<StreamDeclare>& declares) {
    if (declares.empty()) return;
    Statement stream(db, sql::kStreamInsert, "inserting a stream");
    Statement pending_get(db, sql::kPendingAttrsGet, "reading attributes set before a declare");
    Statement pending_delete(db, sql::kPendingAttrsDelete,
                             "moving attributes set before a declare");
    Statement handle(db, sql::kHandleUpsert, "recording a client's stream handle");
    for (const auto& d : declares) {
        in_context("declaring stream " + std::to_string(d.stream_id) + " '" + d.key + "' of run " +
                       std::to_string(d.run_id),
                   [&] {
                       Json attrs = Json::object();
                       pending_get.bind(1, d.run_id);
                       pending_get.bind(2, d.key);
                       const bool pending = pending_get.step();
                       if (pending) merge_attrs(attrs, pending_get.column_json(0, Json::object()));
                       pending_get.reset();

                       stream.bind(1, d.stream_id);
                       stream.bind(2, d.run_id);
                       stream.bind(3, d.key);
                       stream.bind(4, kind_name(d.kind));
                       stream.bind(5, proto::name(d.dtype));
                       stream.bind_json_text(6, shape_json(d.shape));
                       stream.bind_json_text(7, attrs);
                       stream.run();

                       if (pending) {
                           pending_delete.bind(1, d.run_id);
                           pending_delete.bind(2, d.key);
                           pending_delete.run();
                       }
                       record_handle(handle, d.client_id, "stream", d.handle, d.stream_id);
                   });
    }
}

// Inserts one segment and its extents, and grows each touched stream to the
// furthest row an extent reaches (rows never shrink: extents may arrive for
// rows already covered, e.g. by a compaction).
void insert_segment(sqlite3* db, CampaignIds& campaigns, const SegmentRecord& s) {
    Statement segment(db, sql::kSegmentInsert, "inserting a segment");
    Statement extent(db, sql::kExtentInsert, "inserting an extent");
    Statement grow(db, sql::kStreamGrow, "growing a stream's row count");
    in_context("recording segment " + std::to_string(s.segment_id) + " (" + s.file + ")", [&] {
        segment.bind(1, s.segment_id);
        segment.bind(2, campaigns.id(s.campaign));
        segment.bind(3, s.file);
        segment.bind_u64(4, s.bytes);
        segment.bind(5, unix_now());
        segment.run();
        for (const auto& e : s.extents) {
            if (e.rows > std::numeric_limits<std::uint64_t>::max() - e.dst_row)
                throw CatalogError(
                    "extent of stream " + std::to_string(e.stream_id) + " ends past 2^64 rows",
                    SQLITE_RANGE);
            extent.bind(1, s.segment_id);
            extent.bind(2, e.stream_id);
            extent.bind(3, e.dataset);
            extent.bind_u64(4, e.src_row);
            extent.bind_u64(5, e.dst_row);
            extent.bind_u64(6, e.rows);
            extent.bind(7, std::int64_t{e.crc32});
            extent.run();
            grow.bind(1, e.stream_id);
            grow.bind_u64(2, e.dst_row + e.rows);
            grow.run();
        }
    });
}

void record_attrs(sqlite3* db, const std::vector<AttrUpdate>& updates) {
    if (updates.empty()) return;
    Statement run_get(db, sql::kRunAttrsGet, "reading run attributes");
    Statement run_set(db, sql::kRunAttrsSet, "writing run attributes");
    Statement stream_get(db, sql::kStreamAttrsGet, "reading stream attributes");
    Statement stream_set(db, sql::kStreamAttrsSet, "writing stream attributes");
    Statement pending_get(db, sql::kPendingAttrsGet, "reading attributes of an undeclared key");
    Statement pending_set(db, sql::kPendingAttrsSet, "writing attributes of an undeclared key");
    for (const auto& u : updates) {
        std::string what = "setting attributes of run " + std::to_string(u.run_id);
        if (!u.key.empty()) what += " key '" + u.key + "'";
        in_context(what, [&] {
            require_object(u.attrs, "attributes");
            if (u.key.empty()) {
                run_get.bind(1, u.run_id);
                if (!run_get.step()) throw CatalogError("no such run", SQLITE_NOTFOUND);
                Json attrs = run_get.column_json(0, Json::object());
                run_get.reset();
                merge_attrs(attrs, u.attrs);
                run_set.bind(1, u.run_id);
                run_set.bind_json_text(2, attrs);
                run_set.run();
                return;
            }
            stream_get.bind(1, u.run_id);
            stream_get.bind(2, u.key);
            if (stream_get.step()) {
                const auto stream_id = stream_get.column_int64(0);
                Json attrs = stream_get.column_json(1, Json::object());
                stream_get.reset();
                merge_attrs(attrs, u.attrs);
                stream_set.bind(1, stream_id);
                stream_set.bind_json_text(2, attrs);
                stream_set.run();
                return;
            }
            stream_get.reset();
            // Not declared yet: kept aside until the declare picks it up.
            pending_get.bind(1, u.run_id);
            pending_get.bind(2, u.key);
            Json attrs = Json::object();
            if (pending_get.step()) attrs = pending_get.column_json(0, Json::object());
            pending_get.reset();
            merge_attrs(attrs, u.attrs);
            pending_set.bind(1, u.run_id);
            pending_set.bind(2, u.key);
            pending_set.bind_json_text(3, attrs);
            pending_set.run();
        });
    }
}

void record_closes(sqlite3* db, const std::vector<RunClose>& closes) {
    if (closes.empty()) return;
    Statement close(db, sql::kRunClose, "closing a run");
    Statement result(db, sql::kResultUpsert, "recording a result");
    for (const auto& c : closes) {
        in_context("closing run " + std::to_string(c.run_id), [&] {
            if (c.status != "finished" && c.status != "failed" && c.status != "lost")
                throw CatalogError("status '" + c.status + "' is not finished, failed or lost",
                                   SQLITE_CONSTRAINT);
            require_object(c.results, "results");
            close.bind(1, c.run_id);
            close.bind(2, c.status);
            close.bind(3, c.reason);
            close.bind(4, c.ended);
            close.run();
            check_changed(db, "updating runs");
            for (const auto& [name, value] : c.results.items()) {
                result.bind(1, c.run_id);
                result.bind(2, name);
                result.bind(3, result.bind_typed(4, value));
                result.run();
            }
        });
    }
}

void record_clients(sqlite3* db, const std::vector<ClientProgress>& clients) {
    if (clients.empty()) return;
    Statement upsert(db, sql::kClientUpsert, "recording client progress");
    for (const auto& c : clients) {
        in_context("recording progress of client " + c.client_id, [&] {
            upsert.bind(1, c.client_id);
            upsert.bind_u64(2, c.committed_seq);
            upsert.bind(3, c.host);
            upsert.bind(4, c.pid);
            upsert.bind(5, c.last_seen);
            upsert.run();
        });
    }
}

// Runs `body` inside one write transaction; any failure rolls it all back
// and leaves as a CatalogError.
template <typename F>
void write_transaction(sqlite3* db, const std::string& doing, F&& body) {
    try {
        sqlite::WriteTransaction tx(db, doing);
        body();
        tx.commit();
    } catch (const CatalogError&) {
        throw;
    } catch (const Json::exception& e) {
        throw CatalogError(doing + ": " + e.what(), SQLITE_MISMATCH);
    }
}

LoadedRun read_loaded_run(const Statement& s) {
    LoadedRun r;
    r.run_id = s.column_int64(0);
    r.campaign = s.column_text(1);
    r.status = s.column_text(2);
    r.client_id = s.column_text(3);
    r.started = s.column_double(4);
    return r;
}

SegmentSummary read_segment_summary(const Statement& s) {
    SegmentSummary seg;
    seg.segment_id = s.column_int64(0);
    seg.campaign = s.column_text(1);
    seg.file = s.column_text(2);
    seg.bytes = s.column_u64(3);
    seg.created = s.column_double(4);
    return seg;
}

}  // namespace

Catalog::Catalog(const std::filesystem::path& path, Mode mode) : impl_(std::make_unique<Impl>()) {
    const std::string where = "catalog " + path.string();
    if (mode == Mode::read_only) {
        std::error_code ec;
        if (!std::filesystem::exists(path, ec))
            throw CatalogError("opening " + where + " read-only: no such file", SQLITE_CANTOPEN);
        impl_->db = sqlite::Db(path, SQLITE_OPEN_READONLY, kBusyTimeoutMs);
        impl_->db.exec(sql::kPragmasReadOnly, "configuring " + where);
    } else {
        impl_->db = sqlite::Db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, kBusyTimeoutMs);
        impl_->db.exec(sql::kPragmasReadWrite, "configuring " + where);
    }

    sqlite3* db = impl_->db.get();
    int version = 0;
    {
        Statement get(db, sql::kGetUserVersion, "reading the schema version of " + where);
        if (get.step()) version = static_cast<int>(get.column_int64(0));
    }
    if (version > sql::kSchemaVersion)
        throw CatalogError(where + " has schema version " + std::to_string(version) +
                               ", newer than this build knows (" +
                               std::to_string(sql::kSchemaVersion) + ")",
                           SQLITE_MISMATCH);
    if (version == sql::kSchemaVersion) return;
    if (mode == Mode::read_only)
        throw CatalogError(
            where + " has no simsink schema (user_version " + std::to_string(version) + ")",
            SQLITE_MISMATCH);
    write_transaction(db, "creating the schema of " + where, [&] {
        impl_->db.exec(sql::kSchema, "creating the schema of " + where);
        const std::string set_version =
            sql::kSetUserVersionPrefix + std::to_string(sql::kSchemaVersion);
        impl_->db.exec(set_version.c_str(), "setting the schema version of " + where);
    });
}

Catalog::~Catalog() = default;
Catalog::Catalog(Catalog&&) noexcept = default;
Catalog& Catalog::operator=(Catalog&&) noexcept = default;

std::string Catalog::integrity_check() const {
    assert(impl_);
    Statement st(impl_->db.get(), sql::kIntegrityCheck, "checking the catalog's integrity");
    std::string out;
    while (st.step()) out += (out.empty() ? "" : "; ") + st.column_text(0);
    return out;
}

sqlite3* Catalog::handle() const noexcept {
    return impl_ ? impl_->db.get() : nullptr;
}

void Catalog::record_commit(const CommitRecord& commit) {
    assert(impl_);
    sqlite3* db = impl_->db.get();
    write_transaction(db, "recording a commit", [&] {
        CampaignIds campaigns(db);
        record_opens(db, campaigns, commit.opens);
        record_declares(db, commit.declares);
        for (const auto& s : commit.segments) insert_segment(db, campaigns, s);
        record_attrs(db, commit.attrs);
        record_closes(db, commit.closes);
        record_clients(db, commit.clients);
    });
}

void Catalog::replace_segments(const std::vector<std::int64_t>& replaced,
                               const SegmentRecord& merged) {
    assert(impl_);
    sqlite3* db = impl_->db.get();
    write_transaction(db, "replacing segments by segment " + std::to_string(merged.segment_id),
                      [&] {
                          CampaignIds campaigns(db);
                          insert_segment(db, campaigns, merged);
                          Statement del(db, sql::kSegmentDelete, "deleting a replaced segment");
                          for (auto id : replaced) {
                              in_context("deleting segment " + std::to_string(id), [&] {
                                  del.bind(1, id);
                                  del.run();
                                  check_changed(db, "deleting from segments");
                              });
                          }
                      });
}

LoadedState Catalog::load() const {
    assert(impl_);
    sqlite3* db = impl_->db.get();
    sqlite::ReadTransaction snapshot(db);
    LoadedState state;

    Statement runs(db, sql::kLoadRuns, "loading runs");
    while (runs.step()) state.runs.push_back(read_loaded_run(runs));

    Statement streams(db, sql::kLoadStreams, "loading streams");
    while (streams.step()) {
        LoadedStream s;
        s.stream_id = streams.column_int64(0);
        s.run_id = streams.column_int64(1);
        s.key = streams.column_text(2);
        s.kind = parse_kind(streams.column_text(3));
        s.dtype = parse_stored_dtype(streams.column_text(4));
        s.shape = parse_shape(streams.column_json(5, Json()));
        s.rows = streams.column_u64(6);
        state.streams.push_back(std::move(s));
    }

    std::map<std::string, std::size_t> client_index;
    Statement clients(db, sql::kLoadClients, "loading clients");
    while (clients.step()) {
        LoadedClient c;
        c.client_id = clients.column_text(0);
        c.committed_seq = clients.column_u64(1);
        c.last_seen = clients.column_double(2);
        client_index.emplace(c.client_id, state.clients.size());
        state.clients.push_back(std::move(c));
    }

    Statement handles(db, sql::kLoadHandles, "loading client handles");
    while (handles.step()) {
        const std::string client_id = handles.column_text(0);
        auto it = client_index.find(client_id);
        if (it == client_index.end()) {
            // Handles recorded in a commit that carried no progress for the
            // client: it still has them, starting from sequence 0.
            LoadedClient c;
            c.client_id = client_id;
            it = client_index.emplace(client_id, state.clients.size()).first;
            state.clients.push_back(std::move(c));
        }
        auto& client = state.clients[it->second];
        const auto handle = static_cast<std::uint32_t>(handles.column_int64(2));
        const auto target = handles.column_int64(3);
        if (handles.column_text(1) == "run")
            client.runs[handle] = target;
        else
            client.streams[handle] = target;
    }

    Statement max_ids(db, sql::kMaxIds, "reading the highest ids");
    if (max_ids.step()) {
        state.max_run_id = max_ids.column_int64(0);
        state.max_stream_id = max_ids.column_int64(1);
        state.max_segment_id = max_ids.column_int64(2);
    }
    return state;
}

std::vector<SegmentSummary> Catalog::segments(const std::string& campaign) const {
    assert(impl_);
    sqlite3* db = impl_->db.get();
    std::vector<SegmentSummary> out;
    if (campaign.empty()) {
        Statement s(db, sql::kSegmentsAll, "listing segments");
        while (s.step()) out.push_back(read_segment_summary(s));
    } else {
        Statement s(db, sql::kSegmentsOfCampaign, "listing segments of campaign " + campaign);
        s.bind(1, campaign);
        while (s.step()) out.push_back(read_segment_summary(s));
    }
    return out;
}

std::vector<SegmentExtent> Catalog::segment_extents(std::int64_t segment_id) const {
    assert(impl_);
    Statement s(impl_->db.get(), sql::kSegmentExtents,
                "listing extents of segment " + std::to_string(segment_id));
    s.bind(1, segment_id);
    std::vector<SegmentExtent> out;
    while (s.step()) {
        SegmentExtent e;
        e.stream_id = s.column_int64(0);
        e.dataset = s.column_text(1);
        e.src_row = s.column_u64(2);
        e.dst_row = s.column_u64(3);
        e.rows = s.column_u64(4);
        e.crc32 = static_cast<std::uint32_t>(s.column_int64(5));
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<std::string> Catalog::campaigns() const {
    assert(impl_);
    Statement s(impl_->db.get(), sql::kCampaignNames, "listing campaigns");
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.column_text(0));
    return out;
}

std::vector<std::int64_t> Catalog::campaign_runs(const std::string& campaign) const {
    assert(impl_);
    Statement s(impl_->db.get(), sql::kCampaignRuns, "listing runs of campaign " + campaign);
    s.bind(1, campaign);
    std::vector<std::int64_t> out;
    while (s.step()) out.push_back(s.column_int64(0));
    return out;
}

RunView Catalog::run_view(std::int64_t run_id) const {
    return std::move(run_views(std::span<const std::int64_t>(&run_id, 1)).front());
}

std::vector<RunView> Catalog::run_views(std::span<const std::int64_t> run_ids) const {
    assert(impl_);
    sqlite3* db = impl_->db.get();
    const std::string what = "reading run views";
    sqlite::ReadTransaction snapshot(db);
    Statement run(db, sql::kRunGet, what);
    Statement params(db, sql::kRunParams, what + " params");
    Statement results(db, sql::kRunResults, what + " results");
    Statement streams(db, sql::kRunStreams, what + " streams");
    Statement extents(db, sql::kStreamExtents, what + " extents");
    std::vector<RunView> out;
    out.reserve(run_ids.size());
    for (const std::int64_t run_id : run_ids) {
        RunView& v = out.emplace_back();
        v.run_id = run_id;
        run.bind(1, run_id);
        if (!run.step())
            throw CatalogError("reading run " + std::to_string(run_id) + ": no such run",
                               SQLITE_NOTFOUND);
        v.campaign = run.column_text(0);
        v.status = run.column_text(1);
        v.host = run.column_text(2);
        v.pid = run.column_int64(3);
        v.started = run.column_double(4);
        v.ended = run.column_is_null(5) ? 0 : run.column_double(5);
        v.reason = run.column_text(6);
        v.attrs = run.column_json(7, Json::object());
        run.reset();
        params.bind(1, run_id);
        v.params = sqlite::read_typed_fields(params);
        params.reset();
        results.bind(1, run_id);
        v.results = sqlite::read_typed_fields(results);
        results.reset();

        streams.bind(1, run_id);
        while (streams.step()) {
            StreamView s;
            s.stream_id = streams.column_int64(0);
            s.key = streams.column_text(1);
            s.kind = parse_kind(streams.column_text(2));
            s.dtype = parse_stored_dtype(streams.column_text(3));
            s.shape = parse_shape(streams.column_json(4, Json()));
            s.rows = streams.column_u64(5);
            s.attrs = streams.column_json(6, Json::object());
            extents.bind(1, s.stream_id);
            while (extents.step()) {
                Extent e;
                e.file = extents.column_text(0);
                e.dataset = extents.column_text(1);
                e.src_row = extents.column_u64(2);
                e.dst_row = extents.column_u64(3);
                e.rows = extents.column_u64(4);
                s.extents.push_back(std::move(e));
            }
            extents.reset();
            v.streams.push_back(std::move(s));
        }
        streams.reset();
    }
    return out;
}

std::vector<LoadedRun> Catalog::running_runs() const {
    assert(impl_);
    Statement s(impl_->db.get(), sql::kRunningRuns, "listing running runs");
    std::vector<LoadedRun> out;
    while (s.step()) out.push_back(read_loaded_run(s));
    return out;
}

}  // namespace simsink::catalog
