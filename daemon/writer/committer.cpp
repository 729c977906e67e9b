#include "writer/committer.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <system_error>
#include <thread>

#include "release.hpp"
#include "segment.hpp"
#include "unix_time.hpp"
#include "view.hpp"
#include "writer/compactor.hpp"
#include "writer/failpoint.hpp"

namespace simsink::daemon {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Committer::Committer(const Config& config, catalog::Catalog catalog, std::int64_t max_segment_id,
                     StagingBuffer& buffer, std::function<void()> wake)
    : config_(config),
      catalog_(std::move(catalog)),
      next_segment_id_(max_segment_id + 1),
      buffer_(buffer),
      wake_(std::move(wake)) {
    compactor_ = std::make_unique<Compactor>(
        config_, catalog_, next_segment_id_,
        [this](const std::set<std::int64_t>& runs) { write_views(runs, {}); });
}

Committer::~Committer() {
    if (thread_.joinable()) stop();
}

void Committer::start() {
    thread_ = std::thread([this] { run(); });
}

void Committer::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        ++requested_;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    store::release_pending();  // replaced views and expired segments are gone too
}

std::uint64_t Committer::request_commit() {
    std::uint64_t t;
    {
        std::lock_guard lock(mutex_);
        t = ++requested_;
    }
    cv_.notify_all();
    return t;
}

void Committer::request_compact(std::string routing_id, std::uint64_t request,
                                std::string campaign) {
    {
        std::lock_guard lock(mutex_);
        compact_requests_.emplace_back(std::move(routing_id), request, std::move(campaign));
    }
    cv_.notify_all();
}

std::vector<CommitOutcome> Committer::take_commit_outcomes() {
    std::lock_guard lock(mutex_);
    return std::exchange(commit_outcomes_, {});
}

std::vector<CompactOutcome> Committer::take_compact_outcomes() {
    std::lock_guard lock(mutex_);
    return std::exchange(compact_outcomes_, {});
}

CommitStats Committer::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

std::exception_ptr Committer::failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
}

void Committer::run() {
    // Named for top -H, perf and gdb (at most 15 characters).
    pthread_setname_np(pthread_self(), "writer");
    try {
        auto interval = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(config_.commit_interval));
        auto next_commit = Clock::now() + interval;
        const auto retry_interval = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(config_.retry_interval));
        auto retry_at = Clock::time_point::max();
        for (;;) {
            bool stop = false;
            std::uint64_t ticket = 0;
            std::optional<std::tuple<std::string, std::uint64_t, std::string>> compact;
            // After a failed commit (a full disk, say), the next attempt waits
            // for retry_at, whatever is asked or staged meanwhile: retrying at
            // once failed the same way in a loop, a CPU busy and thousands of
            // log lines a second for as long as the disk stayed full.
            const bool backing_off = !leftover_.empty() && Clock::now() < retry_at;
            {
                std::unique_lock lock(mutex_);
                auto deadline = backing_off ? retry_at : std::min(next_commit, retry_at);
                cv_.wait_until(lock, deadline, [&] {
                    if (stopping_ || !compact_requests_.empty()) return true;
                    if (backing_off) return false;
                    return requested_ > done_ || buffer_.staged_bytes() >= config_.commit_bytes;
                });
                stop = stopping_;
                ticket = requested_;
                if (!compact_requests_.empty()) {
                    compact = std::move(compact_requests_.front());
                    compact_requests_.pop_front();
                }
            }
            auto t = Clock::now();
            bool due = t >= next_commit;
            bool retry = !leftover_.empty() && t >= retry_at;
            bool asked = ticket > done_;
            bool waiting = !leftover_.empty() && !retry;  // still backing off
            if (stop || retry ||
                (!waiting && (asked || buffer_.staged_bytes() >= config_.commit_bytes ||
                              (due && buffer_.has_staged())))) {
                if (commit_once(ticket))
                    retry_at = Clock::time_point::max();
                else
                    retry_at = Clock::now() + retry_interval;
            }
            if (due) next_commit = Clock::now() + interval;

            if (compact) {
                CompactOutcome out;
                std::tie(out.routing_id, out.request, std::ignore) = *compact;
                try {
                    out.result = compactor_->compact(std::get<2>(*compact));
                } catch (const std::exception& e) {
                    out.ok = false;
                    out.message = e.what();
                }
                {
                    std::lock_guard lock(mutex_);
                    compact_outcomes_.push_back(std::move(out));
                }
                wake_();
            } else if (leftover_.empty() && !stop) {
                try {
                    compactor_->maybe_compact(unix_now());
                } catch (const std::exception& e) {
                    spdlog::warn("compaction failed, will retry later: {}", e.what());
                }
            }
            compactor_->delete_expired(unix_now(), stop);
            if (stop) break;
        }
    } catch (...) {
        {
            std::lock_guard lock(mutex_);
            failure_ = std::current_exception();
        }
        wake_();
    }
}

namespace {

// Saves view images on a thread of its own, in the order given, while the
// writer thread builds the next ones (HDF5 stays on the writer thread).
// finish() waits for every save and returns the runs whose view could not
// be saved, with why. Without a thread to be had, save() saves at once.
class ViewSaver {
  public:
    ViewSaver() {
        try {
            thread_ = std::jthread([this] {
                pthread_setname_np(pthread_self(), "view-saver");
                loop();
            });
        } catch (const std::system_error&) {
        }
    }
    ~ViewSaver() { finish(); }
    ViewSaver(const ViewSaver&) = delete;
    ViewSaver& operator=(const ViewSaver&) = delete;

    void save(std::int64_t run_id, store::ViewImage image) {
        if (!thread_.joinable()) {
            save_one(run_id, image);
            return;
        }
        {
            std::lock_guard lock(mutex_);
            queue_.emplace_back(run_id, std::move(image));
        }
        cv_.notify_one();
    }

    std::vector<std::pair<std::int64_t, std::string>> finish() {
        if (thread_.joinable()) {
            {
                std::lock_guard lock(mutex_);
                done_ = true;
            }
            cv_.notify_one();
            thread_.join();
        }
        std::lock_guard lock(mutex_);
        return std::exchange(failed_, {});
    }

  private:
    void loop() {
        for (;;) {
            std::pair<std::int64_t, store::ViewImage> item;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [&] { return done_ || !queue_.empty(); });
                if (queue_.empty()) return;
                item = std::move(queue_.front());
                queue_.pop_front();
            }
            save_one(item.first, item.second);
        }
    }

    void save_one(std::int64_t run_id, const store::ViewImage& image) {
        try {
            store::save_view(image);
        } catch (const std::exception& e) {
            std::lock_guard lock(mutex_);
            failed_.emplace_back(run_id, e.what());
        }
    }

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::pair<std::int64_t, store::ViewImage>> queue_;
    bool done_ = false;
    std::vector<std::pair<std::int64_t, std::string>> failed_;
    std::jthread thread_;  // last: joined before the members it uses go
};

}  // namespace

// A commit between take() and its outcome: its segments are being written
// (batch), then it is recorded in the catalog.
struct Committer::InFlight {
    PendingCommit p;
    std::uint64_t ticket = 0;
    Clock::time_point t0 = Clock::now();
    std::vector<store::SegmentJob> jobs;
    std::vector<std::map<std::int64_t, std::uint64_t>> rows_before;  // per job, per stream
    catalog::CommitRecord rec;
    std::unique_ptr<store::SegmentBatch> batch;
    std::vector<fs::path> written;  // segments renamed into place
    double write_seconds = 0;    // waiting in finish() for the segments
    double catalog_seconds = 0;  // recording it in the catalog (its fsync included)
    bool pipelined = false;  // started while the previous commit was published

    // A failed attempt leaves no file the catalog does not know (any left
    // would be removed at restart anyway).
    void remove_written() noexcept {
        for (const auto& f : written) {
            std::error_code ec;
            fs::remove(f, ec);
        }
    }
};

bool Committer::commit_once(std::uint64_t ticket) {
    PendingCommit p = std::move(leftover_);
    leftover_ = PendingCommit{};
    p.merge(buffer_.take());

    if (p.empty()) {
        CommitOutcome out;
        out.ticket = ticket;
        {
            std::lock_guard lock(mutex_);
            done_ = std::max(done_, ticket);
            commit_outcomes_.push_back(std::move(out));
        }
        wake_();
        return true;
    }

    // Commits are pipelined: once a commit's segments are on disk and it is
    // recorded in the catalog, the next commit (if one is due already) is
    // taken and its raw data written by helper threads while this one's
    // views are rewritten and its outcome reported. The disk then works
    // while the writer does. Catalog records, views and outcomes stay in
    // commit order.
    auto cur = std::make_unique<InFlight>();
    cur->p = std::move(p);
    cur->ticket = ticket;
    if (auto error = start_segments(*cur)) {
        report_failure(error);
        leftover_ = std::move(cur->p);
        return false;
    }
    for (;;) {
        std::vector<store::SegmentInfo> infos;
        try {
            const auto write_start = Clock::now();
            infos = cur->batch->finish();
            cur->write_seconds = std::chrono::duration<double>(Clock::now() - write_start).count();
            for (const auto& job : cur->jobs) cur->written.push_back(job.path);
            cur->batch.reset();
            failpoint("segment-renamed");
        } catch (const std::exception&) {
            // finish() leaves no file when it fails; a failpoint after it does.
            cur->remove_written();
            report_failure(std::current_exception());
            leftover_ = std::move(cur->p);
            return false;
        }

        // The catalog transaction comes before the next commit's segments
        // start: its fsync then finds the disk's queue empty (this commit's
        // segments were just fsynced), and its CPU work (hundreds of runs in
        // W4) does not share the CPUs with the next commit's copies. With
        // the next commit's writeback ahead of it, it took 80-350 ms in W4
        // (docs/performance.md, eleventh round).
        if (auto error = record_catalog(*cur, infos)) {
            report_failure(error);
            leftover_ = std::move(cur->p);
            return false;
        }

        std::unique_ptr<InFlight> next;
        std::exception_ptr next_error;
        if (commit_due(cur->ticket)) {
            next = std::make_unique<InFlight>();
            {
                std::lock_guard lock(mutex_);
                next->ticket = requested_;
            }
            next->p = buffer_.take();
            next->pipelined = true;
            if (next->p.empty())
                next.reset();  // a request for nothing more: answered by the next round
            else
                next_error = start_segments(*next);
        }

        publish(*cur);
        if (next_error) {
            report_failure(next_error);
            leftover_ = std::move(next->p);
            return false;
        }
        if (!next) return true;
        cur = std::move(next);
    }
}

bool Committer::commit_due(std::uint64_t ticket) const {
    std::lock_guard lock(mutex_);
    return stopping_ || requested_ > ticket || buffer_.staged_bytes() >= config_.commit_bytes;
}

std::exception_ptr Committer::start_segments(InFlight& c) {
    try {
        const PendingCommit& p = c.p;
        std::map<std::string, std::vector<std::pair<std::int64_t, const StagedRows*>>> by_campaign;
        for (const auto& [id, r] : p.rows) by_campaign[r.campaign].emplace_back(id, &r);
        // One segment per campaign, or several of a large commit, whose raw
        // data helper threads write (store::SegmentBatch).
        for (const auto& [campaign, streams] : by_campaign) {
            std::vector<store::StreamWrite> writes;
            writes.reserve(streams.size());
            for (const auto& [id, r] : streams) {
                store::StreamWrite w;
                w.stream_id = id;
                w.kind = r->kind;
                w.dtype = r->dtype;
                w.shape = r->shape;
                for (const auto& b : r->blocks)
                    w.blocks.push_back({b.data, b.bytes, b.rows, b.shared_mapping});
                writes.push_back(std::move(w));
            }
            fs::create_directories(config_.data_dir / campaign);
            for (auto& part :
                 store::split_streams(writes, config_.write_threads, config_.write_split_bytes)) {
                catalog::SegmentRecord seg;
                seg.segment_id = next_segment_id_++;
                seg.campaign = campaign;
                seg.file = campaign + "/seg-" + std::to_string(seg.segment_id) + ".h5";
                auto& before = c.rows_before.emplace_back();
                for (std::size_t i = 0; i < part.streams.size(); ++i)
                    before[part.streams[i].stream_id] = part.rows_before[i];
                c.jobs.push_back({config_.data_dir / seg.file, std::move(part.streams)});
                c.rec.segments.push_back(std::move(seg));
            }
        }
        c.batch = std::make_unique<store::SegmentBatch>(
            c.jobs, store::SegmentOptions{.fsync = config_.fsync,
                                          .threads = config_.write_threads,
                                          // The segments' cached pages (as many as the data)
                                          // go once fsynced, so that the next commit reuses
                                          // that memory (store::drop_cached_pages says why).
                                          // Before the ACK: a client that reads right after
                                          // its flush() must not have the pages it reads
                                          // dropped under it.
                                          .drop_cache = config_.drop_cache,
                                          .direct_io = config_.direct_io});
        // As many helpers as write threads: the writer thread may be busy
        // recording the previous commit, and joins in when it calls finish().
        c.batch->start(config_.write_threads);
        return nullptr;
    } catch (const std::exception&) {
        c.batch.reset();
        return std::current_exception();
    }
}

std::exception_ptr Committer::record_catalog(InFlight& c,
                                            const std::vector<store::SegmentInfo>& infos) {
    PendingCommit& p = c.p;
    catalog::CommitRecord& rec = c.rec;
    try {
        for (std::size_t j = 0; j < c.jobs.size(); ++j) {
            auto& seg = rec.segments[j];
            seg.bytes = infos[j].bytes;
            for (const auto& d : infos[j].datasets) {
                const auto& r = p.rows.at(d.stream_id);
                seg.extents.push_back({d.stream_id, d.dataset, 0,
                                       r.first_row + c.rows_before[j].at(d.stream_id), d.rows,
                                       d.crc32});
            }
        }
        rec.opens = p.opens;
        rec.declares = p.declares;
        rec.attrs = p.attrs;
        rec.closes = p.closes;
        for (const auto& [id, cl] : p.clients) rec.clients.push_back(cl);
        failpoint("catalog-commit");
        const auto catalog_start = Clock::now();
        catalog_.record_commit(rec);
        c.catalog_seconds = std::chrono::duration<double>(Clock::now() - catalog_start).count();
        failpoint("catalog-committed");
    } catch (const std::exception&) {
        // Nothing of this attempt is acknowledged.
        c.remove_written();
        return std::current_exception();
    }
    return nullptr;
}

void Committer::publish(InFlight& c) {
    PendingCommit& p = c.p;
    const catalog::CommitRecord& rec = c.rec;
    buffer_.release(p.bytes);

    std::set<std::int64_t> runs;
    std::set<std::string> campaigns;
    for (const auto& o : p.opens) {
        runs.insert(o.run_id);
        campaigns.insert(o.campaign);
    }
    for (const auto& [id, r] : p.rows) runs.insert(r.run_id);
    for (const auto& a : p.attrs) runs.insert(a.run_id);
    for (const auto& cl : p.closes) runs.insert(cl.run_id);
    for (const auto& d : p.declares) runs.insert(d.run_id);

    // Payloads go before the ACK can: a client reuses its buffer once the
    // ACK arrives, and the daemon then neither reads nor unmaps it (a shared-
    // memory block's release would unmap the pages of the buffer's next use).
    // The segment writers have already dropped the daemon's mapping of each
    // shared-memory block (store::RowBlock::shared_mapping), which is what
    // made this release costly.
    for (auto& [id, r] : p.rows) r.blocks.clear();
    const auto views_start = Clock::now();
    write_views(runs, campaigns);
    const double view_seconds = std::chrono::duration<double>(Clock::now() - views_start).count();
    failpoint("views-written");

    const double seconds = std::chrono::duration<double>(Clock::now() - c.t0).count();
    CommitOutcome out;
    out.ticket = c.ticket;
    out.bytes = p.bytes;
    out.rows = p.row_count;
    out.segments = rec.segments.size();
    out.seconds = seconds;
    for (const auto& cl : rec.clients) out.clients.emplace_back(cl.client_id, cl.committed_seq);
    for (const auto& o : p.opens) out.runs.emplace_back(o.client_id, o.handle, o.run_id);
    spdlog::debug(
        "commit{}: {} rows, {} bytes, {} segments in {:.3f} s (segments {:.3f} s, catalog {:.3f} s, "
        "views of {} runs {:.3f} s)",
        c.pipelined ? " (pipelined)" : "", out.rows, out.bytes, out.segments, seconds,
        c.write_seconds, c.catalog_seconds, runs.size(), view_seconds);
    {
        std::lock_guard lock(mutex_);
        done_ = std::max(done_, c.ticket);
        stats_.commits++;
        stats_.rows += p.row_count;
        stats_.bytes += p.bytes;
        stats_.segments += rec.segments.size();
        if (c.pipelined) stats_.pipelined++;
        stats_.last_at = unix_now();
        stats_.last_seconds = seconds;
        stats_.last_bytes = p.bytes;
        if (stats_.state != "ok") spdlog::info("commits succeed again");
        stats_.state = "ok";
        commit_outcomes_.push_back(std::move(out));
    }
    wake_();
}

void Committer::report_failure(std::exception_ptr error) {
    std::string what = "unknown error";
    bool full = false;
    try {
        std::rethrow_exception(error);
    } catch (const store::StoreError& e) {
        what = e.what();
        full = e.disk_full();
    } catch (const catalog::CatalogError& e) {
        what = e.what();
        full = e.disk_full();
    } catch (const fs::filesystem_error& e) {
        what = e.what();
        full = e.code() == std::errc::no_space_on_device;
    } catch (const std::exception& e) {
        what = e.what();
    }
    CommitOutcome out;
    out.ticket = 0;
    out.ok = false;
    out.code = full ? proto::ErrorCode::disk_full : proto::ErrorCode::io_error;
    out.message = std::string(full ? "disk full: " : "I/O error: ") + what;
    spdlog::error("commit failed, data kept in memory and retried: {}", what);
    {
        std::lock_guard lock(mutex_);
        stats_.state = full ? "disk_full" : "io_error";
        stats_.errors++;
        stats_.last_error = out.message;
        commit_outcomes_.push_back(std::move(out));
    }
    wake_();
}

void Committer::write_views(const std::set<std::int64_t>& runs,
                            const std::set<std::string>& campaigns) {
    // Views are derived from the catalog: a failure here loses nothing; the
    // view is retried with the next commit and rebuilt at every start.
    dirty_runs_.insert(runs.begin(), runs.end());
    dirty_campaigns_.insert(campaigns.begin(), campaigns.end());
    // All the runs' descriptions in one catalog read; if that fails, each
    // run is read on its own below, so one bad run holds back only itself.
    std::map<std::int64_t, RunView> read;
    try {
        const std::vector<std::int64_t> ids(dirty_runs_.begin(), dirty_runs_.end());
        for (auto& v : catalog_.run_views(ids)) read.emplace(v.run_id, std::move(v));
    } catch (const std::exception&) {
    }
    // Each view is built here (HDF5) and saved by the saver's thread
    // (create, write, rename: on ext4 the file creation alone took half of
    // the views' time in W3 x 64), so one view is saved while the next is
    // built. All are saved before this returns.
    std::set<std::int64_t> failed;
    ViewSaver saver;
    for (const std::int64_t id : dirty_runs_) {
        try {
            auto found = read.find(id);
            saver.save(id, store::run_view_image(config_.data_dir, found != read.end()
                                                                       ? found->second
                                                                       : catalog_.run_view(id)));
        } catch (const std::exception& e) {
            spdlog::warn("view of run {} not rewritten, will retry: {}", id, e.what());
            failed.insert(id);
        }
    }
    for (const auto& [id, message] : saver.finish()) {
        spdlog::warn("view of run {} not rewritten, will retry: {}", id, message);
        failed.insert(id);
    }
    dirty_runs_ = std::move(failed);
    for (auto it = dirty_campaigns_.begin(); it != dirty_campaigns_.end();) {
        try {
            auto ids = catalog_.campaign_runs(*it);
            store::write_campaign_view(config_.data_dir, *it, ids);
            it = dirty_campaigns_.erase(it);
        } catch (const std::exception& e) {
            spdlog::warn("view of campaign {} not rewritten, will retry: {}", *it, e.what());
            ++it;
        }
    }
}

}  // namespace simsink::daemon
