#include "credit_gate.hpp"

#include <algorithm>

namespace simsink::daemon {

std::uint64_t CreditGate::window() const noexcept {
    constexpr std::uint64_t kMinWindow = 1 << 20;
    auto n = std::max<std::uint64_t>(1, conns_.size());
    return std::min(window_, std::max(kMinWindow, cap_ / (2 * n)));
}

bool CreditGate::try_grant(Conn& c, std::uint64_t buffered) {
    const std::uint64_t w = window();
    const std::uint64_t left = c.limit - c.received;
    if (left >= w / 2 && c.want <= c.limit) return false;
    const std::uint64_t target = std::max(c.received + w, c.want);
    if (target <= c.limit) return false;
    const std::uint64_t delta = target - c.limit;
    if (buffered + outstanding_ + delta > cap_) return false;
    c.limit = target;
    outstanding_ += delta;
    return true;
}

std::uint64_t CreditGate::connect(const std::string& client, std::uint64_t buffered) {
    disconnect(client);
    auto& c = conns_[client];
    try_grant(c, buffered);
    return c.limit;
}

void CreditGate::disconnect(const std::string& client) {
    auto it = conns_.find(client);
    if (it == conns_.end()) return;
    outstanding_ -= it->second.limit - it->second.received;
    conns_.erase(it);
}

bool CreditGate::receive(const std::string& client, std::uint64_t bytes) {
    auto it = conns_.find(client);
    if (it == conns_.end()) return false;
    auto& c = it->second;
    if (bytes > c.limit - c.received) return false;
    c.received += bytes;
    outstanding_ -= bytes;
    return true;
}

bool CreditGate::want(const std::string& client, std::uint64_t limit) {
    auto it = conns_.find(client);
    if (it == conns_.end()) return true;
    auto& c = it->second;
    if (limit > c.received && limit - c.received > cap_) return false;
    c.want = std::max(c.want, limit);
    return true;
}

std::vector<std::pair<std::string, std::uint64_t>> CreditGate::grants(std::uint64_t buffered,
                                                                      const std::string* only) {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    if (only) {
        auto it = conns_.find(*only);
        if (it != conns_.end() && try_grant(it->second, buffered))
            out.emplace_back(it->first, it->second.limit);
        return out;
    }
    // Clients that asked (want) first, then the rest, so a large record is
    // not starved by many small ones.
    for (int pass = 0; pass < 2; ++pass)
        for (auto& [id, c] : conns_) {
            bool wants = c.want > c.limit;
            if ((pass == 0) != wants) continue;
            if (try_grant(c, buffered)) out.emplace_back(id, c.limit);
        }
    return out;
}

}  // namespace simsink::daemon
