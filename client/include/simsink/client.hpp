// libsimsink: the C++ client of simsinkd.
//
//   simsink::Client client("tcp://master:5555");
//   simsink::Run run = client.open_run("sweep", {{"nx", 64}, {"method", "dopri5"}});
//   run.record("t", 0.5);                              // one scalar row
//   run.record("y", std::span<const double>(y, 100));  // one 1-D row
//   run.record("qhat", qhat, {64, 33});                // one n-d row
//   run.put("grid/x", x, {64});                        // a write-once array
//   run.close({{"energy", 1.23}});
//   client.flush();                                    // everything above is durable
//
// What the library does for you: record() copies the row into a staging
// batch and returns; a background thread ships sealed batches to the daemon,
// keeps every message until the daemon acknowledges that it is committed to
// disk, and resends after reconnects and daemon restarts (the daemon drops
// duplicates, so a resend never duplicates rows). See proto/PROTOCOL.md.
//
// Thread safety: a Client and its Runs may be used from several threads at
// once; calls are serialized internally by one mutex per Client.
//
// Blocking: record(), put(), set_attrs(), open_run(), close() and fail() never
// wait on the network or the disk, except when the bytes kept for resend
// reach Options::max_unacked_bytes (then they wait for acknowledgements, or
// throw Error(BUSY) with Options::blocking = false). flush() and Run::id()
// wait for the daemon.
//
// fork(): a Client must not be used across fork(). A child process creates
// its own Client (the parent's background thread does not exist in the
// child).
//
// This header includes no ZeroMQ or JSON header; the implementation is
// private (pimpl).
#pragma once

#include <chrono>
#include <complex>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace simsink {

// ---- errors -----------------------------------------------------------------

// Mirrors the error codes of proto/PROTOCOL.md section 7 (same numbers; the
// C API returns them negated). Never renumber.
enum class ErrorCode : int {
    ok = 0,
    bad_frame = 1,
    bad_magic = 2,
    bad_version = 3,
    bad_type = 4,
    bad_meta = 5,
    need_hello = 6,
    out_of_order = 7,
    unknown_run = 8,
    unknown_stream = 9,
    run_closed = 10,
    bad_name = 11,
    bad_dtype = 12,
    bad_shape = 13,
    dtype_mismatch = 14,
    shape_mismatch = 15,
    row_size = 16,
    array_exists = 17,
    too_large = 18,
    credit_exceeded = 19,
    disk_full = 20,
    io_error = 21,
    shutting_down = 22,
    internal = 23,
    timeout = 24,       // client side: flush()/id() timed out
    busy = 25,          // client side: non-blocking record() would block
    closed = 26,        // client side: Run or Client already closed, or moved from
    bad_argument = 27,  // client side: invalid argument to an API call
    duplicate = 28,
    bad_shm = 29,  // internal to the client: it falls back to copying
};

// "DTYPE_MISMATCH", "BAD_NAME", ...; "UNKNOWN" for a value outside the enum.
std::string_view error_name(ErrorCode code) noexcept;

// Every failure of this library. what() is "<CODE>: <message>"; message()
// is the message alone (for errors reported by the daemon, the daemon's
// message, prefixed with the campaign/run/key it concerns).
class Error : public std::runtime_error {
  public:
    Error(ErrorCode code, const std::string& message);
    ErrorCode code() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }

  private:
    ErrorCode code_;
    std::string message_;
};

// ---- element types ----------------------------------------------------------

// Element types of streams and arrays; the numbers are the wire codes
// (proto/PROTOCOL.md section 6) and the SIMSINK_* constants of simsink.h.
enum class DType : std::uint8_t {
    int8 = 1,
    int16 = 2,
    int32 = 3,
    int64 = 4,
    uint8 = 5,
    uint16 = 6,
    uint32 = 7,
    uint64 = 8,
    float32 = 9,
    float64 = 10,
    complex64 = 11,
    complex128 = 12,
    boolean = 13,
};

// Maps a C++ element type to its DType: dtype_of<double> == DType::float64.
// Elements are the integer types (by size and signedness, so int, long and
// long long all map), float, double, std::complex<float>, std::complex<double>
// and bool. Character types (char, char8_t, wchar_t, ...) and long double are
// not elements.
template <class T>
struct dtype_traits {};  // no `value`: not an element type

namespace detail {
template <class T>
concept CharType = std::same_as<T, char> || std::same_as<T, wchar_t> || std::same_as<T, char8_t> ||
    std::same_as<T, char16_t> || std::same_as<T, char32_t>;

template <class T>
constexpr DType integer_dtype() {
    constexpr bool s = std::is_signed_v<T>;
    if constexpr (sizeof(T) == 1) return s ? DType::int8 : DType::uint8;
    if constexpr (sizeof(T) == 2) return s ? DType::int16 : DType::uint16;
    if constexpr (sizeof(T) == 4) return s ? DType::int32 : DType::uint32;
    if constexpr (sizeof(T) == 8) return s ? DType::int64 : DType::uint64;
}
}  // namespace detail

template <std::integral T>
requires(!std::same_as<T, bool> && !detail::CharType<T> && sizeof(T) <= 8) struct dtype_traits<T> {
    static constexpr DType value = detail::integer_dtype<T>();
};
template <>
struct dtype_traits<float> {
    static constexpr DType value = DType::float32;
};
template <>
struct dtype_traits<double> {
    static constexpr DType value = DType::float64;
};
template <>
struct dtype_traits<std::complex<float>> {
    static constexpr DType value = DType::complex64;
};
template <>
struct dtype_traits<std::complex<double>> {
    static constexpr DType value = DType::complex128;
};
template <>
struct dtype_traits<bool> {
    static constexpr DType value = DType::boolean;
};

template <class T>
concept Element = requires {
    dtype_traits<std::remove_cv_t<T>>::value;
};

template <Element T>
inline constexpr DType dtype_of = dtype_traits<std::remove_cv_t<T>>::value;

// Bytes of one element; 0 for an invalid value.
std::size_t itemsize(DType t) noexcept;
// "float64", "complex128", "bool", ...
std::string_view dtype_name(DType t) noexcept;

inline constexpr std::size_t kMaxRank = 8;

// A shape argument: {64, 33}, a std::vector<std::uint64_t>, or a span.
// Holds at most kMaxRank dimensions inline (a longer shape is rejected with
// Error(BAD_SHAPE) by the call that receives it); no allocation.
class Dims {
  public:
    Dims() = default;
    Dims(std::initializer_list<std::uint64_t> dims) { assign(dims.begin(), dims.size()); }
    Dims(std::span<const std::uint64_t> dims) { assign(dims.data(), dims.size()); }
    Dims(const std::vector<std::uint64_t>& dims) { assign(dims.data(), dims.size()); }
    template <std::integral I>
    requires(!std::same_as<I, std::uint64_t>) Dims(const std::vector<I>& dims) {
        for (I d : dims) push(d < 0 ? ~std::uint64_t{0} : static_cast<std::uint64_t>(d));
    }

    std::size_t rank() const noexcept { return rank_; }
    // rank() > kMaxRank means "too many dimensions"; only the first kMaxRank are kept.
    const std::uint64_t* data() const noexcept { return dims_; }
    std::uint64_t operator[](std::size_t i) const noexcept { return dims_[i]; }

  private:
    void assign(const std::uint64_t* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) push(p[i]);
    }
    void push(std::uint64_t d) {
        if (rank_ < kMaxRank) dims_[rank_] = d;
        ++rank_;
    }
    std::uint64_t dims_[kMaxRank] = {};
    std::size_t rank_ = 0;
};

// ---- params, results, attributes --------------------------------------------

// One param, result or attribute value: an integer (any integer type,
// stored as int64), a float (stored as double), a bool, a string, or a flat
// vector of doubles, int64s or strings. A string literal is a string, never
// a bool. An unsigned value above INT64_MAX throws Error(BAD_ARGUMENT).
class Value {
  public:
    using Storage = std::variant<std::int64_t, double, bool, std::string, std::vector<double>,
                                 std::vector<std::int64_t>, std::vector<std::string>>;

    template <std::integral T>
    requires(!std::same_as<T, bool>) Value(T v) : v_(to_int64(v)) {}
    template <std::floating_point T>
    Value(T v) : v_(static_cast<double>(v)) {}
    template <std::same_as<bool> T>  // a template, so pointers never convert to bool here
    Value(T v) : v_(v) {}
    Value(const char* s);
    Value(std::string s);
    Value(std::string_view s);
    Value(std::vector<double> v);
    Value(std::vector<std::int64_t> v);
    Value(std::vector<std::string> v);
    template <std::floating_point T>
    requires(!std::same_as<T, double>) Value(const std::vector<T>& v)
        : v_(std::vector<double>(v.begin(), v.end())) {}
    template <std::integral T>
    requires(!std::same_as<T, std::int64_t> && !std::same_as<T, bool>)
        Value(const std::vector<T>& v)
        : v_(std::vector<std::int64_t>()) {
        auto& out = std::get<std::vector<std::int64_t>>(v_);
        out.reserve(v.size());
        for (T x : v) out.push_back(to_int64(x));
    }

    const Storage& storage() const noexcept { return v_; }
    template <class T>
    bool holds() const noexcept {
        return std::holds_alternative<T>(v_);
    }
    template <class T>
    const T& get() const {
        return std::get<T>(v_);
    }

  private:
    template <std::integral T>
    static std::int64_t to_int64(T v) {
        if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
            if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                out_of_range(static_cast<std::uint64_t>(v));
        }
        return static_cast<std::int64_t>(v);
    }
    [[noreturn]] static void out_of_range(std::uint64_t v);
    Storage v_;
};

// Named values: params of a run, its results, attributes. Built from a
// braced list {{"nx", 64}, {"method", "dopri5"}} or from any map-like range
// of (name, value) pairs (std::map<std::string, double>, ...). Names must
// match [A-Za-z_][A-Za-z0-9_.-]* (checked when the Fields are used).
class Fields {
  public:
    using Item = std::pair<std::string, Value>;

    Fields() = default;
    Fields(std::initializer_list<Item> items) : items_(items) {}
    template <std::ranges::input_range M>
    requires requires(std::ranges::range_reference_t<const M> p) {
        std::string_view(p.first);
        Value(p.second);
    }
    Fields(const M& m) {
        for (const auto& p : m)
            items_.emplace_back(std::string(std::string_view(p.first)), p.second);
    }

    void add(std::string name, Value v) { items_.emplace_back(std::move(name), std::move(v)); }
    bool empty() const noexcept { return items_.empty(); }
    std::size_t size() const noexcept { return items_.size(); }
    auto begin() const noexcept { return items_.begin(); }
    auto end() const noexcept { return items_.end(); }

  private:
    std::vector<Item> items_;
};

// ---- options ------------------------------------------------------------------

struct Options {
    // Daemon ingest endpoint, "tcp://host:port" or "ipc:///path"; used by
    // Client(Options) (the Client(endpoint, options) constructor overrides it).
    std::string endpoint;
    // Bytes of sealed messages kept until the daemon acknowledges them (for
    // resend). When reached, record() waits for acknowledgements, or throws
    // Error(BUSY) if `blocking` is false. A single message larger than this
    // is still accepted when nothing else is pending. Keep it many times
    // batch_bytes: a record() that waits asks the daemon to commit at once,
    // so with a window of a few batches recording waits for a commit (an
    // fsync) every few batches.
    std::uint64_t max_unacked_bytes = std::uint64_t{256} << 20;
    bool blocking = true;
    // A batch of staged rows is sealed into one APPEND message when its
    // bytes reach batch_bytes ...
    std::uint64_t batch_bytes = std::uint64_t{1} << 20;
    // ... or when it is older than linger (sealed by the background thread).
    std::chrono::milliseconds linger{50};
    // How long flush() and Run::id() wait; empty = forever (and across
    // daemon restarts).
    std::optional<std::chrono::milliseconds> timeout;
    // PING after this long without traffic; HELLO again after 3x without
    // any reply (the daemon may have restarted).
    std::chrono::milliseconds heartbeat{1000};
    // How long ~Client() waits for unacknowledged data before giving up
    // (what is still unacknowledged then is reported on stderr and lost).
    std::chrono::milliseconds close_timeout{10000};
    // Shown by the daemon's status (HELLO "name"); optional.
    std::string name;
    // For a daemon on this host (ipc:// or tcp:// to a loopback address):
    // keep batches in shared memory that the daemon reads in place, instead
    // of copying them through the socket (proto/PROTOCOL.md 1.1). The memory
    // is lent by the daemon (warm when an earlier client of this user left
    // it); the constructor waits at most 0.2 s for the daemon's first answer
    // so that even the first batches use it. Falls back to memory of its own,
    // or to copying, by itself when the daemon does not offer it.
    bool shared_memory = true;
};

// Counters for diagnostics and tests; a consistent snapshot.
struct ClientStats {
    std::string client_id;        // 32 hex chars
    std::uint64_t last_seq = 0;   // highest seq assigned to a sealed message
    std::uint64_t acked_seq = 0;  // highest seq the daemon acknowledged
    std::uint64_t unacked_messages = 0;
    std::uint64_t unacked_bytes = 0;
    std::uint64_t staged_bytes = 0;  // recorded, not yet sealed
    bool connected = false;          // a WELCOME was received and no restart is suspected since
    std::uint64_t welcomes = 0;      // WELCOMEs received (1 + reconnects/daemon restarts)
    std::uint64_t resent_messages = 0;
    bool shared_memory = false;     // the current daemon reads our batches from shared memory
    std::uint64_t shm_messages = 0;  // APPENDs sent as shared-memory ranges
};

namespace detail {
class ClientCore;
struct RunState;
}  // namespace detail

class Run;

// ---- Client -------------------------------------------------------------------

// A connection to one daemon, with one background I/O thread. Move-only.
// Constructing does not wait for the daemon (it may start later); a
// malformed endpoint throws Error(BAD_ARGUMENT).
class Client {
  public:
    explicit Client(std::string_view endpoint, Options options = {});
    explicit Client(Options options);
    // Seals what is staged, waits up to Options::close_timeout for the daemon
    // to acknowledge everything, then stops the I/O thread. Never throws;
    // data still unacknowledged and errors never raised are reported on
    // stderr. Runs that outlive their Client throw Error(CLOSED) on use.
    ~Client();
    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Starts a run of `campaign` (name: [A-Za-z0-9_.+-], 1-128 bytes, not
    // starting with '.'). Does not wait for the daemon. Throws
    // Error(BAD_NAME) for an invalid campaign or field name,
    // Error(BAD_ARGUMENT) for a value JSON cannot carry (NaN, infinity).
    Run open_run(std::string_view campaign, const Fields& params = {}, const Fields& attrs = {});

    // Returns when every message sealed before the call (and the rows staged
    // before it, which it seals) is committed by the daemon. Waits
    // Options::timeout (default forever, across daemon restarts); on timeout
    // throws Error(TIMEOUT), or Error(DISK_FULL / IO_ERROR) if the daemon
    // reported that its commits fail. Raises (once) any error the daemon
    // reported asynchronously and not yet raised elsewhere.
    void flush();
    void flush(std::chrono::milliseconds timeout);

    // What the destructor does, but reporting failure: seals, waits up to
    // Options::close_timeout for acknowledgements, stops the I/O thread,
    // then throws what that flush threw (Error(TIMEOUT): data not
    // acknowledged is lost; or a pending daemon error). The Client is
    // closed (empty) afterwards either way.
    void close();

    ClientStats stats() const;
    const std::string& client_id() const;  // 32 lowercase hex chars
    const Options& options() const;

  private:
    std::shared_ptr<detail::ClientCore> core_;
};

// ---- Run --------------------------------------------------------------------

// One run: streams of rows, write-once arrays, attributes, a final status.
// Move-only. Destroying a Run without close()/fail() leaves the run open:
// the daemon marks it `lost` once the client has been silent for its
// lost-timeout. Every call throws Error(CLOSED) after close()/fail(), on a
// moved-from Run, or when its Client is gone.
//
// Keys name streams and arrays: '/'-separated components of
// [A-Za-z0-9_.+-], none empty, "." or "..", at most 255 bytes; an invalid
// key throws Error(BAD_NAME) naming it.
//
// Data passed to record(), record_rows() and put() is copied before the
// call returns; the caller keeps ownership. Elements are sent in host byte
// order, which must be little-endian.
//
// Errors the daemon reports later for this run's messages (e.g. BAD_NAME for
// its campaign) are thrown by the next call on this Run (before it does
// anything) or by Client::flush(), whichever comes first, once.
class Run {
  public:
    Run() noexcept;
    ~Run();
    Run(Run&&) noexcept;
    Run& operator=(Run&&) noexcept;
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;

    // Appends one row to stream `key`. The first record of a key fixes its
    // dtype and row shape; a later record with another dtype throws
    // Error(DTYPE_MISMATCH), another row shape Error(SHAPE_MISMATCH), at that
    // call, recording nothing.
    template <Element T>
    void record(std::string_view key, const T& value) {  // a scalar row (rank 0)
        record_raw(key, dtype_of<T>, &value, 1, Dims{});
    }
    template <Element T, std::size_t N>
    void record(std::string_view key, std::span<T, N> row) {  // a 1-D row
        record_raw(key, dtype_of<T>, row.data(), 1, Dims{row.size()});
    }
    template <Element T, class A>
    requires(!std::same_as<T, bool>)  // std::vector<bool> is not contiguous
        void record(std::string_view key, const std::vector<T, A>& row) {
        record_raw(key, dtype_of<T>, row.data(), 1, Dims{row.size()});
    }
    template <Element T>
    void record(std::string_view key, const T* row, Dims row_shape) {  // an n-d row, C order
        record_raw(key, dtype_of<T>, row, 1, row_shape);
    }
    // Appends `nrows` rows of shape `row_shape` (C order, contiguous) in one
    // call; nrows = 0 only declares the stream.
    template <Element T>
    void record_rows(std::string_view key, const T* rows, std::uint64_t nrows, Dims row_shape) {
        record_raw(key, dtype_of<T>, rows, nrows, row_shape);
    }
    // Writes the write-once array `key` (any rank 0-8, C order). A second
    // put() of the same key throws Error(ARRAY_EXISTS).
    template <Element T>
    void put(std::string_view key, const T* data, Dims shape) {
        put_raw(key, dtype_of<T>, data, shape);
    }

    // Untyped forms (the C API and bindings use them): `data` holds
    // nrows x product(row_shape) elements of `dtype`.
    void record_raw(std::string_view key, DType dtype, const void* data, std::uint64_t nrows,
                    Dims row_shape);
    void put_raw(std::string_view key, DType dtype, const void* data, Dims shape);

    // Attributes of stream/array `key` (before or after its first record:
    // the daemon applies attributes of a key when the key is declared), or
    // of the run itself. A later value of the same name replaces the
    // earlier one.
    void set_attrs(std::string_view key, const Fields& attrs);
    void set_attrs(const Fields& attrs);

    // Ends the run: status `finished` with `results`, or `failed` with a
    // reason. Does not wait (Client::flush() does). After sending, throws a
    // pending daemon error of this run if there is one.
    void close(const Fields& results = {});
    void fail(std::string_view reason);

    // The global run id assigned by the daemon. Blocks until the OPEN_RUN is
    // committed (asks the daemon to commit now); waits Options::timeout.
    std::int64_t id();
    // The client-chosen run handle (1, 2, ...), known at once.
    std::uint32_t handle() const;
    const std::string& campaign() const;
    // False after close()/fail(), for an empty Run, or once the Client is closed.
    bool is_open() const noexcept;

  private:
    friend class Client;
    Run(std::shared_ptr<detail::ClientCore> core, detail::RunState* state) noexcept;
    std::shared_ptr<detail::ClientCore> core_;
    detail::RunState* state_ = nullptr;
};

// The library's version, "0.1.0".
std::string_view version() noexcept;

}  // namespace simsink
