#include "client_core.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "io_thread.hpp"

namespace simsink::detail {

static_assert(std::endian::native == std::endian::little,
              "the wire carries little-endian elements and the client sends host memory as is");
static_assert(sizeof(bool) == 1);

namespace {

std::string quote_name(std::string_view s) {
    std::string out = "'";
    for (char c : s.substr(0, 128)) out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
    if (s.size() > 128) out += "...";
    return out + "'";
}

std::string shape_string(const std::uint64_t* dims, std::size_t rank) {
    std::string s = "[";
    for (std::size_t i = 0; i < rank; ++i) {
        if (i) s += ", ";
        s += std::to_string(dims[i]);
    }
    return s + "]";
}

std::vector<std::uint8_t> to_bytes(const std::string& s) {
    return std::vector<std::uint8_t>(s.begin(), s.end());
}

}  // namespace

[[noreturn]] void rethrow_protocol(const proto::ProtocolError& e) {
    throw Error(static_cast<ErrorCode>(e.code()), e.what());
}

// ---- construction and shutdown ---------------------------------------------

ClientCore::ClientCore(Options options)
    : opts_(std::move(options)),
      pool_(static_cast<std::size_t>(opts_.max_unacked_bytes)) {
    if (opts_.endpoint.empty()) throw Error(ErrorCode::bad_argument, "endpoint is empty");
    if (opts_.heartbeat.count() <= 0)
        throw Error(ErrorCode::bad_argument, "Options::heartbeat must be positive");
    if (opts_.linger.count() < 0)
        throw Error(ErrorCode::bad_argument, "Options::linger must not be negative");
    std::random_device rd;
    for (int i = 0; i < 16; i += 4) {
        auto v = rd();
        std::memcpy(id_ + i, &v, 4);
    }
    static const char* hex = "0123456789abcdef";
    for (auto b : id_) {
        id_hex_ += hex[b >> 4];
        id_hex_ += hex[b & 15];
    }
    io_ = std::make_unique<IoThread>(*this, opts_.endpoint);
    io_->start();
    // A client on the daemon's host waits briefly for its first WELCOME, at
    // which the daemon lends it an arena (warm memory when an earlier client
    // of this user left some), so that even its first batches are in it.
    // Without an answer in time it makes its own arena and goes on.
    if (opts_.shared_memory && is_local_endpoint(opts_.endpoint) &&
        !pool_.wait_arena_settled(std::chrono::steady_clock::now() + kArenaWait))
        pool_.attach_arena(ShmArena::create(arena_bytes()));
}

ClientCore::~ClientCore() {
    shutdown();
}

void ClientCore::close() {
    {
        std::lock_guard lock(mu_);
        if (closed_) return;
    }
    std::exception_ptr failure;
    try {
        flush(opts_.close_timeout);
    } catch (...) {
        failure = std::current_exception();
    }
    {
        std::lock_guard lock(mu_);
        closed_ = true;
        cv_.notify_all();
    }
    io_->stop();
    if (failure) std::rethrow_exception(failure);
}

void ClientCore::shutdown() noexcept {
    try {
        close();
    } catch (const Error& e) {
        std::fprintf(stderr, "simsink: client %s closing: %s\n", id_hex_.c_str(), e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "simsink: client %s closing: %s\n", id_hex_.c_str(), e.what());
    }
    // Errors that no call raised: say so rather than drop them silently.
    std::lock_guard lock(mu_);
    for (const auto& e : client_errors_)
        std::fprintf(stderr, "simsink: unreported error: %s: %s\n",
                     std::string(error_name(e.code)).c_str(), e.message.c_str());
    client_errors_.clear();
    for (auto& [h, run] : runs_) {
        for (const auto& e : run->errors)
            std::fprintf(stderr, "simsink: unreported error: %s: %s\n",
                         std::string(error_name(e.code)).c_str(), e.message.c_str());
        run->errors.clear();
    }
}

// ---- checks and errors --------------------------------------------------------

void ClientCore::check_open_locked() const {
    if (closed_) throw Error(ErrorCode::closed, "the Client is closed");
    if (io_failed_)
        throw Error(ErrorCode::internal, "the client's I/O thread stopped; nothing more is sent");
}

std::string ClientCore::describe_run(const RunState* run) const {
    std::string s =
        "run " + std::to_string(run->handle) + " of campaign " + quote_name(run->campaign);
    if (run->id >= 0) s += " (run id " + std::to_string(run->id) + ")";
    return s;
}

void ClientCore::raise_run_error_locked(RunState* run) {
    if (run->errors.empty()) return;
    PendingError e = std::move(run->errors.front());
    run->errors.pop_front();
    throw Error(e.code, e.message);
}

void ClientCore::raise_any_error_locked() {
    if (!client_errors_.empty()) {
        PendingError e = std::move(client_errors_.front());
        client_errors_.pop_front();
        throw Error(e.code, e.message);
    }
    RunState* first = nullptr;
    for (auto& [h, run] : runs_)
        if (!run->errors.empty() && (!first || run->handle < first->handle)) first = run.get();
    if (first) raise_run_error_locked(first);
}

void ClientCore::attach_error_locked(std::uint64_t seq, ErrorCode code, const std::string& message,
                                     const proto::Json& meta) {
    const OutMessage* msg = nullptr;
    if (!log_.empty() && seq >= log_.front().seq && seq <= log_.back().seq)
        msg = &log_[seq - log_.front().seq];

    RunState* run = nullptr;
    std::string what = msg ? msg->what : std::string("message");
    auto find_run = [&](std::uint64_t h) -> RunState* {
        auto it = runs_.find(static_cast<std::uint32_t>(h));
        return it == runs_.end() ? nullptr : it->second.get();
    };
    if (auto it = meta.find("stream"); it != meta.end() && it->is_number_unsigned()) {
        auto s = streams_by_handle_.find(it->get<std::uint32_t>());
        if (s != streams_by_handle_.end()) {
            run = s->second->run;
            what += " (stream " + quote_name(s->second->key) + ")";
        }
    }
    if (!run)
        if (auto it = meta.find("run"); it != meta.end() && it->is_number_unsigned())
            run = find_run(it->get<std::uint64_t>());
    if (!run && msg && msg->run) run = find_run(msg->run);

    std::string text = what + " (seq " + std::to_string(seq) + ")";
    if (run) text += " of " + describe_run(run);
    text += ": " + message;
    if (run)
        run->errors.push_back({code, std::move(text)});
    else
        client_errors_.push_back({code, std::move(text)});
}

template <class Pred>
bool ClientCore::wait_locked(std::unique_lock<std::mutex>& lock,
                             std::optional<std::chrono::milliseconds> timeout, Pred pred) {
    auto done = [&] { return pred() || !client_errors_.empty() || closed_; };
    if (timeout)
        cv_.wait_for(lock, *timeout, done);
    else
        cv_.wait(lock, done);
    if (pred()) return true;
    if (!client_errors_.empty()) raise_any_error_locked();
    check_open_locked();
    return false;
}

void ClientCore::throw_timeout_locked(const std::string& what) {
    std::string detail = std::to_string(log_.size()) + " messages (" + std::to_string(log_bytes_) +
                         " bytes) unacknowledged by the daemon at " + opts_.endpoint;
    if (notice_)
        throw Error(notice_->code,
                    what + " timed out; " + detail + "; the daemon reports: " + notice_->message);
    if (!connected_) detail += " (no WELCOME from it yet)";
    throw Error(ErrorCode::timeout, what + " timed out; " + detail);
}

// ---- sealing --------------------------------------------------------------------

void ClientCore::seal_batch_locked() {
    if (batch_blocks_.empty()) return;
    OutMessage m;
    m.type = proto::MsgType::append;
    std::vector<proto::BlockEntry> entries;
    entries.reserve(batch_blocks_.size());
    m.payloads.reserve(batch_blocks_.size());
    m.run = batch_blocks_.front().stream->run->handle;
    std::uint64_t payload_bytes = 0;
    for (auto& b : batch_blocks_) {
        entries.push_back({b.stream->handle, b.rows});
        m.payloads.emplace_back(b.buf, b.used);  // takes over the staging reference
        payload_bytes += b.used;
        if (b.stream->run->handle != m.run) m.run = 0;
        b.stream->last_block_bytes = b.used;
        b.stream->staged_batch = 0;
    }
    m.frame1 = proto::encode_block_table(entries);
    m.bytes = proto::kHeaderSize + m.frame1.size() + payload_bytes;
    m.what = "APPEND";
    m.seq = ++last_seq_;
    log_bytes_ += m.bytes;
    log_.push_back(std::move(m));
    batch_blocks_.clear();
    staged_bytes_ = 0;
    ++batch_number_;
    io_->poke();
}

std::uint64_t ClientCore::push_control_locked(proto::MsgType type, const proto::Json& meta,
                                              std::uint32_t run, std::string what) {
    OutMessage m;
    m.type = type;
    m.frame1 = to_bytes(proto::dump_meta(meta));
    if (m.frame1.size() > proto::kMaxMetaBytes)
        throw Error(ErrorCode::too_large, what + ": metadata of " +
                                              std::to_string(m.frame1.size()) +
                                              " bytes exceeds the 1 MiB limit");
    seal_batch_locked();  // keeps the order of rows and control messages
    m.bytes = proto::kHeaderSize + m.frame1.size();
    m.run = run;
    m.what = std::move(what);
    m.seq = ++last_seq_;
    log_bytes_ += m.bytes;
    log_.push_back(std::move(m));
    io_->poke();
    return last_seq_;
}

void ClientCore::request_flush_locked(std::uint64_t upto) {
    if (upto > flush_target_) {
        flush_target_ = upto;
        io_->poke();
    }
}

void ClientCore::wait_for_room_locked(std::unique_lock<std::mutex>& lock) {
    if (!opts_.blocking)
        throw Error(ErrorCode::busy, std::to_string(log_bytes_) +
                                         " bytes unacknowledged reach max_unacked_bytes (" +
                                         std::to_string(opts_.max_unacked_bytes) + ")");
    // Ask the daemon to commit now rather than at its next interval.
    request_flush_locked(last_seq_);
    cv_.wait(lock, [&] { return log_bytes_ < opts_.max_unacked_bytes || closed_ || io_failed_; });
    check_open_locked();
    if (io_failed_) raise_any_error_locked();
}

// ---- runs ---------------------------------------------------------------------------

RunState* ClientCore::open_run(std::string_view campaign, proto::Json params, proto::Json attrs) {
    if (auto err = proto::check_campaign(campaign)) throw Error(ErrorCode::bad_name, *err);
    std::unique_lock lock(mu_);
    check_open_locked();
    if (log_bytes_ >= opts_.max_unacked_bytes) wait_for_room_locked(lock);
    auto run = std::make_unique<RunState>();
    run->handle = next_run_handle_;
    run->campaign = std::string(campaign);
    proto::Json meta = {{"run", run->handle}, {"campaign", run->campaign}};
    if (!params.empty()) meta["params"] = std::move(params);
    if (!attrs.empty()) meta["attrs"] = std::move(attrs);
    run->open_seq = push_control_locked(proto::MsgType::open_run, meta, run->handle,
                                        "OPEN_RUN of campaign " + quote_name(campaign));
    ++next_run_handle_;
    RunState* p = run.get();
    runs_.emplace(p->handle, std::move(run));
    return p;
}

Stream* ClientCore::declare_locked(RunState* run, std::string_view key, DType dtype,
                                   const Dims& shape, bool is_array) {
    const char* noun = is_array ? "array" : "stream";
    if (auto err = proto::check_key(key))
        throw Error(ErrorCode::bad_name, *err + " (" + noun + " of " + describe_run(run) + ")");
    auto pdt = proto::dtype_from_code(static_cast<std::uint64_t>(dtype));
    if (!pdt)
        throw Error(ErrorCode::bad_dtype, "dtype code " + std::to_string(int(dtype)) + " of " +
                                              noun + " " + quote_name(key) + " is not 1-13");
    if (shape.rank() > kMaxRank)
        throw Error(ErrorCode::bad_shape, std::string(noun) + " " + quote_name(key) + " has rank " +
                                              std::to_string(shape.rank()) + ", the maximum is 8");
    proto::Shape dims(shape.data(), shape.data() + shape.rank());
    for (auto d : dims)
        if (d == 0)
            throw Error(ErrorCode::bad_shape,
                        std::string(noun) + " " + quote_name(key) + " shape " +
                            shape_string(shape.data(), shape.rank()) + " has a zero dimension");
    auto count = proto::element_count(dims);
    std::uint64_t isz = proto::itemsize(*pdt);
    if (!count || *count > (std::uint64_t{1} << 62) / isz)
        throw Error(ErrorCode::bad_shape, std::string(noun) + " " + quote_name(key) + " shape " +
                                              shape_string(shape.data(), shape.rank()) +
                                              " is too large");
    // HDF5 cannot hold a dataset "y" and a dataset "y/z" in one group.
    for (const auto& [other, s] : run->streams) {
        std::string_view shorter = other, longer = key;
        if (shorter.size() > longer.size()) std::swap(shorter, longer);
        if (longer.size() > shorter.size() && longer.substr(0, shorter.size()) == shorter &&
            longer[shorter.size()] == '/')
            throw Error(ErrorCode::bad_name, "key " + quote_name(key) + " conflicts with " +
                                                 (s->is_array ? "array " : "stream ") +
                                                 quote_name(other) + " of " + describe_run(run));
    }

    auto s = std::make_unique<Stream>();
    s->handle = next_stream_handle_;
    s->run = run;
    s->key = std::string(key);
    s->dtype = *pdt;
    s->is_array = is_array;
    s->rank = static_cast<std::uint32_t>(shape.rank());
    std::copy(shape.data(), shape.data() + shape.rank(), s->dims);
    s->row_bytes = *count * isz;

    proto::Json meta = {{"stream", s->handle}, {"run", run->handle},         {"key", s->key},
                        {"kind", noun},        {"dtype", proto::name(*pdt)}, {"shape", dims}};
    push_control_locked(proto::MsgType::declare, meta, run->handle,
                        "DECLARE of " + std::string(noun) + " " + quote_name(key));
    ++next_stream_handle_;
    Stream* p = s.get();
    streams_by_handle_.emplace(p->handle, p);
    run->streams.emplace(p->key, std::move(s));

    return p;
}

void ClientCore::stage_locked(Stream* s, const void* data, std::uint64_t nrows,
                              std::uint64_t nbytes) {
    StagedBlock* b;
    if (s->staged_batch == batch_number_) {
        b = &batch_blocks_[s->block_index];
    } else {
        if (batch_blocks_.size() == proto::kMaxBlocks) seal_batch_locked();
        bool first = batch_blocks_.empty();
        Buffer* buf = pool_.acquire(std::max<std::size_t>(nbytes, s->last_block_bytes));
        batch_blocks_.push_back({s, buf, 0, 0});
        s->staged_batch = batch_number_;
        s->block_index = static_cast<std::uint32_t>(batch_blocks_.size() - 1);
        b = &batch_blocks_.back();
        if (first) {
            batch_started_ = Clock::now();
            io_->poke();  // arms the linger timer
        }
    }
    if (b->used + nbytes > b->buf->capacity) {
        Buffer* bigger =
            pool_.acquire(std::max<std::size_t>(2 * b->buf->capacity, b->used + nbytes));
        std::memcpy(bigger->data, b->buf->data, b->used);
        BufferPool::unref(b->buf);
        b->buf = bigger;
    }
    std::uint8_t* dst = b->buf->data + b->used;
    std::memcpy(dst, data, nbytes);
    if (s->dtype == proto::DType::boolean)  // raw callers may pass any nonzero byte for true
        for (std::uint64_t i = 0; i < nbytes; ++i) dst[i] = dst[i] != 0;
    b->used += nbytes;
    b->rows += nrows;
    staged_bytes_ += nbytes;
    if (staged_bytes_ >= opts_.batch_bytes) seal_batch_locked();
}

std::optional<std::uint64_t> ClientCore::row_bytes_of(DType dtype, const Dims& shape) {
    if (shape.rank() > kMaxRank) return std::nullopt;
    auto count = proto::element_count(proto::Shape(shape.data(), shape.data() + shape.rank()));
    std::uint64_t isz = itemsize(dtype);
    if (!count || !isz || *count > (std::uint64_t{1} << 62) / isz) return std::nullopt;
    return *count * isz;
}

void ClientCore::check_frame_size_locked(std::string_view key, std::uint64_t nrows,
                                         std::uint64_t row_bytes) const {
    if (row_bytes && nrows > max_frame_ / row_bytes)
        throw Error(ErrorCode::too_large,
                    std::to_string(nrows) + " rows of " + std::to_string(row_bytes) +
                        " bytes for " + quote_name(key) + " exceed the daemon's frame limit (" +
                        std::to_string(max_frame_) + " bytes)");
}

void ClientCore::record(RunState* run, std::string_view key, DType dtype, const void* data,
                        std::uint64_t nrows, const Dims& row_shape) {
    std::unique_lock lock(mu_);
    check_open_locked();
    if (!run->errors.empty()) raise_run_error_locked(run);
    if (run->closed) throw Error(ErrorCode::closed, describe_run(run) + " is closed");
    if (log_bytes_ >= opts_.max_unacked_bytes) {
        wait_for_room_locked(lock);
        if (run->closed) throw Error(ErrorCode::closed, describe_run(run) + " is closed");
    }

    if (nrows > 0 && !data)
        throw Error(ErrorCode::bad_argument,
                    "record of " + quote_name(key) + " of " + describe_run(run) + ": data is null");
    Stream* s = run->find(key);
    if (s) {
        if (s->is_array)
            throw Error(ErrorCode::array_exists, "key " + quote_name(key) + " of " +
                                                     describe_run(run) +
                                                     " is a write-once array, not a stream");
        if (static_cast<std::uint8_t>(s->dtype) != static_cast<std::uint8_t>(dtype))
            throw Error(ErrorCode::dtype_mismatch,
                        "stream " + quote_name(key) + " of " + describe_run(run) + " is " +
                            std::string(proto::name(s->dtype)) + ", this record is " +
                            std::string(dtype_name(dtype)));
        if (row_shape.rank() != s->rank ||
            !std::equal(s->dims, s->dims + s->rank, row_shape.data()))
            throw Error(ErrorCode::shape_mismatch,
                        "stream " + quote_name(key) + " of " + describe_run(run) +
                            " has rows of shape " + shape_string(s->dims, s->rank) +
                            ", this record has " +
                            shape_string(row_shape.data(), std::min(row_shape.rank(), kMaxRank)));
        check_frame_size_locked(key, nrows, s->row_bytes);
    } else {
        // Checked before the DECLARE so that a refused record leaves no trace.
        if (auto rb = row_bytes_of(dtype, row_shape)) check_frame_size_locked(key, nrows, *rb);
        s = declare_locked(run, key, dtype, row_shape, false);
    }
    if (nrows == 0) return;
    stage_locked(s, data, nrows, nrows * s->row_bytes);
}

void ClientCore::put(RunState* run, std::string_view key, DType dtype, const void* data,
                     const Dims& shape) {
    std::unique_lock lock(mu_);
    check_open_locked();
    if (!run->errors.empty()) raise_run_error_locked(run);
    if (run->closed) throw Error(ErrorCode::closed, describe_run(run) + " is closed");
    if (!data)
        throw Error(ErrorCode::bad_argument,
                    "put of " + quote_name(key) + " of " + describe_run(run) + ": data is null");
    if (log_bytes_ >= opts_.max_unacked_bytes) {
        wait_for_room_locked(lock);
        if (run->closed) throw Error(ErrorCode::closed, describe_run(run) + " is closed");
    }
    if (auto it = run->streams.find(key); it != run->streams.end()) {
        if (it->second->is_array)
            throw Error(ErrorCode::array_exists, "array " + quote_name(key) + " of " +
                                                     describe_run(run) + " was already written");
        throw Error(ErrorCode::bad_argument, "key " + quote_name(key) + " of " + describe_run(run) +
                                                 " is a stream; put() writes arrays");
    }
    // Checked before the DECLARE so that a refused put leaves no trace.
    if (auto bytes = row_bytes_of(dtype, shape)) check_frame_size_locked(key, 1, *bytes);
    Stream* s = declare_locked(run, key, dtype, shape, true);
    stage_locked(s, data, 1, s->row_bytes);
}

void ClientCore::set_attrs(RunState* run, const std::string* key, proto::Json attrs) {
    std::unique_lock lock(mu_);
    check_open_locked();
    if (!run->errors.empty()) raise_run_error_locked(run);
    if (run->closed) throw Error(ErrorCode::closed, describe_run(run) + " is closed");
    if (!key) {
        proto::Json m = {{"run", run->handle}, {"attrs", std::move(attrs)}};
        push_control_locked(proto::MsgType::set_attrs, m, run->handle, "SET_ATTRS of the run");
        return;
    }
    if (auto err = proto::check_key(*key))
        throw Error(ErrorCode::bad_name, *err + " (attributes of " + describe_run(run) + ")");
    // Sent at once, also for a key not declared yet: the daemon applies them
    // when the key is declared (PROTOCOL.md, SET_ATTRS).
    proto::Json m = {{"run", run->handle}, {"key", *key}, {"attrs", std::move(attrs)}};
    push_control_locked(proto::MsgType::set_attrs, m, run->handle,
                        "SET_ATTRS of " + quote_name(*key));
}

void ClientCore::close_run(RunState* run, bool failed, proto::Json results,
                           std::string_view reason) {
    std::unique_lock lock(mu_);
    check_open_locked();
    if (run->closed) throw Error(ErrorCode::closed, describe_run(run) + " is already closed");
    proto::Json m = {{"run", run->handle}, {"status", failed ? "failed" : "finished"}};
    if (!results.empty()) m["results"] = std::move(results);
    if (failed) m["reason"] = std::string(reason);
    push_control_locked(proto::MsgType::close_run, m, run->handle,
                        failed ? "CLOSE_RUN (failed)" : "CLOSE_RUN");
    run->closed = true;
    raise_run_error_locked(run);
}

std::int64_t ClientCore::run_id(RunState* run) {
    std::unique_lock lock(mu_);
    if (run->id >= 0) return run->id;
    if (!run->errors.empty()) raise_run_error_locked(run);
    check_open_locked();
    std::uint64_t target = run->open_seq;
    request_flush_locked(target);
    bool ok = wait_locked(lock, opts_.timeout, [&] {
        return run->id >= 0 || !run->errors.empty() || acked_seq_ >= target;
    });
    if (run->id >= 0) return run->id;
    if (!run->errors.empty()) raise_run_error_locked(run);
    if (!ok) throw_timeout_locked("waiting for the id of " + describe_run(run));
    throw Error(ErrorCode::internal, "the daemon acknowledged the OPEN_RUN of " +
                                         describe_run(run) + " without reporting its run id");
}

void ClientCore::flush(std::optional<std::chrono::milliseconds> timeout) {
    std::unique_lock lock(mu_);
    check_open_locked();
    seal_batch_locked();
    std::uint64_t target = last_seq_;
    if (target > acked_seq_) {
        request_flush_locked(target);
        if (!wait_locked(lock, timeout, [&] { return acked_seq_ >= target; }))
            throw_timeout_locked("flush");
    }
    raise_any_error_locked();
}

ClientStats ClientCore::stats() const {
    std::lock_guard lock(mu_);
    ClientStats s;
    s.client_id = id_hex_;
    s.last_seq = last_seq_;
    s.acked_seq = acked_seq_;
    s.unacked_messages = log_.size();
    s.unacked_bytes = log_bytes_;
    s.staged_bytes = staged_bytes_;
    s.connected = connected_;
    s.welcomes = welcomes_;
    s.resent_messages = resent_;
    s.shared_memory = shm_active_;
    s.shm_messages = shm_messages_;
    return s;
}

// ---- fields -----------------------------------------------------------------------

proto::Json fields_to_json(const Fields& fields, const char* what) {
    proto::Json j = proto::Json::object();
    for (const auto& [name, value] : fields) {
        if (auto err = proto::check_field_name(name))
            throw Error(ErrorCode::bad_name, std::string(what) + ": " + *err);
        auto finite = [&](double d) {
            if (!std::isfinite(d))
                throw Error(ErrorCode::bad_argument, std::string(what) + " " + quote_name(name) +
                                                         " is not finite (JSON cannot carry it)");
            return d;
        };
        auto too_long = [&](std::size_t n) {
            if (n > 4096)
                throw Error(ErrorCode::bad_argument, std::string(what) + " " + quote_name(name) +
                                                         " has more than 4096 items");
        };
        std::visit(
            [&](const auto& v) {
                using V = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<V, double>) {
                    j[name] = finite(v);
                } else if constexpr (std::is_same_v<V, std::vector<double>>) {
                    too_long(v.size());
                    for (double d : v) finite(d);
                    j[name] = v;
                } else if constexpr (std::is_same_v<V, std::vector<std::int64_t>> ||
                                     std::is_same_v<V, std::vector<std::string>>) {
                    too_long(v.size());
                    j[name] = v;
                } else {
                    j[name] = v;
                }
            },
            value.storage());
    }
    return j;
}

void check_fields_json(const proto::Json& fields, const char* what) {
    try {
        proto::check_fields(fields, what);
    } catch (const proto::ProtocolError& e) {
        throw Error(
            e.code() == proto::ErrorCode::bad_name ? ErrorCode::bad_name : ErrorCode::bad_argument,
            e.what());
    }
}

}  // namespace simsink::detail
