#include "segment.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "simsink_config.h"
#if SIMSINK_HAVE_ISAL
#include <isa-l/crc.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "h5.hpp"

namespace simsink::store {
namespace {

constexpr std::uint64_t kCrcSlabBytes = std::uint64_t{16} << 20;

constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();

// A StreamWrite that passed validation, with what the write needs.
struct Planned {
    const StreamWrite* write = nullptr;
    std::string name;
    std::uint64_t rows = 0;
    std::uint64_t bytes = 0;    // of all its blocks
    std::vector<hsize_t> dims;  // of the dataset
};

std::string dataset_name(const StreamWrite& w) {
    return (w.kind == StreamKind::array ? "/a" : "/s") + std::to_string(w.stream_id);
}

// Segment datasets of arrays are named "/a<id>" and hold the whole array as
// their single row; stream datasets "/s<id>" have one row per index of their
// first dimension.
bool is_array_dataset(const std::string& name) {
    return name.starts_with("/a") || name.starts_with("a");
}

}  // namespace

// The same CRC-32 as zlib's crc32() (gzip's, reflected IEEE polynomial), so
// catalogs written with either stay valid. ISA-L's SIMD version ran at
// 22 GB/s where zlib's ran at 4 GB/s on the project's VMs; with zlib the
// checksum took 40% of the writer thread in W1 (docs/performance.md).
std::uint32_t crc_update(std::uint32_t crc, const void* data, std::size_t bytes) {
#if SIMSINK_HAVE_ISAL
    return crc32_gzip_refl(crc, static_cast<const unsigned char*>(data), bytes);
#else
    return static_cast<std::uint32_t>(
        crc32_z(crc, static_cast<const Bytef*>(data), static_cast<z_size_t>(bytes)));
#endif
}

namespace {

// Checks every StreamWrite against its blocks before the file is created, so
// that bad input never leaves a partial file behind.
std::vector<Planned> plan(const std::filesystem::path& path, std::span<const StreamWrite> streams) {
    std::vector<Planned> planned;
    std::set<std::string> names;
    for (const auto& w : streams) {
        Planned p;
        p.write = &w;
        p.name = dataset_name(w);
        h5::Site site{path, p.name};
        const std::size_t item = proto::itemsize(w.dtype);
        if (item == 0)
            h5::fail_input(site, "write",
                           "invalid dtype code " + std::to_string(static_cast<int>(w.dtype)));
        auto elements = proto::element_count(w.shape);
        if (!elements || *elements > kMaxU64 / item)
            h5::fail_input(site, "write", "shape is too large");
        const std::uint64_t row_bytes = *elements * item;

        for (std::size_t i = 0; i < w.blocks.size(); ++i) {
            const auto& b = w.blocks[i];
            if (row_bytes != 0 && b.rows > kMaxU64 / row_bytes)
                h5::fail_input(site, "write", "block " + std::to_string(i) + " is too large");
            if (b.bytes != b.rows * row_bytes)
                h5::fail_input(site, "write",
                               "block " + std::to_string(i) + " has " + std::to_string(b.bytes) +
                                   " bytes, expected " + std::to_string(b.rows) + " rows x " +
                                   std::to_string(row_bytes) + " bytes");
            if (b.bytes != 0 && b.data == nullptr)
                h5::fail_input(site, "write", "block " + std::to_string(i) + " has no data");
            if (b.rows > kMaxU64 - p.rows) h5::fail_input(site, "write", "too many rows");
            p.rows += b.rows;
        }
        if (p.rows == 0) continue;  // nothing to store: no dataset, no entry
        if (w.kind == StreamKind::array && p.rows != 1)
            h5::fail_input(site, "write",
                           "an array is written as one row, got " + std::to_string(p.rows));
        if (!names.insert(p.name).second)
            h5::fail_input(site, "write", "the stream appears twice in one segment");

        if (w.kind == StreamKind::stream) p.dims.push_back(p.rows);
        p.dims.insert(p.dims.end(), w.shape.begin(), w.shape.end());
        p.bytes = p.rows * row_bytes;
        planned.push_back(std::move(p));
    }
    return planned;
}

std::uintptr_t page_size() noexcept {
    static const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    return page;
}

// Maps the pages of [data, data + bytes) of a shared mapping at once
// (RowBlock::shared_mapping). Best effort: a page it does not map faults in.
void populate_mapping(const unsigned char* data, std::size_t bytes) noexcept {
    const std::uintptr_t page = page_size();
    const auto begin = reinterpret_cast<std::uintptr_t>(data) & ~(page - 1);
    const auto end = reinterpret_cast<std::uintptr_t>(data) + bytes;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ);
}

// Drops the page-table entries of the whole pages inside [data, data +
// bytes) of a shared mapping (RowBlock::shared_mapping). Best
// effort: the pages go at the latest when the block's owner lets go.
void drop_mapping(const unsigned char* data, std::size_t bytes) noexcept {
    const std::uintptr_t page = page_size();
    const auto begin = (reinterpret_cast<std::uintptr_t>(data) + page - 1) & ~(page - 1);
    const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(page - 1);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// Hands the bytes of `p`'s blocks, in row order, to `sink(data, n)` at most
// `piece` bytes at a time, each piece checksummed just before, while it is
// in the CPU cache. A shared-memory block is mapped before its first piece
// and its mapping dropped after its last: here, on a segment writer and
// before the fsync, rather than on the I/O thread when the block came in
// and on the writer thread after the commit (docs/performance.md, sixth
// round). Returns the crc32 of all the bytes.
template <class Sink>
std::uint32_t checksum_pieces(const Planned& p, std::size_t piece, Sink&& sink) {
    std::uint32_t crc = crc_update(0, nullptr, 0);
    for (const auto& b : p.write->blocks) {
        const auto* data = static_cast<const unsigned char*>(b.data);
        if (b.shared_mapping) populate_mapping(data, b.bytes);
        for (std::size_t done = 0; done < b.bytes;) {
            const std::size_t n = std::min<std::uint64_t>(b.bytes - done, piece);
            crc = crc_update(crc, data + done, n);
            sink(data + done, n);
            done += n;
        }
        if (b.shared_mapping) drop_mapping(data, b.bytes);
    }
    return crc;
}

// Checksummed and copied into the bounce buffer this much at a time, so
// that the copy reads what the checksum has just brought into the cache.
constexpr std::size_t kCopyPiece = std::size_t{256} << 10;

// An aligned buffer for direct I/O, taken from a small pool that keeps
// memory already touched (fresh memory is slow on VMs: docs/performance.md),
// and given back when it goes.
class BounceBuffer {
  public:
    static constexpr std::size_t kBytes = std::size_t{8} << 20;
    BounceBuffer() {
        {
            std::lock_guard lock(pool_mutex());
            auto& pool = free_buffers();
            if (!pool.empty()) {
                data_ = pool.back();
                pool.pop_back();
            }
        }
        if (!data_) {
            data_ =
                static_cast<unsigned char*>(std::aligned_alloc(h5::TmpFile::kDirectAlign, kBytes));
            if (!data_) throw std::bad_alloc();
        }
    }
    ~BounceBuffer() {
        std::lock_guard lock(pool_mutex());
        auto& pool = free_buffers();
        if (pool.size() < kPoolMax)
            pool.push_back(data_);
        else
            std::free(data_);
    }
    BounceBuffer(const BounceBuffer&) = delete;
    BounceBuffer& operator=(const BounceBuffer&) = delete;
    unsigned char* data() const noexcept { return data_; }

  private:
    static constexpr std::size_t kPoolMax = 8;  // 64 MiB kept at most
    static std::mutex& pool_mutex() {
        static std::mutex m;
        return m;
    }
    static std::vector<unsigned char*>& free_buffers() {
        static std::vector<unsigned char*> v;
        return v;
    }
    unsigned char* data_ = nullptr;
};

// Creates the dataset of `p` with its storage allocated now, as one
// contiguous extent, and returns where in the file that extent starts (0
// when the dataset holds no bytes).
std::uint64_t create_dataset(h5::TmpFile& tmp, const Planned& p) {
    const hid_t file = tmp.id();
    const StreamWrite& w = *p.write;
    h5::Site site{tmp.path(), p.name};
    h5::Type type = h5::dtype_type(w.dtype);
    h5::Space space = h5::make_space(p.dims, site);
    h5::PropList dcpl{h5::check(site, "create a creation list for",
                                [] { return H5Pcreate(H5P_DATASET_CREATE); })};
    h5::check(site, "set the layout of", [&] { return H5Pset_layout(dcpl.id(), H5D_CONTIGUOUS); });
    h5::check(site, "set the allocation time of",
              [&] { return H5Pset_alloc_time(dcpl.id(), H5D_ALLOC_TIME_EARLY); });
    // Every element is written by write_data(): filling first would write it twice.
    h5::check(site, "set the fill time of",
              [&] { return H5Pset_fill_time(dcpl.id(), H5D_FILL_TIME_NEVER); });
    h5::Dataset dataset{h5::check(site, "create", [&] {
        return H5Dcreate2(file, p.name.c_str(), type.id(), space.id(), H5P_DEFAULT, dcpl.id(),
                          H5P_DEFAULT);
    })};
    std::uint64_t offset = 0;
    if (p.bytes > 0) {
        const haddr_t at = H5Dget_offset(dataset.id());
        if (at == HADDR_UNDEF) h5::fail(site, "get the storage offset of");
        offset = at;
    }
    h5::check(site, "close", [&] { return H5Dclose(dataset.release()); });
    return offset;
}

// A segment between its two steps: HDF5 has written the file's structure
// (the constructor, on the writer thread), the raw data is still to come
// (write_data(), on any one thread, without HDF5). The destructor removes
// the temporary file unless publish() renamed it.
class PendingSegment {
  public:
    PendingSegment(const std::filesystem::path& path, std::span<const StreamWrite> streams,
                   const SegmentOptions& options)
        : path_(path), options_(options) {
        planned_ = plan(path, streams);
        file_ = std::make_unique<h5::TmpFile>(h5::tmp_path_for(path), options.direct_io);
        file_->set_early_writeback(options.fsync);
        for (const auto& p : planned_) offsets_.push_back(create_dataset(*file_, p));
        // The datasets' storage is allocated (early), nothing is written
        // yet: reserve exactly the file's blocks, so that a full disk shows
        // here and nothing past the end has to be freed later.
        file_->preallocate_layout();
        file_->close_metadata();
    }

    // Writes every block at its place in its dataset's extent, in row order,
    // and the crc32 of each dataset; then fsyncs (and drops the pages) as
    // the options say.
    void write_data() {
        for (std::size_t i = 0; i < planned_.size(); ++i) {
            const Planned& p = planned_[i];
            if (file_->direct_io() && p.bytes >= h5::TmpFile::kAlignThreshold &&
                offsets_[i] % h5::TmpFile::kDirectAlign == 0) {
                write_direct(p, offsets_[i]);
                continue;
            }
            std::uint64_t at = offsets_[i];
            const std::uint32_t crc =
                checksum_pieces(p, h5::TmpFile::kWritebackBytes, [&](const unsigned char* d,
                                                                     std::size_t n) {
                    file_->write_raw(at, d, n);
                    at += n;
                });
            info_.datasets.push_back(SegmentDataset{p.write->stream_id, p.name, p.rows, crc});
        }
        file_->finish_raw(options_.fsync);
        if (options_.fsync && options_.drop_cache) drop_cached_pages(file_->path());
        std::error_code ec;
        info_.bytes = std::filesystem::file_size(file_->path(), ec);
        if (ec) h5::fail_errno(h5::Site{file_->path()}, "get the size of", ec.value());
    }

    // One dataset with direct I/O: its blocks are checksummed and copied
    // into an aligned bounce buffer, piece by piece while the piece is in
    // the CPU cache; each full buffer goes to disk with O_DIRECT. The last
    // whole blocks of 4 KiB do too; the bytes after them are written
    // buffered (and reach the disk with the fsync).
    void write_direct(const Planned& p, std::uint64_t at) {
        // Two buffers: one is written (on a thread of its own) while the
        // other is filled, so that the disk does not wait for the copies.
        BounceBuffer bounce[2];
        int cur = 0;
        std::size_t fill = 0;
        std::future<void> writing;  // after the buffers: waited for before they go
        auto write_full = [&] {
            if (writing.valid()) writing.get();  // rethrows the write's error
            writing = std::async(std::launch::async, [this, at, buf = bounce[cur].data(), fill] {
                file_->write_direct(at, buf, fill);
            });
            at += fill;
            cur ^= 1;
            fill = 0;
        };
        const std::uint32_t crc =
            checksum_pieces(p, kCopyPiece, [&](const unsigned char* d, std::size_t n) {
                while (n > 0) {  // a piece may straddle the end of the buffer
                    const std::size_t k = std::min(n, BounceBuffer::kBytes - fill);
                    std::memcpy(bounce[cur].data() + fill, d, k);
                    fill += k;
                    d += k;
                    n -= k;
                    if (fill == BounceBuffer::kBytes) write_full();
                }
            });
        if (writing.valid()) writing.get();
        unsigned char* buf = bounce[cur].data();
        const std::size_t whole = fill / h5::TmpFile::kDirectAlign * h5::TmpFile::kDirectAlign;
        if (whole > 0) file_->write_direct(at, buf, whole);
        if (fill > whole) file_->write_raw(at + whole, buf + whole, fill - whole);
        info_.datasets.push_back(SegmentDataset{p.write->stream_id, p.name, p.rows, crc});
    }

    SegmentInfo publish() {
        file_->rename_to(path_);
        return std::move(info_);
    }

    const std::filesystem::path& path() const noexcept { return path_; }

  private:
    std::filesystem::path path_;
    SegmentOptions options_;
    std::vector<Planned> planned_;
    std::vector<std::uint64_t> offsets_;  // of each planned dataset's extent
    std::unique_ptr<h5::TmpFile> file_;
    SegmentInfo info_;
};

}  // namespace

SegmentInfo write_segment(const std::filesystem::path& path, std::span<const StreamWrite> streams,
                          const SegmentOptions& options) {
    SegmentJob job{path, {streams.begin(), streams.end()}};
    SegmentOptions one = options;
    one.threads = 1;
    return std::move(write_segments(std::span<const SegmentJob>(&job, 1), one).front());
}

std::vector<SegmentInfo> write_segments(std::span<const SegmentJob> jobs,
                                        const SegmentOptions& options) {
    SegmentBatch batch(jobs, options);
    // The calling thread is one of options.threads: it works in finish().
    batch.start(std::max(1u, options.threads) - 1);
    return batch.finish();
}

struct SegmentBatch::State {
    SegmentOptions options;
    std::vector<std::unique_ptr<PendingSegment>> pending;
    std::vector<std::exception_ptr> errors;  // of each pending segment's raw data
    std::atomic<std::size_t> next{0};        // the next segment nobody has taken
    std::vector<std::jthread> helpers;
    bool finished = false;

    // Takes the next segment until none is left.
    void work() noexcept {
        for (std::size_t i; (i = next.fetch_add(1)) < pending.size();) {
            try {
                pending[i]->write_data();
            } catch (...) {
                errors[i] = std::current_exception();
            }
        }
    }
};

SegmentBatch::SegmentBatch(std::span<const SegmentJob> jobs, const SegmentOptions& options)
    : state_(std::make_unique<State>()) {
    h5::init();
    state_->options = options;
    state_->pending.reserve(jobs.size());
    for (const auto& job : jobs)
        state_->pending.push_back(std::make_unique<PendingSegment>(job.path, job.streams, options));
    state_->errors.resize(state_->pending.size());
}

SegmentBatch::~SegmentBatch() {
    // The helpers may still be writing into the temporary files, which the
    // pending segments remove once they are gone.
    state_->helpers.clear();
}

void SegmentBatch::start(unsigned helpers) {
    State& s = *state_;
    const std::size_t wanted = std::min<std::size_t>(helpers, s.pending.size());
    for (std::size_t t = 0; t < wanted; ++t) {
        try {
            s.helpers.emplace_back([&s] {
                pthread_setname_np(pthread_self(), "segment-writer");
                s.work();
            });
        } catch (const std::system_error&) {
            break;  // no thread to be had: finish() does the work
        }
    }
}

std::vector<SegmentInfo> SegmentBatch::finish() {
    State& s = *state_;
    if (s.finished) throw std::logic_error("SegmentBatch::finish() called twice");
    s.finished = true;
    s.work();
    s.helpers.clear();  // joins them
    for (const auto& e : s.errors)
        if (e) std::rethrow_exception(e);

    std::vector<SegmentInfo> infos;
    std::vector<std::filesystem::path> renamed;
    try {
        std::set<std::filesystem::path> dirs;
        for (auto& p : s.pending) {
            infos.push_back(p->publish());
            renamed.push_back(p->path());
            dirs.insert(p->path().parent_path());
        }
        if (s.options.fsync)
            for (const auto& d : dirs) fsync_directory(d);
    } catch (...) {
        // A rename may not be durable; the contract is that a failed write
        // leaves none of the paths.
        std::error_code ec;
        for (const auto& r : renamed) std::filesystem::remove(r, ec);
        throw;
    }
    return infos;
}

std::vector<SegmentPart> split_streams(std::span<const StreamWrite> streams, unsigned parts,
                                       std::uint64_t min_part_bytes) {
    std::uint64_t total = 0;
    for (const auto& w : streams)
        for (const auto& b : w.blocks) total += b.bytes;
    std::uint64_t n = std::max(1u, parts);
    if (min_part_bytes > 0) n = std::min(n, total / min_part_bytes);
    if (n <= 1) {
        SegmentPart all{{streams.begin(), streams.end()},
                        std::vector<std::uint64_t>(streams.size(), 0)};
        return {std::move(all)};
    }
    const std::uint64_t target = (total + n - 1) / n;
    std::vector<SegmentPart> out(1);
    std::uint64_t in_part = 0;
    for (const auto& w : streams) {
        std::uint64_t rows_before = 0;
        bool open = false;  // does out.back() have an entry for w yet?
        auto start_entry = [&] {
            out.back().streams.push_back(StreamWrite{w.stream_id, w.kind, w.dtype, w.shape, {}});
            out.back().rows_before.push_back(rows_before);
            open = true;
        };
        if (w.blocks.empty()) start_entry();
        for (const auto& b : w.blocks) {
            if (in_part >= target && out.size() < n) {
                out.emplace_back();
                in_part = 0;
                open = false;
            }
            if (!open) start_entry();
            out.back().streams.back().blocks.push_back(b);
            rows_before += b.rows;
            in_part += b.bytes;
        }
    }
    return out;
}

namespace {

// One dataset of a segment opened for reading: its file type, item size and
// dimensions, for the readers below.
struct SegmentRead {
    h5::Site site;
    h5::File file;
    h5::Dataset dataset;
    h5::Type type;
    std::size_t item = 0;
    std::vector<hsize_t> dims;

    SegmentRead(const std::filesystem::path& path, const std::string& name)
        : site{path, name}, file{(h5::init(), h5::open_read_only(path))} {
        dataset = h5::Dataset{h5::check(
            site, "open", [&] { return H5Dopen2(file.id(), name.c_str(), H5P_DEFAULT); })};
        type =
            h5::Type{h5::check(site, "get the type of", [&] { return H5Dget_type(dataset.id()); })};
        item = H5Tget_size(type.id());
        if (item == 0) h5::fail(site, "get the type size of");
        dims = h5::dataset_dims(dataset.id(), site);
    }
};

}  // namespace

void read_segment_rows(const std::filesystem::path& path, const std::string& dataset,
                       std::uint64_t first_row, std::uint64_t rows, void* out,
                       std::size_t out_bytes) {
    SegmentRead r(path, dataset);
    const h5::Site& site = r.site;
    const std::size_t item = r.item;
    const std::vector<hsize_t>& dims = r.dims;

    const bool whole = is_array_dataset(dataset) || dims.empty();
    std::uint64_t total_rows = whole ? 1 : dims[0];
    std::uint64_t row_elements = 1;
    for (std::size_t k = whole ? 0 : 1; k < dims.size(); ++k) row_elements *= dims[k];

    if (first_row > total_rows || rows > total_rows - first_row)
        h5::fail_input(site, "read",
                       "rows [" + std::to_string(first_row) + ", " +
                           std::to_string(first_row + rows) + ") are outside its " +
                           std::to_string(total_rows) + " rows");
    const std::uint64_t row_bytes = row_elements * item;
    if (row_bytes != 0 && rows > out_bytes / row_bytes)
        h5::fail_input(site, "read",
                       std::to_string(rows) + " rows of " + std::to_string(row_bytes) +
                           " bytes do not fit in " + std::to_string(out_bytes) + " bytes");
    if (rows == 0 || row_bytes == 0) return;

    std::vector<hsize_t> start(dims.size(), 0), count = dims;
    if (!whole) {
        start[0] = first_row;
        count[0] = rows;
    }
    h5::read_slab(r.dataset.id(), r.type.id(), start, count, out, site);
}

std::uint32_t dataset_crc32(const std::filesystem::path& path, const std::string& dataset) {
    SegmentRead r(path, dataset);
    const h5::Site& site = r.site;
    const std::size_t item = r.item;
    const std::vector<hsize_t>& dims = r.dims;

    hsize_t total = 1;
    for (auto n : dims) total *= n;
    const hsize_t max_elements = std::max<hsize_t>(1, kCrcSlabBytes / item);
    std::vector<unsigned char> buf(std::min(total, max_elements) * item);
    std::uint32_t crc = crc_update(0, nullptr, 0);
    h5::for_each_slab(dims, max_elements, [&](auto start, auto count) {
        hsize_t n = 1;
        for (auto c : count) n *= c;
        h5::read_slab(r.dataset.id(), r.type.id(), start, count, buf.data(), site);
        crc = crc_update(crc, buf.data(), n * item);
    });
    return crc;
}

void fsync_directory(const std::filesystem::path& dir) {
    const std::filesystem::path d = dir.empty() ? std::filesystem::path(".") : dir;
    h5::Site site{d};
    int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) h5::fail_errno(site, "open directory", errno);
    if (::fsync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        h5::fail_errno(site, "fsync directory", e);
    }
    if (::close(fd) != 0) h5::fail_errno(site, "close directory", errno);
}

void drop_cached_pages(const std::filesystem::path& file) noexcept {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
}

}  // namespace simsink::store
