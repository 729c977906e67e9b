#include <catch2/catch.hpp>

#include "store_fixture.hpp"
#include "write_fault.hpp"

using namespace simsink;
using namespace simsink::store;
using namespace simsink::store::testing;

namespace {

// Campaign "camp" with runs 1 and 2: run 1 has "state/y" over two segments
// and an array "grid/x", run 2 a bool stream; params, results and attributes
// on everything.
struct Campaign {
    TempDir dir;
    fs::path data = dir.path();
    std::vector<unsigned char> y1 = values(DType::float64, 4 * 3, 1);
    std::vector<unsigned char> y2 = values(DType::float64, 2 * 3, 2);
    std::vector<unsigned char> grid = values(DType::complex64, 5, 3);
    std::vector<unsigned char> flags = values(DType::boolean, 6, 4);

    Campaign() {
        fs::create_directories(data / "camp");
        std::vector<StreamWrite> s1{
            stream_write(1, DType::float64, {3}, {&y1}),
            stream_write(2, DType::complex64, {5}, {&grid}, StreamKind::array),
            stream_write(3, DType::boolean, {}, {&flags}),
        };
        write_segment(data / "camp/seg-1.h5", s1, no_fsync());
        std::vector<StreamWrite> s2{stream_write(1, DType::float64, {3}, {&y2})};
        write_segment(data / "camp/seg-2.h5", s2, no_fsync());

        RunView r1 = run_view(1, "camp");
        r1.params = Json::parse(R"({"nx": 64, "method": "rk4", "names": ["a", "b"]})");
        r1.results = Json::parse(R"({"energy": 1.25})");
        r1.streams.push_back(
            stream_view(1, "state/y", DType::float64, {3}, 6,
                        {{"camp/seg-1.h5", "/s1", 0, 0, 4}, {"camp/seg-2.h5", "/s1", 0, 4, 2}}));
        r1.streams.back().attrs = Json::parse(R"({"units": "m"})");
        r1.streams.push_back(stream_view(2, "grid/x", DType::complex64, {5}, 1,
                                         {{"camp/seg-1.h5", "/a2", 0, 0, 1}}, StreamKind::array));
        write_run_view(data, r1);
        RunView r2 = run_view(2, "camp");
        r2.streams.push_back(
            stream_view(3, "flags", DType::boolean, {}, 6, {{"camp/seg-1.h5", "/s3", 0, 0, 6}}));
        r2.streams.push_back(stream_view(4, "empty", DType::int16, {2}, 0, {}));
        write_run_view(data, r2);
        std::vector<std::int64_t> ids{1, 2};
        write_campaign_view(data, "camp", ids);
    }

    std::vector<unsigned char> expected_y() const {
        auto y = y1;
        y.insert(y.end(), y2.begin(), y2.end());
        return y;
    }
};

struct Visited {
    std::vector<std::string> datasets;
    std::vector<std::string> non_hard_links;
};

herr_t visit_link(hid_t group, const char* name, const H5L_info_t* info, void* data) {
    auto* v = static_cast<Visited*>(data);
    if (info->type != H5L_TYPE_HARD) {
        v->non_hard_links.push_back(name);
        return 0;
    }
    h5::Object o{H5Oopen(group, name, H5P_DEFAULT)};
    if (H5Iget_type(o.id()) == H5I_DATASET) v->datasets.push_back(name);
    return 0;
}

Visited visit(hid_t file) {
    Visited v;
    H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, visit_link, &v);
    return v;
}

}  // namespace

TEST_CASE("export has no virtual datasets", "[export]") {
    Campaign c;
    const fs::path out = c.dir / "export.h5";
    export_campaign(c.data, "camp", out);
    CHECK(open_hdf5_objects() == 0);
    CHECK_FALSE(fs::exists(c.dir / "export.h5.tmp"));

    h5::File f = open_file(out);
    Visited v = visit(f.id());
    CHECK(v.non_hard_links.empty());
    CHECK(v.datasets == std::vector<std::string>{"runs/1/grid/x", "runs/1/state/y", "runs/2/empty",
                                                 "runs/2/flags"});
    for (const auto& name : v.datasets) {
        INFO(name);
        CHECK(layout_of(open_dataset(f.id(), name).id()) != H5D_VIRTUAL);
    }
}

TEST_CASE("export copies data, types and attributes of the campaign view", "[export]") {
    Campaign c;
    const fs::path out = c.dir / "export.h5";
    export_campaign(c.data, "camp", out);

    h5::File f = open_file(out);
    CHECK(read_string(f.id(), "simsink_campaign") == "camp");
    CHECK(read_int64(f.id(), "simsink_runs") == 2);

    h5::Dataset y = open_dataset(f.id(), "runs/1/state/y");
    CHECK(dims_of(y.id()) == std::vector<hsize_t>{6, 3});
    CHECK(read_raw(y.id()) == c.expected_y());
    CHECK(read_string(y.id(), "units") == "m");

    h5::Dataset grid = open_dataset(f.id(), "runs/1/grid/x");
    CHECK(read_raw(grid.id()) == c.grid);
    h5::Type ct{H5Dget_type(grid.id())};
    h5::Type expected_ct = h5::dtype_type(DType::complex64);
    CHECK(H5Tequal(ct.id(), expected_ct.id()) > 0);

    h5::Dataset flags = open_dataset(f.id(), "runs/2/flags");
    CHECK(read_raw(flags.id()) == c.flags);
    h5::Type bt{H5Dget_type(flags.id())};
    CHECK(H5Tget_class(bt.id()) == H5T_ENUM);

    CHECK(dims_of(open_dataset(f.id(), "runs/2/empty").id()) == std::vector<hsize_t>{0, 2});

    h5::Group run1{H5Gopen2(f.id(), "runs/1", H5P_DEFAULT)};
    REQUIRE(run1.valid());
    CHECK(read_int64(run1.id(), "nx") == 64);
    CHECK(read_string(run1.id(), "method") == "rk4");
    CHECK(read_string_attribute(run1.id(), "names") == std::vector<std::string>{"a", "b"});
    CHECK(read_double(run1.id(), "energy") == 1.25);
    CHECK(read_int64(run1.id(), "simsink_run_id") == 1);
}

TEST_CASE("export is self-contained: segments and views removed afterwards", "[export]") {
    Campaign c;
    const fs::path out =
        fs::temp_directory_path() / ("simsink-export-" + std::to_string(::getpid()) + ".h5");
    export_campaign(c.data, "camp", out);
    fs::remove_all(c.data / "camp");
    fs::remove(c.data / "camp.h5");
    CHECK(read_raw(out, "runs/1/state/y") == c.expected_y());
    fs::remove(out);
}

TEST_CASE("export copies large datasets in 64 MiB slabs and reports progress", "[export]") {
    TempDir dir;
    fs::create_directories(dir / "camp");
    // 10 rows of 8 MiB: 80 MiB, more than one slab.
    const Shape row{1 << 20};
    auto big = values(DType::float64, 10u << 20, 1);
    std::vector<StreamWrite> w{stream_write(1, DType::float64, row, {&big})};
    write_segment(dir / "camp/seg-1.h5", w, no_fsync());
    RunView run = run_view(1, "camp");
    run.streams.push_back(
        stream_view(1, "big", DType::float64, row, 10, {{"camp/seg-1.h5", "/s1", 0, 0, 10}}));
    write_run_view(dir.path(), run);
    std::vector<std::int64_t> ids{1};
    write_campaign_view(dir.path(), "camp", ids);

    std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
    export_campaign(
        dir.path(), "camp", dir / "out.h5",
        [&](std::uint64_t done, std::uint64_t total) { calls.emplace_back(done, total); });
    REQUIRE(calls.size() >= 2);
    std::uint64_t previous = 0;
    for (const auto& [done, total] : calls) {
        CHECK(total == big.size());
        CHECK(done > previous);
        CHECK(done - previous <= (std::uint64_t{64} << 20));
        previous = done;
    }
    CHECK(previous == big.size());
    CHECK(read_raw(dir / "out.h5", "runs/1/big") == big);
}

TEST_CASE("export fails when a segment is missing and leaves no file", "[export]") {
    Campaign c;
    fs::remove(c.data / "camp/seg-2.h5");
    const fs::path out = c.dir / "export.h5";
    try {
        export_campaign(c.data, "camp", out);
        FAIL("no error");
    } catch (const StoreError& e) {
        CHECK(std::string(e.what()).find("seg-2.h5") != std::string::npos);
    }
    CHECK_FALSE(fs::exists(out));
    CHECK_FALSE(fs::exists(c.dir / "export.h5.tmp"));
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("export fails when a run view is missing", "[export]") {
    Campaign c;
    fs::remove(c.data / "camp/run-2.h5");
    const fs::path out = c.dir / "export.h5";
    CHECK_THROWS_AS(export_campaign(c.data, "camp", out), StoreError);
    CHECK_FALSE(fs::exists(out));
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("export of an unknown campaign fails", "[export]") {
    TempDir dir;
    CHECK_THROWS_AS(export_campaign(dir.path(), "nope", dir / "out.h5"), StoreError);
    CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("disk full during an export leaves no file", "[export][fault]") {
    Campaign c;
    const fs::path out_dir = c.dir / "out";
    fs::create_directories(out_dir);
    for (std::uint64_t budget : {0ul, 500ul, 3000ul}) {
        INFO("budget " << budget);
        {
            WriteFault fault(out_dir.string(), budget, ENOSPC);
            try {
                export_campaign(c.data, "camp", out_dir / "export.h5");
                FAIL("no error");
            } catch (const StoreError& e) {
                INFO(e.what());
                CHECK(e.disk_full());
                count_dead_id(e);
            }
        }
        CHECK(fs::is_empty(out_dir));
        CHECK(open_hdf5_objects() == 0);
    }
    export_campaign(c.data, "camp", out_dir / "export.h5");
    CHECK(read_raw(out_dir / "export.h5", "runs/1/state/y") == c.expected_y());
}
