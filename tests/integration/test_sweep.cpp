// End to end: the real daemon, 16 concurrent worker processes each with its
// own run, params and streams of every dtype and ranks 0-3; then every row is
// checked through the HDF5 library (via the campaign view) and every param
// and result through SQLite.
#include <hdf5.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <map>

#include "daemon_process.hpp"
#include "readers.hpp"
#include "expected.hpp"

using namespace simsink;
using namespace simsink::testing;

namespace {

constexpr int kWorkers = 16;
constexpr std::uint64_t kSteps = 300;

struct Sqlite {
    sqlite3* db = nullptr;
    explicit Sqlite(const fs::path& p) {
        REQUIRE(sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    }
    ~Sqlite() { sqlite3_close(db); }
    // Rows of text values of a query with one bound integer.
    std::vector<std::vector<std::string>> rows(const char* sql, std::int64_t arg) {
        sqlite3_stmt* st = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK);
        if (sqlite3_bind_parameter_count(st) > 0) sqlite3_bind_int64(st, 1, arg);
        std::vector<std::vector<std::string>> out;
        while (sqlite3_step(st) == SQLITE_ROW) {
            std::vector<std::string> r;
            for (int c = 0; c < sqlite3_column_count(st); ++c) {
                auto* t = sqlite3_column_text(st, c);
                r.push_back(t ? reinterpret_cast<const char*>(t) : "");
            }
            out.push_back(std::move(r));
        }
        sqlite3_finalize(st);
        return out;
    }
};


double read_double_attr(hid_t obj, const char* name) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    REQUIRE(a >= 0);
    double v = 0;
    REQUIRE(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(a);
    return v;
}

}  // namespace

TEST_CASE("16 concurrent workers: every row, param and result arrives exactly", "[integration]") {
    DaemonProcess daemon("sweep");
    const std::string worker = env_or("TEST_WORKER", "build/tests/integration/test_worker");
    std::vector<pid_t> pids;
    // Half the workers over ipc://, half over tcp:// (as from other nodes).
    for (int k = 0; k < kWorkers; ++k)
        pids.push_back(spawn({worker, k % 2 ? daemon.tcp() : daemon.ingest(), "sweep",
                              std::to_string(k), std::to_string(kSteps)}));
    for (int k = 0; k < kWorkers; ++k) REQUIRE(wait_exit(pids[k]) == 0);
    // Workers that exited said BYE: no connection and no credit stays held
    // (long before the 10 s client timeout would drop them).
    proto::Json st;
    for (int i = 0; i < 100; ++i) {
        st = admin_request(daemon.admin(), proto::MsgType::status);
        if (st["clients"]["connected"] == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(st["clients"]["connected"] == 0);
    CHECK(st["clients"]["known"] == kWorkers);
    CHECK(st["credit_outstanding"] == 0);
    CHECK(st["buffered_bytes"] == 0);
    CHECK(st["runs"]["open"] == 0);
    // Every worker runs on this host (ipc:// or loopback tcp://), so each
    // borrows an arena and ships its batches through shared memory.
    INFO("shm status " << st["shm"].dump());
    CHECK(st["shm"]["appends"].get<std::uint64_t>() > 0);
    CHECK(st["shm"]["registrations"].get<std::uint64_t>() >= kWorkers);
    CHECK(st["shm"]["refused_appends"] == 0);
    CHECK(st["shm"]["arenas"] == 0);  // forgotten on BYE
    // Each borrowed its arena from the daemon; all leases have ended.
    CHECK(st["shm"]["pool"]["loans"] == kWorkers);
    CHECK(st["shm"]["pool"]["lent"] == 0);
    REQUIRE(daemon.stop() == 0);

    const auto data = daemon.data_dir();
    Sqlite db(data / "catalog.sqlite");
    auto runs = db.rows(
        "SELECT r.id, r.status, (SELECT value FROM params WHERE run_id=r.id AND name='k') "
        "FROM runs r ORDER BY r.id",
        0);
    REQUIRE(runs.size() == kWorkers);
    std::map<int, std::int64_t> run_of;  // worker index -> run id
    for (const auto& r : runs) {
        CHECK(r[1] == "finished");
        run_of[std::stoi(r[2])] = std::stoll(r[0]);
    }
    REQUIRE(run_of.size() == kWorkers);

    hid_t file = H5Fopen((data / "sweep.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(file >= 0);
    const auto& specs = stream_specs();
    for (const auto& [k, id] : run_of) {
        INFO("worker " << k << ", run " << id);
        // Params and results, typed, in the catalog.
        auto params =
            db.rows("SELECT name, type, value FROM params WHERE run_id=? ORDER BY name", id);
        std::map<std::string, std::pair<std::string, std::string>> p;
        for (const auto& r : params) p[r[0]] = {r[1], r[2]};
        CHECK(p["k"] == std::make_pair(std::string("int"), std::to_string(k)));
        CHECK(p["method"] == std::make_pair(std::string("str"), method(k)));
        CHECK(p["adaptive"].first == "bool");
        CHECK(p["adaptive"].second == (k % 2 == 0 ? "1" : "0"));
        CHECK(p["beta"].first == "float");
        CHECK(std::stod(p["beta"].second) == Approx(beta(k)).epsilon(1e-15));
        CHECK(p["seed"].second == std::to_string(1000 + k));
        CHECK(p["coeffs"].first == "json");
        auto results =
            db.rows("SELECT name, type, value FROM results WHERE run_id=? ORDER BY name", id);
        REQUIRE(results.size() == 3);
        CHECK(results[0][0] == "converged");
        CHECK(results[0][1] == "bool");
        CHECK(results[1][0] == "energy");
        CHECK(std::stod(results[1][2]) == energy(k));
        CHECK(results[2][2] == std::to_string(kSteps));
        auto streams =
            db.rows("SELECT key, dtype, shape, rows FROM streams WHERE run_id=? ORDER BY key", id);
        CHECK(streams.size() == specs.size() + 1);  // + the grid array

        // Params and results as attributes of /runs/<id>.
        const std::string group = "/runs/" + std::to_string(id);
        hid_t g = H5Gopen2(file, group.c_str(), H5P_DEFAULT);
        REQUIRE(g >= 0);
        CHECK(read_double_attr(g, "beta") == beta(k));
        CHECK(read_double_attr(g, "energy") == energy(k));
        H5Gclose(g);

        // Every row of every stream, byte for byte.
        for (std::size_t s = 0; s < specs.size(); ++s) {
            const auto& spec = specs[s];
            INFO("stream " << spec.key);
            std::vector<hsize_t> dims;
            auto bytes = read_dataset(file, group + "/" + spec.key, dims);
            const auto rows = rows_after(spec, kSteps);
            REQUIRE(dims.size() == 1 + spec.shape.size());
            REQUIRE(dims[0] == rows);
            for (std::size_t d = 0; d < spec.shape.size(); ++d) CHECK(dims[d + 1] == spec.shape[d]);
            std::uint64_t row = 0;
            for (std::uint64_t step = 0; step < kSteps; step += spec.every, ++row) {
                auto want = row_bytes(spec, k, static_cast<int>(s), step);
                REQUIRE(bytes.size() >= (row + 1) * want.size());
                if (std::memcmp(bytes.data() + row * want.size(), want.data(), want.size()) != 0)
                    FAIL("row " << row << " (step " << step << ") differs");
            }
        }
        std::vector<hsize_t> dims;
        auto grid = read_dataset(file, group + "/grid/x", dims);
        REQUIRE(dims == std::vector<hsize_t>{64});
        for (std::uint64_t i = 0; i < 64; ++i) {
            double v;
            std::memcpy(&v, grid.data() + 8 * i, 8);
            CHECK(v == grid_value(k, i));
        }
    }
    H5Fclose(file);
}
