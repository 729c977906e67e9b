// simsinkd's settings: defaults, then the config file (--config), then
// command-line flags, each overriding the one before.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace simsink::daemon {

struct Config {
    std::filesystem::path data_dir;
    std::vector<std::string> listen;  // ingest endpoints
    std::string admin;                // admin endpoint; default ipc://<data_dir>/admin.sock
    // Unix socket where local clients register their shared-memory arenas;
    // default <data_dir>/shm.sock; empty (config "off") disables the lane.
    std::string shm_socket;
    bool shm_socket_set = false;
    // Memory the lane lends to local clients: at most this many resident
    // bytes of finished clients' arenas are kept warm for the next ones
    // (0: lend nothing), each for at most shm_pool_idle seconds.
    std::uint64_t shm_pool = 1ull << 30;
    double shm_pool_idle = 300.0;
    double commit_interval = 1.0;               // seconds between commits while data is buffered
    double retry_interval = 1.0;                // seconds before a failed commit is tried again
    std::uint64_t commit_bytes = 64ull << 20;   // commit early when this much is buffered
    std::uint64_t buffer_cap = 1ull << 30;      // staged bytes + outstanding credit
    std::uint64_t client_window = 16ull << 20;  // credit granted ahead to one client
    std::uint64_t max_frame = 1ull << 30;       // ZMQ_MAXMSGSIZE
    double client_timeout = 10.0;               // silence after which a connection is dropped
    double lost_timeout = 300.0;            // silence after which a client's running runs are lost
    std::size_t compact_min_segments = 16;  // compact a campaign with more small segments
    std::uint64_t compact_small_bytes = 16ull << 20;  // a segment below this is small
    std::uint64_t compact_max_bytes = 256ull << 20;   // input bytes of one merge at most
    double compact_grace = 30.0;  // seconds before a replaced segment file is deleted
    bool fsync = true;            // false only for benchmarks that say so
    // Drop committed segments from the page cache once fsynced and
    // acknowledged (they are read later, if at all); only with fsync.
    bool drop_cache = true;
    // Write the raw data of large datasets with O_DIRECT (store::SegmentOptions).
    bool direct_io = false;
    // Threads that write the raw data of one commit's segments at once: a
    // campaign's part of a commit is split into up to this many segments of
    // at least write_split_bytes each (docs/performance.md, "Fifth round").
    // 0: the number of cores, at most 4. Smaller segments would gain little
    // and leave work for compaction.
    unsigned write_threads = 0;
    std::uint64_t write_split_bytes = 32ull << 20;
    std::string log_level = "info";
};

class ConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Parses argv. Returns empty when --help or --version was handled (printed
// to stdout); throws ConfigError naming the flag, key or line at fault.
std::optional<Config> parse_command_line(int argc, char** argv);

// Reads "key = value" lines (# comments, keys as the long flags without
// "--", e.g. "commit-interval = 0.5", "listen = tcp://0.0.0.0:5555"; listen
// may repeat) into `config`. Throws ConfigError with file and line.
void load_config_file(const std::filesystem::path& path, Config& config);

std::string usage();

}  // namespace simsink::daemon
