// Shared helpers of the store tests: a temporary data directory, row data,
// and readers that check files through the HDF5 C API (not through the code
// under test).
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "h5.hpp"
#include "segment.hpp"
#include "view.hpp"

namespace simsink::store::testing {

namespace fs = std::filesystem;

// A fresh directory under the system temporary directory, removed with
// everything in it at the end of the test.
class TempDir {
  public:
    TempDir() {
        static std::atomic<int> counter{0};
        std::random_device rd;
        path_ =
            fs::temp_directory_path() / ("simsink-store-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(counter++) + "-" + std::to_string(rd()));
        fs::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& name) const { return path_ / name; }

  private:
    fs::path path_;
};

// Bytes of `rows` rows of `row_bytes`, each byte a function of its position
// and `seed`, so that rows from different places never compare equal by
// accident.
inline std::vector<unsigned char> pattern(std::size_t bytes, unsigned seed) {
    std::vector<unsigned char> v(bytes);
    for (std::size_t i = 0; i < bytes; ++i)
        v[i] = static_cast<unsigned char>((i * 131 + seed * 17 + (i >> 8)) & 0xff);
    return v;
}

// Valid element values for a dtype (bool: 0 or 1 only).
inline std::vector<unsigned char> values(DType t, std::size_t elements, unsigned seed) {
    const std::size_t item = proto::itemsize(t);
    if (t == DType::boolean) {
        std::vector<unsigned char> v(elements);
        for (std::size_t i = 0; i < elements; ++i) v[i] = (i + seed) % 3 == 0;
        return v;
    }
    if (t == DType::float32 || t == DType::complex64) {
        std::vector<unsigned char> v(elements * item);
        for (std::size_t i = 0; i < v.size() / 4; ++i) {
            float f = static_cast<float>(i) * 0.5f + static_cast<float>(seed);
            std::memcpy(v.data() + 4 * i, &f, 4);
        }
        return v;
    }
    if (t == DType::float64 || t == DType::complex128) {
        std::vector<unsigned char> v(elements * item);
        for (std::size_t i = 0; i < v.size() / 8; ++i) {
            double d = static_cast<double>(i) * 0.25 + seed;
            std::memcpy(v.data() + 8 * i, &d, 8);
        }
        return v;
    }
    return pattern(elements * item, seed);
}

inline std::vector<double> as_doubles(const std::vector<unsigned char>& bytes) {
    std::vector<double> v(bytes.size() / 8);
    std::memcpy(v.data(), bytes.data(), v.size() * 8);
    return v;
}

inline std::vector<const std::vector<unsigned char>*> pointers(
    const std::vector<std::vector<unsigned char>>& blocks) {
    std::vector<const std::vector<unsigned char>*> out;
    for (const auto& b : blocks) out.push_back(&b);
    return out;
}

// Segments in tests need no durability.
inline SegmentOptions no_fsync() {
    return SegmentOptions{.fsync = false};
}

// The blocks point into the vectors given, which must outlive the write.
inline StreamWrite stream_write(std::int64_t id, DType t, Shape shape,
                                const std::vector<const std::vector<unsigned char>*>& blocks,
                                StreamKind kind = StreamKind::stream) {
    StreamWrite w;
    w.stream_id = id;
    w.kind = kind;
    w.dtype = t;
    w.shape = std::move(shape);
    const std::size_t row_bytes = proto::itemsize(t) * proto::element_count(w.shape).value_or(0);
    for (const auto* b : blocks)
        w.blocks.push_back(RowBlock{b->data(), b->size(), row_bytes ? b->size() / row_bytes : 0});
    return w;
}

inline StreamView stream_view(std::int64_t id, std::string key, DType t, Shape shape,
                              std::uint64_t rows, std::vector<Extent> extents,
                              StreamKind kind = StreamKind::stream) {
    StreamView sv;
    sv.stream_id = id;
    sv.key = std::move(key);
    sv.kind = kind;
    sv.dtype = t;
    sv.shape = std::move(shape);
    sv.rows = rows;
    sv.extents = std::move(extents);
    return sv;
}

inline RunView run_view(std::int64_t id, std::string campaign) {
    RunView run;
    run.run_id = id;
    run.campaign = std::move(campaign);
    run.status = "running";
    run.host = "node17";
    run.pid = 4242;
    run.started = 1700000000.5;
    return run;
}

// A link's type and, for an external link, its target file and object.
struct LinkTarget {
    H5L_type_t type = H5L_TYPE_ERROR;
    std::string file, object;
};

inline LinkTarget link_target(hid_t loc, const std::string& name) {
    LinkTarget t;
    H5L_info_t info{};
    if (H5Lget_info(loc, name.c_str(), &info, H5P_DEFAULT) < 0) return t;
    t.type = info.type;
    if (info.type == H5L_TYPE_EXTERNAL) {
        std::vector<char> buf(info.u.val_size);
        H5Lget_val(loc, name.c_str(), buf.data(), buf.size(), H5P_DEFAULT);
        const char* file = nullptr;
        const char* object = nullptr;
        unsigned flags = 0;
        H5Lunpack_elink_val(buf.data(), buf.size(), &flags, &file, &object);
        t.file = file;
        t.object = object;
    }
    return t;
}

// ---- reading back through the C API -------------------------------------------

inline h5::File open_file(const fs::path& path) {
    h5::init();
    hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (id < 0) throw std::runtime_error("cannot open " + path.string());
    return h5::File{id};
}

inline h5::Dataset open_dataset(hid_t file, const std::string& name) {
    hid_t id = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
    if (id < 0) throw std::runtime_error("cannot open dataset " + name);
    return h5::Dataset{id};
}

inline std::vector<hsize_t> dims_of(hid_t dataset) {
    h5::Space space{H5Dget_space(dataset)};
    std::vector<hsize_t> dims(static_cast<std::size_t>(H5Sget_simple_extent_ndims(space.id())));
    H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
    return dims;
}

// The whole dataset in its own type (the stored bytes, no conversion).
inline std::vector<unsigned char> read_raw(hid_t dataset) {
    h5::Type type{H5Dget_type(dataset)};
    h5::Space space{H5Dget_space(dataset)};
    const auto n = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.id()));
    std::vector<unsigned char> buf(n * H5Tget_size(type.id()));
    if (!buf.empty() && H5Dread(dataset, type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
        throw std::runtime_error("H5Dread failed");
    return buf;
}

inline std::vector<unsigned char> read_raw(const fs::path& file, const std::string& name) {
    h5::File f = open_file(file);
    h5::Dataset d = open_dataset(f.id(), name);
    return read_raw(d.id());
}

inline H5D_layout_t layout_of(hid_t dataset) {
    h5::PropList dcpl{H5Dget_create_plist(dataset)};
    return H5Pget_layout(dcpl.id());
}

inline bool has_attribute(hid_t obj, const std::string& name) {
    return H5Aexists(obj, name.c_str()) > 0;
}

inline h5::Attribute open_attribute(hid_t obj, const std::string& name) {
    hid_t id = H5Aopen(obj, name.c_str(), H5P_DEFAULT);
    if (id < 0) throw std::runtime_error("no attribute " + name);
    return h5::Attribute{id};
}

inline h5::Type attribute_type(hid_t obj, const std::string& name) {
    return h5::Type{H5Aget_type(open_attribute(obj, name).id())};
}

inline std::vector<hsize_t> attribute_dims(hid_t obj, const std::string& name) {
    h5::Space space{H5Aget_space(open_attribute(obj, name).id())};
    std::vector<hsize_t> dims(static_cast<std::size_t>(H5Sget_simple_extent_ndims(space.id())));
    H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
    return dims;
}

template <class T>
std::vector<T> read_attribute(hid_t obj, const std::string& name, hid_t mem_type) {
    h5::Attribute a = open_attribute(obj, name);
    h5::Space space{H5Aget_space(a.id())};
    std::vector<T> v(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.id())));
    if (H5Aread(a.id(), mem_type, v.data()) < 0) throw std::runtime_error("H5Aread " + name);
    return v;
}

inline std::vector<std::string> read_string_attribute(hid_t obj, const std::string& name) {
    h5::Attribute a = open_attribute(obj, name);
    h5::Space space{H5Aget_space(a.id())};
    h5::Type type = h5::utf8_string_type();
    std::vector<char*> ptrs(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.id())));
    if (H5Aread(a.id(), type.id(), ptrs.data()) < 0) throw std::runtime_error("H5Aread " + name);
    std::vector<std::string> out(ptrs.begin(), ptrs.end());
    H5Dvlen_reclaim(type.id(), space.id(), H5P_DEFAULT, ptrs.data());
    return out;
}

inline std::string read_string(hid_t obj, const std::string& name) {
    return read_string_attribute(obj, name).at(0);
}

inline std::int64_t read_int64(hid_t obj, const std::string& name) {
    return read_attribute<std::int64_t>(obj, name, H5T_NATIVE_INT64).at(0);
}

inline double read_double(hid_t obj, const std::string& name) {
    return read_attribute<double>(obj, name, H5T_NATIVE_DOUBLE).at(0);
}

// File ids that HDF5 1.10 keeps, dead, after an H5Fclose that failed while
// flushing (see TmpFile::close()); the fault tests that provoke one count it
// here. Never pass such an id to HDF5.
inline ssize_t dead_file_ids = 0;

// Objects still open in HDF5 anywhere in the process: 0 after every store
// call, failed or not, but for the dead ids above.
inline ssize_t open_hdf5_objects() {
    return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) - dead_file_ids;
}

// A failure inside H5Fclose of a file being written leaves a dead id (the
// message is "close <file>: ..."; close(2) itself does not fail here).
inline void count_dead_id(const StoreError& e) {
    if (std::string_view(e.what()).starts_with("close ")) ++dead_file_ids;
}

// h5::init() has to be HDF5's first call in the process (it switches off
// HDF5's atexit handler), before any test calls HDF5 directly.
inline const bool hdf5_initialized = (h5::init(), true);

}  // namespace simsink::store::testing
