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
    bool fsync = true;  // false only in unit tests and benchmarks that say so
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
SegmentInfo write_segment(const std::filesystem::path& path, std::span<const StreamWrite> streams,
                          const SegmentOptions& options = {});

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
