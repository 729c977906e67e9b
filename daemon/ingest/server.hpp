// The I/O thread: owns the ingest and admin ZeroMQ sockets, decodes and
// validates every message, applies sequencing and credit, stages accepted
// records into the StagingBuffer, and sends acknowledgements, credit and
// errors. It never touches HDF5 or the catalog; the Committer reports back
// through an eventfd.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "buffer/staging_buffer.hpp"
#include "config.hpp"
#include "ingest/registry.hpp"
#include "writer/committer.hpp"

namespace simsink::daemon {

class Server {
  public:
    Server(const Config& config, Registry& registry, StagingBuffer& buffer);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Thread-safe: makes run() look at the committer's outcomes.
    void wake() noexcept;

    // Binds the sockets (throws naming the endpoint on failure).
    void bind();

    // Serves until SIGTERM/SIGINT arrives on `signal_fd`, then commits what
    // is buffered, acknowledges it and returns.
    void run(Committer& committer, int signal_fd);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace simsink::daemon
