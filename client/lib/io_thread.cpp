#include "io_thread.hpp"

#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace simsink::detail {

namespace {

constexpr int kHighWaterMark = 100000;  // messages; ours are batches, memory is bounded by the log
constexpr int kReconnectIvlMs = 100;
constexpr int kReconnectIvlMaxMs = 1000;

// ZeroMQ calls this when it is done with a zero-copy payload frame.
void release_buffer(void*, void* hint) noexcept {
    BufferPool::unref(static_cast<Buffer*>(hint));
}

std::string host_name() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
    return buf;
}

}  // namespace

// One multipart message ready for zmq_msg_send; owns its zmq_msg_t frames.
struct IoThread::Outgoing {
    std::vector<zmq_msg_t> frames;
    std::uint64_t seq = 0;  // 0: not sequenced
    std::uint64_t bytes = 0;
    proto::MsgType type{};

    Outgoing() = default;
    Outgoing(Outgoing&& o) noexcept
        : frames(std::move(o.frames)), seq(o.seq), bytes(o.bytes), type(o.type) {
        o.frames.clear();
    }
    Outgoing& operator=(Outgoing&&) = delete;
    ~Outgoing() {
        for (auto& f : frames) zmq_msg_close(&f);
    }

    void add_copy(const void* data, std::size_t size) {
        zmq_msg_t m;
        zmq_msg_init_size(&m, size);
        if (size) std::memcpy(zmq_msg_data(&m), data, size);
        frames.push_back(m);
    }
    void add_header(proto::MsgType t, std::uint16_t flags, std::uint64_t number) {
        std::uint8_t h[proto::kHeaderSize];
        proto::encode_header({t, flags, number}, h);
        add_copy(h, sizeof h);
    }
    // Zero-copy: the frame shares the buffer until ZeroMQ releases it.
    void add_shared(const BufferRef& ref) {
        zmq_msg_t m;
        BufferPool::ref(ref.get());
        zmq_msg_init_data(&m, const_cast<std::uint8_t*>(ref.data()), ref.size(), release_buffer,
                          ref.get());
        frames.push_back(m);
    }
};

IoThread::IoThread(ClientCore& core, const std::string& endpoint) : core_(core) {
    ctx_ = zmq_ctx_new();
    if (!ctx_) throw Error(ErrorCode::internal, std::string("zmq_ctx_new: ") + zmq_strerror(errno));
    socket_ = zmq_socket(ctx_, ZMQ_DEALER);
    int zero = 0, hwm = kHighWaterMark, ivl = kReconnectIvlMs, ivl_max = kReconnectIvlMaxMs;
    zmq_setsockopt(socket_, ZMQ_ROUTING_ID, core_.id_, sizeof core_.id_);
    zmq_setsockopt(socket_, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(socket_, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(socket_, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(socket_, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(socket_, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    if (zmq_connect(socket_, endpoint.c_str()) != 0) {
        std::string why = zmq_strerror(errno);
        zmq_close(socket_);
        zmq_ctx_term(ctx_);
        throw Error(ErrorCode::bad_argument, "cannot connect to '" + endpoint + "': " + why);
    }
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
        std::string why = std::strerror(errno);
        zmq_close(socket_);
        zmq_ctx_term(ctx_);
        throw Error(ErrorCode::internal, "eventfd: " + why);
    }

    proto::Json hello = {{"client", core_.id_hex_}, {"host", host_name()}, {"pid", ::getpid()}};
    if (!core_.opts_.name.empty()) hello["name"] = core_.opts_.name;
    hello_meta_ = proto::dump_meta(hello);
}

IoThread::~IoThread() {
    stop();
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

void IoThread::start() {
    thread_ = std::thread([this] { run(); });
}

void IoThread::poke() noexcept {
    std::uint64_t one = 1;
    // EAGAIN only when the counter is saturated: the thread is awake anyway.
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void IoThread::stop() noexcept {
    std::lock_guard lock(stop_mu_);  // close() may race the last Run's destructor
    if (stopped_) return;
    stopped_ = true;
    stop_.store(true);
    poke();
    if (thread_.joinable()) thread_.join();
    if (socket_) zmq_close(socket_);
    socket_ = nullptr;
    if (ctx_) zmq_ctx_term(ctx_);
    ctx_ = nullptr;
}

void IoThread::run() noexcept {
    try {
        loop();
    } catch (const std::exception& e) {
        std::lock_guard lock(core_.mu_);
        core_.client_errors_.push_back(
            {ErrorCode::internal, std::string("client I/O thread stopped: ") + e.what()});
        core_.io_failed_ = true;
        core_.cv_.notify_all();
    }
}

void IoThread::loop() {
    auto now = Clock::now();
    last_recv_ = last_ping_ = now;
    while (!stop_.load()) {
        pump();
        zmq_pollitem_t items[2] = {
            {socket_, 0, static_cast<short>(ZMQ_POLLIN | (blocked_ ? ZMQ_POLLOUT : 0)), 0},
            {nullptr, wake_fd_, ZMQ_POLLIN, 0},
        };
        int rc = zmq_poll(items, 2, poll_timeout_ms(Clock::now()));
        if (rc < 0) {
            if (errno == EINTR) continue;
            if (errno == ETERM) return;
            throw Error(ErrorCode::internal, std::string("zmq_poll: ") + zmq_strerror(errno));
        }
        if (items[1].revents & ZMQ_POLLIN) {
            std::uint64_t v;
            [[maybe_unused]] auto n = ::read(wake_fd_, &v, sizeof v);
        }
        if (items[0].revents & ZMQ_POLLOUT) blocked_ = false;
        receive_all();
        now = Clock::now();
        {
            std::lock_guard lock(core_.mu_);
            if (!core_.batch_blocks_.empty() && now - core_.batch_started_ >= core_.opts_.linger)
                core_.seal_batch_locked();
        }
        heartbeat(now);
    }
    // Tell the daemon this connection is done so it takes back our unused
    // credit at once; a short linger lets the BYE leave before close.
    if (phase_ == Phase::ready) {
        std::uint8_t hdr[proto::kHeaderSize];
        proto::encode_header({proto::MsgType::bye, 0, 0}, hdr);
        int linger = 200;
        zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof linger);
        zmq_send(socket_, hdr, sizeof hdr, ZMQ_DONTWAIT);
    }
}

int IoThread::poll_timeout_ms(Clock::time_point now) {
    const auto hb = core_.opts_.heartbeat;
    Clock::time_point next = now + hb;  // need_hello: pump() or POLLOUT acts
    if (phase_ == Phase::ready)
        next = std::max(last_recv_, last_ping_) + hb;
    else if (phase_ == Phase::awaiting_welcome)
        next = hello_sent_ + 3 * hb;
    {
        std::lock_guard lock(core_.mu_);
        if (!core_.batch_blocks_.empty())
            next = std::min(next, core_.batch_started_ + core_.opts_.linger);
    }
    if (next <= now) return 0;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
    return static_cast<int>(std::min<long long>(ms, 60'000));
}

// ---- receiving -----------------------------------------------------------------------

void IoThread::receive_all() {
    for (;;) {
        std::vector<std::vector<std::uint8_t>> frames;
        for (;;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            int flags = frames.empty() ? ZMQ_DONTWAIT : 0;
            if (zmq_msg_recv(&m, socket_, flags) < 0) {
                zmq_msg_close(&m);
                if (errno == EAGAIN && frames.empty()) return;
                if (errno == EINTR) continue;
                return;  // ETERM: stopping
            }
            auto* p = static_cast<const std::uint8_t*>(zmq_msg_data(&m));
            frames.emplace_back(p, p + zmq_msg_size(&m));
            bool more = zmq_msg_more(&m);
            zmq_msg_close(&m);
            if (!more) break;
        }
        last_recv_ = Clock::now();
        handle(frames);
    }
}

void IoThread::handle(std::vector<std::vector<std::uint8_t>>& frames) {
    // A malformed message from the daemon (or an impostor) is ignored: the
    // client must not fail because of what it receives.
    proto::Header h;
    proto::Json meta = proto::Json::object();
    try {
        h = proto::decode_header(frames[0]);
        if (h.flags & proto::kFlagMeta) {
            if (frames.size() < 2) return;
            meta = proto::parse_meta(frames[1]);
        }
    } catch (const proto::ProtocolError&) {
        return;
    }
    switch (h.type) {
        case proto::MsgType::welcome:
            on_welcome(h.number, meta);
            break;
        case proto::MsgType::ack:
            on_ack(h.number, meta);
            break;
        case proto::MsgType::credit:
            if (phase_ == Phase::ready && h.number > credit_) credit_ = h.number;
            break;
        case proto::MsgType::error:
            on_error(h.number, meta);
            break;
        case proto::MsgType::pong:
            on_pong(h.number);
            break;
        default:
            break;
    }
}

void IoThread::apply_ack_locked(std::uint64_t number, const proto::Json& meta) {
    if (auto it = meta.find("runs"); it != meta.end() && it->is_object()) {
        for (const auto& [k, v] : it->items()) {
            if (!v.is_number_integer()) continue;
            std::uint32_t handle = 0;
            try {
                handle = static_cast<std::uint32_t>(std::stoul(k));
            } catch (const std::exception&) {
                continue;
            }
            if (auto r = core_.runs_.find(handle); r != core_.runs_.end())
                r->second->id = v.get<std::int64_t>();
        }
    }
    number = std::min(number, core_.last_seq_);
    if (number <= core_.acked_seq_) return;
    while (!core_.log_.empty() && core_.log_.front().seq <= number) {
        core_.log_bytes_ -= core_.log_.front().bytes;
        core_.log_.pop_front();  // drops the log's buffer references
    }
    core_.acked_seq_ = number;
    core_.notice_.reset();  // commits succeed again
}

// Every WELCOME starts a session, possibly with another daemon process:
// register the arena again (a daemon that offers no lane, refuses, or is
// another process than the one that welcomed us gets frames). The first
// time, borrow the arena from the daemon (warm memory when a finished client
// of our user left some), or make our own when it lends none.
void IoThread::register_arena(const proto::Json& meta) {
    shm_token_ = 0;
    auto path = meta.find("shm");
    auto daemon = meta.find("daemon");
    if (!core_.opts_.shared_memory || !is_local_endpoint(core_.opts_.endpoint) ||
        path == meta.end() || !path->is_string() || daemon == meta.end() || !daemon->is_string())
        return;
    const auto& socket_path = path->get_ref<const std::string&>();
    const auto& daemon_id = daemon->get_ref<const std::string&>();
    std::string why;
    if (!core_.pool_.arena()) {
        ShmArena::Registration reg;
        auto lent = ShmArena::borrow(socket_path, core_.id_hex_, core_.arena_bytes(), reg, why);
        if (lent && reg.daemon == daemon_id && core_.pool_.attach_arena(std::move(lent))) {
            shm_token_ = reg.token;
            return;
        }
        if (!core_.pool_.arena()) core_.pool_.attach_arena(ShmArena::create(core_.arena_bytes()));
    }
    if (const ShmArena* arena = core_.pool_.arena()) {
        auto r = arena->register_with(socket_path, core_.id_hex_, why);
        if (r && r->daemon == daemon_id) shm_token_ = r->token;
    }
}

void IoThread::on_welcome(std::uint64_t number, const proto::Json& meta) {
    register_arena(meta);  // before taking the lock: it talks to a socket
    core_.pool_.arena_settled();
    std::lock_guard lock(core_.mu_);
    core_.shm_active_ = shm_token_ != 0;
    apply_ack_locked(number, meta);
    auto get = [&](const char* k, std::uint64_t dflt) {
        auto it = meta.find(k);
        return it != meta.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : dflt;
    };
    std::uint64_t expected = get("expected", number + 1);
    core_.max_frame_ = std::max<std::uint64_t>(get("max_frame", core_.max_frame_), 1);
    std::uint64_t resume = std::max(expected, core_.acked_seq_ + 1);
    if (resume < send_next_) core_.resent_ += send_next_ - resume;
    send_next_ = resume;
    phase_ = Phase::ready;
    bytes_sent_ = 0;
    credit_ = get("credit", 0);
    want_sent_ = 0;
    wants_.clear();
    flush_sent_ = 0;  // ask again on this connection
    ping_outstanding_ = false;
    core_.connected_ = true;
    ++core_.welcomes_;
    core_.cv_.notify_all();
}

void IoThread::on_ack(std::uint64_t number, const proto::Json& meta) {
    std::lock_guard lock(core_.mu_);
    apply_ack_locked(number, meta);
    if (send_next_ <= core_.acked_seq_) send_next_ = core_.acked_seq_ + 1;
    core_.cv_.notify_all();
}

void IoThread::rewind_to(std::uint64_t seq) {
    seq = std::max(seq, core_.acked_seq_ + 1);
    if (seq < send_next_) {
        core_.resent_ += send_next_ - seq;
        send_next_ = seq;
    }
}

void IoThread::on_error(std::uint64_t number, const proto::Json& meta) {
    std::lock_guard lock(core_.mu_);
    ErrorCode code = ErrorCode::internal;
    std::string message = "(no message)";
    if (auto it = meta.find("code"); it != meta.end() && it->is_string())
        if (auto c = proto::parse_error_code(it->get<std::string>()))
            code = static_cast<ErrorCode>(*c);
    if (auto it = meta.find("message"); it != meta.end() && it->is_string())
        message = it->get<std::string>();

    switch (code) {
        case ErrorCode::out_of_order: {
            auto it = meta.find("expected");
            std::uint64_t expected =
                it != meta.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : number;
            if (phase_ == Phase::ready) rewind_to(expected);
            break;
        }
        case ErrorCode::bad_shm:
            // The daemon cannot read our arena (it forgot the registration):
            // send the same messages again with their bytes in frames.
            if (shm_token_) {
                shm_token_ = 0;
                core_.shm_active_ = false;
                if (phase_ == Phase::ready) rewind_to(number);
            }
            break;
        case ErrorCode::need_hello:
            if (phase_ != Phase::awaiting_welcome) phase_ = Phase::need_hello;
            break;
        case ErrorCode::credit_exceeded:
            // Our credit count and the daemon's disagree: start again from a
            // HELLO, whose WELCOME resets both and says where to resume.
            if (phase_ == Phase::ready) phase_ = Phase::need_hello;
            break;
        case ErrorCode::too_large:
            // The answer to a WANT (number 0, or the WANT's limit echoed).
            // The limit counts every byte since HELLO, so on a long-lived
            // connection it can pass a daemon's cap although the message
            // fits: HELLO again restarts the count from 0. Refused right
            // after a HELLO, the message itself is too large: a real error.
            if (number == 0 || std::find(wants_.begin(), wants_.end(), number) != wants_.end()) {
                if (phase_ != Phase::ready) {
                    // A HELLO is on its way already: its WELCOME restarts the count.
                } else if (bytes_sent_ > 0) {
                    phase_ = Phase::need_hello;
                } else {
                    core_.client_errors_.push_back(
                        {code, "the daemon refuses credit for the next message: " + message});
                }
                break;
            }
            core_.attach_error_locked(number, code, message, meta);
            break;
        case ErrorCode::shutting_down:
            // Keep everything; HELLO again after 3 heartbeats (a restarted
            // daemon's WELCOME says where to resume).
            phase_ = Phase::awaiting_welcome;
            hello_sent_ = Clock::now();
            core_.connected_ = false;
            core_.notice_ = PendingError{code, message};
            break;
        case ErrorCode::disk_full:
        case ErrorCode::io_error:
            if (number == 0) {
                core_.notice_ = PendingError{code, message};
                break;
            }
            [[fallthrough]];
        default:
            if (number != 0)
                core_.attach_error_locked(number, code, message, meta);
            else
                core_.client_errors_.push_back({code, "daemon: " + message});
            break;
    }
    core_.cv_.notify_all();
}

void IoThread::on_pong(std::uint64_t number) {
    // The daemon handles a connection's messages in order, so a PONG to a
    // PING sent after seq N says `expected` > N unless messages were lost
    // (a dropped connection loses what ZeroMQ had queued): resend them.
    if (phase_ == Phase::ready && ping_outstanding_ && number <= ping_upto_) {
        std::lock_guard lock(core_.mu_);
        rewind_to(number);
    }
    ping_outstanding_ = false;
}

// ---- sending ---------------------------------------------------------------------------

void IoThread::queue_hello(std::vector<Outgoing>& out) {
    Outgoing o;
    o.type = proto::MsgType::hello;
    o.add_header(proto::MsgType::hello, proto::kFlagMeta, 0);
    o.add_copy(hello_meta_.data(), hello_meta_.size());
    out.push_back(std::move(o));
    phase_ = Phase::awaiting_welcome;
    hello_sent_ = Clock::now();
}

void IoThread::queue_simple(std::vector<Outgoing>& out, proto::MsgType type, std::uint64_t number) {
    Outgoing o;
    o.type = type;
    o.add_header(type, 0, number);
    out.push_back(std::move(o));
}

void IoThread::pump() {
    if (blocked_) return;
    std::vector<Outgoing> out;
    {
        std::lock_guard lock(core_.mu_);
        if (phase_ == Phase::need_hello) queue_hello(out);
        if (phase_ == Phase::ready) {
            if (send_next_ <= core_.acked_seq_) send_next_ = core_.acked_seq_ + 1;
            while (send_next_ <= core_.last_seq_) {
                const OutMessage& m = core_.log_[send_next_ - core_.log_.front().seq];
                if (bytes_sent_ + m.bytes > credit_) {
                    std::uint64_t need = bytes_sent_ + m.bytes;
                    if (want_sent_ < need) {
                        queue_simple(out, proto::MsgType::want, need);
                        want_sent_ = need;
                        wants_.push_back(need);
                    }
                    break;
                }
                Outgoing o;
                o.type = m.type;
                o.seq = m.seq;
                o.bytes = m.bytes;
                const bool meta = m.type != proto::MsgType::append;
                bool shm = shm_token_ != 0 && !meta;
                for (const auto& p : m.payloads) shm = shm && p.get()->arena_offset != kNotShared;
                if (shm) {
                    // The daemon reads the payloads in place (PROTOCOL.md 1.1).
                    std::vector<proto::ShmRange> ranges;
                    ranges.reserve(m.payloads.size());
                    for (const auto& p : m.payloads) ranges.push_back({p.get()->arena_offset, p.size()});
                    auto desc = proto::encode_shm_descriptor(shm_token_, ranges);
                    o.add_header(m.type, proto::kFlagShm, m.seq);
                    o.add_copy(m.frame1.data(), m.frame1.size());
                    o.add_copy(desc.data(), desc.size());
                    ++core_.shm_messages_;
                } else {
                    o.add_header(m.type, meta ? proto::kFlagMeta : 0, m.seq);
                    o.add_copy(m.frame1.data(), m.frame1.size());
                    for (const auto& p : m.payloads) o.add_shared(p);
                }
                out.push_back(std::move(o));
                bytes_sent_ += m.bytes;
                ++send_next_;
            }
            std::uint64_t upto = std::min(core_.flush_target_, send_next_ - 1);
            if (upto > core_.acked_seq_ && upto > flush_sent_) {
                queue_simple(out, proto::MsgType::flush, upto);
                flush_sent_ = upto;
                flush_sent_at_ = Clock::now();
            }
        }
    }
    send_all(out);
}

void IoThread::send_all(std::vector<Outgoing>& out) {
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto& o = out[i];
        std::size_t n = o.frames.size();
        std::size_t sent = 0;
        while (sent < n) {
            // Only the first frame can meet the high-water mark; once it is
            // accepted, ZeroMQ accepts the rest of the message.
            int flags = (sent + 1 < n ? ZMQ_SNDMORE : 0) | (sent == 0 ? ZMQ_DONTWAIT : 0);
            if (zmq_msg_send(&o.frames[sent], socket_, flags) >= 0) {
                ++sent;  // ZeroMQ took the frame; closing the emptied zmq_msg_t is a no-op
            } else if (errno != EINTR) {
                break;
            }
        }
        if (sent > 0) continue;
        // Refused (high-water mark, or stopping): take back this message and
        // all after it; they go out when the socket can take them.
        blocked_ = true;
        for (std::size_t j = i; j < out.size(); ++j) {
            if (out[j].seq) {
                send_next_ = std::min(send_next_, out[j].seq);
                bytes_sent_ -= out[j].bytes;
            } else if (out[j].type == proto::MsgType::flush) {
                flush_sent_ = 0;
            } else if (out[j].type == proto::MsgType::want) {
                want_sent_ = 0;
            } else if (out[j].type == proto::MsgType::hello) {
                phase_ = Phase::need_hello;
            }
        }
        return;
    }
}

void IoThread::heartbeat(Clock::time_point now) {
    const auto hb = core_.opts_.heartbeat;
    std::vector<Outgoing> out;
    if (phase_ == Phase::awaiting_welcome) {
        if (now - hello_sent_ >= 3 * hb) queue_hello(out);
    } else if (phase_ == Phase::ready) {
        if (now - last_recv_ >= 3 * hb && last_ping_ > last_recv_) {
            // No reply to our PINGs: the daemon may have restarted.
            std::lock_guard lock(core_.mu_);
            core_.connected_ = false;
            queue_hello(out);
        } else if (now - last_recv_ >= hb && now - last_ping_ >= hb) {
            queue_simple(out, proto::MsgType::ping, 0);
            ping_upto_ = send_next_ - 1;
            ping_outstanding_ = true;
            last_ping_ = now;
        }
        // A FLUSH whose ACK was lost with a connection: ask again.
        if (flush_sent_ && now - flush_sent_at_ >= 3 * hb) {
            std::lock_guard lock(core_.mu_);
            if (core_.flush_target_ > core_.acked_seq_) flush_sent_ = 0;
        }
    }
    send_all(out);
}

}  // namespace simsink::detail
