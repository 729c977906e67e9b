// The staging buffer: everything the I/O thread has accepted and the writer
// thread has not yet committed. It is the single point of memory accounting:
// bytes() counts every payload byte held here or in a commit under way, and
// only release() after a successful commit gives them back.
//
// Thread safety: stage_*() are called by the I/O thread, take() and
// release() by the writer thread; all are internally synchronized. Payload
// memory is owned through shared pointers, so rows received from the network
// are written to HDF5 without being copied.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "catalog.hpp"
#include "records.hpp"

namespace simsink::daemon {

// A received payload frame: `data` stays valid while `owner` lives.
struct Payload {
    std::shared_ptr<const void> owner;
    const void* data = nullptr;
    std::size_t bytes = 0;
    std::uint64_t rows = 0;
    // The bytes are in a shared mapping of a client's arena (the shm lane):
    // dropping their page-table entries (MADV_DONTNEED) loses nothing.
    bool shared_mapping = false;
};

// The rows of one stream staged since the last take(): contiguous stream
// rows [first_row, first_row + rows).
struct StagedRows {
    std::string campaign;
    std::int64_t run_id = 0;
    StreamKind kind = StreamKind::stream;
    DType dtype = DType::float64;
    Shape shape;
    std::uint64_t first_row = 0;
    std::uint64_t rows = 0;
    std::vector<Payload> blocks;
};

// What one commit makes durable. Also the unit the writer retries: a commit
// that failed is merged with what was staged since, and tried again.
struct PendingCommit {
    std::vector<catalog::RunOpen> opens;
    std::vector<catalog::StreamDeclare> declares;
    std::vector<catalog::AttrUpdate> attrs;
    std::vector<catalog::RunClose> closes;
    std::map<std::int64_t, StagedRows> rows;                 // by stream id
    std::map<std::string, catalog::ClientProgress> clients;  // by client id
    std::uint64_t bytes = 0;  // payload bytes counted in StagingBuffer::bytes()
    std::uint64_t row_count = 0;

    bool empty() const noexcept {
        return opens.empty() && declares.empty() && attrs.empty() && closes.empty() &&
               rows.empty() && clients.empty();
    }
    // Appends `later` (staged after this one) to this one.
    void merge(PendingCommit&& later);
};

class StagingBuffer {
  public:
    // One client message is staged all or nothing as far as the writer can
    // see: between begin_message() and end_message() the stage_* calls
    // collect into the message, and end_message() moves it into the buffer
    // under one lock. Otherwise take() could run between two blocks of one
    // APPEND, or between its blocks and its seq (stage_progress), and
    // commit part of a message without its seq: after a crash the client
    // resends the whole message and the part already committed is stored
    // twice (found by tests/fault/crash_harness.py). Outside a message each
    // stage_* call applies at once. I/O thread only, like every stage_*.
    void begin_message();
    void end_message();
    // begin_message() now, end_message() when the scope ends, however.
    class MessageScope {
      public:
        explicit MessageScope(StagingBuffer& buffer) : buffer_(buffer) { buffer_.begin_message(); }
        ~MessageScope() { buffer_.end_message(); }
        MessageScope(const MessageScope&) = delete;
        MessageScope& operator=(const MessageScope&) = delete;

      private:
        StagingBuffer& buffer_;
    };

    void stage_open(catalog::RunOpen open);
    void stage_declare(catalog::StreamDeclare declare);
    void stage_attrs(catalog::AttrUpdate attrs);
    void stage_close(catalog::RunClose close);
    // `first_row` must follow the rows already staged for that stream.
    void stage_rows(std::int64_t stream_id, const StagedRows& meta, std::uint64_t first_row,
                    Payload payload);
    // Records that the client has processed everything up to `seq`.
    void stage_progress(const std::string& client_id, std::uint64_t seq, const std::string& host,
                        std::int64_t pid, double now);

    // Hands everything staged so far to the writer; the buffer starts empty.
    PendingCommit take();
    // Called by the writer after a successful commit of `bytes`.
    void release(std::uint64_t bytes) noexcept { bytes_.fetch_sub(bytes); }

    std::uint64_t bytes() const noexcept { return bytes_.load(); }  // staged + in commit
    std::uint64_t staged_bytes() const;                             // not yet taken
    bool has_staged() const;

  private:
    // Calls fn(PendingCommit&) on the open message, or on current_ under the lock.
    template <class Fn>
    void with_target(Fn&& fn);

    mutable std::mutex mutex_;
    PendingCommit current_;
    std::atomic<std::uint64_t> bytes_{0};
    // The message being staged (I/O thread only, no lock).
    bool in_message_ = false;
    PendingCommit message_;
};

}  // namespace simsink::daemon
