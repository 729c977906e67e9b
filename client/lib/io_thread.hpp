// The background thread of a Client: the only code that touches its ZeroMQ
// socket. It speaks the client side of proto/PROTOCOL.md: HELLO/WELCOME,
// sending sealed messages from ClientCore's log within credit (WANT when
// short), FLUSH, ACK/CREDIT/ERROR/PONG handling, heartbeats, resends after
// WELCOME, OUT_OF_ORDER and lost messages, and sealing batches older than
// Options::linger.
//
// Threads: run() is the thread; poke() may be called from any thread (it
// writes an eventfd the thread polls). Protocol state (send cursor, credit,
// phase) belongs to the thread alone; ClientCore state is accessed under
// ClientCore::mu_.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client_core.hpp"

namespace simsink::detail {

class IoThread {
  public:
    // Creates the ZeroMQ context and DEALER socket and connects it. Throws
    // Error(BAD_ARGUMENT) for an endpoint ZeroMQ refuses.
    IoThread(ClientCore& core, const std::string& endpoint);
    ~IoThread();  // stop()
    IoThread(const IoThread&) = delete;
    IoThread& operator=(const IoThread&) = delete;

    void start();
    // Wakes the thread: new messages to send, a new flush target, a batch to time.
    void poke() noexcept;
    // Stops and joins the thread, closes the socket (pending ZeroMQ messages
    // are dropped: ZMQ_LINGER 0) and terminates the context, after which
    // ZeroMQ holds no buffer references. Idempotent.
    void stop() noexcept;

  private:
    enum class Phase { need_hello, awaiting_welcome, ready };
    struct Outgoing;  // one multipart message prepared for sending

    void run() noexcept;
    void loop();
    int poll_timeout_ms(Clock::time_point now);
    void receive_all();
    void handle(std::vector<std::vector<std::uint8_t>>& frames);
    void on_welcome(std::uint64_t number, const proto::Json& meta);
    void register_arena(const proto::Json& meta);
    void on_ack(std::uint64_t number, const proto::Json& meta);
    void on_error(std::uint64_t number, const proto::Json& meta);
    void on_pong(std::uint64_t number);
    void apply_ack_locked(std::uint64_t number, const proto::Json& meta);
    void pump();
    void heartbeat(Clock::time_point now);
    void queue_hello(std::vector<Outgoing>& out);
    void queue_simple(std::vector<Outgoing>& out, proto::MsgType type, std::uint64_t number);
    void send_all(std::vector<Outgoing>& out);
    void rewind_to(std::uint64_t seq);

    ClientCore& core_;
    void* ctx_ = nullptr;
    void* socket_ = nullptr;
    int wake_fd_ = -1;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex stop_mu_;
    bool stopped_ = false;

    // Protocol state: this thread only.
    Phase phase_ = Phase::need_hello;
    std::uint64_t send_next_ = 1;       // next seq to send
    std::uint64_t bytes_sent_ = 0;      // credit-counted bytes since the last HELLO
    std::uint64_t credit_ = 0;          // current credit limit
    std::uint64_t want_sent_ = 0;       // limit asked for by the last WANT
    std::vector<std::uint64_t> wants_;  // every WANT limit sent since the last WELCOME
    std::uint64_t flush_sent_ = 0;      // number of the last FLUSH sent
    Clock::time_point flush_sent_at_{};
    bool blocked_ = false;  // the socket refused a message (high-water mark)
    Clock::time_point last_recv_{};
    Clock::time_point last_ping_{};
    Clock::time_point hello_sent_{};
    std::uint64_t ping_upto_ = 0;  // highest seq sent before the last PING
    bool ping_outstanding_ = false;
    std::string hello_meta_;
    // Shared-memory lane: the token the current daemon gave our arena, 0 when
    // APPENDs carry their bytes in frames.
    std::uint64_t shm_token_ = 0;
};

}  // namespace simsink::detail
