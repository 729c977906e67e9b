// The state behind a simsink::Client, shared by the user's threads and the
// background I/O thread.
//
// Locking: one mutex, `mu_`, guards everything below that is not marked
// otherwise. User calls take it once (record() takes it exactly once, for a
// few hundred nanoseconds); the I/O thread takes it to seal stale batches,
// to pick messages to send and to apply ACKs. Nothing blocks while holding
// it: ZeroMQ sends happen outside it.
//
// Message life cycle: record() copies rows into the staging batch (one
// block per stream, buffers from the pool). A control operation, a full
// batch (Options::batch_bytes) or the linger timer seals the batch into an
// APPEND. Every sealed message gets the next seq and goes to `log_`, the
// unacknowledged messages in seq order; the I/O thread sends from it and
// frees its front on ACK. Resends reuse the same bytes.
#pragma once

#include <simsink/client.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "buffer_pool.hpp"
#include "meta.hpp"
#include "wire.hpp"

namespace simsink::detail {

using Clock = std::chrono::steady_clock;

class IoThread;

struct PendingError {
    ErrorCode code;
    std::string message;
};

// One sealed, sequenced message, kept until acknowledged.
struct OutMessage {
    std::uint64_t seq = 0;
    proto::MsgType type{};
    std::vector<std::uint8_t> frame1;  // metadata JSON, or APPEND's block table
    std::vector<BufferRef> payloads;   // APPEND payload frames
    std::uint64_t bytes = 0;           // all frames including the header (credit counts these)
    std::uint32_t run = 0;             // run handle it concerns; 0 for an APPEND of several runs
    std::string what;                  // "DECLARE of 'y'", for error messages
};

struct RunState;

struct Stream {
    std::uint32_t handle = 0;
    RunState* run = nullptr;
    std::string key;
    proto::DType dtype{};
    bool is_array = false;
    std::uint32_t rank = 0;
    std::uint64_t dims[kMaxRank] = {};
    std::uint64_t row_bytes = 0;  // bytes of one row (of the whole array for an array)
    // Staging: the block of this stream in the current batch is
    // batch_blocks_[block_index] when staged_batch == the current batch number.
    std::uint64_t staged_batch = 0;
    std::uint32_t block_index = 0;
    std::size_t last_block_bytes = 0;  // sizes the next block's buffer
};

struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

struct RunState {
    std::uint32_t handle = 0;
    std::string campaign;
    std::uint64_t open_seq = 0;
    std::int64_t id = -1;  // global run id, once the daemon reported it
    bool closed = false;
    // Keys are looked up by string_view: no allocation per record.
    std::unordered_map<std::string, std::unique_ptr<Stream>, KeyHash, std::equal_to<>> streams;
    // The last streams that were looked up and not found here, newest
    // first: a loop that records a few keys in turn finds each here with a
    // length and byte compare instead of hashing the key (hashing took 12%
    // of the client's CPU in W1).
    std::array<Stream*, 4> recent{};

    // The stream or array of `key`, or null.
    Stream* find(std::string_view key) noexcept {
        for (std::size_t i = 0; i < recent.size() && recent[i]; ++i)
            if (std::string_view(recent[i]->key) == key) return recent[i];
        auto it = streams.find(key);
        if (it == streams.end()) return nullptr;
        std::copy_backward(recent.begin(), recent.end() - 1, recent.end());
        recent[0] = it->second.get();
        return recent[0];
    }
    std::deque<PendingError> errors;  // reported by the daemon, not raised yet
};

class ClientCore {
  public:
    // Creates the socket and connects (throws Error(BAD_ARGUMENT) for a bad
    // endpoint), then starts the I/O thread.
    explicit ClientCore(Options options);
    ~ClientCore();
    ClientCore(const ClientCore&) = delete;
    ClientCore& operator=(const ClientCore&) = delete;

    // Seals, waits up to close_timeout for acknowledgements, stops the I/O
    // thread and the ZeroMQ context; then throws what that flush threw
    // (TIMEOUT, a pending daemon error). Idempotent. Afterwards every
    // operation throws Error(CLOSED).
    void close();
    // close() that never throws: reports failures and errors that no call
    // raised on stderr.
    void shutdown() noexcept;

    RunState* open_run(std::string_view campaign, proto::Json params, proto::Json attrs);
    // Appends nrows rows (nrows = 0: only declares) or writes an array.
    void record(RunState* run, std::string_view key, DType dtype, const void* data,
                std::uint64_t nrows, const Dims& row_shape);
    void put(RunState* run, std::string_view key, DType dtype, const void* data, const Dims& shape);
    void set_attrs(RunState* run, const std::string* key, proto::Json attrs);
    void close_run(RunState* run, bool failed, proto::Json results, std::string_view reason);
    std::int64_t run_id(RunState* run);
    void flush(std::optional<std::chrono::milliseconds> timeout);
    ClientStats stats() const;
    bool is_open(const RunState* run) const noexcept {
        std::lock_guard lock(mu_);
        return !closed_ && !run->closed;
    }

    const Options& options() const noexcept { return opts_; }
    // Bytes of the shared-memory arena: room for max_unacked_bytes in
    // power-of-two buffers, and a batch more.
    std::uint64_t arena_bytes() const noexcept {
        return 2 * opts_.max_unacked_bytes + 2 * opts_.batch_bytes;
    }
    // How long construction waits for the daemon to lend an arena.
    static constexpr std::chrono::milliseconds kArenaWait{200};
    const std::string& client_id_hex() const noexcept { return id_hex_; }

  private:
    friend class IoThread;

    // All *_locked functions expect mu_ held.
    void check_open_locked() const;
    void raise_run_error_locked(RunState* run);
    void raise_any_error_locked();
    Stream* declare_locked(RunState* run, std::string_view key, DType dtype, const Dims& shape,
                           bool is_array);
    static std::optional<std::uint64_t> row_bytes_of(DType dtype, const Dims& shape);
    void check_frame_size_locked(std::string_view key, std::uint64_t nrows,
                                 std::uint64_t row_bytes) const;
    void stage_locked(Stream* s, const void* data, std::uint64_t nrows, std::uint64_t nbytes);
    void wait_for_room_locked(std::unique_lock<std::mutex>& lock);
    void seal_batch_locked();
    std::uint64_t push_control_locked(proto::MsgType type, const proto::Json& meta,
                                      std::uint32_t run, std::string what);
    void request_flush_locked(std::uint64_t upto);
    // Waits until pred() or a client-level error or the deadline; false on timeout.
    template <class Pred>
    bool wait_locked(std::unique_lock<std::mutex>& lock,
                     std::optional<std::chrono::milliseconds> timeout, Pred pred);
    [[noreturn]] void throw_timeout_locked(const std::string& what);
    std::string describe_run(const RunState* run) const;
    void attach_error_locked(std::uint64_t seq, ErrorCode code, const std::string& message,
                             const proto::Json& meta);

    const Options opts_;
    std::uint8_t id_[16] = {};
    std::string id_hex_;

    // Declared first so that it is destroyed last: buffers in log_ and in
    // ZeroMQ's queues point back to it.
    BufferPool pool_;

    mutable std::mutex mu_;
    std::condition_variable cv_;  // ACKs, WELCOMEs, errors: wakes flush(), id(), record()

    bool closed_ = false;
    std::unordered_map<std::uint32_t, std::unique_ptr<RunState>> runs_;
    std::unordered_map<std::uint32_t, Stream*> streams_by_handle_;
    std::uint32_t next_run_handle_ = 1;
    std::uint32_t next_stream_handle_ = 1;

    // The staging batch.
    struct StagedBlock {
        Stream* stream;
        Buffer* buf;  // one reference, owned here until sealed
        std::size_t used;
        std::uint64_t rows;
    };
    std::vector<StagedBlock> batch_blocks_;
    std::uint64_t batch_number_ = 1;
    std::uint64_t staged_bytes_ = 0;
    Clock::time_point batch_started_{};

    // Sealed messages not acknowledged yet, seq order: log_[i].seq ==
    // log_.front().seq + i.
    std::deque<OutMessage> log_;
    std::uint64_t log_bytes_ = 0;
    std::uint64_t last_seq_ = 0;
    std::uint64_t acked_seq_ = 0;
    std::uint64_t flush_target_ = 0;  // highest seq a flush()/id() waits for
    std::uint64_t max_frame_ = std::uint64_t{1} << 30;

    std::deque<PendingError> client_errors_;  // not attributable to one run
    std::optional<PendingError> notice_;      // DISK_FULL/IO_ERROR notice, until the next ACK
    bool connected_ = false;
    std::uint64_t welcomes_ = 0;
    std::uint64_t resent_ = 0;
    bool shm_active_ = false;  // set by the I/O thread under mu_
    std::uint64_t shm_messages_ = 0;
    bool io_failed_ = false;  // the I/O thread died (a bug): fail instead of waiting forever

    // Destroyed first: stops the thread and the ZeroMQ context.
    std::unique_ptr<IoThread> io_;
};

// Turns Fields into a JSON object, checking names and values. Throws
// Error(BAD_NAME) / Error(BAD_ARGUMENT) naming `what` ("params", ...).
proto::Json fields_to_json(const Fields& fields, const char* what);
// Checks a JSON object given by the C API as params/results/attrs.
void check_fields_json(const proto::Json& fields, const char* what);

// Converts a proto::ProtocolError into an Error.
[[noreturn]] void rethrow_protocol(const proto::ProtocolError& e);

}  // namespace simsink::detail
