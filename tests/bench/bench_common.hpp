// Small helpers shared by the benchmark programs of tests/bench: a clock,
// --name value arguments, one JSON line of results on stdout, fsync of a
// finished file, and a start barrier for forked worker processes.
//
// Every benchmark prints exactly one JSON object on stdout (the driver
// scripts/bench parses it) and its diagnostics on stderr.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace simsink::bench {

// CLOCK_MONOTONIC in seconds: the same clock in every process of the
// machine, so a forked worker's end time compares with its parent's start.
inline double now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

[[noreturn]] inline void die(const std::string& what) {
    std::fprintf(stderr, "%s\n", what.c_str());
    std::exit(2);
}

// die() with errno's message: "<what>: <strerror(errno)>".
[[noreturn]] inline void die_errno(const std::string& what) {
    die(what + ": " + std::strerror(errno));
}

// CPU time so far (user + system), seconds: of this process, or with
// RUSAGE_CHILDREN of its children that have been waited for.
inline double cpu_seconds(int who = RUSAGE_SELF) {
    rusage r{};
    ::getrusage(who, &r);
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
}

// All `bytes` at `at`, across short writes and EINTR; dies naming `what`.
inline void pwrite_all(int fd, const void* data, std::size_t bytes, off_t at,
                       const std::string& what) {
    const auto* p = static_cast<const char*>(data);
    for (std::size_t done = 0; done < bytes;) {
        const ssize_t w = ::pwrite(fd, p + done, bytes - done, at + static_cast<off_t>(done));
        if (w < 0) {
            if (errno == EINTR) continue;
            die_errno(what);
        }
        done += static_cast<std::size_t>(w);
    }
}

class Args;

// main() of a bench program whose --mode picks one function: runs it, prints
// an exception as "<program>: <what>" and returns 1, an unknown mode prints
// the usage.
inline int run_mode(int argc, char** argv, const char* usage, const char* program,
                    const std::map<std::string, std::function<void(const Args&)>>& modes);

// "--name value" pairs; every option takes a value. An option the usage
// text does not name is an error, not silently ignored.
class Args {
  public:
    Args(int argc, char** argv, const char* usage) : usage_(usage) {
        for (int i = 1; i < argc; ++i) {
            std::string k = argv[i];
            if (k == "-h" || k == "--help") {
                std::fprintf(stdout, "%s", usage);
                std::exit(0);
            }
            if (k.rfind("--", 0) != 0 || i + 1 >= argc) die(std::string("bad arguments\n") + usage);
            if (!names(k)) die("unknown option " + k + "\n" + usage);
            values_[k.substr(2)] = argv[++i];
        }
    }
    std::string str(const std::string& k, const std::string& def = {}) const {
        auto it = values_.find(k);
        return it == values_.end() ? def : it->second;
    }
    std::string need(const std::string& k) const {
        auto it = values_.find(k);
        if (it == values_.end()) die("missing --" + k + "\n" + usage_);
        return it->second;
    }
    // A whole number; anything else (a suffix, trailing text) is an error,
    // not a silently shorter number.
    long integer(const std::string& k, long def) const {
        auto it = values_.find(k);
        if (it == values_.end()) return def;
        long v = 0;
        if (!parse(it->second, v, nullptr))
            die("--" + k + " takes a whole number, not '" + it->second + "'\n" + usage_);
        return v;
    }
    // A byte count: a whole number with an optional K, M or G suffix
    // (powers of 1024), as the daemon's size options take.
    long bytes(const std::string& k, long def) const {
        auto it = values_.find(k);
        if (it == values_.end()) return def;
        long v = 0;
        char suffix = 0;
        if (!parse(it->second, v, &suffix))
            die("--" + k + " takes a byte count (e.g. 4096, 64K, 512M, 2G), not '" + it->second +
                "'\n" + usage_);
        const int shift = suffix == 'K' ? 10 : suffix == 'M' ? 20 : suffix == 'G' ? 30 : 0;
        if (v > (std::numeric_limits<long>::max() >> shift)) die("--" + k + " is too large");
        return v << shift;
    }
    bool flag(const std::string& k, bool def) const {
        auto it = values_.find(k);
        if (it == values_.end()) return def;
        const std::string& v = it->second;
        if (v == "1" || v == "true" || v == "yes") return true;
        if (v == "0" || v == "false" || v == "no") return false;
        die("--" + k + " takes 1 or 0, not '" + v + "'\n" + usage_);
    }
    // "1,4,16" -> {1, 4, 16}
    std::vector<unsigned long long> list(const std::string& k,
                                         std::vector<unsigned long long> def) const {
        auto it = values_.find(k);
        if (it == values_.end()) return def;
        std::vector<unsigned long long> out;
        std::stringstream ss(it->second);
        std::string item;
        while (std::getline(ss, item, ',')) {
            long v = 0;
            if (!parse(item, v, nullptr) || v < 0)
                die("--" + k + " takes whole numbers separated by commas, not '" + it->second +
                    "'\n" + usage_);
            out.push_back(static_cast<unsigned long long>(v));
        }
        return out;
    }

  private:
    // Does the usage text name option `k` ("--name" followed by a space,
    // a bracket, a "|" or the end of a line)?
    bool names(const std::string& k) const {
        const std::string& u = usage_;
        for (auto at = u.find(k); at != std::string::npos; at = u.find(k, at + 1)) {
            const char next = at + k.size() < u.size() ? u[at + k.size()] : '\n';
            if (next == ' ' || next == ']' || next == '|' || next == '\n' || next == '=') return true;
        }
        return false;
    }
    // Digits (a leading '-' allowed), then, if `suffix` is given, one of
    // K, M, G (either case) at most.
    static bool parse(const std::string& text, long& v, char* suffix) {
        const char* end = text.data() + text.size();
        auto [p, ec] = std::from_chars(text.data(), end, v);
        if (ec != std::errc() || p == text.data()) return false;
        if (p == end) return true;
        if (!suffix || p + 1 != end || v < 0) return false;
        *suffix = static_cast<char>(std::toupper(static_cast<unsigned char>(*p)));
        return *suffix == 'K' || *suffix == 'M' || *suffix == 'G';
    }
    std::map<std::string, std::string> values_;
    std::string usage_;
};

inline int run_mode(int argc, char** argv, const char* usage, const char* program,
                    const std::map<std::string, std::function<void(const Args&)>>& modes) {
    Args args(argc, argv, usage);
    auto it = modes.find(args.need("mode"));
    if (it == modes.end()) die(usage);
    try {
        it->second(args);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 1;
    }
    return 0;
}

// Builds the one JSON object a benchmark prints: keys in insertion order,
// numbers and strings only (strings are plain ASCII here; quotes and
// backslashes are escaped anyway).
class JsonLine {
  public:
    JsonLine& num(const std::string& k, double v) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.9g", v);
        return raw(k, buf);
    }
    JsonLine& integer(const std::string& k, long long v) { return raw(k, std::to_string(v)); }
    JsonLine& str(const std::string& k, const std::string& v) {
        std::string q = "\"";
        for (char c : v) {
            if (c == '"' || c == '\\') q += '\\';
            q += c;
        }
        return raw(k, q + "\"");
    }
    JsonLine& nums(const std::string& k, const std::vector<double>& v) {
        std::string s = "[";
        for (std::size_t i = 0; i < v.size(); ++i) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", v[i]);
            s += buf;
        }
        return raw(k, s + "]");
    }
    void print() const {
        std::printf("{%s}\n", body_.c_str());
        std::fflush(stdout);
    }

  private:
    JsonLine& raw(const std::string& k, const std::string& v) {
        if (!body_.empty()) body_ += ", ";
        body_ += "\"" + k + "\": " + v;
        return *this;
    }
    std::string body_;
};

// fsync(2) of a closed file by name: what a user who wants the data durable
// does after closing an HDF5 file (HDF5 has no fsync call of its own).
inline void fsync_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) die_errno("open " + path);
    if (::fsync(fd) != 0) die_errno("fsync " + path);
    ::close(fd);
}

// Result of one forked worker, written to a pipe in one write(2) (smaller
// than PIPE_BUF, so never interleaved with another worker's).
struct WorkerResult {
    int index = 0;
    int ok = 0;
    double started = 0;   // now() when the worker began (after the barrier)
    double finished = 0;  // now() when its data was committed / acknowledged
    double loop = 0;      // seconds from its start to the end of its record loop
    double setup = 0;     // seconds from its start until it could record (simsink:
                          // Client constructed, run opened; Redis: connected)
    double connected = 0; // seconds from its start until the Client was constructed
                          // (simsink) or the connection made (Redis)
};

// Forks `n` workers that wait on a barrier, releases them together, and
// collects their results. `work(i)` runs in the child and returns its
// result (its exceptions make the child exit non-zero). Returns the
// results in index order and the release time in `released`.
inline std::vector<WorkerResult> run_forked(int n, const std::function<WorkerResult(int)>& work,
                                            double& released) {
    int gate[2], results[2];
    if (::pipe(gate) != 0 || ::pipe(results) != 0) die("pipe failed");
    std::vector<pid_t> pids;
    for (int i = 0; i < n; ++i) {
        pid_t pid = ::fork();
        if (pid < 0) die("fork failed");
        if (pid == 0) {
            ::close(gate[1]);
            ::close(results[0]);
            char c;
            while (::read(gate[0], &c, 1) < 0 && errno == EINTR) {
            }
            WorkerResult r;
            int code = 0;
            try {
                r = work(i);
                r.ok = 1;
            } catch (const std::exception& e) {
                std::fprintf(stderr, "worker %d: %s\n", i, e.what());
                code = 1;
            }
            r.index = i;
            if (::write(results[1], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) code = 1;
            std::fflush(stdout);
            std::fflush(stderr);
            std::_Exit(code);
        }
        pids.push_back(pid);
    }
    ::close(gate[0]);
    ::close(results[1]);
    ::usleep(100000);  // let every child reach its read() of the gate
    released = now();
    ::close(gate[1]);  // EOF: every worker starts
    std::vector<WorkerResult> out(n);
    std::vector<bool> seen(n, false);
    for (int k = 0; k < n; ++k) {
        WorkerResult r;
        ssize_t got = ::read(results[0], &r, sizeof r);
        if (got != static_cast<ssize_t>(sizeof r)) break;
        if (r.index >= 0 && r.index < n) {
            out[r.index] = r;
            seen[r.index] = true;
        }
    }
    ::close(results[0]);
    bool failed = false;
    for (pid_t p : pids) {
        int status = 0;
        ::waitpid(p, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = true;
    }
    for (int i = 0; i < n; ++i)
        if (!seen[i] || !out[i].ok) failed = true;
    if (failed) die("a worker failed");
    return out;
}

}  // namespace simsink::bench
