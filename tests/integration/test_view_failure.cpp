// A view that cannot be saved loses nothing: the commit is acknowledged (its
// data is in the segments and the catalog), the daemon keeps serving, and
// the view is rewritten with the next commit once it can be. Views are
// saved on the writer's view-saver thread; this checks that its failures
// come back to the writer and are retried.
#include <catch2/catch.hpp>
#include <cstring>
#include <simsink/client.hpp>
#include <vector>

#include "daemon_process.hpp"
#include "readers.hpp"

using namespace simsink;
using namespace simsink::testing;

namespace {

// The rows of stream "i" of run `id` through the campaign view, checked to
// be 0, 1, 2, ...; returns how many there are.
std::int64_t rows_in_view(const DaemonProcess& daemon, std::int64_t id) {
    std::vector<hsize_t> dims;
    auto raw =
        read_dataset(daemon.data_dir() / "vfail.h5", "runs/" + std::to_string(id) + "/i", dims);
    REQUIRE(dims.size() == 1);
    std::vector<std::int64_t> v(dims[0]);
    std::memcpy(v.data(), raw.data(), raw.size());
    std::int64_t first_wrong = -1;
    for (std::size_t k = 0; k < v.size() && first_wrong < 0; ++k)
        if (v[k] != std::int64_t(k)) first_wrong = std::int64_t(k);
    CHECK(first_wrong == -1);
    return static_cast<std::int64_t>(dims[0]);
}

}  // namespace

TEST_CASE("a view that cannot be saved is retried with the next commit, nothing is lost",
          "[integration][views][fault]") {
    DaemonProcess daemon("view-failure");
    Client client(daemon.ingest());
    Run run = client.open_run("vfail", {{"n", 1}});
    std::int64_t next = 0;
    auto record = [&](int n) {
        for (int k = 0; k < n; ++k) run.record("i", next++);
        client.flush();
    };
    record(100);
    const std::int64_t id = run.id();
    CHECK(rows_in_view(daemon, id) == 100);

    // The view's temporary name is taken by a directory: saving fails.
    const auto blocker = daemon.data_dir() / "vfail" / ("run-" + std::to_string(id) + ".h5.tmp");
    fs::create_directory(blocker);
    record(100);  // acknowledged all the same
    const auto db = daemon.data_dir() / "catalog.sqlite";
    CHECK(sql_int(db, "SELECT rows FROM streams WHERE key = 'i'") == 200);
    CHECK(rows_in_view(daemon, id) == 100);  // the old view, intact
    auto st = admin_request(daemon.admin(), proto::MsgType::status);
    CHECK(st["state"] == "ok");  // a view is not a commit

    fs::remove(blocker);
    record(1);  // the next commit rewrites the view it owes
    CHECK(rows_in_view(daemon, id) == 201);
    run.close();
    client.flush();
    REQUIRE(daemon.stop() == 0);
}
