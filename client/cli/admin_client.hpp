// A request/reply client for the daemon's admin socket (PROTOCOL.md 4.3).
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "meta.hpp"
#include "wire.hpp"

namespace simsink::cli {

// The daemon answered ERROR, or did not answer in time (code timeout).
class AdminError : public std::runtime_error {
  public:
    AdminError(proto::ErrorCode code, const std::string& what)
        : std::runtime_error(what), code_(code) {}
    proto::ErrorCode code() const noexcept { return code_; }

  private:
    proto::ErrorCode code_;
};

class AdminClient {
  public:
    explicit AdminClient(std::string endpoint);
    ~AdminClient();

    // Sends one request and waits for its REPLY; throws AdminError.
    proto::Json request(proto::MsgType type, const proto::Json* meta,
                        std::chrono::milliseconds timeout);

    const std::string& endpoint() const { return endpoint_; }

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string endpoint_;
};

}  // namespace simsink::cli
