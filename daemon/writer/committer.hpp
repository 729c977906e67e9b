// The writer thread: the only owner of the read-write Catalog and the only
// code that calls HDF5 to write. It takes what the I/O thread staged, writes
// one segment per campaign (tmp, fsync, rename, fsync dir; a large commit
// as several segments whose raw data helper threads write at once, see
// store::SegmentBatch, which call no HDF5), records it all
// in one catalog transaction, rewrites the affected views, then reports the
// outcome so the I/O thread can acknowledge clients. Commits are pipelined:
// while one's views are rewritten, the next one's raw data may already be
// written. A commit that fails (disk full, I/O error) acknowledges nothing;
// its data stays in memory and is retried, merged with whatever was staged
// since.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "buffer/staging_buffer.hpp"
#include "catalog.hpp"
#include "config.hpp"
#include "segment.hpp"
#include "wire.hpp"

namespace simsink::daemon {

class Compactor;

struct CommitOutcome {
    std::uint64_t ticket = 0;  // answers every commit request with a ticket <= this
    bool ok = true;
    proto::ErrorCode code = proto::ErrorCode::ok;
    std::string message;
    std::vector<std::pair<std::string, std::uint64_t>> clients;  // client id, committed seq
    std::vector<std::tuple<std::string, std::uint32_t, std::int64_t>> runs;  // client, handle, id
    std::uint64_t bytes = 0;
    std::uint64_t rows = 0;
    std::size_t segments = 0;
    double seconds = 0;
};

struct CompactOutcome {
    std::string routing_id;
    std::uint64_t request = 0;
    bool ok = true;
    std::string message;
    Json result;
};

// Counters for STATUS; a copy taken under the committer's lock.
struct CommitStats {
    std::uint64_t commits = 0;
    std::uint64_t rows = 0;
    std::uint64_t bytes = 0;
    std::uint64_t segments = 0;
    std::uint64_t pipelined = 0;  // commits started while the one before was published
    double last_at = 0;
    double last_seconds = 0;
    std::uint64_t last_bytes = 0;
    std::string state = "ok";  // ok | disk_full | io_error
    std::uint64_t errors = 0;
    std::string last_error;
};

class Committer {
  public:
    // `wake` is called from the writer thread whenever outcomes are ready.
    Committer(const Config& config, catalog::Catalog catalog, std::int64_t max_segment_id,
              StagingBuffer& buffer, std::function<void()> wake);
    ~Committer();
    Committer(const Committer&) = delete;
    Committer& operator=(const Committer&) = delete;

    void start();
    // Commits what is staged, reports it, and joins the thread.
    void stop();

    // Asks for a commit of everything staged so far; the outcome with a
    // ticket >= the returned one answers it.
    std::uint64_t request_commit();
    void request_compact(std::string routing_id, std::uint64_t request, std::string campaign);

    std::vector<CommitOutcome> take_commit_outcomes();
    std::vector<CompactOutcome> take_compact_outcomes();
    CommitStats stats() const;

    // Set when the writer thread died of a bug; main rethrows it.
    std::exception_ptr failure() const;

  private:
    struct InFlight;

    void run();
    // Commits what is staged (and, pipelined, whatever becomes due while it
    // is being published). False when a commit failed: its data is kept in
    // leftover_ and retried.
    bool commit_once(std::uint64_t ticket);
    // Is a commit due now, beyond the one taken with `ticket`?
    bool commit_due(std::uint64_t ticket) const;
    // Plans c's segments, creates them (HDF5) and starts writing their raw
    // data on helper threads. Returns the error, if any; c.p is untouched.
    std::exception_ptr start_segments(InFlight& c);
    // Once c's segments are in place: the catalog transaction. Returns the
    // error, if any, having removed c's segments; c.p then holds all of c's
    // data still.
    std::exception_ptr record_catalog(InFlight& c, const std::vector<store::SegmentInfo>& infos);
    // Once c is in the catalog: its staged data released, its views
    // rewritten, its outcome reported. c is committed whatever happens here:
    // a view that cannot be saved is retried with the next commit.
    void publish(InFlight& c);
    void report_failure(std::exception_ptr error);
    void write_views(const std::set<std::int64_t>& runs, const std::set<std::string>& campaigns);

    const Config& config_;
    catalog::Catalog catalog_;  // writer thread only
    std::int64_t next_segment_id_;
    StagingBuffer& buffer_;
    std::function<void()> wake_;
    std::unique_ptr<Compactor> compactor_;

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::uint64_t requested_ = 0;
    std::uint64_t done_ = 0;
    std::deque<std::tuple<std::string, std::uint64_t, std::string>> compact_requests_;
    std::vector<CommitOutcome> commit_outcomes_;
    std::vector<CompactOutcome> compact_outcomes_;
    CommitStats stats_;
    std::exception_ptr failure_;

    PendingCommit leftover_;             // a failed commit, retried first (writer thread only)
    std::set<std::int64_t> dirty_runs_;  // views to rewrite after a failed view write
    std::set<std::string> dirty_campaigns_;
    std::thread thread_;
};

}  // namespace simsink::daemon
