// A commit too large for one thread: the writer splits it into several
// segments whose raw data helper threads write at once. Each stream's rows
// must still come out whole and in order, through the catalog and the view.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <simsink/client.hpp>
#include <vector>

#include "daemon_process.hpp"
#include "readers.hpp"

using namespace simsink;
using namespace simsink::testing;

TEST_CASE("a large commit is written as several segments, every row in order",
          "[integration][commit]") {
    // Nothing commits before flush(): one commit of about 104 MB, which three
    // write threads split into three segments of at least 32 MiB.
    DaemonProcess daemon("large-commit", {"--commit-interval", "3600", "--commit-bytes", "1G",
                                          "--write-threads", "3"});
    constexpr int kRows = 13000;
    constexpr std::size_t kWidth = 1000;  // 8000-byte rows
    std::int64_t id = -1;
    {
        Client client(daemon.ingest());
        Run run = client.open_run("big", {{"n", kRows}});
        std::vector<double> y(kWidth);
        for (int i = 0; i < kRows; ++i) {
            for (std::size_t k = 0; k < kWidth; ++k) y[k] = i * 1e4 + double(k);
            run.record("t", double(i));
            run.record("y", std::span<const double>(y));
        }
        run.close();
        client.flush();
        id = run.id();
    }
    const auto db = daemon.data_dir() / "catalog.sqlite";
    CHECK(sql_int(db, "SELECT count(*) FROM segments") == 3);
    // y's rows are spread over the three segments as contiguous ranges.
    CHECK(sql_int(db,
                  "SELECT count(*) FROM extents e JOIN streams s ON s.id = e.stream_id "
                  "WHERE s.key = 'y'") == 3);
    CHECK(sql_int(db,
                  "SELECT sum(e.rows) FROM extents e JOIN streams s ON s.id = e.stream_id "
                  "WHERE s.key = 'y'") == kRows);
    const std::string y_extents =
        "FROM extents a JOIN streams s ON s.id = a.stream_id WHERE s.key = 'y'";
    CHECK(sql_int(db, "SELECT min(a.dst_row) " + y_extents) == 0);
    CHECK(sql_int(db, "SELECT count(*) " + y_extents +
                          " AND EXISTS (SELECT 1 FROM extents b WHERE b.stream_id = a.stream_id"
                          " AND b.dst_row = a.dst_row + a.rows)") == 2);

    std::vector<hsize_t> dims;
    auto y = read_dataset(daemon.data_dir() / "big.h5", "runs/" + std::to_string(id) + "/y", dims);
    REQUIRE(dims == std::vector<hsize_t>{kRows, kWidth});
    std::vector<double> v(y.size() / 8);
    std::memcpy(v.data(), y.data(), y.size());
    bool all_in_place = true;
    for (int i = 0; i < kRows && all_in_place; ++i)
        for (std::size_t k = 0; k < kWidth; k += 97)
            all_in_place = all_in_place && v[i * kWidth + k] == i * 1e4 + double(k);
    CHECK(all_in_place);
    auto t = read_dataset(daemon.data_dir() / "big.h5", "runs/" + std::to_string(id) + "/t", dims);
    REQUIRE(dims == std::vector<hsize_t>{kRows});
    std::vector<double> tv(kRows);
    std::memcpy(tv.data(), t.data(), t.size());
    CHECK(tv.front() == 0.0);
    CHECK(tv.back() == double(kRows - 1));

    // `simsink verify` checks every extent's checksum against its segment.
    const std::string cmd = env_or("SIMSINK_CLI", "build/client/cli/simsink") + " --admin " +
                            daemon.admin() + " verify > /dev/null 2>&1";
    CHECK(std::system(cmd.c_str()) == 0);
    REQUIRE(daemon.stop() == 0);
}
