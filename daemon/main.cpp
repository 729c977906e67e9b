// simsinkd: the single writer of a simsink data directory.
#include <malloc.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>

#include "buffer/staging_buffer.hpp"
#include "catalog.hpp"
#include "config.hpp"
#include "ingest/registry.hpp"
#include "ingest/server.hpp"
#include "notify.hpp"
#include "simsink_config.h"
#include "unix_time.hpp"
#include "writer/committer.hpp"
#include "writer/recovery.hpp"

using namespace simsink;
using namespace simsink::daemon;

namespace {

// SIGTERM/SIGINT are blocked in every thread and read from a signalfd by the
// I/O thread, so shutdown runs as ordinary code, never in a handler.
int block_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) throw std::runtime_error("sigmask failed");
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
    signal(SIGPIPE, SIG_IGN);
    return fd;
}

int serve(const Config& config) {
    const int signal_fd = block_signals();
    std::filesystem::create_directories(config.data_dir);
    const double now = unix_now();

    catalog::Catalog catalog(config.data_dir / "catalog.sqlite");
    auto report = recover(config.data_dir, catalog);
    auto state = catalog.load();
    spdlog::info("data directory {}: {} runs, {} streams, {} known clients; rebuilt {} views",
                 config.data_dir.string(), state.runs.size(), state.streams.size(),
                 state.clients.size(), report.runs_viewed + report.campaigns_viewed);

    Registry registry;
    registry.load(state, now);
    StagingBuffer buffer;
    Server server(config, registry, buffer);
    server.bind();
    Committer committer(config, std::move(catalog), state.max_segment_id, buffer,
                        [&server] { server.wake(); });
    committer.start();
    std::string endpoints;
    for (const auto& e : config.listen) endpoints += (endpoints.empty() ? "" : ", ") + e;
    spdlog::info("simsinkd " SIMSINK_VERSION " ready: ingest {}, admin {}", endpoints,
                 config.admin);
    notify::ready();
    notify::status("serving " + endpoints);
    server.run(committer, signal_fd);
    if (auto f = committer.failure()) std::rethrow_exception(f);
    close(signal_fd);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // Received frames (allocated by ZeroMQ, up to max-frame each) are freed
    // after every commit. By default glibc mmaps large ones fresh and unmaps
    // them again, so every byte received page-faults (1.5 GB of faults per
    // W2 run). Keep everything in one heap that is never trimmed: memory is
    // reused warm, and the buffer cap bounds how large it grows.
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
    auto logger = spdlog::stderr_color_mt("simsinkd");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    try {
        auto config = parse_command_line(argc, argv);
        if (!config) return 0;
        spdlog::set_level(spdlog::level::from_str(config->log_level));
        return serve(*config);
    } catch (const ConfigError& e) {
        std::cerr << "simsinkd: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return 1;
    }
}
