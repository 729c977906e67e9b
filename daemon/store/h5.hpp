// The HDF5 layer of simsink::store: move-only owners of hid_t, checked calls
// that turn HDF5's error stack into StoreError, the DType mapping, and the
// file life cycles the store needs (a temporary file written in place, an
// in-memory file saved as a whole). Only daemon/store includes this header.
//
// Thread safety: none. Debian's HDF5 is the serial (non-thread-safe) build
// and HDF5's error-reporting switch is process-wide; only the daemon's writer
// thread calls into here.
#pragma once

#include <hdf5.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "records.hpp"
#include "store_error.hpp"

namespace simsink::store::h5 {

// Switches off HDF5's printing of error stacks to stderr (the stack is
// captured into StoreError instead), and HDF5's atexit handler: after an
// H5Fclose that failed, HDF5 1.10 keeps a dead file id, and that handler
// crashes on it at exit. Every file the store writes is closed before it
// returns, so nothing is left for the handler to flush. Idempotent and cheap;
// every public function of simsink::store calls it first, and it must come
// before any other HDF5 call of the process to switch the handler off.
void init();

// What a failing call was working on, for the error message.
struct Site {
    const std::filesystem::path& file;
    std::string_view object = {};  // "" for the file itself
};

// Throws StoreError "<op> <object> in <file>: <detail>", where <detail> is the
// innermost (most specific) message of HDF5's current error stack. The errno
// is the one HDF5's file driver recorded in the stack ("errno = 28") or, when
// the stack has none, `fallback_errno`. Clears the stack.
[[noreturn]] void fail(const Site& site, std::string_view op, int fallback_errno = 0);

// Throws StoreError "<op> <object> in <file>: <strerror>" for a failed system
// call.
[[noreturn]] void fail_errno(const Site& site, std::string_view op, int sys_errno);

// Throws StoreError "<op> <object> in <file>: <detail>" for invalid input
// (no errno).
[[noreturn]] void fail_input(const Site& site, std::string_view op, std::string_view detail);

// Runs an HDF5 call with errno cleared and throws through fail() if it
// returns a negative value (hid_t, herr_t, htri_t, ssize_t). Returns the
// call's result.
template <class Call>
auto check(const Site& site, std::string_view op, Call&& call) {
    errno = 0;
    auto result = call();
    if (result < 0) fail(site, op, errno);
    return result;
}

// Move-only owner of one hid_t, released with `Close` in the destructor.
// Never throws on release: a close that fails there is ignored, because the
// paths that must see close errors (files we wrote) close explicitly first.
template <herr_t (*Close)(hid_t)>
class Owner {
  public:
    Owner() noexcept = default;
    explicit Owner(hid_t id) noexcept : id_(id) {}
    Owner(Owner&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
    Owner& operator=(Owner&& other) noexcept {
        if (this != &other) {
            reset();
            id_ = std::exchange(other.id_, H5I_INVALID_HID);
        }
        return *this;
    }
    Owner(const Owner&) = delete;
    Owner& operator=(const Owner&) = delete;
    ~Owner() { reset(); }

    hid_t id() const noexcept { return id_; }
    bool valid() const noexcept { return id_ >= 0; }
    // Gives up ownership without closing.
    hid_t release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }
    void reset() noexcept {
        if (id_ >= 0) Close(id_);
        id_ = H5I_INVALID_HID;
    }

  private:
    hid_t id_ = H5I_INVALID_HID;
};

using File = Owner<H5Fclose>;
using Group = Owner<H5Gclose>;
using Dataset = Owner<H5Dclose>;
using Space = Owner<H5Sclose>;
using Type = Owner<H5Tclose>;
using Attribute = Owner<H5Aclose>;
using PropList = Owner<H5Pclose>;
using Object = Owner<H5Oclose>;  // a group or dataset opened with H5Oopen

// A creation property list of class `cls` (H5P_FILE_CREATE, H5P_GROUP_CREATE,
// H5P_DATASET_CREATE) that tracks attributes in creation order, as h5py's
// track_order=True does: readers list params in the order they were given,
// and the object gets a version-2 header, whose dense attribute storage takes
// attributes over 64 KiB (a param of 4096 strings) even in a file of the
// earliest format. Up to 64 attributes stay in the header itself (compact),
// which is cheaper to build than dense storage. Every file the store creates,
// and every group and dataset of views and exports, is created with one.
PropList creation_list(hid_t cls, const Site& site);

// ---- data types -------------------------------------------------------------

// The HDF5 type of a DType (docs/storage.md, "Data types"). It is both the
// type stored in files and the layout of the bytes in memory: wire buffers are
// little-endian whatever the host, so writing them never converts anything.
// Integers and floats: H5T_STD_{I,U}<n>LE, H5T_IEEE_F{32,64}LE; complex: the
// compound {"r", "i"} of two floats (h5py's convention); bool: an enum of
// int8 {FALSE = 0, TRUE = 1} (h5py's convention). Throws StoreError for an
// invalid code.
Type dtype_type(DType t);

// Variable-length UTF-8 string (h5py's str).
Type utf8_string_type();
// h5py's numpy.bool_.
Type bool_type();

// ---- dataspaces and slabs -------------------------------------------------------

// A simple dataspace of `dims` with maxdims == dims; rank 0 gives a scalar.
Space make_space(std::span<const hsize_t> dims, const Site& site);

// Current dimensions of a dataset.
std::vector<hsize_t> dataset_dims(hid_t dataset, const Site& site);

// Splits a dataspace of `dims` into hyperslabs in C (row-major) order, each
// at most `max_elements` elements (at least 1), and calls fn(start, count) for
// each in order, so that their elements concatenated are the whole space in
// storage order. A scalar (rank 0) is one slab with empty start and count; a
// space with a zero dimension has none.
using SlabFn = std::function<void(std::span<const hsize_t> start, std::span<const hsize_t> count)>;
void for_each_slab(std::span<const hsize_t> dims, hsize_t max_elements, const SlabFn& fn);

// Reads or writes one hyperslab (start, count) of a dataset between the file
// and a packed buffer, in `mem_type`. Rank 0: the whole (scalar) dataset.
void read_slab(hid_t dataset, hid_t mem_type, std::span<const hsize_t> start,
               std::span<const hsize_t> count, void* buf, const Site& site);
void write_slab(hid_t dataset, hid_t mem_type, std::span<const hsize_t> start,
                std::span<const hsize_t> count, const void* buf, const Site& site);

// Checks that every source file and dataset that a virtual dataset maps
// exists (relative names resolved against the directory of the file holding
// the virtual dataset, as HDF5 does); throws StoreError naming the first one
// missing. Does nothing for other layouts. Needed because HDF5 reads a
// missing source as fill values, without an error.
void check_virtual_sources(hid_t dataset, const Site& site);

// ---- files ------------------------------------------------------------------------

// Opens an existing file read-only.
File open_read_only(const std::filesystem::path& path);

// A file created on disk under a temporary name and written in place (segments,
// exports). The owner of the HDF5 id and of the temporary path:
//  - close() closes the file (which flushes it) and fsyncs it if asked,
//    throwing on any error, so that all of its bytes have reached the kernel
//    (or the disk) when it returns;
//  - rename_to() then moves it to its final name;
//  - the destructor removes the temporary file if rename_to() did not happen,
//    and first closes an id that close() did not, without letting that close
//    fail (see h5.cpp: HDF5 1.10 leaves a dangling id after a failed H5Fclose
//    that crashes the process at exit).
// Objects created in the file must be closed before close(): the file uses
// H5F_CLOSE_SEMI, so a forgotten object makes close() fail instead of leaving
// the file open behind our back.
class TmpFile {
  public:
    // With `direct_io`, every object of kAlignThreshold bytes or more (the
    // large datasets' storage) starts on a kDirectAlign boundary, and
    // close_metadata() opens a second descriptor with O_DIRECT for them.
    explicit TmpFile(std::filesystem::path tmp_path, bool direct_io = false);
    static constexpr std::uint64_t kAlignThreshold = std::uint64_t{64} << 10;
    TmpFile(TmpFile&&) = delete;
    TmpFile& operator=(TmpFile&&) = delete;
    ~TmpFile();

    hid_t id() const noexcept { return file_.id(); }
    const std::filesystem::path& path() const noexcept { return path_; }

    // Reserves `bytes` of disk blocks (fallocate, keeping the file size) so
    // that a full disk shows up here, before any data is written, and never
    // in the flush inside close(), which HDF5 1.10 cannot recover from.
    // `bytes` must cover the whole file (raw data and metadata); close()
    // gives back what HDF5 did not use. Throws StoreError on ENOSPC, EDQUOT,
    // EFBIG, EIO; file systems that cannot preallocate are ignored.
    void preallocate(std::uint64_t bytes);
    // preallocate() of exactly the file as HDF5 has laid it out so far (its
    // end of allocated space, which covers datasets allocated early): call
    // it once every object is created, before close_metadata(). Nothing is
    // reserved past the end, so close() has nothing to give back.
    void preallocate_layout();
    // Closes (and so flushes) the file; then, when `fsync`, fsyncs it.
    void close(bool fsync);
    // With early writeback on, write_raw() tells the kernel to start writing
    // out the file's dirty pages every `kWritebackBytes` of data
    // (sync_file_range, not waiting), so the disk works while later blocks
    // are written and the final fsync waits for the tail only. Errors
    // surface in that fsync.
    void set_early_writeback(bool on) noexcept { early_writeback_ = on; }
    static constexpr std::uint64_t kWritebackBytes = std::uint64_t{8} << 20;
    void rename_to(const std::filesystem::path& final_path);

    // Raw mode, for datasets whose storage HDF5 allocated at creation
    // (contiguous layout, H5D_ALLOC_TIME_EARLY, fill never): their bytes
    // are then written at their offsets (H5Dget_offset) without HDF5.
    // close_metadata() closes the file in HDF5, which writes its metadata,
    // and opens a descriptor of our own; write_raw() and finish_raw() use
    // only that descriptor and no HDF5, so after close_metadata() this
    // object may move to another thread (one at a time). Each throws
    // StoreError; a failed write_raw() leaves the file to the destructor.
    void close_metadata();
    // Writes all of `bytes` at `offset` (pwrite), starting writeback every
    // kWritebackBytes when early writeback is on.
    void write_raw(std::uint64_t offset, const void* data, std::size_t bytes);
    // fsyncs (when asked) and closes the descriptor.
    void finish_raw(bool fsync);

    // Direct I/O for raw data (O_DIRECT: from the caller's memory to the
    // disk, no page cache), if the constructor asked for it and the file
    // system takes it (EINVAL leaves it false: callers write buffered).
    bool direct_io() const noexcept { return direct_fd_ >= 0; }
    // Offset, address and size must be multiples of kDirectAlign.
    void write_direct(std::uint64_t offset, const void* data, std::size_t bytes);
    static constexpr std::uint64_t kDirectAlign = 4096;

  private:
    // After HDF5 closed the file: opens it for writing and gives back the
    // preallocated blocks past its end, if there are any.
    int reopen_after_close(const Site& site);

    std::filesystem::path path_;
    File file_;
    std::uint64_t preallocated_ = 0;  // bytes reserved by preallocate()
    bool renamed_ = false;
    bool early_writeback_ = false;
    std::uint64_t unsubmitted_ = 0;
    int fd_ = -1;      // the file's descriptor in HDF5's sec2 driver, while open
    int raw_fd_ = -1;  // our own descriptor, in raw mode
    bool direct_requested_ = false;
    int direct_fd_ = -1;  // our own O_DIRECT descriptor, in raw mode, if asked and possible
};

// A file built in memory (core driver, no backing store) and written to disk
// as one image by save(): the views. Closing an in-memory file never does
// I/O, so no HDF5 call can fail on a full disk; every disk error comes from
// our own write(2)/close(2)/rename(2).
class MemoryFile {
  public:
    // `name` only labels the file in HDF5 messages.
    explicit MemoryFile(const std::filesystem::path& name);
    hid_t id() const noexcept { return file_.id(); }

    // Writes the image to "<target>.tmp" and renames it to `target`, without
    // fsync (views are rebuilt from the catalog after a crash). The temporary
    // file is removed on failure. The file is closed afterwards.
    // save(target) is save_image(target, image()).
    void save(const std::filesystem::path& target);
    // Flushes the file, returns its image, and closes it (no disk I/O).
    std::vector<std::byte> image();

  private:
    std::filesystem::path name_;
    File file_;
};

// The disk half of MemoryFile::save(): "<target>.tmp", then rename. Calls
// no HDF5, so any thread may run it.
void save_image(const std::filesystem::path& target, std::span<const std::byte> image);

// Writes `bytes` to `path` with open(2)/write(2)/close(2), checking each;
// removes the file and throws StoreError on failure.
void write_whole_file(const std::filesystem::path& path, std::span<const std::byte> bytes);

// "<path>.tmp"
std::filesystem::path tmp_path_for(const std::filesystem::path& path);

}  // namespace simsink::store::h5
