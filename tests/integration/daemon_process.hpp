// Test fixture: the real simsinkd binary, started as a process on a fresh
// temporary data directory with ipc:// sockets inside it, and helpers to run
// other processes (workers) and talk to the admin socket.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "meta.hpp"
#include "wire.hpp"

extern char** environ;

namespace simsink::testing {

namespace fs = std::filesystem;

inline std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v ? v : fallback;
}

inline fs::path make_temp_dir(const std::string& tag) {
    std::random_device rd;
    auto dir = fs::temp_directory_path() / ("simsink-" + tag + "-" + std::to_string(rd()));
    fs::create_directories(dir);
    return dir;
}

// A loopback TCP port that was free a moment ago (bound to port 0, closed).
inline int free_tcp_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("no free TCP port");
    close(fd);
    return ntohs(a.sin_port);
}

inline pid_t spawn(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid;
    if (posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0)
        throw std::runtime_error("cannot start " + argv[0]);
    return pid;
}

// Waits for a process; returns its exit status, or 128 + signal.
inline int wait_exit(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

// One admin request/reply over the admin socket (PROTOCOL.md 4.3).
inline proto::Json admin_request(const std::string& endpoint, proto::MsgType type,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    zmq::context_t ctx;
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(endpoint);
    auto hdr = proto::encode_header({type, 0, 42});
    s.send(zmq::buffer(hdr), zmq::send_flags::none);
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) throw std::runtime_error("admin request timed out");
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(s, std::back_inserter(frames));
    auto h = proto::decode_header(
        {static_cast<const std::uint8_t*>(frames[0].data()), frames[0].size()});
    auto meta = frames.size() > 1
                    ? proto::parse_meta(
                          {static_cast<const std::uint8_t*>(frames[1].data()), frames[1].size()})
                    : proto::Json::object();
    if (h.type == proto::MsgType::error) throw std::runtime_error("admin error: " + meta.dump());
    return meta;
}

class DaemonProcess {
  public:
    explicit DaemonProcess(const std::string& tag, std::vector<std::string> extra = {})
        : dir_(make_temp_dir(tag)), extra_(std::move(extra)), port_(free_tcp_port()) {
        start();
    }
    ~DaemonProcess() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            wait_exit(pid_);
        }
        std::error_code ec;
        if (!std::getenv("SIMSINK_KEEP_TEST_DIRS")) fs::remove_all(dir_, ec);
    }

    void start() {
        std::vector<std::string> argv = {binary(),
                                         "--data-dir",
                                         data_dir().string(),
                                         "--listen",
                                         ingest(),
                                         "--listen",
                                         tcp(),
                                         "--admin",
                                         admin(),
                                         "--commit-interval",
                                         "0.2",
                                         "--log-level",
                                         "warn"};
        argv.insert(argv.end(), extra_.begin(), extra_.end());
        pid_ = spawn(argv);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        for (;;) {
            if (fs::exists(dir_ / "admin.sock")) {
                try {
                    admin_request(admin(), proto::MsgType::status, std::chrono::milliseconds(500));
                    return;
                } catch (const std::exception&) {
                }
            }
            if (std::chrono::steady_clock::now() > deadline)
                throw std::runtime_error("simsinkd did not come up in 20 s");
            int status;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("simsinkd exited during start");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    // SIGTERM and wait; returns the exit status (0 expected).
    int stop() {
        kill(pid_, SIGTERM);
        int rc = wait_exit(pid_);
        pid_ = -1;
        return rc;
    }
    void kill9() {
        kill(pid_, SIGKILL);
        wait_exit(pid_);
        pid_ = -1;
    }

    static std::string binary() { return env_or("SIMSINKD", "build/daemon/simsinkd"); }
    fs::path dir() const { return dir_; }
    fs::path data_dir() const { return dir_ / "data"; }
    std::string ingest() const { return "ipc://" + (dir_ / "ingest.sock").string(); }
    std::string admin() const { return "ipc://" + (dir_ / "admin.sock").string(); }
    // The same daemon over loopback TCP, as workers on other nodes reach it.
    std::string tcp() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
    pid_t pid() const { return pid_; }

  private:
    fs::path dir_;
    std::vector<std::string> extra_;
    int port_;
    pid_t pid_ = -1;
};

}  // namespace simsink::testing
