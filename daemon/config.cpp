#include "config.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "simsink_config.h"

namespace simsink::daemon {

namespace {

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return {};
    auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

double parse_seconds(const std::string& key, const std::string& v) {
    try {
        std::size_t used = 0;
        double d = std::stod(v, &used);
        if (used != v.size() || d < 0) throw std::invalid_argument(v);
        return d;
    } catch (const std::exception&) {
        throw ConfigError(key + ": '" + v + "' is not a non-negative number of seconds");
    }
}

// Accepts plain bytes or a K/M/G suffix (powers of 1024).
std::uint64_t parse_bytes(const std::string& key, const std::string& v) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p == v.data())
        throw ConfigError(key + ": '" + v + "' is not a size (bytes, or with K/M/G)");
    std::string suffix(p, v.data() + v.size());
    if (suffix == "K" || suffix == "KiB")
        n <<= 10;
    else if (suffix == "M" || suffix == "MiB")
        n <<= 20;
    else if (suffix == "G" || suffix == "GiB")
        n <<= 30;
    else if (!suffix.empty())
        throw ConfigError(key + ": unknown size suffix '" + suffix + "' (use K, M or G)");
    return n;
}

unsigned parse_count(const std::string& key, const std::string& v, unsigned max) {
    unsigned n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n > max)
        throw ConfigError(key + ": '" + v + "' is not a whole number from 0 to " +
                          std::to_string(max));
    return n;
}

bool parse_bool(const std::string& key, const std::string& v) {
    if (v == "true" || v == "yes" || v == "1" || v == "on") return true;
    if (v == "false" || v == "no" || v == "0" || v == "off") return false;
    throw ConfigError(key + ": '" + v + "' is not a boolean (true/false)");
}

// One table for flags and config keys, so both stay in step.
void apply(Config& c, const std::string& key, const std::string& v) {
    if (key == "data-dir")
        c.data_dir = v;
    else if (key == "listen")
        c.listen.push_back(v);
    else if (key == "admin")
        c.admin = v;
    else if (key == "shm-socket") {
        c.shm_socket = v == "off" ? "" : v;
        c.shm_socket_set = true;
    } else if (key == "shm-pool")
        c.shm_pool = parse_bytes(key, v);
    else if (key == "shm-pool-idle")
        c.shm_pool_idle = parse_seconds(key, v);
    else if (key == "commit-interval")
        c.commit_interval = parse_seconds(key, v);
    else if (key == "retry-interval")
        c.retry_interval = parse_seconds(key, v);
    else if (key == "commit-bytes")
        c.commit_bytes = parse_bytes(key, v);
    else if (key == "buffer-cap")
        c.buffer_cap = parse_bytes(key, v);
    else if (key == "client-window")
        c.client_window = parse_bytes(key, v);
    else if (key == "max-frame")
        c.max_frame = parse_bytes(key, v);
    else if (key == "client-timeout")
        c.client_timeout = parse_seconds(key, v);
    else if (key == "lost-timeout")
        c.lost_timeout = parse_seconds(key, v);
    else if (key == "compact-min-segments")
        c.compact_min_segments = static_cast<std::size_t>(parse_bytes(key, v));
    else if (key == "compact-small-bytes")
        c.compact_small_bytes = parse_bytes(key, v);
    else if (key == "compact-max-bytes")
        c.compact_max_bytes = parse_bytes(key, v);
    else if (key == "compact-grace")
        c.compact_grace = parse_seconds(key, v);
    else if (key == "fsync")
        c.fsync = parse_bool(key, v);
    else if (key == "drop-cache")
        c.drop_cache = parse_bool(key, v);
    else if (key == "direct-io")
        c.direct_io = parse_bool(key, v);
    else if (key == "write-threads")
        c.write_threads = parse_count(key, v, 64);
    else if (key == "write-split-bytes")
        c.write_split_bytes = parse_bytes(key, v);
    else if (key == "log-level") {
        static const char* levels[] = {"trace", "debug",    "info", "warn",
                                       "error", "critical", "off"};
        bool ok = false;
        for (auto* l : levels) ok = ok || v == l;
        if (!ok)
            throw ConfigError("log-level: '" + v + "' is not one of trace debug info warn error");
        c.log_level = v;
    } else
        throw ConfigError("unknown setting '" + key + "' (see simsinkd --help)");
}

void finish(Config& c) {
    if (c.data_dir.empty()) throw ConfigError("no data directory: give --data-dir DIR");
    if (c.listen.empty()) c.listen.push_back("tcp://127.0.0.1:5555");
    if (c.admin.empty())
        c.admin = "ipc://" + (std::filesystem::absolute(c.data_dir) / "admin.sock").string();
    if (!c.shm_socket_set)
        c.shm_socket = (std::filesystem::absolute(c.data_dir) / "shm.sock").string();
    else if (!c.shm_socket.empty())
        c.shm_socket = std::filesystem::absolute(c.shm_socket).string();
    if (c.buffer_cap < (4u << 20)) throw ConfigError("buffer-cap must be at least 4M");
    if (c.client_window == 0 || c.client_window > c.buffer_cap)
        throw ConfigError("client-window must be between 1 byte and buffer-cap");
    if (c.commit_interval <= 0) throw ConfigError("commit-interval must be positive");
    if (c.retry_interval <= 0) throw ConfigError("retry-interval must be positive");
    if (c.write_split_bytes == 0) throw ConfigError("write-split-bytes must be positive");
    if (c.write_threads == 0)
        c.write_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
}

}  // namespace

std::string usage() {
    return R"(Usage: simsinkd --data-dir DIR [options]

The simsink daemon: the single writer of a data directory. Workers send it
records over ZeroMQ; it commits them to HDF5 segment files, an HDF5 view per
campaign, and the SQLite catalog DIR/catalog.sqlite.

Options (each can also be a "key = value" line in the --config file):
  --config FILE              read settings from FILE first
  --data-dir DIR             data directory (created if missing)
  --listen ENDPOINT          ingest endpoint, repeatable (default tcp://127.0.0.1:5555)
  --admin ENDPOINT           admin endpoint (default ipc://DIR/admin.sock)
  --shm-socket PATH|off      unix socket where clients on this host register
                             shared memory for their data (default DIR/shm.sock)
  --shm-pool SIZE            keep up to SIZE of finished local clients' memory
                             to lend, warm, to new ones of the same user
                             (default 1G; 0 lends nothing)
  --shm-pool-idle SECONDS    close pooled memory unused this long (default 300)
  --commit-interval SECONDS  commit buffered data this often (default 1)
  --retry-interval SECONDS   retry a failed commit (full disk, I/O error) after
                             this long (default 1)
  --commit-bytes SIZE        commit early past this many buffered bytes (default 64M)
  --buffer-cap SIZE          memory for buffered data and granted credit (default 1G)
  --client-window SIZE       credit granted ahead to one client (default 16M)
  --max-frame SIZE           largest frame accepted (default 1G)
  --client-timeout SECONDS   drop a silent connection after this (default 10)
  --lost-timeout SECONDS     mark runs of a silent client lost after this (default 300)
  --compact-min-segments N   compact a campaign past N small segments (default 16)
  --compact-small-bytes SIZE a segment below this is small (default 16M)
  --compact-max-bytes SIZE   input bytes of one merge at most (default 256M)
  --compact-grace SECONDS    keep replaced segment files this long (default 30)
  --fsync BOOL               fsync segments (default true; false loses durability)
  --drop-cache BOOL          drop committed segments from the page cache once
                             acknowledged (default true; readers read from disk)
  --direct-io BOOL           write large datasets with O_DIRECT, past the page
                             cache (default false)
  --write-threads N          write a large commit as up to N segments at once
                             (default 0: the number of cores, at most 4)
  --write-split-bytes SIZE   each of those segments at least SIZE (default 32M)
  --log-level LEVEL          trace, debug, info, warn, error (default info)
  -h, --help                 show this help
  --version                  show the version

Sizes take K, M or G suffixes (powers of 1024).
SIGTERM or SIGINT: commit what is buffered, acknowledge it, exit 0.
)";
}

void load_config_file(const std::filesystem::path& path, Config& c) {
    std::ifstream in(path);
    if (!in) throw ConfigError("cannot read config file " + path.string());
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        auto hash = line.find('#');
        if (hash != std::string::npos) line.resize(hash);
        line = trim(line);
        if (line.empty()) continue;
        auto eq = line.find('=');
        if (eq == std::string::npos)
            throw ConfigError(path.string() + ":" + std::to_string(n) + ": expected 'key = value'");
        try {
            apply(c, trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
        } catch (const ConfigError& e) {
            throw ConfigError(path.string() + ":" + std::to_string(n) + ": " + e.what());
        }
    }
}

std::optional<Config> parse_command_line(int argc, char** argv) {
    Config c;
    std::vector<std::pair<std::string, std::string>> flags;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::cout << usage();
            return std::nullopt;
        }
        if (a == "--version") {
            std::cout << "simsinkd " SIMSINK_VERSION "\n";
            return std::nullopt;
        }
        if (a.rfind("--", 0) != 0)
            throw ConfigError("unexpected argument '" + a + "' (see simsinkd --help)");
        std::string key = a.substr(2), value;
        auto eq = key.find('=');
        if (eq != std::string::npos) {
            value = key.substr(eq + 1);
            key.resize(eq);
        } else {
            if (i + 1 >= argc) throw ConfigError("--" + key + " needs a value");
            value = argv[++i];
        }
        flags.emplace_back(key, value);
    }
    // The config file applies first so that flags override it.
    for (const auto& [k, v] : flags)
        if (k == "config") load_config_file(v, c);
    bool listen_flag = false;
    for (const auto& [k, v] : flags) {
        if (k == "config") continue;
        if (k == "listen" && !listen_flag) {
            c.listen.clear();  // flags replace the file's endpoints
            listen_flag = true;
        }
        apply(c, k, v);
    }
    finish(c);
    return c;
}

}  // namespace simsink::daemon
