// Credit-based flow control (proto/PROTOCOL.md, section 5). The gate decides
// how many bytes each connected client may send, so that the bytes buffered
// plus all credit granted and not yet used never exceed the buffer cap:
// whatever clients may send is already paid for.
//
// Pure bookkeeping, no I/O; owned and called by the I/O thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace simsink::daemon {

class CreditGate {
  public:
    CreditGate(std::uint64_t cap, std::uint64_t window) : cap_(cap), window_(window) {}

    // A client said HELLO: starts its count at 0 and returns its first limit
    // (possibly 0 when memory is short; it gets CREDIT later).
    std::uint64_t connect(const std::string& client, std::uint64_t buffered);
    // The connection is gone (timeout, BYE, replaced): its unused credit returns.
    void disconnect(const std::string& client);

    // Counts a sequenced message of `bytes`. Returns false (and counts
    // nothing) if it exceeds the client's limit.
    bool receive(const std::string& client, std::uint64_t bytes);

    // The client asked for a limit of at least `limit` (a cumulative count,
    // like every limit). Returns false, recording nothing, when the bytes it
    // asks for beyond what it has sent exceed the cap: they never fit.
    bool want(const std::string& client, std::uint64_t limit);

    // New limits to send, as (client, limit). Only clients below half a
    // window of remaining credit, or with a want above their limit, get more,
    // and only while buffered + outstanding stays within the cap. `only`
    // restricts the check to one client (the common case after a message).
    std::vector<std::pair<std::string, std::uint64_t>> grants(std::uint64_t buffered,
                                                              const std::string* only = nullptr);

    // Bytes granted and not yet received, over all clients.
    std::uint64_t outstanding() const noexcept { return outstanding_; }
    std::uint64_t cap() const noexcept { return cap_; }
    std::size_t connections() const noexcept { return conns_.size(); }

    // The window given to each client shrinks as more connect, so that a few
    // windows never hold the whole cap hostage.
    std::uint64_t window() const noexcept;

  private:
    struct Conn {
        std::uint64_t received = 0;
        std::uint64_t limit = 0;
        std::uint64_t want = 0;
    };
    bool try_grant(Conn& c, std::uint64_t buffered);

    std::uint64_t cap_;
    std::uint64_t window_;
    std::uint64_t outstanding_ = 0;
    std::map<std::string, Conn> conns_;
};

}  // namespace simsink::daemon
