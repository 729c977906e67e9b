// A scripted stand-in for simsinkd's ingest socket, for testing the client's
// side of proto/PROTOCOL.md without the real daemon: a ROUTER on an ipc://
// endpoint, run by its own thread, that records every message it receives
// and answers like the daemon would (WELCOME, duplicates dropped,
// OUT_OF_ORDER on gaps, ACK on FLUSH with run ids, CREDIT on WANT, PONG).
// Knobs let a test withhold ACKs, shrink credit, drop or reject messages.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "meta.hpp"
#include "wire.hpp"

namespace simsink::test {

struct Received {
    proto::Header header;
    proto::Json meta;                                 // empty object if none
    std::vector<proto::BlockEntry> blocks;            // APPEND
    std::vector<std::vector<std::uint8_t>> payloads;  // APPEND
    std::size_t bytes = 0;                            // all frames
};

inline std::string unique_ipc_endpoint() {
    static std::atomic<int> n{0};
    return "ipc:///tmp/simsink-test-" + std::to_string(::getpid()) + "-" +
           std::to_string(n.fetch_add(1)) + ".sock";
}

// How the fake daemon behaves; change through FakeDaemon::set().
struct Knobs {
    bool ack_on_flush = true;         // answer FLUSH with ACK (= commit everything)
    std::uint64_t credit = 1u << 30;  // WELCOME credit
    std::uint64_t credit_step = 0;    // on WANT grant the asked limit when 0, else +step
    bool answer_ping = true;
    bool keep_messages = true;  // false: keep nothing (benchmarks)
    // Refuse a WANT whose limit (bytes since HELLO) is above this, with
    // TOO_LARGE, as simsinkd compares it with its buffer cap.
    std::uint64_t want_cap = ~std::uint64_t{0};
    // Called for every sequenced message at the expected seq; returns an
    // error code name to reject it with ("" to accept).
    std::function<std::string(const Received&)> reject;
    // Drop (pretend it was lost) the first message with this seq.
    std::uint64_t drop_seq_once = 0;
};

class FakeDaemon {
  public:
    explicit FakeDaemon(std::string endpoint = unique_ipc_endpoint(), std::uint64_t committed = 0,
                        Knobs knobs = {})
        : endpoint_(std::move(endpoint)), knobs_(std::move(knobs)), committed_(committed) {
        expected_ = committed + 1;
        next_run_id_ = 100;
        socket_ = zmq::socket_t(ctx_, zmq::socket_type::router);
        socket_.set(zmq::sockopt::linger, 0);
        socket_.bind(endpoint_);
        thread_ = std::thread([this] { loop(); });
    }
    ~FakeDaemon() { stop(); }

    void stop() {
        if (stop_.exchange(true)) return;
        thread_.join();
        socket_.close();
    }

    const std::string& endpoint() const { return endpoint_; }

    template <class F>
    void set(F f) {
        std::lock_guard lock(mu_);
        f(knobs_);
    }

    // Commits everything staged and ACKs every client (as a commit interval would).
    void commit_now() {
        std::lock_guard lock(mu_);
        commit_all_locked();
    }

    std::vector<Received> received() const {
        std::lock_guard lock(mu_);
        return received_;
    }
    // Sequenced messages that were processed (not duplicates, not gaps, not
    // dropped), in seq order.
    std::vector<Received> processed() const {
        std::lock_guard lock(mu_);
        return processed_;
    }
    std::uint64_t committed() const {
        std::lock_guard lock(mu_);
        return committed_;
    }
    int count(proto::MsgType t) const {
        std::lock_guard lock(mu_);
        int n = 0;
        for (const auto& r : received_) n += r.header.type == t;
        return n;
    }

    // Waits until pred(*this) holds, or the timeout.
    template <class Pred>
    bool wait_for(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < end) {
            if (pred(*this)) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return pred(*this);
    }

    // Sends an arbitrary message to the (last seen) client.
    void send_to_client(proto::MsgType t, std::uint64_t number, const proto::Json* meta) {
        std::lock_guard lock(mu_);
        send_locked(t, number, meta);
    }

  private:
    void loop() {
        while (!stop_.load()) {
            zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
            zmq::poll(items, 1, std::chrono::milliseconds(5));
            if (!(items[0].revents & ZMQ_POLLIN)) continue;
            std::vector<zmq::message_t> frames;
            do {
                zmq::message_t m;
                (void)socket_.recv(m);
                frames.push_back(std::move(m));
            } while (frames.back().more());
            std::lock_guard lock(mu_);
            peer_ = frames[0].to_string();
            handle_locked(frames);
        }
    }

    static std::span<const std::uint8_t> span(const zmq::message_t& m) {
        return {static_cast<const std::uint8_t*>(m.data()), m.size()};
    }

    void send_locked(proto::MsgType t, std::uint64_t number, const proto::Json* meta) {
        auto h = proto::encode_header({t, meta ? proto::kFlagMeta : std::uint16_t{0}, number});
        socket_.send(zmq::buffer(peer_), zmq::send_flags::sndmore);
        if (meta) {
            socket_.send(zmq::buffer(h), zmq::send_flags::sndmore);
            socket_.send(zmq::buffer(proto::dump_meta(*meta)), zmq::send_flags::none);
        } else {
            socket_.send(zmq::buffer(h), zmq::send_flags::none);
        }
    }

    void error_locked(std::uint64_t number, const std::string& code, const std::string& message,
                      proto::Json extra = proto::Json::object()) {
        extra["code"] = code;
        extra["message"] = message;
        send_locked(proto::MsgType::error, number, &extra);
    }

    void commit_all_locked() {
        committed_ = expected_ - 1;
        proto::Json meta = {{"runs", proto::Json::object()}};
        for (auto& [handle, id] : runs_staged_) meta["runs"][std::to_string(handle)] = id;
        runs_committed_.insert(runs_staged_.begin(), runs_staged_.end());
        runs_staged_.clear();
        send_locked(proto::MsgType::ack, committed_, &meta);
    }

    void handle_locked(std::vector<zmq::message_t>& frames) {
        Received r;
        for (std::size_t i = 1; i < frames.size(); ++i) r.bytes += frames[i].size();
        try {
            r.header = proto::decode_header(span(frames[1]));
        } catch (const proto::ProtocolError& e) {
            error_locked(0, std::string(proto::name(e.code())), e.what());
            return;
        }
        r.meta = proto::Json::object();
        if (r.header.flags & proto::kFlagMeta) r.meta = proto::parse_meta(span(frames[2]));
        if (r.header.type == proto::MsgType::append && knobs_.keep_messages) {
            r.blocks = proto::decode_block_table(span(frames[2]));
            for (std::size_t i = 3; i < frames.size(); ++i)
                r.payloads.emplace_back(
                    static_cast<const std::uint8_t*>(frames[i].data()),
                    static_cast<const std::uint8_t*>(frames[i].data()) + frames[i].size());
        }
        if (knobs_.keep_messages) received_.push_back(r);

        const auto type = r.header.type;
        if (type == proto::MsgType::hello) {
            hello_ = true;
            sent_since_hello_ = 0;
            limit_ = knobs_.credit;
            proto::Json runs = proto::Json::object();
            for (auto& [h, id] : runs_committed_) runs[std::to_string(h)] = id;
            proto::Json meta = {{"daemon", "fake"}, {"expected", expected_}, {"credit", limit_},
                                {"runs", runs},     {"max_frame", 1u << 30}, {"version", "0.1.0"}};
            send_locked(proto::MsgType::welcome, committed_, &meta);
            return;
        }
        if (!hello_) {
            error_locked(proto::is_sequenced(type) ? r.header.number : 0, "NEED_HELLO", "no HELLO");
            return;
        }
        if (type == proto::MsgType::ping) {
            if (knobs_.answer_ping) send_locked(proto::MsgType::pong, expected_, nullptr);
            return;
        }
        if (type == proto::MsgType::want) {
            if (r.header.number > knobs_.want_cap) {
                error_locked(r.header.number, "TOO_LARGE", "WANT exceeds the buffer cap");
                return;
            }
            limit_ = knobs_.credit_step ? limit_ + knobs_.credit_step : r.header.number;
            send_locked(proto::MsgType::credit, limit_, nullptr);
            return;
        }
        if (type == proto::MsgType::flush) {
            if (knobs_.ack_on_flush && r.header.number < expected_) commit_all_locked();
            return;
        }
        if (!proto::is_sequenced(type)) return;

        sent_since_hello_ += r.bytes;
        std::uint64_t seq = r.header.number;
        if (knobs_.drop_seq_once && seq == knobs_.drop_seq_once) {
            knobs_.drop_seq_once = 0;
            return;  // lost on the way
        }
        if (sent_since_hello_ > limit_) {
            error_locked(seq, "CREDIT_EXCEEDED", "past credit");
            return;
        }
        if (seq < expected_) return;  // duplicate
        if (seq > expected_) {
            if (gap_reported_for_ != expected_) {
                gap_reported_for_ = expected_;
                error_locked(seq, "OUT_OF_ORDER", "gap", {{"expected", expected_}});
            }
            return;
        }
        ++expected_;
        if (knobs_.reject) {
            std::string code = knobs_.reject(r);
            if (!code.empty()) {
                error_locked(seq, code, "rejected by the fake daemon");
                processed_.push_back(r);
                return;
            }
        }
        if (type == proto::MsgType::open_run)
            runs_staged_[r.meta["run"].get<std::uint32_t>()] = next_run_id_++;
        if (knobs_.keep_messages) processed_.push_back(std::move(r));
    }

    std::string endpoint_;
    zmq::context_t ctx_;
    zmq::socket_t socket_;
    std::thread thread_;
    std::atomic<bool> stop_{false};

    mutable std::mutex mu_;
    Knobs knobs_;
    std::string peer_;
    bool hello_ = false;
    std::uint64_t expected_ = 1;
    std::uint64_t committed_ = 0;
    std::uint64_t gap_reported_for_ = 0;
    std::uint64_t sent_since_hello_ = 0;
    std::uint64_t limit_ = 0;
    std::int64_t next_run_id_ = 100;
    std::map<std::uint32_t, std::int64_t> runs_staged_, runs_committed_;
    std::vector<Received> received_, processed_;
};

}  // namespace simsink::test
