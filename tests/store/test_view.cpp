#include <unistd.h>

#include <catch2/catch.hpp>

#include "store_fixture.hpp"
#include "write_fault.hpp"

using namespace simsink;
using namespace simsink::store;
using namespace simsink::store::testing;

namespace {

std::vector<unsigned char> rows_of(const std::vector<unsigned char>& bytes, std::size_t row_bytes,
                                   std::size_t first, std::size_t count) {
    return {bytes.begin() + static_cast<std::ptrdiff_t>(first * row_bytes),
            bytes.begin() + static_cast<std::ptrdiff_t>((first + count) * row_bytes)};
}

// A campaign "camp" whose run 1 has a stream "state/y" (float64, rows of
// (2,)) spread over three segments, the middle one holding a row that is not
// part of the stream (src_row 1), and an array "grid/x" in the first segment.
struct ThreeSegments {
    TempDir dir;
    fs::path data = dir.path();
    std::vector<unsigned char> a = values(DType::float64, 3 * 2, 1);
    std::vector<unsigned char> b = values(DType::float64, 4 * 2, 2);
    std::vector<unsigned char> c = values(DType::float64, 2 * 2, 3);
    std::vector<unsigned char> grid = values(DType::int32, 2 * 3, 4);
    std::vector<unsigned char> other = values(DType::int8, 5, 5);
    RunView run = run_view(1, "camp");

    ThreeSegments() {
        fs::create_directories(data / "camp");
        std::vector<StreamWrite> s1{
            stream_write(1, DType::float64, {2}, {&a}), stream_write(2, DType::int8, {}, {&other}),
            stream_write(3, DType::int32, {2, 3}, {&grid}, StreamKind::array)};
        write_segment(data / "camp/seg-1.h5", s1, no_fsync());
        std::vector<StreamWrite> s2{stream_write(1, DType::float64, {2}, {&b})};
        write_segment(data / "camp/seg-2.h5", s2, no_fsync());
        std::vector<StreamWrite> s3{stream_write(1, DType::float64, {2}, {&c})};
        write_segment(data / "camp/seg-3.h5", s3, no_fsync());

        run.streams.push_back(stream_view(1, "state/y", DType::float64, {2}, 8,
                                          {{"camp/seg-1.h5", "/s1", 0, 0, 3},
                                           {"camp/seg-2.h5", "/s1", 1, 3, 3},
                                           {"camp/seg-3.h5", "/s1", 0, 6, 2}}));
        run.streams.push_back(stream_view(3, "grid/x", DType::int32, {2, 3}, 1,
                                          {{"camp/seg-1.h5", "/a3", 0, 0, 1}}, StreamKind::array));
    }

    std::vector<unsigned char> expected_y() const {
        auto y = rows_of(a, 16, 0, 3);
        auto mid = rows_of(b, 16, 1, 3);
        y.insert(y.end(), mid.begin(), mid.end());
        y.insert(y.end(), c.begin(), c.end());
        return y;
    }

    fs::path run_file() const { return data / "camp/run-1.h5"; }
};

// Restores the working directory at the end of a test.
class ChangeDir {
  public:
    explicit ChangeDir(const fs::path& to) : old_(fs::current_path()) { fs::current_path(to); }
    ~ChangeDir() { fs::current_path(old_); }

  private:
    fs::path old_;
};

}  // namespace

TEST_CASE("view file names", "[view]") {
    CHECK(run_view_file("camp", 12) == "camp/run-12.h5");
    CHECK(campaign_view_file("camp") == "camp.h5");
}

TEST_CASE("run view maps rows across three segments", "[view]") {
    ThreeSegments t;
    write_run_view(t.data, t.run);
    CHECK(open_hdf5_objects() == 0);
    CHECK_FALSE(fs::exists(t.data / "camp/run-1.h5.tmp"));

    h5::File f = open_file(t.run_file());
    h5::Dataset y = open_dataset(f.id(), "state/y");
    CHECK(layout_of(y.id()) == H5D_VIRTUAL);
    CHECK(dims_of(y.id()) == std::vector<hsize_t>{8, 2});
    CHECK(read_raw(y.id()) == t.expected_y());

    // Source names are relative to the view's directory.
    h5::PropList dcpl{H5Dget_create_plist(y.id())};
    size_t count = 0;
    H5Pget_virtual_count(dcpl.id(), &count);
    REQUIRE(count == 3);
    char name[64] = {};
    H5Pget_virtual_filename(dcpl.id(), 1, name, sizeof name);
    CHECK(std::string(name) == "seg-2.h5");
    H5Pget_virtual_dsetname(dcpl.id(), 1, name, sizeof name);
    CHECK(std::string(name) == "/s1");

    h5::Dataset x = open_dataset(f.id(), "grid/x");
    CHECK(layout_of(x.id()) == H5D_VIRTUAL);
    CHECK(dims_of(x.id()) == std::vector<hsize_t>{2, 3});
    CHECK(read_raw(x.id()) == t.grid);
    h5::Type type{H5Dget_type(x.id())};
    CHECK(H5Tequal(type.id(), H5T_STD_I32LE) > 0);
}

TEST_CASE("view paths are relative: data dir moved still opens", "[view]") {
    ThreeSegments t;
    write_run_view(t.data, t.run);
    std::vector<std::int64_t> ids{1};
    write_campaign_view(t.data, "camp", ids);

    TempDir elsewhere;
    const fs::path moved = elsewhere / "moved-data";
    fs::rename(t.data / "camp", elsewhere / "camp-dir-tmp");
    fs::create_directories(moved);
    fs::rename(elsewhere / "camp-dir-tmp", moved / "camp");
    fs::rename(t.data / "camp.h5", moved / "camp.h5");

    for (const fs::path& cwd : {fs::path("/"), moved / "camp", elsewhere.path()}) {
        INFO("cwd " << cwd);
        ChangeDir in(cwd);
        h5::File f = open_file(moved / "camp.h5");
        h5::Dataset y = open_dataset(f.id(), "runs/1/state/y");
        CHECK(read_raw(y.id()) == t.expected_y());
        CHECK(read_raw(open_dataset(f.id(), "runs/1/grid/x").id()) == t.grid);
    }
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("extent in another directory is reached through ..", "[view]") {
    ThreeSegments t;
    fs::create_directories(t.data / "other");
    fs::rename(t.data / "camp/seg-3.h5", t.data / "other/seg-9.h5");
    t.run.streams[0].extents[2].file = "other/seg-9.h5";
    write_run_view(t.data, t.run);

    ChangeDir in("/");
    h5::File f = open_file(t.run_file());
    h5::Dataset y = open_dataset(f.id(), "state/y");
    h5::PropList dcpl{H5Dget_create_plist(y.id())};
    char name[64] = {};
    H5Pget_virtual_filename(dcpl.id(), 2, name, sizeof name);
    CHECK(std::string(name) == "../other/seg-9.h5");
    CHECK(read_raw(y.id()) == t.expected_y());
}

TEST_CASE("campaign view links every run once", "[view]") {
    ThreeSegments t;
    write_run_view(t.data, t.run);
    RunView run2 = run_view(2, "camp");
    write_run_view(t.data, run2);
    std::vector<std::int64_t> ids{1, 2, 1};
    write_campaign_view(t.data, "camp", ids);
    CHECK(open_hdf5_objects() == 0);
    CHECK_FALSE(fs::exists(t.data / "camp.h5.tmp"));

    h5::File f = open_file(t.data / "camp.h5");
    CHECK(read_string(f.id(), "simsink_campaign") == "camp");
    CHECK(read_int64(f.id(), "simsink_runs") == 2);
    h5::Group runs{H5Gopen2(f.id(), "runs", H5P_DEFAULT)};
    REQUIRE(runs.valid());
    H5G_info_t info{};
    H5Gget_info(runs.id(), &info);
    CHECK(info.nlinks == 2);
    for (std::int64_t id : {1, 2}) {
        LinkTarget link = link_target(runs.id(), std::to_string(id));
        CHECK(link.type == H5L_TYPE_EXTERNAL);
        CHECK(link.file == "camp/run-" + std::to_string(id) + ".h5");
        CHECK(link.object == "/");
    }
    h5::Group r2{H5Gopen2(f.id(), "runs/2", H5P_DEFAULT)};
    REQUIRE(r2.valid());
    CHECK(read_int64(r2.id(), "simsink_run_id") == 2);
}

TEST_CASE("campaign view without runs has an empty runs group", "[view]") {
    TempDir dir;
    write_campaign_view(dir.path(), "camp", {});
    h5::File f = open_file(dir / "camp.h5");
    CHECK(read_int64(f.id(), "simsink_runs") == 0);
    h5::Group runs{H5Gopen2(f.id(), "runs", H5P_DEFAULT)};
    CHECK(runs.valid());
}

TEST_CASE("params, results and run info become root attributes with h5py's types", "[view]") {
    TempDir dir;
    RunView run = run_view(7, "camp");
    run.status = "failed";
    run.reason = "signal 9";
    run.ended = 1700000100.25;
    run.params = Json::parse(R"({"nx": 64, "beta": 1.5e-10, "adaptive": true, "method": "dopri5",
        "grid": [1, 2, 3], "weights": [0.5, 1], "names": ["a", "bé"], "neg": -3,
        "big": 18446744073709551615, "empty": []})");
    run.results = Json::parse(R"({"energy": 3.5})");
    write_run_view(dir.path(), run);

    h5::File f = open_file(dir / "camp/run-7.h5");
    const hid_t root = f.id();
    CHECK(read_int64(root, "nx") == 64);
    CHECK(H5Tequal(attribute_type(root, "nx").id(), H5T_STD_I64LE) > 0);
    CHECK(read_int64(root, "neg") == -3);
    CHECK(read_double(root, "beta") == 1.5e-10);
    CHECK(H5Tequal(attribute_type(root, "beta").id(), H5T_IEEE_F64LE) > 0);
    CHECK(read_string(root, "method") == "dopri5");
    {
        h5::Type s = attribute_type(root, "method");
        CHECK(H5Tis_variable_str(s.id()) > 0);
        CHECK(H5Tget_cset(s.id()) == H5T_CSET_UTF8);
    }
    {
        h5::Type b = attribute_type(root, "adaptive");
        CHECK(H5Tget_class(b.id()) == H5T_ENUM);
        CHECK(H5Tget_size(b.id()) == 1);
        CHECK(read_attribute<std::int8_t>(root, "adaptive", b.id()).at(0) == 1);
    }
    CHECK(read_attribute<std::int64_t>(root, "grid", H5T_NATIVE_INT64) ==
          std::vector<std::int64_t>{1, 2, 3});
    CHECK(attribute_dims(root, "grid") == std::vector<hsize_t>{3});
    CHECK(read_attribute<double>(root, "weights", H5T_NATIVE_DOUBLE) ==
          std::vector<double>{0.5, 1.0});
    CHECK(read_string_attribute(root, "names") == std::vector<std::string>{"a", "bé"});
    CHECK(read_attribute<std::uint64_t>(root, "big", H5T_NATIVE_UINT64).at(0) ==
          18446744073709551615ull);
    CHECK(attribute_dims(root, "empty") == std::vector<hsize_t>{0});
    CHECK(read_double(root, "energy") == 3.5);

    CHECK(read_int64(root, "simsink_run_id") == 7);
    CHECK(read_string(root, "simsink_campaign") == "camp");
    CHECK(read_string(root, "simsink_status") == "failed");
    CHECK(read_string(root, "simsink_host") == "node17");
    CHECK(read_int64(root, "simsink_pid") == 4242);
    CHECK(read_double(root, "simsink_started") == 1700000000.5);
    CHECK(read_double(root, "simsink_ended") == 1700000100.25);
    CHECK(read_string(root, "simsink_reason") == "signal 9");
}

TEST_CASE("result name clashing with a param gets result_ prefix", "[view]") {
    TempDir dir;
    RunView run = run_view(1, "camp");
    run.params =
        Json::parse(R"({"nx": 64, "e": 0, "result_e": "taken", "simsink_status": "mine"})");
    run.results = Json::parse(R"({"nx": 65, "e": 1.0})");
    run.attrs = Json::parse(R"({"nx": "attr", "units": "m"})");
    write_run_view(dir.path(), run);

    h5::File f = open_file(dir / "camp/run-1.h5");
    CHECK(read_int64(f.id(), "nx") == 64);
    CHECK(read_int64(f.id(), "result_nx") == 65);
    CHECK(read_string(f.id(), "result_e") == "taken");
    CHECK(read_double(f.id(), "result_result_e") == 1.0);
    // The info attributes keep their names; a param that wants one is prefixed.
    CHECK(read_string(f.id(), "simsink_status") == "running");
    CHECK(read_string(f.id(), "param_simsink_status") == "mine");
    CHECK(read_string(f.id(), "attr_nx") == "attr");
    CHECK(read_string(f.id(), "units") == "m");
}

TEST_CASE("a param of 4096 strings fits in the view", "[view]") {
    TempDir dir;
    RunView run = run_view(1, "camp");
    Json labels = Json::array();
    for (int i = 0; i < 4096; ++i) labels.push_back("label-" + std::to_string(i));
    run.params["labels"] = labels;
    write_run_view(dir.path(), run);
    h5::File f = open_file(dir / "camp/run-1.h5");
    auto back = read_string_attribute(f.id(), "labels");
    REQUIRE(back.size() == 4096);
    CHECK(back[4095] == "label-4095");
}

TEST_CASE("stream with no rows is an empty dataset", "[view]") {
    TempDir dir;
    RunView run = run_view(1, "camp");
    run.streams.push_back(stream_view(1, "diag/energy", DType::complex128, {3}, 0, {}));
    write_run_view(dir.path(), run);
    h5::File f = open_file(dir / "camp/run-1.h5");
    h5::Dataset d = open_dataset(f.id(), "diag/energy");
    CHECK(dims_of(d.id()) == std::vector<hsize_t>{0, 3});
    CHECK(layout_of(d.id()) != H5D_VIRTUAL);
    h5::Type type{H5Dget_type(d.id())};
    CHECK(H5Tget_class(type.id()) == H5T_COMPOUND);
    CHECK(H5Tget_size(type.id()) == 16);
}

TEST_CASE("array not yet written is left out of the view", "[view]") {
    TempDir dir;
    RunView run = run_view(1, "camp");
    run.streams.push_back(stream_view(5, "grid", DType::float64, {4}, 0, {}, StreamKind::array));
    write_run_view(dir.path(), run);
    h5::File f = open_file(dir / "camp/run-1.h5");
    CHECK(H5Lexists(f.id(), "grid", H5P_DEFAULT) == 0);
}

TEST_CASE("key colliding with an earlier dataset or group is skipped", "[view]") {
    ThreeSegments t;
    auto mapped = [&](std::int64_t id, const std::string& key) {
        return stream_view(id, key, DType::int8, {}, 5, {{"camp/seg-1.h5", "/s2", 0, 0, 5}});
    };
    t.run.streams = {mapped(1, "a"),     mapped(2, "a/b"),   mapped(3, "c/d"), mapped(4, "c"),
                     mapped(5, "e/f/g"), mapped(6, "e/f/g"), mapped(7, "../x")};
    write_run_view(t.data, t.run);

    h5::File f = open_file(t.run_file());
    auto kind = [&](const char* path) {
        h5::Object o{H5Oopen(f.id(), path, H5P_DEFAULT)};
        return o.valid() ? H5Iget_type(o.id()) : H5I_BADID;
    };
    CHECK(kind("a") == H5I_DATASET);
    CHECK(kind("a/b") == H5I_BADID);
    CHECK(kind("c") == H5I_GROUP);
    CHECK(kind("c/d") == H5I_DATASET);
    CHECK(kind("e/f/g") == H5I_DATASET);
    CHECK(read_raw(open_dataset(f.id(), "c/d").id()) == t.other);
    H5G_info_t info{};
    H5Gget_info(f.id(), &info);
    CHECK(info.nlinks == 3);  // a, c, e
}

TEST_CASE("stream attrs become dataset attributes", "[view]") {
    ThreeSegments t;
    t.run.streams[0].attrs = Json::parse(R"({"units": "K", "scale": 2.0})");
    write_run_view(t.data, t.run);
    h5::File f = open_file(t.run_file());
    h5::Dataset y = open_dataset(f.id(), "state/y");
    CHECK(read_string(y.id(), "units") == "K");
    CHECK(read_double(y.id(), "scale") == 2.0);
}

TEST_CASE("scalar array view reads its single value", "[view]") {
    TempDir dir;
    fs::create_directories(dir / "camp");
    auto dt = values(DType::float64, 1, 9);
    std::vector<StreamWrite> w{stream_write(4, DType::float64, {}, {&dt}, StreamKind::array)};
    write_segment(dir / "camp/seg-1.h5", w, no_fsync());
    RunView run = run_view(1, "camp");
    run.streams.push_back(stream_view(4, "dt", DType::float64, {}, 1,
                                      {{"camp/seg-1.h5", "/a4", 0, 0, 1}}, StreamKind::array));
    write_run_view(dir.path(), run);
    h5::File f = open_file(dir / "camp/run-1.h5");
    h5::Dataset d = open_dataset(f.id(), "dt");
    CHECK(dims_of(d.id()).empty());
    CHECK(read_raw(d.id()) == dt);
}

TEST_CASE("extent outside the stream's rows is rejected", "[view]") {
    ThreeSegments t;
    t.run.streams[0].rows = 7;  // the last extent ends at 8
    CHECK_THROWS_AS(write_run_view(t.data, t.run), StoreError);
    CHECK_FALSE(fs::exists(t.run_file()));
    CHECK_FALSE(fs::exists(t.data / "camp/run-1.h5.tmp"));
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("a reader of the old view keeps it while the view is rewritten", "[view]") {
    ThreeSegments t;
    RunView shorter = t.run;
    shorter.streams[0].rows = 3;
    shorter.streams[0].extents.resize(1);
    write_run_view(t.data, shorter);

    h5::File old_view = open_file(t.run_file());
    write_run_view(t.data, t.run);

    CHECK(dims_of(open_dataset(old_view.id(), "state/y").id()) == std::vector<hsize_t>{3, 2});
    h5::File new_view = open_file(t.run_file());
    CHECK(read_raw(open_dataset(new_view.id(), "state/y").id()) == t.expected_y());
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(t.data / "camp")) {
        CHECK(e.path().extension() != ".tmp");
        ++files;
    }
    CHECK(files == 4);  // three segments and the view
}

TEST_CASE("view write to a data dir that cannot be created fails cleanly", "[view]") {
    TempDir dir;
    {
        std::FILE* f = std::fopen((dir / "camp").c_str(), "w");  // a file where the dir goes
        REQUIRE(f);
        std::fclose(f);
    }
    CHECK_THROWS_AS(write_run_view(dir.path(), run_view(1, "camp")), StoreError);
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("disk full while saving a view keeps the previous view", "[view][fault]") {
    ThreeSegments t;
    RunView shorter = t.run;
    shorter.streams[0].rows = 3;
    shorter.streams[0].extents.resize(1);
    write_run_view(t.data, shorter);
    for (std::uint64_t budget : {0ul, 1000ul, 5000ul}) {
        INFO("budget " << budget);
        {
            WriteFault fault(t.data.string(), budget, ENOSPC);
            try {
                write_run_view(t.data, t.run);
                FAIL("no error");
            } catch (const StoreError& e) {
                CHECK(e.disk_full());
            }
        }
        CHECK_FALSE(fs::exists(t.data / "camp/run-1.h5.tmp"));
        CHECK(open_hdf5_objects() == 0);
        h5::File f = open_file(t.run_file());
        CHECK(dims_of(open_dataset(f.id(), "state/y").id()) == std::vector<hsize_t>{3, 2});
    }
}

TEST_CASE("check_run_view finds a fresh view sound", "[view][verify]") {
    ThreeSegments t;
    write_run_view(t.data, t.run);
    CHECK(check_run_view(t.data, t.run).empty());
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("check_run_view reports what does not match the catalog", "[view][verify]") {
    ThreeSegments t;
    write_run_view(t.data, t.run);

    SECTION("a missing view") {
        fs::remove(t.run_file());
        auto problems = check_run_view(t.data, t.run);
        REQUIRE(problems.size() == 1);
        CHECK_THAT(problems[0], Catch::Contains("missing"));
    }
    SECTION("a missing segment") {
        fs::remove(t.data / "camp/seg-2.h5");
        auto problems = check_run_view(t.data, t.run);
        REQUIRE(problems.size() == 1);
        CHECK_THAT(problems[0], Catch::Contains("seg-2.h5"));
    }
    SECTION("a stream with more rows in the catalog than in the view") {
        RunView later = t.run;
        later.streams[0].rows = 9;
        later.streams[0].extents.push_back({"camp/seg-3.h5", "/s1", 1, 8, 1});
        auto problems = check_run_view(t.data, later);
        REQUIRE(problems.size() == 1);
        CHECK_THAT(problems[0],
                   Catch::Contains("'state/y' has shape (8, 2), the catalog says (9, 2)"));
    }
    SECTION("another dtype and a stream missing from the view") {
        RunView other = t.run;
        other.streams[1].dtype = DType::int64;
        other.streams.push_back(stream_view(9, "new/z", DType::int8, {}, 0, {}));
        auto problems = check_run_view(t.data, other);
        REQUIRE(problems.size() == 2);
        CHECK_THAT(problems[0], Catch::Contains("'grid/x' is not of type int64"));
        CHECK_THAT(problems[1], Catch::Contains("'new/z' is missing"));
    }
    CHECK(open_hdf5_objects() == 0);
}
