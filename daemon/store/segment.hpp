// Segment files: immutable HDF5 files, each written once by the writer thread
// and never modified. See docs/storage.md for the layout.
//
// Thread safety: HDF5 (Debian's serial build) is not thread-safe; only the
// daemon's writer thread may call these functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "records.hpp"
#include "store_error.hpp"

namespace simsink::store {

// Rows of one stream, in row order, as received (not copied).
struct RowBlock {
    const void* data = nullptr;
    std::size_t bytes = 0;
    std::uint64_t rows = 0;
    // `data` lies in a shared file mapping (a client's arena): the writer
    // maps its pages in one call before it reads them (MADV_POPULATE_READ,
    // cheaper than a fault per 16 pages), and drops their page-table entries
    // once the block is written: the bytes stay in the file, a later read
    // faults them back in. Only whole pages inside the block are dropped.
    // Never set it for private memory, where MADV_DONTNEED discards the
    // contents.
    bool shared_mapping = false;
};

// All rows of one stream that go into one segment. For an array, `shape` is
// the array's full shape, `blocks` holds exactly one block of one "row"
// (the whole array).
struct StreamWrite {
    std::int64_t stream_id = 0;
    StreamKind kind = StreamKind::stream;
    DType dtype = DType::float64;
    Shape shape;  // row shape (stream) or full shape (array)
    std::vector<RowBlock> blocks;
};

struct SegmentDataset {
    std::int64_t stream_id = 0;
    std::string dataset;      // "/s<stream_id>" for a stream, "/a<stream_id>" for an array
    std::uint64_t rows = 0;   // rows written (array: 1)
    std::uint32_t crc32 = 0;  // zlib crc32 of the raw bytes in row order
};

struct SegmentInfo {
    std::uint64_t bytes = 0;               // file size
    std::vector<SegmentDataset> datasets;  // in the order of the input
};

struct SegmentOptions {
    bool fsync = true;     // false only in unit tests and benchmarks that say so
    unsigned threads = 1;  // write_segments(): raw data of this many segments at once
    // With fsync: drop each segment's pages from the page cache once it is
    // fsynced (drop_cached_pages), on the thread that wrote it, so that
    // several segments are dropped at once too.
    bool drop_cache = false;
    // Write the raw data of large datasets with O_DIRECT, through an aligned
    // bounce buffer, instead of through the page cache (docs/storage.md).
    // Where the file system refuses O_DIRECT, writes are buffered.
    bool direct_io = false;
};

// Writes `path` atomically: creates "<path>.tmp", writes one contiguous
// dataset per StreamWrite (shape (rows, *row_shape) for a stream, the array
// shape for an array), closes it, fsyncs it, renames it to `path`, fsyncs the
// directory. On any failure removes the temporary file and throws StoreError;
// `path` then does not exist. A failed fsync is reported, never retried.
// Every block is checked first (bytes == rows x row bytes, data present, an
// array exactly one row, no stream twice): bad input throws before any file
// is created. A StreamWrite without rows is skipped: no dataset, and no entry
// in SegmentInfo::datasets.
//
// How: HDF5 creates the file with every dataset's storage allocated (one
// contiguous extent each) and writes its metadata; the raw bytes then go to
// those extents with pwrite(2), not through HDF5. That second part needs no
// HDF5, which is not thread-safe, so write_segments() runs it for several
// segments on several threads (ext4 serialises buffered writes to one file,
// not to several).
SegmentInfo write_segment(const std::filesystem::path& path, std::span<const StreamWrite> streams,
                          const SegmentOptions& options = {});

// One segment of write_segments().
struct SegmentJob {
    std::filesystem::path path;
    std::vector<StreamWrite> streams;
};

// Writes several segments as write_segment() does each, the raw data of up
// to options.threads of them at once (the calling thread is one of them),
// then renames them all and fsyncs each directory once. All or nothing: on
// failure it throws the first error and none of the paths exists. Returns
// the infos in the order of `jobs`. The same as SegmentBatch(jobs,
// options).finish().
std::vector<SegmentInfo> write_segments(std::span<const SegmentJob> jobs,
                                        const SegmentOptions& options = {});

// write_segments() in two calls, so that the caller can do other work while
// the raw data goes to disk (the committer records the previous commit):
//
//   SegmentBatch batch(jobs, options);  // HDF5: creates the files' structure
//   batch.start(n);                     // n helper threads write the raw data
//   ...                                 // anything that does not touch `jobs`
//   auto infos = batch.finish();        // helps, waits, renames, fsyncs dirs
//
// The constructor and finish() call HDF5 and so belong to the writer thread;
// the helpers call none. `jobs` and the memory its blocks point to must stay
// valid until finish() returns or the batch is destroyed. All or nothing, as
// write_segments(): finish() throws the first error, and then, as when a
// batch is destroyed unfinished (its helpers are waited for), none of the
// paths exists.
class SegmentBatch {
  public:
    SegmentBatch(std::span<const SegmentJob> jobs, const SegmentOptions& options);
    ~SegmentBatch();
    SegmentBatch(const SegmentBatch&) = delete;
    SegmentBatch& operator=(const SegmentBatch&) = delete;

    // Starts up to `helpers` threads (no more than there are segments) that
    // write the raw data; returns at once. Called at most once. Fewer
    // threads when the system has none to give; finish() does the rest.
    void start(unsigned helpers);
    // Writes, on the calling thread, whatever segment no helper has taken
    // yet; joins the helpers; then renames every segment into place and
    // fsyncs each directory once (with options.fsync). Called at most once.
    std::vector<SegmentInfo> finish();

  private:
    struct State;
    std::unique_ptr<State> state_;
};

// One part of split_streams(): stream writes for one segment, and for each
// the number of rows of its stream that earlier parts hold.
struct SegmentPart {
    std::vector<StreamWrite> streams;
    std::vector<std::uint64_t> rows_before;
};

// Splits the stream writes of one commit into at most `parts` parts of
// about equal bytes, none smaller than `min_part_bytes` (fewer parts when
// there is not enough data), to be written as segments on several threads.
// Blocks are never split; a stream's blocks may continue in the next part,
// in order. Parts keep the order of `streams`; with one part it is `streams`
// as given.
std::vector<SegmentPart> split_streams(std::span<const StreamWrite> streams, unsigned parts,
                                       std::uint64_t min_part_bytes);

// Reads `rows` rows starting at `first_row` of a segment dataset into `out`
// (which must hold rows x row bytes). Used by compaction and verify. The bytes
// are the stored ones (little-endian, as on the wire). An array dataset
// ("/a<id>") is one row: the whole array.
void read_segment_rows(const std::filesystem::path& path, const std::string& dataset,
                       std::uint64_t first_row, std::uint64_t rows, void* out,
                       std::size_t out_bytes);

// Recomputes the crc32 of a whole segment dataset (reading it in slabs of at
// most 16 MiB). Throws StoreError if the file or dataset cannot be read.
std::uint32_t dataset_crc32(const std::filesystem::path& path, const std::string& dataset);

// The checksum of segment data stored in the catalog: zlib-compatible CRC-32,
// chained over the bytes in row order (start with crc_update(0, nullptr, 0)).
std::uint32_t crc_update(std::uint32_t crc, const void* data, std::size_t bytes);

// fsyncs a directory (after a rename or unlink in it).
void fsync_directory(const std::filesystem::path& dir);

// Asks the kernel to drop a written, fsynced file's pages from the page cache
// (POSIX_FADV_DONTNEED: clean pages go at once; nothing is lost, a later read
// comes from disk). A committed segment is written once and read later, if
// at all: keeping it cached only pushes out other data, and grows the page
// cache into memory the machine has not touched yet, which is slow on VMs
// (docs/performance.md, "Fourth round"). Best effort: errors are ignored.
void drop_cached_pages(const std::filesystem::path& file) noexcept;

}  // namespace simsink::store
