#include "ingest/server.hpp"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <zmq.hpp>

#include "ingest/credit_gate.hpp"
#include "ingest/shm_lane.hpp"
#include "meta.hpp"
#include "notify.hpp"
#include "simsink_config.h"
#include "unix_time.hpp"
#include "wire.hpp"

namespace simsink::daemon {

using proto::ErrorCode;
using proto::Header;
using proto::MsgType;
using proto::ProtocolError;

namespace {

std::span<const std::uint8_t> bytes_of(const zmq::message_t& m) {
    return {static_cast<const std::uint8_t*>(m.data()), m.size()};
}

std::string random_hex(std::size_t n) {
    std::random_device rd;
    std::string s;
    static const char* kHex = "0123456789abcdef";
    for (std::size_t i = 0; i < n; ++i) s += kHex[rd() & 15];
    return s;
}

std::uint32_t get_handle(const proto::Json& meta, const char* key) {
    auto v = proto::get_uint(meta, key);
    if (v == 0 || v > 0xffffffffu)
        throw ProtocolError(ErrorCode::bad_meta,
                            std::string("'") + key + "' must be a handle between 1 and 2^32-1");
    return static_cast<std::uint32_t>(v);
}

// Counters for STATUS.
struct Received {
    std::uint64_t messages = 0;
    std::uint64_t rows = 0;
    std::uint64_t bytes = 0;
    std::uint64_t errors = 0;
    std::string last_error;
};

struct AdminWaiter {
    std::string routing_id;
    std::uint64_t request = 0;
    std::uint64_t ticket = 0;
    std::chrono::steady_clock::time_point started;
};

}  // namespace

struct Server::Impl {
    const Config& config;
    Registry& registry;
    StagingBuffer& buffer;
    Committer* committer = nullptr;
    CreditGate gate;
    zmq::context_t ctx{1};
    zmq::socket_t ingest{ctx, zmq::socket_type::router};
    zmq::socket_t admin{ctx, zmq::socket_type::router};
    int wake_fd = -1;
    std::string daemon_id = random_hex(16);
    double started = unix_now();
    bool stopping = false;
    Received received;
    std::vector<AdminWaiter> admin_waiters;
    std::vector<zmq::message_t> frames;  // reused across messages
    std::unique_ptr<ShmLane> lane;       // null when shared memory is off
    // The current message when it is an APPEND with the SHM flag: decoded by
    // on_sequenced (credit counts the ranges), its arena found once the seq
    // is the expected one, then staged by on_append.
    struct ShmAppend {
        std::vector<proto::BlockEntry> table;
        proto::ShmDescriptor desc;
        std::shared_ptr<const ShmArena> arena;
    };
    std::optional<ShmAppend> shm;
    struct {
        std::uint64_t appends = 0, bytes = 0, refused = 0;
    } shm_received;

    Impl(const Config& c, Registry& r, StagingBuffer& b)
        : config(c), registry(r), buffer(b), gate(c.buffer_cap, c.client_window) {
        wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    }
    ~Impl() {
        if (wake_fd >= 0) close(wake_fd);
    }

    // ---- sending --------------------------------------------------------------

    void send(zmq::socket_t& s, const std::string& rid, const Header& h,
              const proto::Json* meta = nullptr) {
        Header hh = h;
        if (meta) hh.flags |= proto::kFlagMeta;
        std::uint8_t hdr[proto::kHeaderSize];
        proto::encode_header(hh, hdr);
        // A peer that vanished makes ROUTER drop the message; never block.
        s.send(zmq::buffer(rid), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        if (meta) {
            s.send(zmq::buffer(hdr, sizeof hdr),
                   zmq::send_flags::sndmore | zmq::send_flags::dontwait);
            auto text = proto::dump_meta(*meta);
            s.send(zmq::buffer(text), zmq::send_flags::dontwait);
        } else {
            s.send(zmq::buffer(hdr, sizeof hdr), zmq::send_flags::dontwait);
        }
    }

    void send_error(zmq::socket_t& s, const std::string& rid, std::uint64_t number, ErrorCode code,
                    const std::string& message, proto::Json extra = proto::Json::object()) {
        extra["code"] = std::string(proto::name(code));
        extra["message"] = message;
        received.errors++;
        received.last_error = std::string(proto::name(code)) + ": " + message;
        spdlog::debug("error to {}: {} {}", rid.size(), proto::name(code), message);
        send(s, rid, Header{MsgType::error, 0, number}, &extra);
    }

    void send_credit(const std::string& client_id, std::uint64_t limit) {
        auto* c = registry.find_client(client_id);
        if (c && !c->routing_id.empty())
            send(ingest, c->routing_id, Header{MsgType::credit, 0, limit});
    }

    void grant_all() {
        for (auto& [id, limit] : gate.grants(buffer.bytes())) send_credit(id, limit);
    }

    // ---- receiving --------------------------------------------------------------

    // Reads one multipart message into `frames` (routing id first when
    // `routed`). Returns false when nothing is waiting. Frames past the
    // largest valid count are drained and reported as BAD_FRAME.
    bool receive(zmq::socket_t& s, bool& too_many) {
        frames.clear();
        too_many = false;
        constexpr std::size_t kMaxFrames = 1 + 2 + proto::kMaxBlocks;
        zmq::message_t m;
        if (!s.recv(m, zmq::recv_flags::dontwait)) return false;
        for (;;) {
            bool more = m.more();
            if (frames.size() < kMaxFrames)
                frames.push_back(std::move(m));
            else
                too_many = true;
            if (!more) break;
            m = zmq::message_t{};
            (void)s.recv(m, zmq::recv_flags::none);
        }
        return true;
    }

    void serve_ingest() {
        // Bounded batches so that outcomes and the admin socket stay responsive.
        for (int i = 0; i < 256; ++i) {
            bool too_many = false;
            if (!receive(ingest, too_many)) return;
            if (frames.size() < 2) continue;  // a routing id alone: nothing to answer
            std::string rid(static_cast<const char*>(frames[0].data()), frames[0].size());
            std::uint64_t number = 0;
            try {
                auto h = proto::decode_header(bytes_of(frames[1]));
                number = h.number;
                if (too_many)
                    throw ProtocolError(ErrorCode::bad_frame,
                                        "message has more frames than any "
                                        "valid message (4099)");
                on_ingest(rid, h);
            } catch (const ProtocolError& e) {
                send_error(ingest, rid, number, e.code(), e.what());
            } catch (const std::exception& e) {
                spdlog::error("internal error on an ingest message: {}", e.what());
                send_error(ingest, rid, number, ErrorCode::internal, e.what());
            }
        }
    }

    const proto::Json parse_meta_frame(const Header& h, std::size_t index) {
        if (!(h.flags & proto::kFlagMeta) || frames.size() <= index)
            throw ProtocolError(ErrorCode::bad_meta,
                                std::string(proto::name(h.type)) + " needs a metadata frame");
        return proto::parse_meta(bytes_of(frames[index]));
    }

    void expect_frames(const Header& h, std::size_t n) {
        // `frames` holds the routing id, then the message.
        if (frames.size() - 1 != n)
            throw ProtocolError(ErrorCode::bad_frame, std::string(proto::name(h.type)) + " has " +
                                                          std::to_string(frames.size() - 1) +
                                                          " frames, expected " + std::to_string(n));
    }

    void on_ingest(const std::string& rid, const Header& h) {
        const double now = unix_now();
        if (h.type == MsgType::hello) return on_hello(rid, h, now);
        auto* c = registry.by_routing_id(rid);
        if (!c)
            throw ProtocolError(ErrorCode::need_hello,
                                "this connection has not said HELLO to this daemon (it may have "
                                "restarted); send HELLO and resend from WELCOME's 'expected'");
        c->last_seen = now;
        switch (h.type) {
            case MsgType::ping:
                expect_frames(h, 1);
                send(ingest, rid, Header{MsgType::pong, 0, c->expected});
                return;
            case MsgType::flush:
                expect_frames(h, 1);
                if (c->committed >= h.number)
                    send(ingest, rid, Header{MsgType::ack, 0, c->committed});
                else
                    committer->request_commit();
                return;
            case MsgType::want:
                expect_frames(h, 1);
                if (!gate.want(c->client_id, h.number))
                    throw ProtocolError(ErrorCode::too_large,
                                        "WANT for a limit of " + std::to_string(h.number) +
                                            " bytes: the message does not fit in the daemon's "
                                            "buffer cap of " +
                                            std::to_string(gate.cap()));
                for (auto& [id, limit] : gate.grants(buffer.bytes(), &c->client_id))
                    send_credit(id, limit);
                return;
            case MsgType::bye:
                // The client is going away: its unused credit returns now
                // rather than after client-timeout. Its state (seq, handles)
                // stays, so a HELLO under the same id resumes as usual.
                expect_frames(h, 1);
                gate.disconnect(c->client_id);
                if (lane) lane->forget(c->client_id);
                registry.unbind(*c);
                grant_all();
                return;
            case MsgType::open_run:
            case MsgType::declare:
            case MsgType::append:
            case MsgType::set_attrs:
            case MsgType::close_run:
                return on_sequenced(*c, h, now);
            default:
                throw ProtocolError(ErrorCode::bad_type, std::string(proto::name(h.type)) +
                                                             " is not valid on the ingest socket");
        }
    }

    void on_hello(const std::string& rid, const Header& h, double now) {
        auto meta = parse_meta_frame(h, 2);
        expect_frames(h, 2);
        const auto& id = proto::get_string(meta, "client");
        if (!proto::is_client_id(id))
            throw ProtocolError(ErrorCode::bad_meta,
                                "HELLO 'client' must be 32 lowercase hex characters");
        auto& c = registry.client(id);
        registry.bind(c, rid);
        if (auto it = meta.find("host"); it != meta.end() && it->is_string())
            c.host = it->get<std::string>().substr(0, 255);
        if (auto it = meta.find("pid"); it != meta.end() && it->is_number_integer())
            c.pid = it->get<std::int64_t>();
        c.last_seen = now;
        c.gap_reported = 0;
        if (stopping) throw ProtocolError(ErrorCode::shutting_down, "the daemon is stopping");
        auto credit = gate.connect(id, buffer.bytes());
        proto::Json runs = proto::Json::object();
        for (const auto& [handle, r] : c.runs)
            if (r.committed) runs[std::to_string(handle)] = r.run_id;
        proto::Json w = {
            {"daemon", daemon_id}, {"expected", c.expected},        {"credit", credit},
            {"runs", runs},        {"max_frame", config.max_frame}, {"version", SIMSINK_VERSION}};
        if (lane) w["shm"] = lane->path();
        send(ingest, rid, Header{MsgType::welcome, 0, c.committed}, &w);
        spdlog::debug("client {} ({} pid {}) connected, expected seq {}", id, c.host, c.pid,
                      c.expected);
    }

    void on_sequenced(ClientState& c, const Header& h, double now) {
        std::uint64_t bytes = 0;
        for (std::size_t i = 1; i < frames.size(); ++i) bytes += frames[i].size();
        shm.reset();
        // A malformed shared-memory APPEND is a BAD_FRAME like any other,
        // raised where it consumes its seq; its frames count for credit.
        std::optional<ProtocolError> shm_malformed;
        if (h.flags & proto::kFlagShm) {
            try {
                expect_frames(h, 3);
                ShmAppend a;
                a.table = proto::decode_block_table(bytes_of(frames[2]));
                a.desc = proto::decode_shm_descriptor(bytes_of(frames[3]), a.table.size());
                // Credit counts the bytes the ranges name, as if they were frames.
                std::uint64_t named = frames[1].size() + frames[2].size();
                for (const auto& r : a.desc.ranges) {
                    if (named + r.length < named)
                        throw ProtocolError(ErrorCode::bad_frame, "shared-memory ranges overflow");
                    named += r.length;
                }
                bytes = named;
                shm = std::move(a);
            } catch (const ProtocolError& e) {
                shm_malformed = e;
            }
        }
        if (stopping)
            throw ProtocolError(ErrorCode::shutting_down,
                                "the daemon is stopping; resend after it restarts");
        if (!gate.receive(c.client_id, bytes))
            throw ProtocolError(ErrorCode::credit_exceeded,
                                "message of " + std::to_string(bytes) +
                                    " bytes exceeds this client's credit; wait for CREDIT");
        received.messages++;
        received.bytes += bytes;
        const std::uint64_t seq = h.number;
        if (seq < c.expected) return;  // a resend of something already processed
        if (seq > c.expected) {
            if (c.gap_reported != c.expected) {
                c.gap_reported = c.expected;
                send_error(ingest, c.routing_id, seq, ErrorCode::out_of_order,
                           "sequence number " + std::to_string(seq) + " skips ahead; resend from " +
                               std::to_string(c.expected),
                           {{"expected", c.expected}});
            }
            return;
        }
        // A shared-memory APPEND the daemon cannot read is refused without
        // consuming its seq: the client resends it with the bytes in frames.
        if (shm) {
            try {
                shm->arena = check_shm(c, shm->desc);
            } catch (const ProtocolError& e) {
                send_error(ingest, c.routing_id, seq, e.code(), e.what());
                for (auto& [id, limit] : gate.grants(buffer.bytes(), &c.client_id))
                    send_credit(id, limit);
                return;
            }
        }
        c.expected = seq + 1;
        c.gap_reported = 0;
        {
            // What the message stages and its seq reach the writer together.
            StagingBuffer::MessageScope message(buffer);
            try {
                if (shm_malformed) throw *shm_malformed;
                switch (h.type) {
                    case MsgType::open_run:
                        on_open_run(c, h, now);
                        break;
                    case MsgType::declare:
                        on_declare(c, h);
                        break;
                    case MsgType::append:
                        on_append(c, h);
                        break;
                    case MsgType::set_attrs:
                        on_set_attrs(c, h);
                        break;
                    case MsgType::close_run:
                        on_close_run(c, h, now);
                        break;
                    default:
                        break;
                }
            } catch (const ProtocolError& e) {
                // The seq is consumed: a rejected message is processed, not lost.
                send_error(ingest, c.routing_id, seq, e.code(), e.what());
            }
            shm.reset();  // staged blocks hold the arena; the lane's table may drop it
            buffer.stage_progress(c.client_id, seq, c.host, c.pid, now);
        }
        if (buffer.staged_bytes() >= config.commit_bytes) committer->request_commit();
        for (auto& [id, limit] : gate.grants(buffer.bytes(), &c.client_id)) send_credit(id, limit);
    }

    RunState& open_run_of(ClientState& c, std::uint32_t handle) {
        auto it = c.runs.find(handle);
        if (it == c.runs.end())
            throw ProtocolError(ErrorCode::unknown_run,
                                "run handle " + std::to_string(handle) + " was never opened");
        auto* r = registry.run(it->second.run_id);
        if (!r) throw ProtocolError(ErrorCode::internal, "run handle maps to a missing run");
        if (!r->open)
            throw ProtocolError(ErrorCode::run_closed,
                                "run " + std::to_string(r->run_id) + " is already closed");
        return *r;
    }

    void on_open_run(ClientState& c, const Header& h, double now) {
        auto meta = parse_meta_frame(h, 2);
        expect_frames(h, 2);
        auto handle = get_handle(meta, "run");
        const auto& campaign = proto::get_string(meta, "campaign");
        if (auto err = proto::check_campaign(campaign))
            throw ProtocolError(ErrorCode::bad_name, *err);
        const auto& params = proto::get_object(meta, "params");
        proto::check_fields(params, "params");
        const auto& attrs = proto::get_object(meta, "attrs");
        proto::check_fields(attrs, "attrs");
        if (c.runs.count(handle))
            throw ProtocolError(ErrorCode::duplicate,
                                "run handle " + std::to_string(handle) + " is already open");
        auto& run = registry.add_run(campaign, c.client_id);
        c.runs[handle] = RunHandle{run.run_id, false};
        catalog::RunOpen o;
        o.run_id = run.run_id;
        o.campaign = campaign;
        o.params = params;
        o.attrs = attrs;
        o.host = c.host;
        o.pid = c.pid;
        o.started = now;
        o.client_id = c.client_id;
        o.handle = handle;
        buffer.stage_open(std::move(o));
    }

    void on_declare(ClientState& c, const Header& h) {
        auto meta = parse_meta_frame(h, 2);
        expect_frames(h, 2);
        auto sh = get_handle(meta, "stream");
        auto& run = open_run_of(c, get_handle(meta, "run"));
        const auto& key = proto::get_string(meta, "key");
        if (auto err = proto::check_key(key)) throw ProtocolError(ErrorCode::bad_name, *err);
        const auto& kind_name = proto::get_string(meta, "kind");
        StreamKind kind;
        if (kind_name == "stream")
            kind = StreamKind::stream;
        else if (kind_name == "array")
            kind = StreamKind::array;
        else
            throw ProtocolError(ErrorCode::bad_meta, "'kind' must be \"stream\" or \"array\"");
        auto dtype = proto::get_dtype(meta, "dtype");
        auto shape = proto::get_shape(meta, "shape");
        auto rb = row_bytes(dtype, shape);
        if (rb > config.max_frame)
            throw ProtocolError(ErrorCode::too_large,
                                "one row of '" + key + "' is " + std::to_string(rb) +
                                    " bytes, more than the daemon's max frame of " +
                                    std::to_string(config.max_frame));
        const std::string where = "'" + key + "' of run " + std::to_string(run.run_id);
        if (auto* existing = registry.stream(run.run_id, key)) {
            if (existing->kind != kind)
                throw ProtocolError(
                    ErrorCode::dtype_mismatch,
                    where + " is already a" +
                        (existing->kind == StreamKind::array ? "n array" : " stream"));
            if (existing->dtype != dtype)
                throw ProtocolError(ErrorCode::dtype_mismatch,
                                    where + " has dtype " +
                                        std::string(proto::name(existing->dtype)) + ", not " +
                                        std::string(proto::name(dtype)));
            if (existing->shape != shape)
                throw ProtocolError(
                    ErrorCode::shape_mismatch,
                    where + " has another " + (kind == StreamKind::array ? "shape" : "row shape"));
        }
        if (auto it = c.streams.find(sh); it != c.streams.end()) {
            auto* bound = registry.stream(it->second);
            if (bound && bound->run_id == run.run_id && bound->key == key) return;  // idempotent
            throw ProtocolError(ErrorCode::duplicate,
                                "stream handle " + std::to_string(sh) + " is already declared");
        }
        auto* st = registry.stream(run.run_id, key);
        if (!st) st = &registry.add_stream(run.run_id, key, kind, dtype, shape);
        c.streams[sh] = st->stream_id;
        catalog::StreamDeclare d;
        d.stream_id = st->stream_id;
        d.run_id = run.run_id;
        d.key = key;
        d.kind = kind;
        d.dtype = dtype;
        d.shape = shape;
        d.client_id = c.client_id;
        d.handle = sh;
        buffer.stage_declare(std::move(d));
    }

    std::shared_ptr<const ShmArena> check_shm(const ClientState& c, const proto::ShmDescriptor& d) {
        auto arena = lane ? lane->find(d.token, c.client_id) : nullptr;
        if (!arena) {
            ++shm_received.refused;
            throw ProtocolError(ErrorCode::bad_shm,
                                "shared-memory arena " + std::to_string(d.token) +
                                    " is not registered by this client with this daemon; "
                                    "register it again or send the bytes in frames");
        }
        for (std::size_t i = 0; i < d.ranges.size(); ++i)
            if (!arena->contains(d.ranges[i].offset, d.ranges[i].length)) {
                ++shm_received.refused;
                throw ProtocolError(ErrorCode::bad_shm,
                                    "block " + std::to_string(i) + ": range of " +
                                        std::to_string(d.ranges[i].length) + " bytes at offset " +
                                        std::to_string(d.ranges[i].offset) +
                                        " is outside the arena of " +
                                        std::to_string(arena->size()) + " bytes");
            }
        return arena;
    }

    // The payload of block i of the current APPEND: a frame, or a range of
    // the client's arena (kept mapped and in memory until it is committed).
    Payload take_payload(std::size_t i) {
        Payload p;
        if (shm) {
            const auto& arena = shm->arena;
            const auto r = shm->desc.ranges[i];
            struct Hold {
                std::shared_ptr<const ShmArena> arena;
                proto::ShmRange range;
                ~Hold() { arena->release(range.offset, range.length); }
            };
            // Not populated here: the segment writer maps the pages when it
            // writes them (store::RowBlock::shared_mapping), so that this
            // thread, which many clients wait on, does not.
            auto hold = std::make_shared<Hold>(arena, r);  // in place: no temporary to release
            p.data = arena->base() + r.offset;
            p.bytes = r.length;
            p.shared_mapping = true;
            p.owner = std::shared_ptr<const void>(hold, p.data);
            return p;
        }
        auto owner = std::make_shared<zmq::message_t>(std::move(frames[3 + i]));
        p.data = owner->data();
        p.bytes = owner->size();
        p.owner = std::shared_ptr<const void>(owner, owner->data());
        return p;
    }

    void on_append(ClientState& c, const Header& h) {
        if (h.flags & proto::kFlagMeta)
            throw ProtocolError(ErrorCode::bad_frame, "APPEND carries no metadata frame");
        if (frames.size() < 3)
            throw ProtocolError(ErrorCode::bad_frame, "APPEND needs a block table frame");
        auto table = shm ? std::move(shm->table) : proto::decode_block_table(bytes_of(frames[2]));
        if (!shm) expect_frames(h, 2 + table.size());
        // Validate every block before staging any: an APPEND is all or nothing.
        // The validated stream and run of each block, reused when staging.
        std::vector<std::pair<StreamState*, const RunState*>> targets(table.size());
        std::map<std::int64_t, std::uint64_t> arrays_in_message;
        for (std::size_t i = 0; i < table.size(); ++i) {
            const auto& b = table[i];
            auto it = c.streams.find(b.stream);
            if (it == c.streams.end())
                throw ProtocolError(ErrorCode::unknown_stream,
                                    "block " + std::to_string(i) + ": stream handle " +
                                        std::to_string(b.stream) + " was never declared");
            auto* st = registry.stream(it->second);
            auto* run = st ? registry.run(st->run_id) : nullptr;
            if (!st || !run)
                throw ProtocolError(ErrorCode::internal, "stream handle maps to nothing");
            const std::string where = "'" + st->key + "' of run " + std::to_string(run->run_id);
            if (!run->open) throw ProtocolError(ErrorCode::run_closed, where + ": run is closed");
            const auto payload = shm ? shm->desc.ranges[i].length : frames[3 + i].size();
            if (b.rows > payload || payload / b.rows != st->row_bytes || payload % b.rows != 0)
                throw ProtocolError(ErrorCode::row_size,
                                    where + ": block of " + std::to_string(b.rows) + " rows has " +
                                        std::to_string(payload) + " bytes, expected " +
                                        std::to_string(b.rows) + " x " +
                                        std::to_string(st->row_bytes));
            if (st->kind == StreamKind::array) {
                if (b.rows != 1)
                    throw ProtocolError(ErrorCode::bad_frame,
                                        where + ": an array is written as one block of 1 row");
                if (st->next_row > 0 || arrays_in_message[st->stream_id]++ > 0)
                    throw ProtocolError(ErrorCode::array_exists,
                                        where + " is write-once and already written");
            }
            targets[i] = {st, run};
        }
        for (std::size_t i = 0; i < table.size(); ++i) {
            auto [st, run] = targets[i];
            Payload p = take_payload(i);
            p.rows = table[i].rows;
            StagedRows meta;
            meta.campaign = run->campaign;
            meta.run_id = run->run_id;
            meta.kind = st->kind;
            meta.dtype = st->dtype;
            meta.shape = st->shape;
            buffer.stage_rows(st->stream_id, meta, st->next_row, std::move(p));
            st->next_row += table[i].rows;
            received.rows += table[i].rows;
        }
        if (shm) {
            ++shm_received.appends;
            for (const auto& r : shm->desc.ranges) shm_received.bytes += r.length;
        }
    }

    void on_set_attrs(ClientState& c, const Header& h) {
        auto meta = parse_meta_frame(h, 2);
        expect_frames(h, 2);
        auto& run = open_run_of(c, get_handle(meta, "run"));
        std::string key;
        if (auto it = meta.find("key"); it != meta.end() && !it->is_null()) {
            key = proto::get_string(meta, "key");
            if (auto err = proto::check_key(key)) throw ProtocolError(ErrorCode::bad_name, *err);
        }
        auto it = meta.find("attrs");
        if (it == meta.end()) throw ProtocolError(ErrorCode::bad_meta, "SET_ATTRS needs 'attrs'");
        proto::check_fields(*it, "attrs");
        buffer.stage_attrs(catalog::AttrUpdate{run.run_id, key, *it});
    }

    void on_close_run(ClientState& c, const Header& h, double now) {
        auto meta = parse_meta_frame(h, 2);
        expect_frames(h, 2);
        auto& run = open_run_of(c, get_handle(meta, "run"));
        const auto& status = proto::get_string(meta, "status");
        if (status != "finished" && status != "failed")
            throw ProtocolError(ErrorCode::bad_meta,
                                "CLOSE_RUN 'status' must be \"finished\" or \"failed\"");
        const auto& results = proto::get_object(meta, "results");
        proto::check_fields(results, "results");
        std::string reason;
        if (auto it = meta.find("reason"); it != meta.end() && it->is_string())
            reason = it->get<std::string>().substr(0, 4096);
        run.open = false;
        buffer.stage_close(catalog::RunClose{run.run_id, status, results, reason, now});
    }

    // ---- admin ------------------------------------------------------------------

    void serve_admin() {
        for (int i = 0; i < 64; ++i) {
            bool too_many = false;
            if (!receive(admin, too_many)) return;
            if (frames.size() < 2) continue;
            std::string rid(static_cast<const char*>(frames[0].data()), frames[0].size());
            std::uint64_t number = 0;
            try {
                auto h = proto::decode_header(bytes_of(frames[1]));
                number = h.number;
                on_admin(rid, h);
            } catch (const ProtocolError& e) {
                send_error(admin, rid, number, e.code(), e.what());
            } catch (const std::exception& e) {
                send_error(admin, rid, number, ErrorCode::internal, e.what());
            }
        }
    }

    void on_admin(const std::string& rid, const Header& h) {
        switch (h.type) {
            case MsgType::status: {
                auto s = status();
                send(admin, rid, Header{MsgType::reply, 0, h.number}, &s);
                return;
            }
            case MsgType::commit:
                admin_waiters.push_back(
                    {rid, h.number, committer->request_commit(), std::chrono::steady_clock::now()});
                return;
            case MsgType::compact: {
                std::string campaign;
                if (h.flags & proto::kFlagMeta) {
                    auto meta = parse_meta_frame(h, 2);
                    if (auto it = meta.find("campaign"); it != meta.end() && it->is_string()) {
                        campaign = it->get<std::string>();
                        if (auto err = proto::check_campaign(campaign))
                            throw ProtocolError(ErrorCode::bad_name, *err);
                    }
                }
                committer->request_compact(rid, h.number, campaign);
                return;
            }
            default:
                throw ProtocolError(ErrorCode::bad_type, std::string(proto::name(h.type)) +
                                                             " is not valid on the admin socket");
        }
    }

    proto::Json status() {
        auto cs = committer->stats();
        std::set<std::string> campaigns;
        for (const auto& [id, r] : registry.runs()) campaigns.insert(r.campaign);
        proto::Json last = nullptr;
        if (cs.commits)
            last = {{"at", cs.last_at}, {"seconds", cs.last_seconds}, {"bytes", cs.last_bytes}};
        return {
            {"version", SIMSINK_VERSION},
            {"pid", static_cast<std::int64_t>(getpid())},
            {"uptime", unix_now() - started},
            {"data_dir", std::filesystem::absolute(config.data_dir).string()},
            {"listen", config.listen},
            {"state", stopping ? "stopping" : cs.state},
            {"clients",
             {{"connected", registry.connected()}, {"known", registry.clients().size()}}},
            {"runs", {{"open", registry.open_runs()}, {"total", registry.runs().size()}}},
            {"received",
             {{"messages", received.messages}, {"rows", received.rows}, {"bytes", received.bytes}}},
            {"committed",
             {{"commits", cs.commits},
              {"rows", cs.rows},
              {"bytes", cs.bytes},
              {"segments", cs.segments},
              {"pipelined", cs.pipelined}}},
            {"buffered_bytes", buffer.bytes()},
            {"buffer_cap", config.buffer_cap},
            {"credit_outstanding", gate.outstanding()},
            {"last_commit", last},
            {"errors",
             {{"total", received.errors + cs.errors},
              {"last", cs.last_error.empty()
                           ? (received.last_error.empty() ? proto::Json(nullptr)
                                                          : proto::Json(received.last_error))
                           : proto::Json(cs.last_error)}}},
            {"campaigns", campaigns},
            {"shm", shm_status()}};
    }

    proto::Json shm_status() const {
        if (!lane) return {{"socket", nullptr}};
        auto s = lane->stats();
        return {{"socket", lane->path()},
                {"arenas", s.arenas},
                {"registrations", s.registrations},
                {"refused_registrations", s.refused},
                {"appends", shm_received.appends},
                {"bytes", shm_received.bytes},
                {"refused_appends", shm_received.refused},
                {"pool",
                 {{"cap", s.pool_cap},
                  {"lent", s.pool.lent},
                  {"idle", s.pool.idle},
                  {"idle_bytes", s.pool.idle_bytes},
                  {"loans", s.pool.loans},
                  {"warm_loans", s.pool.warm_loans},
                  {"evicted", s.pool.evicted}}}};
    }

    // ---- outcomes from the writer ------------------------------------------------

    void drain_wake_fd() {
        std::uint64_t v;
        while (read(wake_fd, &v, sizeof v) == sizeof v) {
        }
    }

    void handle_outcomes() {
        drain_wake_fd();
        if (auto f = committer->failure()) std::rethrow_exception(f);
        for (auto& o : committer->take_commit_outcomes()) {
            if (o.ok) {
                std::map<std::string, proto::Json> runs;
                for (const auto& [client, handle, run_id] : o.runs) {
                    if (auto* c = registry.find_client(client)) {
                        c->runs[handle].committed = true;
                        runs[client][std::to_string(handle)] = run_id;
                    }
                }
                for (const auto& [client, seq] : o.clients) {
                    auto* c = registry.find_client(client);
                    if (!c) continue;
                    c->committed = std::max(c->committed, seq);
                    if (c->routing_id.empty()) continue;
                    auto it = runs.find(client);
                    if (it != runs.end()) {
                        proto::Json m = {{"runs", it->second}};
                        send(ingest, c->routing_id, Header{MsgType::ack, 0, c->committed}, &m);
                    } else {
                        send(ingest, c->routing_id, Header{MsgType::ack, 0, c->committed});
                    }
                }
                auto now = std::chrono::steady_clock::now();
                std::erase_if(admin_waiters, [&](const AdminWaiter& w) {
                    if (w.ticket > o.ticket) return false;
                    proto::Json r = {
                        {"committed", true},
                        {"segments", o.segments},
                        {"rows", o.rows},
                        {"bytes", o.bytes},
                        {"seconds", std::chrono::duration<double>(now - w.started).count()}};
                    send(admin, w.routing_id, Header{MsgType::reply, 0, w.request}, &r);
                    return true;
                });
            } else {
                // Clients with data not yet durable hear why their acks stall.
                for (auto& [id, c] : registry.clients())
                    if (!c.routing_id.empty() && c.expected - 1 > c.committed)
                        send_error(ingest, c.routing_id, 0, o.code, o.message);
                for (const auto& w : admin_waiters)
                    send_error(admin, w.routing_id, w.request, o.code, o.message);
                admin_waiters.clear();
            }
        }
        for (auto& o : committer->take_compact_outcomes()) {
            if (o.ok)
                send(admin, o.routing_id, Header{MsgType::reply, 0, o.request}, &o.result);
            else
                send_error(admin, o.routing_id, o.request, ErrorCode::io_error,
                           "compaction failed: " + o.message);
        }
        grant_all();
    }

    // ---- housekeeping -----------------------------------------------------------

    void housekeeping() {
        const double now = unix_now();
        for (auto& [id, c] : registry.clients()) {
            if (!c.routing_id.empty() && now - c.last_seen > config.client_timeout) {
                spdlog::debug("client {} silent for {:.0f} s: connection dropped", id,
                              now - c.last_seen);
                registry.unbind(c);
                gate.disconnect(id);
                if (lane) lane->forget(id);
            }
        }
        if (lane)
            lane->forget_unless([&](const std::string& id) {
                auto* c = registry.find_client(id);
                return c && !c->routing_id.empty();
            });
        for (const auto& [id, r] : registry.runs()) {
            if (!r.open) continue;
            auto* c = registry.find_client(r.client_id);
            double seen = c ? c->last_seen : started;
            if (now - seen <= config.lost_timeout) continue;
            auto* run = registry.run(id);
            run->open = false;
            spdlog::warn("run {} lost: client {} silent for {:.0f} s", id, r.client_id, now - seen);
            buffer.stage_close(
                catalog::RunClose{id, "lost", proto::Json::object(),
                                  "client " + r.client_id + " silent for more than " +
                                      std::to_string(static_cast<long>(config.lost_timeout)) + " s",
                                  now});
        }
        grant_all();
    }
};

Server::Server(const Config& config, Registry& registry, StagingBuffer& buffer)
    : impl_(std::make_unique<Impl>(config, registry, buffer)) {}

Server::~Server() = default;

void Server::wake() noexcept {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(impl_->wake_fd, &one, sizeof one);
}

void Server::bind() {
    auto& i = *impl_;
    for (auto* s : {&i.ingest, &i.admin}) {
        s->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(i.config.max_frame));
        s->set(zmq::sockopt::linger, 2000);
        s->set(zmq::sockopt::router_handover, 1);
        s->set(zmq::sockopt::sndhwm, 100000);
    }
    i.ingest.set(zmq::sockopt::tcp_keepalive, 1);
    for (const auto& ep : i.config.listen) {
        try {
            i.ingest.bind(ep);
        } catch (const zmq::error_t& e) {
            throw std::runtime_error("cannot listen on " + ep + ": " + e.what());
        }
    }
    try {
        i.admin.bind(i.config.admin);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error("cannot bind admin socket " + i.config.admin + ": " + e.what());
    }
    // Shared memory is an optimisation: without it local clients copy
    // their bytes through the ingest socket, as remote ones do.
    if (!i.config.shm_socket.empty()) {
        try {
            i.lane = std::make_unique<ShmLane>(i.config.shm_socket, i.daemon_id, i.config.shm_pool,
                                               i.config.shm_pool_idle);
            i.lane->start();
        } catch (const std::exception& e) {
            spdlog::warn("shared memory for local clients is off: {}", e.what());
        }
    }
}

void Server::run(Committer& committer, int signal_fd) {
    auto& i = *impl_;
    i.committer = &committer;
    const double wd = notify::watchdog_period();
    auto last_wd = std::chrono::steady_clock::now();
    auto last_house = last_wd;
    for (;;) {
        zmq::pollitem_t items[] = {
            {i.ingest.handle(), 0, ZMQ_POLLIN, 0},
            {i.admin.handle(), 0, ZMQ_POLLIN, 0},
            {nullptr, i.wake_fd, ZMQ_POLLIN, 0},
            {nullptr, signal_fd, ZMQ_POLLIN, 0},
        };
        zmq::poll(items, 4, std::chrono::milliseconds(250));
        if (items[2].revents & ZMQ_POLLIN) i.handle_outcomes();
        if (items[0].revents & ZMQ_POLLIN) i.serve_ingest();
        if (items[1].revents & ZMQ_POLLIN) i.serve_admin();
        auto now = std::chrono::steady_clock::now();
        if (now - last_house > std::chrono::seconds(1)) {
            i.housekeeping();
            last_house = now;
        }
        if (wd > 0 && std::chrono::duration<double>(now - last_wd).count() >= wd) {
            notify::watchdog();
            last_wd = now;
        }
        if (items[3].revents & ZMQ_POLLIN) {
            signalfd_siginfo si;
            [[maybe_unused]] auto n = read(signal_fd, &si, sizeof si);
            spdlog::info("signal {}: committing what is buffered, then stopping", si.ssi_signo);
            break;
        }
    }
    // Shutdown: no new data is accepted; what is staged is committed and
    // acknowledged before the sockets close (with linger, so acks leave).
    i.stopping = true;
    notify::stopping();
    i.serve_ingest();
    committer.stop();
    i.handle_outcomes();
    spdlog::info("stopped: {} commits, {} rows", committer.stats().commits, committer.stats().rows);
}

}  // namespace simsink::daemon
