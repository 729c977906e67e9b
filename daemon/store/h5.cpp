#include "h5.hpp"

#include "release.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>

namespace simsink::store::h5 {
namespace {

// What fail() keeps of HDF5's error stack.
struct StackSummary {
    std::string innermost;
    std::string api_function;  // the public call that failed ("H5Dwrite")
    int sys_errno = 0;
};

// HDF5's public functions are "H5" + capitals + a lower-case name
// ("H5Dwrite", "H5Pset_virtual"); internal ones have an underscore after the
// capitals ("H5C_dest", "H5FD__sec2_write").
bool is_api_function(std::string_view name) {
    if (!name.starts_with("H5")) return false;
    std::size_t i = 2;
    while (i < name.size() && name[i] >= 'A' && name[i] <= 'Z') ++i;
    return i > 2 && i < name.size() && name[i] >= 'a' && name[i] <= 'z';
}

// HDF5's sec2 driver reports a failed system call as
// "file write failed: time = ..., filename = '...', file descriptor = 3,
//  errno = 28, error message = 'No space left on device', buf = ..., ..."
// Keeps "file write failed: No space left on device".
std::string tidy(std::string desc) {
    static constexpr std::string_view kMessage = "error message = '";
    if (auto at = desc.find(kMessage); at != std::string::npos) {
        auto begin = at + kMessage.size();
        auto end = desc.find('\'', begin);
        std::string prefix = desc.substr(0, desc.find(':'));
        desc = prefix + ": " + desc.substr(begin, end == std::string::npos ? end : end - begin);
    }
    std::replace(desc.begin(), desc.end(), '\n', ' ');
    return desc;
}

int errno_in(std::string_view desc) {
    static constexpr std::string_view kErrno = "errno = ";
    auto at = desc.find(kErrno);
    if (at == std::string_view::npos) return 0;
    return std::atoi(std::string(desc.substr(at + kErrno.size(), 12)).c_str());
}

herr_t summarize_entry(unsigned n, const H5E_error2_t* err, void* data) noexcept {
    auto* summary = static_cast<StackSummary*>(data);
    try {
        std::string_view desc = err->desc ? err->desc : "";
        if (n == 0) summary->innermost = tidy(std::string(desc));
        if (summary->sys_errno == 0) summary->sys_errno = errno_in(desc);
        if (err->func_name && is_api_function(err->func_name))
            summary->api_function = err->func_name;
    } catch (...) {
        return -1;  // out of memory: stop walking, keep what we have
    }
    return 0;
}

StackSummary take_error_stack() {
    StackSummary summary;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, summarize_entry, &summary);
    H5Eclear2(H5E_DEFAULT);
    return summary;
}

std::string describe(const Site& site, std::string_view op) {
    std::string what(op);
    if (!site.object.empty()) {
        what += ' ';
        what += site.object;
        what += " in";
    }
    what += ' ';
    what += site.file.string();
    return what;
}

int fd_of(hid_t file, const Site& site) {
    void* handle = nullptr;
    check(site, "get the file descriptor of",
          [&] { return H5Fget_vfd_handle(file, H5P_DEFAULT, &handle); });
    return *static_cast<int*>(handle);
}

// Closes a file we are abandoning (it is deleted next) without letting the
// close fail. A failed H5Fclose in HDF5 1.10 frees the file but keeps a dead
// id (a small leak; init() keeps it from crashing the process at exit). The
// close fails when its flush cannot write, so the file's descriptor is first
// replaced by an anonymous in-memory file: the flush and HDF5's final
// truncation go to memory (only the few pages of metadata HDF5 writes) and
// cannot meet the full or failing disk. Without memfd, the file is emptied
// instead, which gives its blocks back for the flush. Neither helps if a
// flush of the file failed before (see TmpFile::close()).
void abandon(File& file) noexcept {
    void* handle = nullptr;
    if (H5Fget_vfd_handle(file.id(), H5P_DEFAULT, &handle) >= 0 && handle) {
        const int fd = *static_cast<int*>(handle);
        const int scratch = ::memfd_create("simsink-abandoned", MFD_CLOEXEC);
        if (scratch < 0 || ::dup3(scratch, fd, O_CLOEXEC) < 0) (void)::ftruncate(fd, 0);
        if (scratch >= 0) ::close(scratch);
    }
    if (H5Fclose(file.id()) < 0) H5Eclear2(H5E_DEFAULT);  // nothing more can be done
    file.release();  // closed, or dangling: never touched again either way
}

// The earliest file format that holds what we write, never newer than 1.10's:
// readable by HDF5 1.8 and later (superblock version 0). The views need it:
// H5Fget_file_image of HDF5 1.10.8 clears the superblock's status flags
// without updating the checksum that later superblock versions carry, which
// makes their images unreadable.
PropList file_access(const Site& site) {
    PropList fapl{
        check(site, "create a file access list for", [] { return H5Pcreate(H5P_FILE_ACCESS); })};
    check(site, "set library version bounds for",
          [&] { return H5Pset_libver_bounds(fapl.id(), H5F_LIBVER_EARLIEST, H5F_LIBVER_V110); });
    return fapl;
}

Type copy_type(hid_t predefined) {
    static const std::filesystem::path kNoFile{"(no file)"};
    return Type{check(Site{kNoFile, "datatype"}, "copy", [&] { return H5Tcopy(predefined); })};
}

Type complex_type(hid_t part, std::size_t part_size) {
    static const std::filesystem::path kNoFile{"(no file)"};
    Site site{kNoFile, "complex datatype"};
    Type t{check(site, "create", [&] { return H5Tcreate(H5T_COMPOUND, 2 * part_size); })};
    check(site, "insert r into", [&] { return H5Tinsert(t.id(), "r", 0, part); });
    check(site, "insert i into", [&] { return H5Tinsert(t.id(), "i", part_size, part); });
    return t;
}

}  // namespace

void init() {
    static std::once_flag once;
    std::call_once(once, [] {
        H5dont_atexit();  // fails harmlessly if HDF5 was initialized before
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    });
}

PropList creation_list(hid_t cls, const Site& site) {
    PropList list{check(site, "create a property list for", [&] { return H5Pcreate(cls); })};
    check(site, "track attribute order in", [&] {
        return H5Pset_attr_creation_order(list.id(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    });
    // Up to 64 attributes in the object header (compact), rather than HDF5's
    // 8: a run view's root has 20-30 (params, results, its own), and the
    // dense storage past 8 (a fractal heap and two B-trees) made building a
    // W4 run's view 15% slower (docs/storage.md).
    check(site, "set attribute storage of", [&] {
        return H5Pset_attr_phase_change(list.id(), 64, 48);
    });
    return list;
}

void fail(const Site& site, std::string_view op, int fallback_errno) {
    StackSummary stack = take_error_stack();
    int sys_errno = stack.sys_errno ? stack.sys_errno : fallback_errno;
    std::string what = describe(site, op) + ": ";
    if (!stack.innermost.empty())
        what += stack.innermost;
    else if (sys_errno)
        what += std::strerror(sys_errno);
    else
        what += "HDF5 call failed";
    if (!stack.api_function.empty()) what += " (" + stack.api_function + ")";
    throw StoreError(what, sys_errno);
}

void fail_errno(const Site& site, std::string_view op, int sys_errno) {
    throw StoreError(describe(site, op) + ": " + std::strerror(sys_errno), sys_errno);
}

void fail_input(const Site& site, std::string_view op, std::string_view detail) {
    throw StoreError(describe(site, op) + ": " + std::string(detail));
}

// ---- data types ---------------------------------------------------------------

Type dtype_type(DType t) {
    switch (t) {
        case DType::int8:
            return copy_type(H5T_STD_I8LE);
        case DType::int16:
            return copy_type(H5T_STD_I16LE);
        case DType::int32:
            return copy_type(H5T_STD_I32LE);
        case DType::int64:
            return copy_type(H5T_STD_I64LE);
        case DType::uint8:
            return copy_type(H5T_STD_U8LE);
        case DType::uint16:
            return copy_type(H5T_STD_U16LE);
        case DType::uint32:
            return copy_type(H5T_STD_U32LE);
        case DType::uint64:
            return copy_type(H5T_STD_U64LE);
        case DType::float32:
            return copy_type(H5T_IEEE_F32LE);
        case DType::float64:
            return copy_type(H5T_IEEE_F64LE);
        case DType::complex64:
            return complex_type(H5T_IEEE_F32LE, 4);
        case DType::complex128:
            return complex_type(H5T_IEEE_F64LE, 8);
        case DType::boolean:
            return bool_type();
    }
    throw StoreError("invalid dtype code " + std::to_string(static_cast<int>(t)));
}

Type utf8_string_type() {
    static const std::filesystem::path kNoFile{"(no file)"};
    Site site{kNoFile, "string datatype"};
    Type t = copy_type(H5T_C_S1);
    check(site, "set size of", [&] { return H5Tset_size(t.id(), H5T_VARIABLE); });
    check(site, "set character set of", [&] { return H5Tset_cset(t.id(), H5T_CSET_UTF8); });
    return t;
}

Type bool_type() {
    static const std::filesystem::path kNoFile{"(no file)"};
    Site site{kNoFile, "bool datatype"};
    Type t{check(site, "create", [] { return H5Tenum_create(H5T_NATIVE_INT8); })};
    const std::int8_t no = 0, yes = 1;
    check(site, "insert FALSE into", [&] { return H5Tenum_insert(t.id(), "FALSE", &no); });
    check(site, "insert TRUE into", [&] { return H5Tenum_insert(t.id(), "TRUE", &yes); });
    return t;
}

// ---- dataspaces and slabs ---------------------------------------------------------

Space make_space(std::span<const hsize_t> dims, const Site& site) {
    if (dims.empty())
        return Space{
            check(site, "create a scalar dataspace for", [] { return H5Screate(H5S_SCALAR); })};
    return Space{check(site, "create a dataspace for", [&] {
        return H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    })};
}

std::vector<hsize_t> dataset_dims(hid_t dataset, const Site& site) {
    Space space{check(site, "get the dataspace of", [&] { return H5Dget_space(dataset); })};
    int rank =
        check(site, "get the rank of", [&] { return H5Sget_simple_extent_ndims(space.id()); });
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    check(site, "get the dimensions of",
          [&] { return H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr); });
    return dims;
}

void for_each_slab(std::span<const hsize_t> dims, hsize_t max_elements, const SlabFn& fn) {
    const std::size_t rank = dims.size();
    if (rank == 0) {
        fn({}, {});
        return;
    }
    if (std::find(dims.begin(), dims.end(), hsize_t{0}) != dims.end()) return;
    max_elements = std::max<hsize_t>(max_elements, 1);

    // inner[k]: elements under one index of axis k. Slabs run along the
    // outermost axis whose single index still fits; the axes inside it are
    // taken whole, the axes outside it one index at a time.
    std::vector<hsize_t> inner(rank, 1);
    for (std::size_t k = rank - 1; k > 0; --k) inner[k - 1] = inner[k] * dims[k];
    std::size_t axis = 0;
    while (inner[axis] > max_elements) ++axis;
    const hsize_t step = std::min<hsize_t>(dims[axis], max_elements / inner[axis]);

    std::vector<hsize_t> start(rank, 0), count(dims.begin(), dims.end());
    for (std::size_t k = 0; k < axis; ++k) count[k] = 1;
    for (;;) {
        count[axis] = std::min(step, dims[axis] - start[axis]);
        fn(start, count);
        start[axis] += count[axis];
        if (start[axis] < dims[axis]) continue;
        start[axis] = 0;
        std::size_t k = axis;
        for (;;) {
            if (k == 0) return;
            --k;
            if (++start[k] < dims[k]) break;
            start[k] = 0;
        }
    }
}

namespace {

// The dataset's file space with (start, count) selected, and a packed memory
// space of the same number of elements.
std::pair<Space, Space> slab_spaces(hid_t dataset, std::span<const hsize_t> start,
                                    std::span<const hsize_t> count, const Site& site) {
    Space file_space{check(site, "get the dataspace of", [&] { return H5Dget_space(dataset); })};
    if (start.empty()) return {std::move(file_space), make_space({}, site)};
    check(site, "select a hyperslab in", [&] {
        return H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr,
                                   count.data(), nullptr);
    });
    hsize_t elements = 1;
    for (auto c : count) elements *= c;
    return {std::move(file_space), make_space(std::span<const hsize_t>(&elements, 1), site)};
}

}  // namespace

void read_slab(hid_t dataset, hid_t mem_type, std::span<const hsize_t> start,
               std::span<const hsize_t> count, void* buf, const Site& site) {
    auto [file_space, mem_space] = slab_spaces(dataset, start, count, site);
    check(site, "read", [&] {
        return H5Dread(dataset, mem_type, mem_space.id(), file_space.id(), H5P_DEFAULT, buf);
    });
}

void write_slab(hid_t dataset, hid_t mem_type, std::span<const hsize_t> start,
                std::span<const hsize_t> count, const void* buf, const Site& site) {
    auto [file_space, mem_space] = slab_spaces(dataset, start, count, site);
    check(site, "write", [&] {
        return H5Dwrite(dataset, mem_type, mem_space.id(), file_space.id(), H5P_DEFAULT, buf);
    });
}

void check_virtual_sources(hid_t dataset, const Site& site) {
    PropList dcpl{
        check(site, "get the creation list of", [&] { return H5Dget_create_plist(dataset); })};
    if (H5Pget_layout(dcpl.id()) != H5D_VIRTUAL) return;
    size_t count = 0;
    check(site, "count the mappings of", [&] { return H5Pget_virtual_count(dcpl.id(), &count); });

    auto name_len =
        check(site, "get the file name of", [&] { return H5Fget_name(dataset, nullptr, 0); });
    std::string view_file(static_cast<std::size_t>(name_len) + 1, '\0');
    check(site, "get the file name of",
          [&] { return H5Fget_name(dataset, view_file.data(), view_file.size()); });
    view_file.resize(static_cast<std::size_t>(name_len));
    const std::filesystem::path view_dir = std::filesystem::path(view_file).parent_path();

    for (size_t i = 0; i < count; ++i) {
        auto get = [&](auto fn) {
            auto len =
                check(site, "get a mapping of", [&] { return fn(dcpl.id(), i, nullptr, 0); });
            std::string s(static_cast<std::size_t>(len) + 1, '\0');
            check(site, "get a mapping of", [&] { return fn(dcpl.id(), i, s.data(), s.size()); });
            s.resize(static_cast<std::size_t>(len));
            std::string unescaped;  // "%%" -> "%"
            for (std::size_t k = 0; k < s.size(); ++k) {
                unescaped += s[k];
                if (s[k] == '%' && k + 1 < s.size() && s[k + 1] == '%') ++k;
            }
            return unescaped;
        };
        const std::string file = get(H5Pget_virtual_filename);
        const std::string dset = get(H5Pget_virtual_dsetname);
        if (file == ".") continue;  // the view file itself
        std::filesystem::path source(file);
        if (source.is_relative()) source = view_dir / source;
        File src = open_read_only(source);
        Site src_site{source, dset};
        if (check(src_site, "find",
                  [&] { return H5Lexists(src.id(), dset.c_str(), H5P_DEFAULT); }) == 0)
            fail_input(src_site, "read", "the source dataset is missing");
    }
}

// ---- files --------------------------------------------------------------------------

std::filesystem::path tmp_path_for(const std::filesystem::path& path) {
    auto tmp = path;
    tmp += ".tmp";
    return tmp;
}

File open_read_only(const std::filesystem::path& path) {
    Site site{path};
    return File{
        check(site, "open", [&] { return H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT); })};
}

TmpFile::TmpFile(std::filesystem::path tmp_path, bool direct_io)
    : path_(std::move(tmp_path)), direct_requested_(direct_io) {
    Site site{path_};
    try {
        PropList fapl = file_access(site);
        if (direct_io)
            check(site, "set the alignment of",
                  [&] { return H5Pset_alignment(fapl.id(), kAlignThreshold, kDirectAlign); });
        check(site, "set the close degree of",
              [&] { return H5Pset_fclose_degree(fapl.id(), H5F_CLOSE_SEMI); });
        // Without a sieve buffer, H5Dwrite sends raw data straight to the
        // file, so a write error surfaces in H5Dwrite and not in a later flush.
        check(site, "set the sieve buffer size of",
              [&] { return H5Pset_sieve_buf_size(fapl.id(), 0); });
        PropList fcpl = creation_list(H5P_FILE_CREATE, site);
        file_ = File{check(site, "create", [&] {
            return H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id());
        })};
        fd_ = fd_of(file_.id(), site);
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
        throw;
    }
}

TmpFile::~TmpFile() {
    if (file_.valid()) abandon(file_);
    if (raw_fd_ >= 0) ::close(raw_fd_);
    if (direct_fd_ >= 0) ::close(direct_fd_);
    if (!renamed_) {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }
}

void TmpFile::preallocate(std::uint64_t bytes) {
    Site site{path_};
    if (bytes == 0) return;
    if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes)) == 0) {
        preallocated_ = std::max(preallocated_, bytes);
        return;
    }
    const int e = errno;
    if (e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) return;
    fail_errno(site, "preallocate", e);
}

void TmpFile::preallocate_layout() {
    Site site{path_};
    hsize_t size = 0;
    check(site, "get the allocated size of", [&] { return H5Fget_filesize(file_.id(), &size); });
    preallocate(size);
}

void TmpFile::close(bool fsync) {
    close_metadata();
    finish_raw(fsync);
}

int TmpFile::reopen_after_close(const Site& site) {
    int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail_errno(site, "reopen", errno);
    if (preallocated_ > 0) {
        // Truncating to the current size releases the blocks reserved past
        // the end that HDF5 did not use. Only when there are some: freeing
        // blocks can wait for a discard behind the disk's queue (release.hpp).
        struct stat st {};
        const char* op = nullptr;
        if (::fstat(fd, &st) != 0)
            op = "stat";
        else if (static_cast<std::uint64_t>(st.st_size) < preallocated_ &&
                 ::ftruncate(fd, st.st_size) != 0)
            op = "release unused preallocation of";
        if (op) {
            const int e = errno;
            ::close(fd);
            fail_errno(site, op, e);
        }
    }
    return fd;
}

void TmpFile::close_metadata() {
    Site site{path_};
    // No H5Fflush first: in HDF5 1.10.8 a flush that fails leaves the
    // metadata cache unable to flush again ("slist already enabled?"), so the
    // file could then never be closed. H5Fclose flushes; if that fails, the
    // id is dead (see abandon()) and init() has made that harmless at exit.
    // Preallocation keeps a full disk from reaching this point.
    errno = 0;
    fd_ = -1;  // HDF5 closes it
    if (H5Fclose(file_.id()) < 0) {
        file_.release();
        fail(site, "close", errno);
    }
    file_.release();
    raw_fd_ = reopen_after_close(site);
    if (direct_requested_) {
        direct_fd_ = ::open(path_.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
        if (direct_fd_ < 0 && errno != EINVAL) fail_errno(site, "reopen with O_DIRECT", errno);
    }
}

void TmpFile::write_direct(std::uint64_t offset, const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    while (bytes > 0) {
        const ssize_t n = ::pwrite(direct_fd_, p, bytes, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            fail_errno(Site{path_}, "write (O_DIRECT)", errno);
        }
        // A short direct write ends on a block boundary; the rest follows.
        if (n == 0 || n % kDirectAlign != 0) fail_errno(Site{path_}, "write (O_DIRECT)", EIO);
        p += n;
        offset += static_cast<std::uint64_t>(n);
        bytes -= static_cast<std::size_t>(n);
    }
}

void TmpFile::write_raw(std::uint64_t offset, const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    while (bytes > 0) {
        // Pieces of kWritebackBytes, so that writeback of a large block
        // starts while the rest of it is copied.
        const std::size_t piece = std::min<std::uint64_t>(bytes, kWritebackBytes);
        const ssize_t n = ::pwrite(raw_fd_, p, piece, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            fail_errno(Site{path_}, "write", errno);
        }
        if (n == 0) fail_errno(Site{path_}, "write", EIO);
        p += n;
        offset += static_cast<std::uint64_t>(n);
        bytes -= static_cast<std::size_t>(n);
        if (early_writeback_ &&
            (unsubmitted_ += static_cast<std::uint64_t>(n)) >= kWritebackBytes) {
            unsubmitted_ = 0;
            (void)::sync_file_range(raw_fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
        }
    }
}

void TmpFile::finish_raw(bool fsync) {
    Site site{path_};
    if (direct_fd_ >= 0 && ::close(std::exchange(direct_fd_, -1)) != 0)
        fail_errno(site, "close (O_DIRECT)", errno);
    const int fd = std::exchange(raw_fd_, -1);
    if (fsync && ::fsync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        fail_errno(site, "fsync", e);
    }
    if (::close(fd) != 0) fail_errno(site, "close", errno);
}

void TmpFile::rename_to(const std::filesystem::path& final_path) {
    if (::rename(path_.c_str(), final_path.c_str()) != 0)
        fail_errno(Site{path_}, "rename to " + final_path.string() + " from", errno);
    renamed_ = true;
}

MemoryFile::MemoryFile(const std::filesystem::path& name) : name_(name) {
    Site site{name_};
    PropList fapl = file_access(site);
    check(site, "select the in-memory driver for",
          [&] { return H5Pset_fapl_core(fapl.id(), std::size_t{64} << 10, false); });
    PropList fcpl = creation_list(H5P_FILE_CREATE, site);
    file_ = File{check(site, "create in memory", [&] {
        return H5Fcreate(name_.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id());
    })};
}

void MemoryFile::save(const std::filesystem::path& target) {
    const auto bytes = image();
    save_image(target, bytes);
}

std::vector<std::byte> MemoryFile::image() {
    Site site{name_};
    check(site, "flush", [&] { return H5Fflush(file_.id(), H5F_SCOPE_LOCAL); });
    auto size = check(site, "get the image size of",
                      [&] { return H5Fget_file_image(file_.id(), nullptr, 0); });
    std::vector<std::byte> bytes(static_cast<std::size_t>(size));
    check(site, "get the image of",
          [&] { return H5Fget_file_image(file_.id(), bytes.data(), bytes.size()); });
    file_.reset();  // in memory: nothing to write, nothing can fail on disk
    return bytes;
}

void save_image(const std::filesystem::path& target, std::span<const std::byte> image) {
    const auto tmp = tmp_path_for(target);
    write_whole_file(tmp, image);
    // The file being replaced is freed on the release thread, not inside
    // rename(2): release.hpp says why.
    const int old = ::open(target.c_str(), O_RDONLY | O_CLOEXEC);
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
        const int e = errno;
        if (old >= 0) ::close(old);
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        fail_errno(Site{tmp}, "rename to " + target.string() + " from", e);
    }
    release_later(old);
}

void write_whole_file(const std::filesystem::path& path, std::span<const std::byte> bytes) {
    Site site{path};
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) fail_errno(site, "create", errno);
    auto fail_and_remove = [&](std::string_view op, int e) {
        if (fd >= 0) ::close(fd);
        ::unlink(path.c_str());
        fail_errno(site, op, e);
    };
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail_and_remove("write", errno);
        }
        done += static_cast<std::size_t>(n);
    }
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) fail_and_remove("close", errno);
}

}  // namespace simsink::store::h5
