// The shared-memory lane (proto/PROTOCOL.md 1.1) against the real daemon:
// registrations it must refuse, sent through a raw SOCK_SEQPACKET socket;
// shared-memory APPENDs from a raw ZeroMQ client, good and bad; the C++
// client using the lane (or not) by itself; and a daemon restart under a
// client whose unacknowledged data lives in its arena. Rows are checked
// byte for byte through the HDF5 library and the catalog through SQLite.
#include <fcntl.h>
#include <hdf5.h>
#include <linux/magic.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <simsink/client.hpp>

#include "daemon_process.hpp"
#include "fd_message.hpp"
#include "raw_client.hpp"
#include "readers.hpp"

using namespace simsink;
using namespace simsink::testing;
using proto::MsgType;

namespace {

// ---- helpers --------------------------------------------------------------------------

struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) close(fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
};

// A memfd of `size` bytes that allows sealing, with `seals` added (0: none).
int make_memfd(std::uint64_t size, int seals) {
    int fd = memfd_create("simsink-test-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, static_cast<off_t>(size)) == 0);
    if (seals) REQUIRE(fcntl(fd, F_ADD_SEALS, seals) == 0);
    return fd;
}

constexpr int kArenaSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

fs::path shm_socket(const DaemonProcess& d) {
    return d.data_dir() / "shm.sock";
}

// One registration on the daemon's shared-memory socket: `text` as the
// message with `fds` attached as SCM_RIGHTS; returns the daemon's JSON reply.
proto::Json shm_register(const fs::path& socket_path, const std::string& text,
                         const std::vector<int>& fds) {
    REQUIRE(fds.size() <= 8);
    Fd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    REQUIRE(s.fd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    REQUIRE(socket_path.string().size() < sizeof a.sun_path);
    std::strncpy(a.sun_path, socket_path.c_str(), sizeof a.sun_path - 1);
    REQUIRE(connect(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    timeval tv{10, 0};
    setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    REQUIRE(proto::send_with_fds(s.fd, text, fds));
    auto reply = proto::receive_with_fds(s.fd, 4096, 1);
    REQUIRE(reply);
    for (int fd : reply->fds) close(fd);
    return proto::parse_meta(reply->bytes);
}

std::string registration(const std::string& client, std::uint64_t size) {
    return proto::Json{{"client", client}, {"size", size}}.dump();
}

void expect_refused(const proto::Json& reply, const char* mentions) {
    INFO("reply " << reply.dump());
    CHECK(reply.value("code", "") == "BAD_SHM");
    CHECK_FALSE(reply.contains("token"));
    REQUIRE(reply.contains("message"));
    REQUIRE(reply["message"].is_string());
    CHECK_THAT(reply["message"].get<std::string>(), Catch::Contains(mentions));
}

// The daemon's status, polled until `done` holds (or 10 s passed).
template <class Pred>
proto::Json status_when(const DaemonProcess& d, Pred done) {
    proto::Json st;
    for (int i = 0; i < 500; ++i) {
        st = admin_request(d.admin(), MsgType::status);
        if (done(st)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return st;
}

proto::Json status(const DaemonProcess& d) {
    return admin_request(d.admin(), MsgType::status);
}



std::vector<std::uint8_t> doubles_bytes(const std::vector<double>& v) {
    std::vector<std::uint8_t> out(v.size() * 8);
    std::memcpy(out.data(), v.data(), out.size());
    return out;
}


// A sealed arena mapped read-write in the test, as a client keeps it.
struct Arena {
    std::uint64_t size;
    int fd;
    std::uint8_t* base;
    explicit Arena(std::uint64_t bytes) : size(bytes), fd(make_memfd(bytes, kArenaSeals)) {
        void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        REQUIRE(p != MAP_FAILED);
        base = static_cast<std::uint8_t*>(p);
    }
    ~Arena() {
        munmap(base, size);
        close(fd);
    }
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;
    // Registers with the daemon as `client`; returns the token.
    std::uint64_t register_with(const DaemonProcess& d, const std::string& client,
                                const std::string& daemon_id) {
        auto r = shm_register(shm_socket(d), registration(client, size), {fd});
        INFO("reply " << r.dump());
        REQUIRE(r.contains("token"));
        REQUIRE(r["token"].is_number_unsigned());
        CHECK(r["daemon"] == daemon_id);
        CHECK_FALSE(r.contains("code"));
        auto token = r["token"].get<std::uint64_t>();
        CHECK(token != 0);
        return token;
    }
};

// An arena borrowed from the daemon (a lease): the connection stays open
// for as long as the lease lasts.
struct Lease {
    proto::Json reply;
    int conn = -1;  // the lease: closing it gives the memory back
    int fd = -1;    // the lent memfd (-1 when refused)
    std::uint8_t* base = nullptr;
    std::uint64_t size = 0;
    Lease(const fs::path& socket_path, const std::string& client, std::uint64_t bytes,
          const std::vector<int>& send_fds = {}, proto::Json request = nullptr) {
        conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        REQUIRE(conn >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, socket_path.c_str(), sizeof a.sun_path - 1);
        REQUIRE(connect(conn, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        timeval tv{10, 0};
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (request.is_null()) request = {{"client", client}, {"size", bytes}, {"lend", true}};
        REQUIRE(proto::send_with_fds(conn, request.dump(), send_fds));
        auto r = proto::receive_with_fds(conn, 4096, 1);
        REQUIRE(r);
        reply = proto::parse_meta(r->bytes);
        if (!r->fds.empty()) fd = r->fds.front();
        if (fd >= 0) {
            size = bytes;
            void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            REQUIRE(p != MAP_FAILED);
            base = static_cast<std::uint8_t*>(p);
        }
    }
    ~Lease() { end(); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    std::uint64_t token() const { return reply.at("token").get<std::uint64_t>(); }
    ino_t inode() const {
        struct stat st{};
        REQUIRE(fstat(fd, &st) == 0);
        return st.st_ino;
    }
    // Unmaps, closes the memfd, then ends the lease, as the client library does.
    void end() {
        if (base) munmap(base, size);
        if (fd >= 0) close(fd);
        if (conn >= 0) close(conn);
        base = nullptr;
        fd = conn = -1;
    }
};

std::vector<std::uint8_t> shm_desc(std::uint64_t token, std::uint64_t offset,
                                   std::uint64_t length) {
    proto::ShmRange r{offset, length};
    return proto::encode_shm_descriptor(token, std::span(&r, 1));
}

// Rows of the float64[3] stream "y" of the raw tests: row r holds r*10 + {0, 1, 2} + 0.5.
std::vector<std::uint8_t> y_rows(std::uint64_t first, std::uint64_t n) {
    std::vector<double> v;
    for (std::uint64_t r = first; r < first + n; ++r)
        for (int j = 0; j < 3; ++j) v.push_back(static_cast<double>(r) * 10 + j + 0.5);
    return doubles_bytes(v);
}

// ---- the C++ client ---------------------------------------------------------------------

// What record_through() records: `rounds` rounds (each ends with a flush),
// each with kX rows of the float64 scalar "x" (row i = 0.5 * i) and kY rows
// of the float64[16] "y" (row i = i*16 + j).
constexpr std::uint64_t kRounds = 3, kX = 2000, kY = 700;
constexpr std::uint64_t kPayloadBytes = kRounds * (kX * 8 + kY * 16 * 8);

struct Recorded {
    std::int64_t run_id = 0;
    ClientStats stats;
};

Recorded record_through(const std::string& endpoint, const std::string& campaign,
                        Options options = {}) {
    options.timeout = std::chrono::seconds(60);
    Client client(endpoint, options);
    Run run = client.open_run(campaign, {{"who", campaign}});
    double y[16];
    std::uint64_t xi = 0, yi = 0;
    for (std::uint64_t round = 0; round < kRounds; ++round) {
        for (std::uint64_t i = 0; i < kX; ++i, ++xi) run.record("x", 0.5 * static_cast<double>(xi));
        for (std::uint64_t i = 0; i < kY; ++i, ++yi) {
            for (int j = 0; j < 16; ++j) y[j] = static_cast<double>(yi * 16 + j);
            run.record("y", std::span<const double>(y));
        }
        client.flush();
    }
    run.close({{"rounds", static_cast<std::int64_t>(kRounds)}});
    client.flush();
    Recorded r;
    r.run_id = run.id();
    r.stats = client.stats();
    return r;
}

// After the daemon stopped: what record_through() recorded is there, byte for byte.
void check_recorded(const DaemonProcess& d, const std::string& campaign, std::int64_t run_id) {
    INFO("campaign " << campaign << ", run " << run_id);
    const auto view = d.data_dir() / (campaign + ".h5");
    const std::string group = "/runs/" + std::to_string(run_id);
    std::vector<hsize_t> dims;
    auto x = read_dataset(view, group + "/x", dims);
    REQUIRE(dims == std::vector<hsize_t>{kRounds * kX});
    std::vector<double> want_x(kRounds * kX);
    for (std::uint64_t i = 0; i < want_x.size(); ++i) want_x[i] = 0.5 * static_cast<double>(i);
    CHECK(x == doubles_bytes(want_x));
    auto y = read_dataset(view, group + "/y", dims);
    REQUIRE(dims == std::vector<hsize_t>{kRounds * kY, 16});
    std::vector<double> want_y(kRounds * kY * 16);
    for (std::uint64_t i = 0; i < want_y.size(); ++i) want_y[i] = static_cast<double>(i);
    CHECK(y == doubles_bytes(want_y));
    const auto db = d.data_dir() / "catalog.sqlite";
    const auto id = std::to_string(run_id);
    CHECK(sql_int(db, "SELECT rows FROM streams WHERE key='x' AND run_id=" + id) ==
          static_cast<std::int64_t>(kRounds * kX));
    CHECK(sql_int(db, "SELECT rows FROM streams WHERE key='y' AND run_id=" + id) ==
          static_cast<std::int64_t>(kRounds * kY));
    CHECK(sql_int(db, "SELECT count(*) FROM runs WHERE status='finished' AND id=" + id) == 1);
}

}  // namespace

// ---- registration --------------------------------------------------------------------

TEST_CASE("shm: the lane refuses bad registrations with BAD_SHM naming the fault",
          "[integration][shm]") {
    DaemonProcess daemon("shmreg");
    const auto sock = shm_socket(daemon);
    REQUIRE(fs::exists(sock));
    const std::string id = "0123456789abcdef0123456789abcdef";
    int refusals = 0;

    {  // no descriptor at all
        INFO("no fd");
        expect_refused(shm_register(sock, registration(id, 4096), {}), "got 0");
        ++refusals;
    }
    {  // two descriptors
        INFO("two fds");
        Fd a(make_memfd(4096, kArenaSeals)), b(make_memfd(4096, kArenaSeals));
        expect_refused(shm_register(sock, registration(id, 4096), {a.fd, b.fd}), "got 2");
        ++refusals;
    }
    {  // a regular file
        INFO("regular file");
        const auto path = daemon.dir() / "not-a-memfd";
        {
            std::ofstream f(path, std::ios::binary);
            f << std::string(4096, 'x');
        }
        Fd f(open(path.c_str(), O_RDWR | O_CLOEXEC));
        REQUIRE(f.fd >= 0);
        struct statfs sfs {};
        REQUIRE(fstatfs(f.fd, &sfs) == 0);
        // A file on tmpfs answers F_GET_SEALS (with F_SEAL_SEAL): it is then
        // refused for its missing F_SEAL_SHRINK instead.
        const bool shmem = sfs.f_type == TMPFS_MAGIC || sfs.f_type == HUGETLBFS_MAGIC;
        expect_refused(shm_register(sock, registration(id, 4096), {f.fd}),
                       shmem ? "F_SEAL_SHRINK" : "not a memfd");
        ++refusals;
    }
    {  // a memfd that could shrink: no seals, then only F_SEAL_GROW
        INFO("no F_SEAL_SHRINK");
        Fd m(make_memfd(8192, 0));
        expect_refused(shm_register(sock, registration(id, 8192), {m.fd}),
                       "not sealed against shrinking");
        ++refusals;
        Fd g(make_memfd(8192, F_SEAL_GROW | F_SEAL_WRITE));
        expect_refused(shm_register(sock, registration(id, 8192), {g.fd}), "F_SEAL_SHRINK");
        ++refusals;
    }
    {  // the size it claims is not the memfd's size (both ways)
        INFO("size mismatch");
        Fd m(make_memfd(8192, kArenaSeals));
        expect_refused(shm_register(sock, registration(id, 4096), {m.fd}),
                       "the arena's size is 8192, not 4096");
        ++refusals;
        expect_refused(shm_register(sock, registration(id, 12288), {m.fd}),
                       "the arena's size is 8192, not 12288");
        ++refusals;
    }
    {  // sizes that are not multiples of 4096, or out of range
        INFO("bad size");
        Fd m(make_memfd(8192, kArenaSeals));
        expect_refused(shm_register(sock, registration(id, 5000), {m.fd}),
                       "arena size 5000 must be a multiple of 4096");
        ++refusals;
        expect_refused(shm_register(sock, registration(id, 0), {m.fd}), "arena size 0 must");
        ++refusals;
        expect_refused(
            shm_register(sock, registration(id, (std::uint64_t{64} << 30) + 4096), {m.fd}),
            "between 4096 and 64 GiB");
        ++refusals;
        expect_refused(
            shm_register(sock, proto::Json{{"client", id}, {"size", -4096}}.dump(), {m.fd}),
            "'size' must be an unsigned integer");
        ++refusals;
        expect_refused(shm_register(sock, proto::Json{{"client", id}}.dump(), {m.fd}),
                       "'size' must be an unsigned integer");
        ++refusals;
    }
    {  // client ids that are not 32 lowercase hex characters
        INFO("bad client id");
        Fd m(make_memfd(4096, kArenaSeals));
        for (const std::string bad : {"0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef",
                                      "0123456789abcdef0123456789abcdeg", ""}) {
            INFO("client '" << bad << "'");
            expect_refused(shm_register(sock, registration(bad, 4096), {m.fd}),
                           "'client' must be 32 lowercase hex characters");
            ++refusals;
        }
        expect_refused(shm_register(sock, proto::Json{{"size", 4096}}.dump(), {m.fd}),
                       "'client' must be 32 lowercase hex");
        ++refusals;
    }
    {  // not JSON, and JSON that is not an object
        INFO("not JSON");
        Fd m(make_memfd(4096, kArenaSeals));
        expect_refused(shm_register(sock, "{\"client\": \"0123", {m.fd}), "not valid JSON");
        ++refusals;
        expect_refused(shm_register(sock, "[1, 2]", {m.fd}), "not valid JSON");
        ++refusals;
    }
    {  // longer than 4096 bytes
        INFO("too long");
        Fd m(make_memfd(4096, kArenaSeals));
        auto text =
            proto::Json{{"client", id}, {"size", 4096}, {"pad", std::string(5000, 'p')}}.dump();
        expect_refused(shm_register(sock, text, {m.fd}), "longer than 4096 bytes");
        ++refusals;
    }

    auto st = status(daemon);
    INFO("status " << st["shm"].dump());
    CHECK(st["shm"]["socket"] == sock.string());
    CHECK(st["shm"]["refused_registrations"] == refusals);
    CHECK(st["shm"]["registrations"] == 0);
    CHECK(st["shm"]["arenas"] == 0);
    CHECK(st["errors"]["total"] == 0);  // registration refusals are not ingest errors

    // The daemon still serves: a normal client records, over the lane.
    {
        Client good(daemon.ingest());
        Run run = good.open_run("shmreg", {{"who", "good"}});
        for (int i = 0; i < 500; ++i) run.record("x", static_cast<double>(i));
        run.close();
        good.flush();
        CHECK(good.stats().shared_memory);
        CHECK(good.stats().shm_messages > 0);
        st = status(daemon);
        CHECK(st["shm"]["registrations"] == 1);
        CHECK(st["shm"]["arenas"] == 1);
        CHECK(st["shm"]["refused_registrations"] == refusals);
        CHECK(st["shm"]["refused_appends"] == 0);
        CHECK(st["shm"]["bytes"] == 500 * 8);
    }
    // BYE: the daemon forgets the arena.
    st = status_when(daemon, [](const proto::Json& s) { return s["shm"]["arenas"] == 0; });
    CHECK(st["shm"]["arenas"] == 0);
    CHECK(st["clients"]["connected"] == 0);
    REQUIRE(daemon.stop() == 0);
    CHECK_FALSE(fs::exists(sock));  // the daemon removes its socket on the way out

    const auto db = daemon.data_dir() / "catalog.sqlite";
    CHECK(sql_int(db, "SELECT rows FROM streams WHERE key='x'") == 500);
    CHECK(sql_int(db, "SELECT count(*) FROM runs WHERE status='finished'") == 1);
    std::vector<hsize_t> dims;
    auto id_of_run = sql_int(db, "SELECT run_id FROM streams WHERE key='x'");
    auto x = read_dataset(daemon.data_dir() / "shmreg.h5",
                          "/runs/" + std::to_string(id_of_run) + "/x", dims);
    REQUIRE(dims == std::vector<hsize_t>{500});
    std::vector<double> want(500);
    for (int i = 0; i < 500; ++i) want[i] = i;
    CHECK(x == doubles_bytes(want));
}

// ---- shared-memory APPEND, raw -------------------------------------------------------

TEST_CASE("shm: APPENDs naming arena ranges are committed byte for byte; bad ones are refused",
          "[integration][shm]") {
    DaemonProcess daemon("shmraw");
    const std::string id = "00112233445566778899aabbccddeeff";
    RawClient raw(daemon.ingest());
    auto welcome = raw.hello(id);
    REQUIRE(welcome.contains("shm"));
    CHECK(welcome["shm"] == shm_socket(daemon).string());
    REQUIRE(welcome["daemon"].is_string());
    const std::string daemon_id = welcome["daemon"].get<std::string>();
    CHECK(welcome["expected"] == 1);

    Arena arena(1 << 20);
    const std::uint64_t token = arena.register_with(daemon, id, daemon_id);
    // A second client's arena: its token is no good for us.
    Arena other(1 << 16);
    const std::uint64_t other_token =
        other.register_with(daemon, "ffeeddccbbaa99887766554433221100", daemon_id);
    REQUIRE(other_token != token);

    raw.send_meta(MsgType::open_run, 1,
                  {{"run", 1}, {"campaign", "shmraw"}, {"params", {{"n", 1}}}});
    raw.send_meta(MsgType::declare, 2,
                  {{"stream", 1},
                   {"run", 1},
                   {"key", "y"},
                   {"kind", "stream"},
                   {"dtype", "float64"},
                   {"shape", {3}}});
    proto::BlockEntry four{1, 4};
    auto table4 = proto::encode_block_table(std::span(&four, 1));
    proto::BlockEntry two{1, 2};
    auto table2 = proto::encode_block_table(std::span(&two, 1));
    const auto shm = proto::kFlagShm;

    // seq 3: rows 0-3 in the arena at offset 8192.
    auto rows0 = y_rows(0, 4);
    std::memcpy(arena.base + 8192, rows0.data(), rows0.size());
    raw.send({RawClient::hdr(MsgType::append, 3, shm), table4, shm_desc(token, 8192, 96)});
    raw.flush(3);
    // Acknowledged: the daemon no longer reads those bytes; scribble over them.
    std::memset(arena.base + 8192, 0xEE, 96);
    auto st = status(daemon);
    INFO("shm status " << st["shm"].dump());
    CHECK(st["shm"]["appends"] == 1);
    CHECK(st["shm"]["bytes"] == 96);
    CHECK(st["shm"]["refused_appends"] == 0);
    CHECK(st["shm"]["arenas"] == 2);
    CHECK(st["shm"]["registrations"] == 2);
    CHECK(st["received"]["rows"] == 4);

    // seq 4 with a token the daemon never gave out: BAD_SHM, seq not consumed ...
    auto rows4 = y_rows(4, 2);
    std::memcpy(arena.base + 4096, rows4.data(), rows4.size());
    raw.send({RawClient::hdr(MsgType::append, 4, shm), table2, shm_desc(token ^ 1, 4096, 48)});
    raw.expect_error("BAD_SHM", 4, "is not registered by this client");
    // ... nor with another client's token ...
    raw.send({RawClient::hdr(MsgType::append, 4, shm), table2, shm_desc(other_token, 0, 48)});
    raw.expect_error("BAD_SHM", 4, std::to_string(other_token).c_str());
    CHECK(raw.expected() == 4);
    // ... and accepted when resent with the bytes in a frame: no gap, no error.
    raw.send({RawClient::hdr(MsgType::append, 4), table2, rows4});
    raw.flush(4);
    CHECK(raw.expected() == 5);
    // Duplicates and gaps come first (PROTOCOL.md 1.1): a resend of seq 3
    // with a bad token is dropped silently, one past `expected` is a gap.
    raw.send({RawClient::hdr(MsgType::append, 3, shm), table4, shm_desc(token ^ 1, 8192, 96)});
    CHECK(raw.expected() == 5);  // no ERROR before the PONG
    raw.send({RawClient::hdr(MsgType::append, 9, shm), table2, shm_desc(token ^ 1, 0, 48)});
    raw.expect_error("OUT_OF_ORDER", 9, "resend from 5");

    // Ranges that end past the arena: BAD_SHM naming the range and the size.
    raw.send(
        {RawClient::hdr(MsgType::append, 5, shm), table2, shm_desc(token, arena.size - 47, 48)});
    raw.expect_error("BAD_SHM", 5, "is outside the arena of 1048576 bytes");
    raw.send({RawClient::hdr(MsgType::append, 5, shm), table2, shm_desc(token, arena.size, 48)});
    raw.expect_error("BAD_SHM", 5, "48 bytes at offset 1048576");
    raw.send(
        {RawClient::hdr(MsgType::append, 5, shm), table2, shm_desc(token, 0, arena.size + 48)});
    raw.expect_error("BAD_SHM", 5, "outside the arena");
    // The other client's (smaller) arena does not stretch ours the other way either.
    CHECK(raw.expected() == 5);
    // A range that ends exactly at the arena's end is fine (rows 6-7).
    auto rows6 = y_rows(6, 2);
    std::memcpy(arena.base + arena.size - 48, rows6.data(), rows6.size());
    raw.send(
        {RawClient::hdr(MsgType::append, 5, shm), table2, shm_desc(token, arena.size - 48, 48)});
    raw.flush(5);

    // Malformed shared-memory APPENDs: BAD_FRAME, each consuming its seq.
    auto short_desc = shm_desc(token, 0, 48);
    short_desc.pop_back();
    raw.send({RawClient::hdr(MsgType::append, 6, shm), table2, short_desc});
    raw.expect_error("BAD_FRAME", 6, "shared-memory descriptor is 23 bytes");
    raw.send({RawClient::hdr(MsgType::append, 7, shm), table2, shm_desc(token, 0, 0)});
    raw.expect_error("BAD_FRAME", 7, "empty");
    raw.send({RawClient::hdr(MsgType::append, 8, shm), table2, shm_desc(token, 0, 48), rows4});
    raw.expect_error("BAD_FRAME", 8, "4 frames, expected 3");
    raw.send({RawClient::hdr(MsgType::append, 9, shm), table2});
    raw.expect_error("BAD_FRAME", 9, "2 frames, expected 3");
    CHECK(raw.expected() == 10);
    // The SHM flag belongs to APPEND only (the header itself is refused: number 0).
    raw.send({RawClient::hdr(MsgType::set_attrs, 10, shm | proto::kFlagMeta),
              RawClient::json({{"a", 1}})});
    raw.expect_error("BAD_FRAME", 0, "APPEND only");

    // Rows 0-3 of a scribbled range would show as 0xEE bytes: the committed
    // data is what the arena held before seq 3's ACK.
    const std::uint64_t next = raw.expected();
    raw.send_meta(MsgType::close_run, next, {{"run", 1}, {"status", "finished"}});
    raw.flush(next);
    st = status(daemon);
    CHECK(st["shm"]["appends"] == 2);
    CHECK(st["shm"]["bytes"] == 96 + 48);
    CHECK(st["shm"]["refused_appends"] == 5);
    CHECK(st["received"]["rows"] == 8);
    REQUIRE(daemon.stop() == 0);

    const auto db = daemon.data_dir() / "catalog.sqlite";
    CHECK(sql_int(db, "SELECT rows FROM streams WHERE key='y'") == 8);
    CHECK(sql_int(db, "SELECT count(*) FROM runs WHERE status='finished'") == 1);
    const auto run_id = sql_int(db, "SELECT run_id FROM streams WHERE key='y'");
    std::vector<hsize_t> dims;
    auto y = read_dataset(daemon.data_dir() / "shmraw.h5", "/runs/" + std::to_string(run_id) + "/y",
                          dims);
    REQUIRE(dims == std::vector<hsize_t>{8, 3});
    CHECK(y == y_rows(0, 8));
}

// PROTOCOL.md 7: a rejected sequenced message consumes its seq, except for
// NEED_HELLO, OUT_OF_ORDER, CREDIT_EXCEEDED, SHUTTING_DOWN and BAD_SHM.
// A malformed shared-memory descriptor is a BAD_FRAME, so it consumes its seq.
TEST_CASE("shm: a malformed shared-memory descriptor consumes its seq like any BAD_FRAME",
          "[integration][shm]") {
    DaemonProcess daemon("shmframe");
    const std::string id = "00112233445566778899aabbccddeeff";
    RawClient raw(daemon.ingest());
    auto welcome = raw.hello(id);
    Arena arena(1 << 16);
    const std::uint64_t token = arena.register_with(daemon, id, welcome["daemon"]);
    proto::BlockEntry two{1, 2};
    auto short_desc = shm_desc(token, 0, 48);
    short_desc.pop_back();
    raw.send({RawClient::hdr(MsgType::append, 1, proto::kFlagShm),
              proto::encode_block_table(std::span(&two, 1)), short_desc});
    raw.expect_error("BAD_FRAME", 1, "descriptor");
    CHECK(raw.expected() == 2);
}

TEST_CASE("shm: when the daemon cannot read the arena (BAD_SHM) the client resends with frames",
          "[integration][shm]") {
    DaemonProcess daemon("shmfallback");
    Options o;
    o.timeout = std::chrono::seconds(60);
    Client client(daemon.ingest(), o);
    Run run = client.open_run("shmfallback");
    constexpr std::int64_t kRows = 4000;
    for (std::int64_t i = 0; i < kRows / 2; ++i) run.record("x", i);
    client.flush();
    const auto before = client.stats();
    REQUIRE(before.shared_memory);
    REQUIRE(before.shm_messages > 0);
    // Another arena registered under the client's id replaces the client's
    // own: the daemon no longer knows the token the client uses.
    Arena intruder(4096);
    auto r = shm_register(shm_socket(daemon), registration(before.client_id, 4096), {intruder.fd});
    REQUIRE(r.contains("token"));
    for (std::int64_t i = kRows / 2; i < kRows; ++i) run.record("x", i);
    run.close();
    client.flush();
    const auto after = client.stats();
    CHECK_FALSE(after.shared_memory);
    CHECK(after.resent_messages > before.resent_messages);
    CHECK(after.welcomes == 1);
    auto st = status(daemon);
    INFO("shm status " << st["shm"].dump());
    CHECK(st["shm"]["refused_appends"].get<std::uint64_t>() >= 1);
    CHECK(st["shm"]["registrations"] == 2);
    CHECK(st["shm"]["bytes"] == kRows / 2 * 8);  // the second half came in frames
    CHECK(st["errors"]["total"].get<std::uint64_t>() >= 1);
    REQUIRE(daemon.stop() == 0);
    const auto db = daemon.data_dir() / "catalog.sqlite";
    CHECK(sql_int(db, "SELECT rows FROM streams WHERE key='x'") == kRows);
    const auto run_id = sql_int(db, "SELECT run_id FROM streams WHERE key='x'");
    std::vector<hsize_t> dims;
    auto x = read_dataset(daemon.data_dir() / "shmfallback.h5",
                          "/runs/" + std::to_string(run_id) + "/x", dims);
    REQUIRE(dims == std::vector<hsize_t>{kRows});
    std::vector<std::int64_t> want(kRows);
    for (std::int64_t i = 0; i < kRows; ++i) want[i] = i;
    REQUIRE(x.size() == want.size() * 8);
    CHECK(std::memcmp(x.data(), want.data(), x.size()) == 0);
}

// ---- the C++ client ------------------------------------------------------------------

TEST_CASE("shm: the C++ client uses the lane over ipc:// and loopback tcp://",
          "[integration][shm]") {
    DaemonProcess daemon("shmclient");
    auto a = record_through(daemon.ingest(), "shmipc");
    CHECK(a.stats.shared_memory);
    CHECK(a.stats.shm_messages > 0);
    CHECK(a.stats.welcomes == 1);
    CHECK(a.stats.resent_messages == 0);
    auto st = status_when(daemon, [](const proto::Json& s) { return s["shm"]["arenas"] == 0; });
    INFO("shm status " << st["shm"].dump());
    CHECK(st["shm"]["registrations"] == 1);
    CHECK(st["shm"]["appends"] == a.stats.shm_messages);
    CHECK(st["shm"]["bytes"] == kPayloadBytes);
    CHECK(st["shm"]["refused_appends"] == 0);
    CHECK(st["shm"]["refused_registrations"] == 0);
    CHECK(st["shm"]["arenas"] == 0);  // the client said BYE

    auto b = record_through(daemon.tcp(), "shmtcp");
    CHECK(b.stats.shared_memory);
    CHECK(b.stats.shm_messages > 0);
    st = status(daemon);
    CHECK(st["shm"]["registrations"] == 2);
    CHECK(st["shm"]["appends"] == a.stats.shm_messages + b.stats.shm_messages);
    CHECK(st["shm"]["bytes"] == 2 * kPayloadBytes);
    REQUIRE(daemon.stop() == 0);
    check_recorded(daemon, "shmipc", a.run_id);
    check_recorded(daemon, "shmtcp", b.run_id);
}

TEST_CASE("shm: with Options::shared_memory = false the client copies", "[integration][shm]") {
    DaemonProcess daemon("shmoptout");
    Options o;
    o.shared_memory = false;
    auto r = record_through(daemon.ingest(), "shmoptout", o);
    CHECK_FALSE(r.stats.shared_memory);
    CHECK(r.stats.shm_messages == 0);
    auto st = status(daemon);
    INFO("shm status " << st["shm"].dump());
    CHECK(st["shm"]["socket"] == shm_socket(daemon).string());
    CHECK(st["shm"]["registrations"] == 0);
    CHECK(st["shm"]["appends"] == 0);
    CHECK(st["shm"]["bytes"] == 0);
    CHECK(st["received"]["bytes"].get<std::uint64_t>() > kPayloadBytes);  // all through frames
    REQUIRE(daemon.stop() == 0);
    check_recorded(daemon, "shmoptout", r.run_id);
}

TEST_CASE("shm: against a daemon with --shm-socket off the client copies", "[integration][shm]") {
    DaemonProcess daemon("shmoff", {"--shm-socket", "off"});
    CHECK_FALSE(fs::exists(shm_socket(daemon)));
    {
        RawClient raw(daemon.ingest());
        auto w = raw.hello("0123456789abcdef0123456789abcdef");
        CHECK_FALSE(w.contains("shm"));
        // A shared-memory APPEND has no lane to name: BAD_SHM, seq not consumed.
        proto::BlockEntry one{1, 1};
        raw.send({RawClient::hdr(MsgType::append, 1, proto::kFlagShm),
                  proto::encode_block_table(std::span(&one, 1)), shm_desc(12345, 0, 8)});
        raw.expect_error("BAD_SHM", 1, "not registered");
        CHECK(raw.expected() == 1);
        raw.send({RawClient::hdr(MsgType::bye, 0)});
    }
    auto r = record_through(daemon.ingest(), "shmoff");
    CHECK_FALSE(r.stats.shared_memory);
    CHECK(r.stats.shm_messages == 0);
    auto st = status(daemon);
    INFO("shm status " << st["shm"].dump());
    CHECK(st["shm"]["socket"].is_null());
    REQUIRE(daemon.stop() == 0);
    check_recorded(daemon, "shmoff", r.run_id);
}

// ---- daemon restart ------------------------------------------------------------------

TEST_CASE("shm: after a daemon restart the client registers again and resends from its arena",
          "[integration][shm]") {
    // Nothing is committed before the kill: all of it is unacknowledged.
    DaemonProcess daemon("shmrestart", {"--commit-interval", "3600"});
    Options o;
    o.timeout = std::chrono::seconds(60);
    Client client(daemon.ingest(), o);
    Run run = client.open_run("shmrestart", {{"n", 1}});
    constexpr std::int64_t kBefore = 20000, kAfter = 5000;
    for (std::int64_t i = 0; i < kBefore; ++i) run.record("x", i);
    auto st =
        status_when(daemon, [](const proto::Json& s) { return s["received"]["rows"] == kBefore; });
    REQUIRE(st["received"]["rows"] == kBefore);
    REQUIRE(st["committed"]["rows"] == 0);
    CHECK(st["shm"]["appends"].get<std::uint64_t>() > 0);
    CHECK(st["shm"]["bytes"] == kBefore * 8);
    const auto first = client.stats();
    CHECK(first.shared_memory);
    CHECK(first.welcomes == 1);
    CHECK(first.acked_seq < first.last_seq);

    daemon.kill9();  // the staged rows are gone with it; the client still has them
    daemon.start();
    for (std::int64_t i = kBefore; i < kBefore + kAfter; ++i) run.record("x", i);
    run.close();
    client.flush();
    const auto after = client.stats();
    CHECK(after.welcomes >= 2);
    CHECK(after.shared_memory);
    CHECK(after.resent_messages > 0);
    CHECK(after.shm_messages > first.shm_messages);
    CHECK(after.acked_seq == after.last_seq);
    st = status(daemon);
    INFO("shm status " << st["shm"].dump());
    CHECK(st["shm"]["registrations"].get<std::uint64_t>() >= 1);
    CHECK(st["shm"]["refused_registrations"] == 0);
    CHECK(st["shm"]["appends"].get<std::uint64_t>() > 0);
    // Everything the new daemon got came out of the arena.
    CHECK(st["shm"]["bytes"] == (kBefore + kAfter) * 8);
    CHECK(st["committed"]["rows"] == kBefore + kAfter);
    REQUIRE(daemon.stop() == 0);

    const auto db = daemon.data_dir() / "catalog.sqlite";
    CHECK(sql_int(db, "SELECT rows FROM streams WHERE key='x'") == kBefore + kAfter);
    CHECK(sql_int(db, "SELECT count(*) FROM runs") == 1);
    CHECK(sql_int(db, "SELECT count(*) FROM runs WHERE status='finished'") == 1);
    const auto run_id = sql_int(db, "SELECT run_id FROM streams WHERE key='x'");
    std::vector<hsize_t> dims;
    auto x = read_dataset(daemon.data_dir() / "shmrestart.h5",
                          "/runs/" + std::to_string(run_id) + "/x", dims);
    REQUIRE(dims == std::vector<hsize_t>{kBefore + kAfter});
    std::vector<std::int64_t> want(kBefore + kAfter);
    for (std::int64_t i = 0; i < kBefore + kAfter; ++i) want[i] = i;
    REQUIRE(x.size() == want.size() * 8);
    CHECK(std::memcmp(x.data(), want.data(), x.size()) == 0);
}

TEST_CASE("shm: arenas of clients that are not connected leave the table",
          "[integration][shm]") {
    DaemonProcess daemon("shmprune");
    // Registered by an id that never said HELLO: accepted (the lane cannot
    // know), then forgotten by the next housekeeping pass (once a second).
    Arena stray(1 << 16);
    auto r = shm_register(shm_socket(daemon), registration("ffeeddccbbaa99887766554433221100",
                                                           stray.size),
                          {stray.fd});
    REQUIRE(r.contains("token"));
    // A connected client's arena stays.
    const std::string id = "00112233445566778899aabbccddeeff";
    RawClient raw(daemon.ingest());
    auto welcome = raw.hello(id);
    Arena mine(1 << 16);
    mine.register_with(daemon, id, welcome["daemon"]);
    CHECK(status(daemon)["shm"]["arenas"] == 2);
    auto st = status_when(daemon, [](const proto::Json& s) { return s["shm"]["arenas"] == 1; });
    CHECK(st["shm"]["arenas"] == 1);
    CHECK(st["shm"]["registrations"] == 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a few more passes
    CHECK(raw.expected() == 1);  // still connected
    CHECK(status(daemon)["shm"]["arenas"] == 1);
}

// ---- lent arenas ------------------------------------------------------------------------

TEST_CASE("shm: the daemon lends arenas and lends returned ones again, warm, to the same user",
          "[integration][shm]") {
    DaemonProcess daemon("shmlend");
    const std::string id1 = "00112233445566778899aabbccddeeff";
    const std::string id2 = "ffeeddccbbaa99887766554433221100";
    constexpr std::uint64_t kSize = 1 << 20;
    auto a = std::make_unique<Lease>(shm_socket(daemon), id1, kSize);
    INFO("reply " << a->reply.dump());
    REQUIRE(a->fd >= 0);
    CHECK(a->reply["size"] == kSize);
    CHECK(a->reply["daemon"].is_string());
    CHECK(a->token() != 0);
    // A memfd sealed against resizing, of the size asked for.
    struct stat st{};
    REQUIRE(fstat(a->fd, &st) == 0);
    CHECK(static_cast<std::uint64_t>(st.st_size) == kSize);
    const int seals = fcntl(a->fd, F_GET_SEALS);
    CHECK((seals & F_SEAL_SHRINK) != 0);
    CHECK((seals & F_SEAL_GROW) != 0);
    std::memset(a->base, 0x5A, 64 << 10);  // 64 KiB of pages that now exist
    const ino_t first = a->inode();

    Lease b(shm_socket(daemon), id2, kSize);  // lent while a is: other memory
    REQUIRE(b.fd >= 0);
    CHECK(b.inode() != first);
    auto st1 = status(daemon);
    INFO("status " << st1["shm"].dump());
    CHECK(st1["shm"]["pool"]["lent"] == 2);
    CHECK(st1["shm"]["arenas"] == 2);

    a.reset();  // the lease ends: its memory goes to the pool
    auto st2 = status_when(daemon, [](const proto::Json& s) { return s["shm"]["pool"]["idle"] == 1; });
    INFO("status " << st2["shm"].dump());
    REQUIRE(st2["shm"]["pool"]["idle"] == 1);
    CHECK(st2["shm"]["pool"]["idle_bytes"].get<std::uint64_t>() >= 64 << 10);
    CHECK(st2["shm"]["arenas"] == 1);  // the ended lease's token is gone

    // Another size: new memory, the idle one waits.
    Lease other_size(shm_socket(daemon), id1, 2 * kSize);
    REQUIRE(other_size.fd >= 0);
    CHECK(other_size.inode() != first);

    if (geteuid() == 0) {
        // Another user gets new memory, never the idle one of this user.
        int pipefd[2];
        REQUIRE(pipe(pipefd) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            std::uint64_t ino = 0;
            if (setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) == 0) {
                try {
                    Lease theirs(shm_socket(daemon), id2, kSize);
                    if (theirs.fd >= 0) ino = theirs.inode();
                } catch (...) {
                }
            }
            [[maybe_unused]] auto n = write(pipefd[1], &ino, sizeof ino);
            _exit(0);
        }
        std::uint64_t their_ino = 0;
        REQUIRE(read(pipefd[0], &their_ino, sizeof their_ino) == sizeof their_ino);
        waitpid(pid, nullptr, 0);
        close(pipefd[0]);
        close(pipefd[1]);
        REQUIRE(their_ino != 0);  // nobody may borrow (the socket is 0666)
        CHECK(their_ino != first);
        CHECK(status(daemon)["shm"]["pool"]["idle"].get<std::uint64_t>() >= 1);
    } else {
        WARN("not root: the other-user case is not checked");
    }

    // The same user and size: the same memory again, with the pages it had.
    Lease again(shm_socket(daemon), id2, kSize);
    REQUIRE(again.fd >= 0);
    CHECK(again.inode() == first);
    CHECK(again.base[0] == 0x5A);
    CHECK(again.base[(64 << 10) - 1] == 0x5A);
    auto st3 = status(daemon);
    INFO("status " << st3["shm"].dump());
    CHECK(st3["shm"]["pool"]["warm_loans"] == 1);
    CHECK(st3["shm"]["pool"]["idle"] == 0);

    // Requests the lane refuses, naming the fault.
    Arena mine(4096);
    Lease with_fd(shm_socket(daemon), id1, kSize, {mine.fd});
    CHECK(with_fd.fd < 0);
    expect_refused(with_fd.reply, "must carry no file descriptor");
    Lease bad_flag(shm_socket(daemon), id1, kSize, {},
                   {{"client", id1}, {"size", kSize}, {"lend", "yes"}});
    CHECK(bad_flag.fd < 0);
    expect_refused(bad_flag.reply, "'lend' must be true or false");
    Lease bad_size(shm_socket(daemon), id1, 1000);
    CHECK(bad_size.fd < 0);
    expect_refused(bad_size.reply, "multiple of 4096");
}

TEST_CASE("shm: lent memory is not lent again while data staged from it is uncommitted",
          "[integration][shm]") {
    // Commits only when asked (FLUSH), so the staged block stays staged.
    DaemonProcess daemon("shmlendstaged", {"--commit-interval", "60"});
    const std::string id = "00112233445566778899aabbccddeeff";
    RawClient raw(daemon.ingest());
    auto welcome = raw.hello(id);
    auto lease = std::make_unique<Lease>(shm_socket(daemon), id, 1 << 20);
    REQUIRE(lease->fd >= 0);
    CHECK(lease->reply["daemon"] == welcome["daemon"]);
    const ino_t first = lease->inode();
    const std::uint64_t token = lease->token();
    raw.send_meta(MsgType::open_run, 1, {{"run", 1}, {"campaign", "lendstaged"}});
    raw.send_meta(MsgType::declare, 2,
                  {{"stream", 1},
                   {"run", 1},
                   {"key", "y"},
                   {"kind", "stream"},
                   {"dtype", "float64"},
                   {"shape", {3}}});
    proto::BlockEntry four{1, 4};
    auto table4 = proto::encode_block_table(std::span(&four, 1));
    auto rows = y_rows(0, 4);
    std::memcpy(lease->base + 4096, rows.data(), rows.size());
    raw.send({RawClient::hdr(MsgType::append, 3, proto::kFlagShm), table4,
              shm_desc(token, 4096, rows.size())});
    CHECK(raw.expected() == 4);  // staged (the PONG comes after it)
    lease.reset();               // the client is done with its memory before the ACK

    // The token of an ended lease names nothing.
    raw.send({RawClient::hdr(MsgType::append, 4, proto::kFlagShm), table4,
              shm_desc(token, 4096, rows.size())});
    raw.expect_error("BAD_SHM", 4);
    auto st = status(daemon);
    INFO("status " << st["shm"].dump());
    CHECK(st["shm"]["pool"]["lent"] == 1);  // held by the staged block
    CHECK(st["shm"]["pool"]["idle"] == 0);
    Lease meanwhile(shm_socket(daemon), id, 1 << 20);
    REQUIRE(meanwhile.fd >= 0);
    CHECK(meanwhile.inode() != first);  // not the memory with staged rows
    std::memset(meanwhile.base, 0xEE, 1 << 20);

    raw.flush(3);  // committed: now the memory may go back
    st = status_when(daemon, [](const proto::Json& s) { return s["shm"]["pool"]["idle"] == 1; });
    CHECK(st["shm"]["pool"]["idle"] == 1);
    Lease later(shm_socket(daemon), id, 1 << 20);
    REQUIRE(later.fd >= 0);
    CHECK(later.inode() == first);

    REQUIRE(daemon.stop() == 0);
    std::vector<hsize_t> dims;
    auto y = read_dataset(daemon.data_dir() / "lendstaged.h5", "/runs/1/y", dims);
    REQUIRE(dims == std::vector<hsize_t>{4, 3});
    CHECK(y == rows);
}

TEST_CASE("shm: C++ clients borrow their arenas; the next client gets the last one's memory",
          "[integration][shm]") {
    DaemonProcess daemon("shmlendclient");
    auto a = record_through(daemon.ingest(), "lendA");
    CHECK(a.stats.shared_memory);
    // The first client's memory returns once it is gone and its data committed.
    auto st = status_when(daemon, [](const proto::Json& s) { return s["shm"]["pool"]["idle"] == 1; });
    INFO("status " << st["shm"].dump());
    REQUIRE(st["shm"]["pool"]["idle"] == 1);
    CHECK(st["shm"]["pool"]["loans"] == 1);
    CHECK(st["shm"]["pool"]["lent"] == 0);
    auto b = record_through(daemon.ingest(), "lendB");
    CHECK(b.stats.shared_memory);
    st = status_when(daemon, [](const proto::Json& s) { return s["shm"]["pool"]["idle"] == 1; });
    CHECK(st["shm"]["pool"]["loans"] == 2);
    CHECK(st["shm"]["pool"]["warm_loans"] == 1);
    CHECK(st["shm"]["bytes"] == 2 * kPayloadBytes);  // every row read in place
    CHECK(st["shm"]["refused_registrations"] == 0);
    REQUIRE(daemon.stop() == 0);
    check_recorded(daemon, "lendA", a.run_id);
    check_recorded(daemon, "lendB", b.run_id);
}

TEST_CASE("shm: against a daemon that lends nothing the client uses its own arena",
          "[integration][shm]") {
    DaemonProcess daemon("shmnolend", {"--shm-pool", "0"});
    Lease refused(shm_socket(daemon), "00112233445566778899aabbccddeeff", 1 << 20);
    CHECK(refused.fd < 0);
    expect_refused(refused.reply, "lends no memory");
    auto r = record_through(daemon.ingest(), "nolend");
    CHECK(r.stats.shared_memory);
    auto st = status(daemon);
    INFO("status " << st["shm"].dump());
    CHECK(st["shm"]["pool"]["loans"] == 0);
    CHECK(st["shm"]["registrations"] == 1);  // its own arena
    CHECK(st["shm"]["bytes"] == kPayloadBytes);
    REQUIRE(daemon.stop() == 0);
    check_recorded(daemon, "nolend", r.run_id);
}
