#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <set>

#include "store_fixture.hpp"
#include "write_fault.hpp"

using namespace simsink;
using namespace simsink::store;
using namespace simsink::store::testing;

namespace {

std::uint32_t zlib_crc(const std::vector<std::vector<unsigned char>>& blocks) {
    uLong crc = crc32(0, nullptr, 0);
    for (const auto& b : blocks) crc = crc32_z(crc, b.data(), b.size());
    return static_cast<std::uint32_t>(crc);
}

std::vector<unsigned char> concat(const std::vector<std::vector<unsigned char>>& blocks) {
    std::vector<unsigned char> all;
    for (const auto& b : blocks) all.insert(all.end(), b.begin(), b.end());
    return all;
}

// `n` streams 0..n-1: the even ones float64 rows `a`, the odd ones int32
// rows `b`.
std::vector<StreamWrite> alternating(int n, const std::vector<unsigned char>& a,
                                     const std::vector<unsigned char>& b) {
    std::vector<StreamWrite> writes;
    for (int i = 0; i < n; ++i)
        writes.push_back(
            stream_write(i, i % 2 ? DType::int32 : DType::float64, {}, {i % 2 ? &b : &a}));
    return writes;
}

bool no_tmp_files(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".tmp") return false;
    return true;
}

// Pages of a file in the page cache.
std::size_t resident_pages(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const auto size = static_cast<std::size_t>(fs::file_size(path));
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(p != MAP_FAILED);
    std::vector<unsigned char> vec((size + 4095) / 4096);
    REQUIRE(::mincore(p, size, vec.data()) == 0);
    ::munmap(p, size);
    ::close(fd);
    std::size_t n = 0;
    for (auto v : vec) n += v & 1;
    return n;
}

}  // namespace

TEST_CASE("segment round-trips every dtype", "[segment]") {
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    std::vector<std::vector<std::vector<unsigned char>>> data;
    std::vector<StreamWrite> writes;
    for (std::uint8_t code = 1; code <= proto::kMaxDTypeCode; ++code) {
        const auto t = static_cast<DType>(code);
        // Two blocks of 2 and 3 rows of shape (3,).
        data.push_back({values(t, 2 * 3, code), values(t, 3 * 3, code + 100)});
        writes.push_back(stream_write(code, t, {3}, pointers(data.back())));
    }
    SegmentInfo info = write_segment(path, writes);
    REQUIRE(info.datasets.size() == writes.size());
    CHECK(info.bytes == fs::file_size(path));
    CHECK(open_hdf5_objects() == 0);

    h5::File f = open_file(path);
    for (std::size_t i = 0; i < writes.size(); ++i) {
        const auto t = writes[i].dtype;
        const std::string name = "/s" + std::to_string(writes[i].stream_id);
        INFO("dtype " << proto::name(t));
        CHECK(info.datasets[i].dataset == name);
        CHECK(info.datasets[i].stream_id == writes[i].stream_id);
        CHECK(info.datasets[i].rows == 5);
        CHECK(info.datasets[i].crc32 == zlib_crc(data[i]));
        CHECK(dataset_crc32(path, name) == info.datasets[i].crc32);

        h5::Dataset d = open_dataset(f.id(), name);
        CHECK(dims_of(d.id()) == std::vector<hsize_t>{5, 3});
        CHECK(layout_of(d.id()) == H5D_CONTIGUOUS);
        CHECK(read_raw(d.id()) == concat(data[i]));

        h5::Type type{H5Dget_type(d.id())};
        h5::Type expected = h5::dtype_type(t);
        CHECK(H5Tequal(type.id(), expected.id()) > 0);
        if (t == DType::complex64 || t == DType::complex128) {
            CHECK(H5Tget_class(type.id()) == H5T_COMPOUND);
            CHECK(H5Tget_nmembers(type.id()) == 2);
            CHECK(H5Tget_member_index(type.id(), "r") == 0);
            CHECK(H5Tget_member_index(type.id(), "i") == 1);
        }
        if (t == DType::boolean) {
            CHECK(H5Tget_class(type.id()) == H5T_ENUM);
            std::int8_t v = 1;
            char name_buf[16] = {};
            REQUIRE(H5Tenum_nameof(type.id(), &v, name_buf, sizeof name_buf) >= 0);
            CHECK(std::string(name_buf) == "TRUE");
        }
        if (t == DType::float64) {
            h5::Type native{H5Tcopy(H5T_IEEE_F64LE)};
            CHECK(H5Tequal(type.id(), native.id()) > 0);
        }
    }
}

TEST_CASE("segment datasets: streams are (rows, *row_shape), arrays their own shape", "[segment]") {
    TempDir dir;
    const auto path = dir / "seg-2.h5";
    auto scalar_rows = values(DType::int64, 4, 1);
    auto matrix = values(DType::float32, 6, 2);
    auto scalar_array = values(DType::float64, 1, 3);
    auto cube_rows = values(DType::uint16, 2 * 2 * 3 * 4, 4);
    std::vector<StreamWrite> writes{
        stream_write(1, DType::int64, {}, {&scalar_rows}),
        stream_write(2, DType::float32, {2, 3}, {&matrix}, StreamKind::array),
        stream_write(3, DType::float64, {}, {&scalar_array}, StreamKind::array),
        stream_write(4, DType::uint16, {2, 3, 4}, {&cube_rows}),
    };
    SegmentInfo info = write_segment(path, writes, no_fsync());
    REQUIRE(info.datasets.size() == 4);
    CHECK(info.datasets[1].dataset == "/a2");
    CHECK(info.datasets[1].rows == 1);
    CHECK(info.datasets[2].rows == 1);

    h5::File f = open_file(path);
    CHECK(dims_of(open_dataset(f.id(), "/s1").id()) == std::vector<hsize_t>{4});
    CHECK(dims_of(open_dataset(f.id(), "/a2").id()) == std::vector<hsize_t>{2, 3});
    CHECK(dims_of(open_dataset(f.id(), "/a3").id()).empty());
    CHECK(dims_of(open_dataset(f.id(), "/s4").id()) == std::vector<hsize_t>{2, 2, 3, 4});
    CHECK(read_raw(open_dataset(f.id(), "/a3").id()) == scalar_array);
    CHECK(read_raw(open_dataset(f.id(), "/a2").id()) == matrix);

    // An array is one row for read_segment_rows.
    std::vector<unsigned char> out(matrix.size());
    read_segment_rows(path, "/a2", 0, 1, out.data(), out.size());
    CHECK(out == matrix);
}

TEST_CASE("segment write renames atomically and leaves no tmp file", "[segment]") {
    TempDir dir;
    const auto path = dir / "seg-3.h5";
    auto rows = values(DType::float64, 10, 1);
    std::vector<StreamWrite> writes{stream_write(7, DType::float64, {}, {&rows})};
    write_segment(path, writes);  // with fsync
    CHECK(fs::exists(path));
    CHECK(no_tmp_files(dir.path()));
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("segment write to a missing directory leaves no tmp file", "[segment]") {
    TempDir dir;
    const auto path = dir / "missing" / "seg-1.h5";
    auto rows = values(DType::int32, 4, 1);
    std::vector<StreamWrite> writes{stream_write(1, DType::int32, {2}, {&rows})};
    try {
        write_segment(path, writes);
        FAIL("no error");
    } catch (const StoreError& e) {
        CHECK_FALSE(e.disk_full());
        CHECK(std::string(e.what()).find(path.string() + ".tmp") != std::string::npos);
        CHECK(e.sys_errno() == ENOENT);
    }
    CHECK_FALSE(fs::exists(path.parent_path()));
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("block size mismatch is rejected before any file is created", "[segment]") {
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    auto rows = values(DType::float64, 6, 1);
    StreamWrite w = stream_write(3, DType::float64, {2}, {&rows});
    w.blocks[0].rows = 4;  // claims 4 rows of 16 bytes, holds 48 bytes
    std::vector<StreamWrite> writes{w};
    try {
        write_segment(path, writes);
        FAIL("no error");
    } catch (const StoreError& e) {
        CHECK(std::string(e.what()).find("/s3") != std::string::npos);
        CHECK(std::string(e.what()).find("48 bytes") != std::string::npos);
        CHECK_FALSE(e.disk_full());
    }
    CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("invalid stream writes are rejected", "[segment]") {
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    auto one = values(DType::int8, 4, 1);
    std::vector<StreamWrite> writes;

    SECTION("an array of two rows") {
        writes.push_back(stream_write(1, DType::int8, {2}, {&one}, StreamKind::array));
    }
    SECTION("the same stream twice") {
        writes.push_back(stream_write(1, DType::int8, {}, {&one}));
        writes.push_back(stream_write(1, DType::int8, {}, {&one}));
    }
    SECTION("an invalid dtype code") {
        writes.push_back(stream_write(1, DType::int8, {}, {&one}));
        writes[0].dtype = static_cast<DType>(99);
    }
    SECTION("a block without data") {
        writes.push_back(stream_write(1, DType::int8, {}, {&one}));
        writes[0].blocks[0].data = nullptr;
    }
    CHECK_THROWS_AS(write_segment(path, writes), StoreError);
    CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("stream writes without rows are skipped", "[segment]") {
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    auto rows = values(DType::int16, 3, 1);
    const std::vector<unsigned char> none;
    std::vector<StreamWrite> writes{
        stream_write(1, DType::int16, {}, {}),
        stream_write(2, DType::int16, {}, {&rows}),
        stream_write(3, DType::int16, {}, {&none}),
    };
    SegmentInfo info = write_segment(path, writes, no_fsync());
    REQUIRE(info.datasets.size() == 1);
    CHECK(info.datasets[0].stream_id == 2);
    h5::File f = open_file(path);
    CHECK(H5Lexists(f.id(), "s1", H5P_DEFAULT) == 0);
    CHECK(H5Lexists(f.id(), "s3", H5P_DEFAULT) == 0);
}

TEST_CASE("segment crc32 covers the blocks in row order", "[segment]") {
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    std::vector<std::vector<unsigned char>> blocks{
        values(DType::uint8, 5, 1), values(DType::uint8, 7, 2), values(DType::uint8, 1, 3)};
    std::vector<StreamWrite> writes{stream_write(9, DType::uint8, {}, pointers(blocks))};
    SegmentInfo info = write_segment(path, writes, no_fsync());
    CHECK(info.datasets[0].crc32 == zlib_crc(blocks));
    std::vector<std::vector<unsigned char>> reversed{blocks[2], blocks[1], blocks[0]};
    CHECK(info.datasets[0].crc32 != zlib_crc(reversed));
    CHECK(dataset_crc32(path, "/s9") == info.datasets[0].crc32);
}

TEST_CASE("read_segment_rows reads a range of rows", "[segment]") {
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    auto rows = values(DType::float64, 10 * 2, 1);  // 10 rows of (2,)
    std::vector<StreamWrite> writes{stream_write(4, DType::float64, {2}, {&rows})};
    write_segment(path, writes, no_fsync());

    std::vector<unsigned char> out(3 * 16);
    read_segment_rows(path, "/s4", 6, 3, out.data(), out.size());
    CHECK(out == std::vector<unsigned char>(rows.begin() + 6 * 16, rows.begin() + 9 * 16));

    SECTION("rows past the end are rejected") {
        CHECK_THROWS_AS(read_segment_rows(path, "/s4", 8, 3, out.data(), out.size()), StoreError);
    }
    SECTION("a buffer too small is rejected") {
        CHECK_THROWS_AS(read_segment_rows(path, "/s4", 0, 3, out.data(), out.size() - 1),
                        StoreError);
    }
    SECTION("a missing dataset names the dataset and the file") {
        try {
            read_segment_rows(path, "/s5", 0, 1, out.data(), out.size());
            FAIL("no error");
        } catch (const StoreError& e) {
            CHECK(std::string(e.what()).find("/s5") != std::string::npos);
            CHECK(std::string(e.what()).find(path.string()) != std::string::npos);
        }
    }
    SECTION("zero rows read nothing") {
        read_segment_rows(path, "/s4", 10, 0, out.data(), 0);
    }
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("dataset_crc32 reads rows larger than its 16 MiB slabs", "[segment]") {
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    // 3 rows of 20 MiB: the slabs split each row.
    const Shape shape{5, 1 << 20};
    std::vector<std::vector<unsigned char>> blocks{values(DType::float32, 2 * 5 << 20, 1),
                                                   values(DType::float32, 5 << 20, 2)};
    std::vector<StreamWrite> writes{stream_write(1, DType::float32, shape, pointers(blocks))};
    SegmentInfo info = write_segment(path, writes, no_fsync());
    CHECK(info.datasets[0].rows == 3);
    CHECK(info.datasets[0].crc32 == zlib_crc(blocks));
    CHECK(dataset_crc32(path, "/s1") == info.datasets[0].crc32);
}

TEST_CASE("slabs cover a dataspace in C order within the element limit", "[segment][slab]") {
    using Dims = std::vector<hsize_t>;
    auto check_cover = [](Dims dims, hsize_t max_elements) {
        INFO("max " << max_elements);
        std::vector<std::size_t> order;  // flat indices in visiting order
        hsize_t total = 1;
        for (auto d : dims) total *= d;
        h5::for_each_slab(dims, max_elements, [&](auto start, auto count) {
            hsize_t n = 1;
            for (auto c : count) n *= c;
            CHECK(n <= std::max<hsize_t>(max_elements, 1));
            // Enumerate the slab's elements in C order.
            std::vector<hsize_t> idx(start.begin(), start.end());
            for (hsize_t e = 0; e < n; ++e) {
                std::size_t flat = 0;
                for (std::size_t k = 0; k < dims.size(); ++k) flat = flat * dims[k] + idx[k];
                order.push_back(flat);
                for (std::size_t k = dims.size(); k-- > 0;) {
                    if (++idx[k] < start[k] + count[k]) break;
                    idx[k] = start[k];
                }
            }
        });
        REQUIRE(order.size() == (dims.empty() ? 1 : total));
        for (std::size_t i = 0; i < order.size(); ++i) CHECK(order[i] == i);
    };
    for (hsize_t max : {1, 2, 3, 5, 7, 12, 24, 25, 100}) {
        check_cover({5}, max);
        check_cover({4, 6}, max);
        check_cover({3, 2, 4}, max);
        check_cover({2, 1, 3, 2}, max);
    }
    check_cover({}, 1);
    int calls = 0;
    h5::for_each_slab(Dims{3, 0, 2}, 10, [&](auto, auto) { ++calls; });
    CHECK(calls == 0);
}

TEST_CASE("disk full when creating a segment is reported as disk full", "[segment][fault]") {
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    // HDF5 creates "<path>.tmp"; as a link to /dev/full, every write to it
    // fails with ENOSPC.
    fs::create_symlink("/dev/full", dir / "seg-1.h5.tmp");
    auto rows = values(DType::float64, 100, 1);
    std::vector<StreamWrite> writes{stream_write(1, DType::float64, {}, {&rows})};
    try {
        write_segment(path, writes);
        FAIL("no error");
    } catch (const StoreError& e) {
        CHECK(e.disk_full());
        CHECK(e.sys_errno() == ENOSPC);
        CHECK(std::string(e.what()).find("No space left on device") != std::string::npos);
    }
    CHECK(fs::is_empty(dir.path()));
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("disk full at any point of a segment write leaves no file and no open HDF5 file",
          "[segment][fault]") {
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    auto a = values(DType::float64, 1 << 15, 1);  // 256 KiB
    auto b = values(DType::int32, 3000, 2);
    auto writes = alternating(8, a, b);
    const std::uint64_t data_bytes = 4 * a.size() + 4 * b.size();
    // Budgets that end the writing in the superblock, in the raw data of the
    // first, a middle and the last dataset, and in the metadata written by
    // the close.
    int full = 0;
    for (std::uint64_t budget :
         {std::uint64_t{0}, std::uint64_t{100}, std::uint64_t{4000}, std::uint64_t{300000},
          std::uint64_t{600000}, data_bytes - 10, data_bytes + 500, data_bytes + 1500,
          data_bytes + 3000, data_bytes + 6000}) {
        INFO("budget " << budget);
        {
            WriteFault fault(dir.path().string(), budget, ENOSPC);
            try {
                write_segment(path, writes);
            } catch (const StoreError& e) {
                INFO(e.what());
                CHECK(e.disk_full());
                CHECK(std::string(e.what()).find(path.string()) != std::string::npos);
                count_dead_id(e);
                ++full;
            }
        }
        CHECK(open_hdf5_objects() == 0);
        CHECK_FALSE(fs::exists(dir / "seg-1.h5.tmp"));
        if (fs::exists(path)) {
            CHECK(read_raw(path, "/s7") == b);
            fs::remove(path);
        }
    }
    CHECK(full >= 6);
    write_segment(path, writes);
    CHECK(read_raw(path, "/s6") == a);
}

TEST_CASE("an I/O error while writing a segment is not disk full", "[segment][fault]") {
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    auto a = values(DType::float64, 1 << 15, 1);
    std::vector<StreamWrite> writes{stream_write(1, DType::float64, {}, {&a})};
    {
        WriteFault fault(dir.path().string(), 10000, EIO);
        try {
            write_segment(path, writes);
            FAIL("no error");
        } catch (const StoreError& e) {
            CHECK_FALSE(e.disk_full());
            CHECK(e.sys_errno() == EIO);
            CHECK(std::string(e.what()).find("Input/output error") != std::string::npos);
            count_dead_id(e);
        }
    }
    CHECK(fs::is_empty(dir.path()));
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("fsync_directory of a missing directory throws", "[segment]") {
    TempDir dir;
    CHECK_THROWS_AS(fsync_directory(dir / "nope"), StoreError);
    fsync_directory(dir.path());
}

// Needs a small file system the test may fill, e.g.
//   mount -t tmpfs -o size=4m tmpfs /mnt/small
//   SIMSINK_TEST_TMPFS=/mnt/small test_store "[tmpfs]"
// Fills it to many levels and checks that every segment write either works
// or fails as disk full, leaving nothing behind.
TEST_CASE("full file system at any point of a segment write", "[.][tmpfs][fault]") {
    const char* root = std::getenv("SIMSINK_TEST_TMPFS");
    if (!root) return;
    const fs::path dir = fs::path(root) / "simsink-store-full";
    fs::create_directories(dir);
    auto a = values(DType::float64, 3 << 12, 1);  // 96 KiB
    auto b = values(DType::int32, 12000, 2);
    auto writes = alternating(40, a, b);
    int full = 0, ok = 0;
    const auto free_bytes = fs::space(dir).available;
    for (std::uintmax_t filler = 0; filler < free_bytes; filler += 4096 * 7) {
        {
            std::FILE* f = std::fopen((dir / "filler").c_str(), "wb");
            REQUIRE(f);
            std::vector<char> zeros(filler, 1);
            std::fwrite(zeros.data(), 1, zeros.size(), f);
            std::fclose(f);
        }
        try {
            write_segment(dir / "seg.h5", writes);
            ++ok;
            CHECK(read_raw(dir / "seg.h5", "/s39") == b);
        } catch (const StoreError& e) {
            INFO(e.what());
            CHECK(e.disk_full());
            count_dead_id(e);
            ++full;
        }
        CHECK(open_hdf5_objects() == 0);
        CHECK_FALSE(fs::exists(dir / "seg.h5.tmp"));
        fs::remove(dir / "seg.h5");
    }
    fs::remove_all(dir);
    WARN("segments written " << ok << ", disk full " << full);
}

TEST_CASE("segment checksum equals zlib's crc32, chained over pieces of any size", "[segment]") {
    // Catalogs written by a build with ISA-L and one without must agree.
    std::vector<unsigned char> data(1 << 20);
    std::uint32_t x = 12345;
    for (auto& b : data) b = static_cast<unsigned char>((x = x * 1103515245u + 12345u) >> 16);
    const auto want = static_cast<std::uint32_t>(crc32_z(0, data.data(), data.size()));
    CHECK(store::crc_update(store::crc_update(0, nullptr, 0), data.data(), data.size()) == want);
    std::uint32_t chained = store::crc_update(0, nullptr, 0);
    std::size_t off = 0;
    for (std::size_t piece : {1, 7, 64, 1000, 4096, 65537}) {
        chained = store::crc_update(chained, data.data() + off, piece);
        off += piece;
    }
    chained = store::crc_update(chained, data.data() + off, data.size() - off);
    CHECK(chained == want);
    CHECK(store::crc_update(0, nullptr, 0) == 0);
}

TEST_CASE("drop_cached_pages takes a fsynced segment out of the page cache", "[segment]") {
    // Under the working directory (the build tree, on disk): a tmpfs keeps
    // its pages whatever one asks.
    const fs::path dir = fs::current_path() / ("simsink-dropcache-" + std::to_string(getpid()));
    fs::create_directories(dir);
    struct Cleanup {
        fs::path p;
        ~Cleanup() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } cleanup{dir};
    const auto path = dir / "seg-1.h5";
    auto rows = values(DType::float64, 512 * 1024, 1);  // 4 MiB
    std::vector<StreamWrite> writes{stream_write(1, DType::float64, {}, {&rows})};
    write_segment(path, writes);  // with fsync
    auto resident = [&] { return resident_pages(path); };
    const auto before = resident();
    INFO("pages resident before " << before);
    if (before == 0) {
        WARN("the file system did not cache the new segment: nothing to drop");
        return;
    }
    drop_cached_pages(path);
    CHECK(resident() == 0);
    // Nothing is lost: the data reads back from disk.
    std::vector<unsigned char> back(rows.size());
    read_segment_rows(path, "/s1", 0, 512 * 1024, back.data(), back.size());
    CHECK(std::memcmp(back.data(), rows.data(), rows.size()) == 0);

    // The same done by write_segments() itself, on the thread that wrote
    // each segment, when asked.
    fs::remove(path);
    const auto path2 = dir / "seg-2.h5";
    std::vector<SegmentJob> jobs{{path, writes}, {path2, writes}};
    write_segments(jobs, SegmentOptions{.fsync = true, .threads = 2, .drop_cache = true});
    CHECK(resident() == 0);
    read_segment_rows(path2, "/s1", 0, 512 * 1024, back.data(), back.size());
    const bool same = back == rows;  // not CHECK(back == rows): Catch would print 4 MiB
    CHECK(same);
}

TEST_CASE("split_streams keeps one part below twice the minimum part size", "[segment][split]") {
    std::vector<std::vector<unsigned char>> blocks(6, values(DType::uint8, 1000, 1));
    std::vector<StreamWrite> writes{stream_write(1, DType::uint8, {}, pointers(blocks))};
    auto parts = split_streams(writes, 4, 3001);  // 6000 bytes: one part of >= 3001 each at most
    REQUIRE(parts.size() == 1);
    CHECK(parts[0].streams.size() == 1);
    CHECK(parts[0].streams[0].blocks.size() == 6);
    CHECK(parts[0].rows_before == std::vector<std::uint64_t>{0});
    CHECK(split_streams(writes, 1, 1).size() == 1);
    CHECK(split_streams(writes, 0, 1).size() == 1);
}

TEST_CASE("split_streams balances bytes, keeps row order and never splits a block",
          "[segment][split]") {
    // Stream 1: ten blocks of 100 rows (1 byte each); stream 2: one block of
    // 500 rows; stream 3: no blocks; stream 4: five blocks of 100 rows.
    std::vector<std::vector<unsigned char>> a(10, values(DType::uint8, 100, 1));
    std::vector<std::vector<unsigned char>> b{values(DType::uint8, 500, 2)};
    std::vector<std::vector<unsigned char>> d(5, values(DType::uint8, 100, 3));
    std::vector<StreamWrite> writes{stream_write(1, DType::uint8, {}, pointers(a)),
                                    stream_write(2, DType::uint8, {}, pointers(b)),
                                    stream_write(3, DType::uint8, {}, {}),
                                    stream_write(4, DType::uint8, {}, pointers(d))};
    auto parts = split_streams(writes, 4, 100);  // 2000 bytes: 4 parts of about 500
    REQUIRE(parts.size() == 4);
    std::map<std::int64_t, std::uint64_t> rows_seen;
    std::map<std::int64_t, std::vector<const void*>> blocks_seen;
    for (const auto& part : parts) {
        REQUIRE(part.streams.size() == part.rows_before.size());
        std::uint64_t bytes = 0;
        std::set<std::int64_t> ids;
        for (std::size_t i = 0; i < part.streams.size(); ++i) {
            const auto& w = part.streams[i];
            CHECK(ids.insert(w.stream_id).second);  // a stream at most once per part
            CHECK(part.rows_before[i] == rows_seen[w.stream_id]);
            for (const auto& blk : w.blocks) {
                rows_seen[w.stream_id] += blk.rows;
                bytes += blk.bytes;
                blocks_seen[w.stream_id].push_back(blk.data);
            }
        }
        CHECK(bytes >= 500);
        CHECK(bytes <= 600);  // the target plus less than one block
    }
    CHECK(rows_seen[1] == 1000);
    CHECK(rows_seen[2] == 500);
    CHECK(rows_seen[4] == 500);
    // Every block once, in its original order.
    for (const auto& w : writes) {
        std::vector<const void*> original;
        for (const auto& blk : w.blocks) original.push_back(blk.data);
        CHECK(blocks_seen[w.stream_id] == original);
    }
    // The stream without blocks is kept (in the part its place falls into).
    bool has_3 = false;
    for (const auto& part : parts)
        for (const auto& w : part.streams) has_3 = has_3 || w.stream_id == 3;
    CHECK(has_3);
}

TEST_CASE("write_segments on several threads gives each segment its rows and checksums",
          "[segment][parallel]") {
    TempDir dir;
    // One large stream split over four segments, as a commit is, plus a
    // small stream and an array in the first.
    std::vector<std::vector<unsigned char>> big;
    for (unsigned i = 0; i < 40; ++i) big.push_back(values(DType::float64, 1000 * 4, i));
    auto small = values(DType::int32, 7 * 2, 99);
    auto grid = values(DType::float32, 64, 5);
    std::vector<StreamWrite> writes{
        stream_write(1, DType::float64, {4}, pointers(big)),
        stream_write(2, DType::int32, {2}, {&small}),
        stream_write(3, DType::float32, {8, 8}, {&grid}, StreamKind::array),
    };
    auto parts = split_streams(writes, 4, 64 << 10);
    REQUIRE(parts.size() == 4);
    std::vector<SegmentJob> jobs;
    for (std::size_t j = 0; j < parts.size(); ++j)
        jobs.push_back({dir / ("seg-" + std::to_string(j + 1) + ".h5"), parts[j].streams});
    auto infos = write_segments(jobs, SegmentOptions{.fsync = true, .threads = 4});
    REQUIRE(infos.size() == 4);
    CHECK(no_tmp_files(dir.path()));
    CHECK(open_hdf5_objects() == 0);

    // Stream 1's rows, read back segment by segment, are the input in order,
    // and each dataset's checksum is zlib's crc32 of what it holds.
    std::vector<unsigned char> stream1;
    for (std::size_t j = 0; j < jobs.size(); ++j) {
        CHECK(infos[j].bytes == fs::file_size(jobs[j].path));
        for (const auto& d : infos[j].datasets) {
            auto raw = read_raw(jobs[j].path, d.dataset);
            CHECK(d.crc32 == zlib_crc({raw}));
            if (d.stream_id == 1) {
                CHECK(d.rows * 4 * 8 == raw.size());
                stream1.insert(stream1.end(), raw.begin(), raw.end());
            }
            if (d.stream_id == 2) CHECK(raw == small);
            if (d.stream_id == 3) CHECK(raw == grid);
        }
    }
    CHECK(stream1 == concat(big));
}

TEST_CASE("write_segments is all or nothing: one failing segment leaves none", "[segment][fault]") {
    TempDir dir;
    fs::create_directories(dir / "a");
    fs::create_directories(dir / "b");
    auto rows = values(DType::float64, 1 << 16, 1);  // 512 KiB
    std::vector<StreamWrite> writes{stream_write(1, DType::float64, {}, {&rows})};
    std::vector<SegmentJob> jobs{{dir / "a/seg-1.h5", writes}, {dir / "b/seg-2.h5", writes}};
    for (std::uint64_t budget : {std::uint64_t{0}, std::uint64_t{100000}}) {
        INFO("budget " << budget);
        // Only segment b's writes fail: one thread at a time writes there.
        WriteFault fault((dir / "b").string(), budget, ENOSPC);
        try {
            write_segments(jobs, SegmentOptions{.fsync = true, .threads = 2});
            FAIL("no error");
        } catch (const StoreError& e) {
            CHECK(e.disk_full());
            CHECK(std::string(e.what()).find("seg-2.h5") != std::string::npos);
            count_dead_id(e);
        }
        CHECK(fs::is_empty(dir / "a"));
        CHECK(fs::is_empty(dir / "b"));
        CHECK(open_hdf5_objects() == 0);
    }
    auto infos = write_segments(jobs, SegmentOptions{.fsync = true, .threads = 2});
    CHECK(read_raw(dir / "a/seg-1.h5", "/s1") == rows);
    CHECK(read_raw(dir / "b/seg-2.h5", "/s1") == rows);
}

TEST_CASE("a SegmentBatch writes on its helpers while the caller goes on, then publishes",
          "[segment][parallel]") {
    TempDir dir;
    std::vector<std::vector<unsigned char>> big;
    for (unsigned i = 0; i < 16; ++i) big.push_back(values(DType::float64, 1 << 14, i));
    std::vector<StreamWrite> writes{stream_write(1, DType::float64, {}, pointers(big))};
    auto parts = split_streams(writes, 3, 64 << 10);
    REQUIRE(parts.size() == 3);
    std::vector<SegmentJob> jobs;
    for (std::size_t j = 0; j < parts.size(); ++j)
        jobs.push_back({dir / ("seg-" + std::to_string(j + 1) + ".h5"), parts[j].streams});

    for (unsigned helpers : {0u, 1u, 3u}) {
        INFO(helpers << " helpers");
        for (const auto& job : jobs) fs::remove(job.path);
        SegmentBatch batch(jobs, SegmentOptions{.fsync = true});
        batch.start(helpers);
        // Until finish(), no segment is in place: a crash now leaves only
        // temporary files, which recovery removes.
        for (const auto& job : jobs) CHECK_FALSE(fs::exists(job.path));
        auto infos = batch.finish();
        REQUIRE(infos.size() == jobs.size());
        CHECK(no_tmp_files(dir.path()));
        std::vector<unsigned char> stream1;
        for (std::size_t j = 0; j < jobs.size(); ++j) {
            REQUIRE(infos[j].datasets.size() == 1);
            auto raw = read_raw(jobs[j].path, "/s1");
            CHECK(infos[j].datasets[0].crc32 == zlib_crc({raw}));
            stream1.insert(stream1.end(), raw.begin(), raw.end());
        }
        CHECK(stream1 == concat(big));
        CHECK_THROWS_AS(batch.finish(), std::logic_error);
    }
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("a SegmentBatch given up before finish() leaves no file", "[segment][fault]") {
    TempDir dir;
    auto rows = values(DType::float64, 1 << 18, 2);  // 2 MiB
    std::vector<StreamWrite> writes{stream_write(1, DType::float64, {}, {&rows})};
    std::vector<SegmentJob> jobs{{dir / "seg-1.h5", writes}, {dir / "seg-2.h5", writes}};
    for (unsigned helpers : {0u, 2u}) {
        INFO(helpers << " helpers");
        {
            SegmentBatch batch(jobs, SegmentOptions{.fsync = true});
            batch.start(helpers);
        }  // waits for the helpers, removes their temporary files
        CHECK(fs::is_empty(dir.path()));
    }
    CHECK(open_hdf5_objects() == 0);
}

namespace {

// Resident KiB of the mapping that starts at `start` (/proc/self/smaps "Rss").
long mapped_kib(const void* start) {
    std::FILE* f = std::fopen("/proc/self/smaps", "r");
    REQUIRE(f);
    char line[512];
    bool in_vma = false;
    long rss = -1;
    const auto want = reinterpret_cast<std::uintptr_t>(start);
    while (std::fgets(line, sizeof line, f)) {
        unsigned long lo = 0, hi = 0;
        if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2) in_vma = lo == want;  // a VMA's header
        if (in_vma && std::strncmp(line, "Rss:", 4) == 0) {
            rss = std::atol(line + 4);
            break;
        }
    }
    std::fclose(f);
    return rss;
}

}  // namespace

TEST_CASE("blocks in a shared mapping are written, then their page-table entries dropped",
          "[segment]") {
    TempDir dir;
    constexpr std::size_t kBytes = 4 << 20;
    const int fd = ::memfd_create("segment-test", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, kBytes) == 0);
    auto* rw = static_cast<unsigned char*>(
        ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(rw != MAP_FAILED);
    auto expected = values(DType::float64, kBytes / 8, 7);
    std::memcpy(rw, expected.data(), kBytes);
    // The daemon's view of a client's arena: read-only, populated.
    const auto* ro =
        static_cast<const unsigned char*>(::mmap(nullptr, kBytes, PROT_READ, MAP_SHARED, fd, 0));
    REQUIRE(ro != MAP_FAILED);
    REQUIRE(::madvise(const_cast<unsigned char*>(ro), kBytes, MADV_POPULATE_READ) == 0);
    CHECK(mapped_kib(ro) >= 4000);

    // Two blocks of one stream, the first not ending on a page boundary.
    constexpr std::size_t kFirst = 1000 * 8 * 100;  // 100 rows of 1000 float64
    std::vector<StreamWrite> writes{StreamWrite{1, StreamKind::stream, DType::float64, {1000}, {}}};
    writes[0].blocks.push_back(RowBlock{ro, kFirst, 100, true});
    writes[0].blocks.push_back(RowBlock{ro + kFirst, 8000 * 52, 52, true});
    const std::size_t written = kFirst + 8000 * 52;
    write_segment(dir / "seg.h5", writes);

    // Only the partial pages at the blocks' ends may still be mapped.
    // The part of the arena past the blocks stays mapped.
    CHECK(mapped_kib(ro) <= long(3 * 4 + (kBytes - written) / 1024 + 4));
    // The segment holds the bytes, and the arena still does too.
    auto raw = read_raw(dir / "seg.h5", "/s1");
    REQUIRE(raw.size() == written);
    CHECK(std::memcmp(raw.data(), expected.data(), written) == 0);
    CHECK(std::memcmp(ro, expected.data(), kBytes) == 0);
    ::munmap(const_cast<unsigned char*>(ro), kBytes);
    ::munmap(rw, kBytes);
    ::close(fd);
}

namespace {

// Where a dataset's contiguous storage starts in its file.
std::uint64_t storage_offset(const fs::path& file, const std::string& name) {
    h5::File f = open_file(file);
    h5::Dataset d = open_dataset(f.id(), name);
    return H5Dget_offset(d.id());
}

}  // namespace

TEST_CASE("direct I/O writes large datasets aligned, small ones buffered, every byte in place",
          "[segment][direct]") {
    // Sizes around the bounce buffer (8 MiB) and the 4 KiB block: a stream
    // of many blocks that ends mid-block, one that fills whole buffers
    // exactly, one under the alignment threshold, and an array.
    std::vector<std::vector<unsigned char>> odd;
    for (unsigned i = 0; i < 23; ++i) odd.push_back(values(DType::float64, 3 * 5001, i));
    std::vector<std::vector<unsigned char>> exact(2, values(DType::float32, 2 << 20, 3));
    auto small = values(DType::int16, 3 * 1000, 4);
    auto grid = values(DType::float64, 300 * 301, 5);
    std::vector<StreamWrite> writes{
        stream_write(1, DType::float64, {3}, pointers(odd)),
        stream_write(2, DType::float32, {1024}, pointers(exact)),
        stream_write(3, DType::int16, {3}, {&small}),
        stream_write(4, DType::float64, {300, 301}, {&grid}, StreamKind::array),
    };
    // On the data directory's file system, and on a tmpfs (which may refuse
    // O_DIRECT: then the same bytes are written buffered).
    std::vector<fs::path> dirs{fs::path{}};
    if (fs::is_directory("/dev/shm")) dirs.push_back("/dev/shm");
    for (const auto& where : dirs) {
        TempDir dir;
        fs::path base =
            where.empty() ? dir.path() : where / ("simsink-direct-" + std::to_string(::getpid()));
        fs::create_directories(base);
        INFO("directory " << base);
        const fs::path path = base / "seg.h5";
        SegmentInfo info =
            write_segment(path, writes, SegmentOptions{.fsync = true, .direct_io = true});
        CHECK(no_tmp_files(base));
        if (where.empty()) {
            // ext4 takes O_DIRECT: the 19 MB of large datasets went past the
            // page cache (without drop_cache); metadata and tails did not.
            INFO("file of " << fs::file_size(path) << " bytes");
            CHECK(resident_pages(path) < 64);
        }
        REQUIRE(info.datasets.size() == 4);
        CHECK(read_raw(path, "/s1") == concat(odd));
        CHECK(read_raw(path, "/s2") == concat(exact));
        CHECK(read_raw(path, "/s3") == small);
        CHECK(read_raw(path, "/a4") == grid);
        CHECK(info.datasets[0].crc32 == zlib_crc(odd));
        CHECK(info.datasets[1].crc32 == zlib_crc(exact));
        CHECK(info.datasets[2].crc32 == zlib_crc({small}));
        CHECK(info.datasets[3].crc32 == zlib_crc({grid}));
        CHECK(dataset_crc32(path, "/s1") == info.datasets[0].crc32);
        // The large datasets start on a 4 KiB boundary.
        CHECK(storage_offset(path, "/s1") % 4096 == 0);
        CHECK(storage_offset(path, "/s2") % 4096 == 0);
        CHECK(storage_offset(path, "/a4") % 4096 == 0);
        if (!where.empty()) fs::remove_all(base);
    }
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("direct I/O on several threads, with a full disk: all or nothing as buffered",
          "[segment][direct][fault]") {
    TempDir dir;
    fs::create_directories(dir / "a");
    fs::create_directories(dir / "b");
    auto rows = values(DType::float64, (3 << 20) / 8 + 17, 1);
    std::vector<StreamWrite> writes{stream_write(1, DType::float64, {}, {&rows})};
    std::vector<SegmentJob> jobs{{dir / "a/seg-1.h5", writes}, {dir / "b/seg-2.h5", writes}};
    {
        WriteFault fault((dir / "b").string(), 0, ENOSPC);
        CHECK_THROWS_AS(
            write_segments(jobs, SegmentOptions{.fsync = true, .threads = 2, .direct_io = true}),
            StoreError);
        CHECK(fs::is_empty(dir / "a"));
        CHECK(fs::is_empty(dir / "b"));
    }
    auto infos =
        write_segments(jobs, SegmentOptions{.fsync = true, .threads = 2, .direct_io = true});
    CHECK(read_raw(dir / "a/seg-1.h5", "/s1") == rows);
    CHECK(read_raw(dir / "b/seg-2.h5", "/s1") == rows);
    CHECK(infos[0].datasets.at(0).crc32 == zlib_crc({rows}));
    CHECK(open_hdf5_objects() == 0);
}

TEST_CASE("a segment reserves exactly its own blocks: none past its end", "[segment]") {
    // Blocks past the end would have to be freed by a truncate on the
    // commit's path, and freeing can wait for the disk (release.hpp).
    TempDir dir;
    const auto path = dir / "seg-1.h5";
    auto a = values(DType::float64, 1 << 16, 1);  // 512 KiB
    auto b = values(DType::int32, 3001, 2);
    auto writes = alternating(6, a, b);
    write_segment(path, writes);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    const auto allocated = static_cast<std::uint64_t>(st.st_blocks) * 512;
    INFO("size " << size << ", allocated " << allocated);
    CHECK(size >= 3 * a.size() + 3 * b.size());  // the raw data alone
    CHECK(allocated <= (size + 4095) / 4096 * 4096);
    CHECK(read_raw(path, "/s5") == b);
}

TEST_CASE("preallocate_layout reserves the whole early-allocated file before anything is written",
          "[segment]") {
    TempDir dir;
    {
        // A file system that cannot preallocate has nothing to check here.
        const int probe = ::open((dir / "probe").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        REQUIRE(probe >= 0);
        const bool can = ::fallocate(probe, FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
        const int why = errno;
        ::close(probe);
        fs::remove(dir / "probe");
        if (!can) {
            WARN("no fallocate here: " << std::strerror(why));
            return;
        }
    }
    const auto path = dir / "seg-1.h5.tmp";
    h5::TmpFile file(path);
    // A 4 MiB dataset whose storage HDF5 allocates at creation, as segments do.
    const hsize_t dims[1] = {std::uint64_t{1} << 19};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    REQUIRE(H5Pset_layout(dcpl, H5D_CONTIGUOUS) >= 0);
    REQUIRE(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) >= 0);
    REQUIRE(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0);
    hid_t d = H5Dcreate2(file.id(), "s1", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    REQUIRE(d >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    hsize_t layout = 0;
    REQUIRE(H5Fget_filesize(file.id(), &layout) >= 0);
    CHECK(layout >= dims[0] * 8);

    file.preallocate_layout();
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    INFO("layout " << layout << ", size " << st.st_size << ", blocks " << st.st_blocks);
    // Reserved, yet not written: the size has not grown to the layout.
    CHECK(static_cast<hsize_t>(st.st_size) < dims[0] * 8);
    CHECK(static_cast<hsize_t>(st.st_blocks) * 512 >= layout / 4096 * 4096);
    // Exactly the layout, nothing past it.
    CHECK(static_cast<hsize_t>(st.st_blocks) * 512 <= (layout + 4095) / 4096 * 4096);

    file.close(false);
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(static_cast<hsize_t>(st.st_size) == layout);
}
