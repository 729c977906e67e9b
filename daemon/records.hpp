// Plain values that cross module boundaries inside the daemon: the writer
// thread reads them from the catalog and hands them to the store, and builds
// them from the staging buffer for the catalog. No library headers here but
// the JSON type (params and attributes are JSON objects throughout).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtype.hpp"
#include "meta.hpp"

namespace simsink {

using proto::DType;
using proto::Json;
using proto::Shape;

enum class StreamKind { stream, array };

// One contiguous piece of a stream's rows stored in a segment file.
struct Extent {
    std::string file;           // segment file, relative to the data directory
                                // ("<campaign>/seg-<n>.h5")
    std::string dataset;        // dataset path inside the segment ("/s17")
    std::uint64_t src_row = 0;  // first row inside that dataset
    std::uint64_t dst_row = 0;  // first row of the stream it holds
    std::uint64_t rows = 0;
};

// Everything the view needs to know of one stream or array of a run.
struct StreamView {
    std::int64_t stream_id = 0;
    std::string key;  // "state/y"
    StreamKind kind = StreamKind::stream;
    DType dtype = DType::float64;
    Shape shape;                  // row shape (stream) or full shape (array)
    std::uint64_t rows = 0;       // committed rows (array: 1 once written)
    std::vector<Extent> extents;  // ordered by dst_row, covering [0, rows)
    Json attrs = Json::object();
};

// Everything the view needs to know of one run.
struct RunView {
    std::int64_t run_id = 0;
    std::string campaign;
    std::string status;  // running | finished | failed | lost
    std::string host;
    std::int64_t pid = 0;
    double started = 0;  // unix seconds
    double ended = 0;    // 0 while running
    std::string reason;  // for failed / lost
    Json params = Json::object();
    Json results = Json::object();
    Json attrs = Json::object();  // user attributes of the run itself
    std::vector<StreamView> streams;
};

}  // namespace simsink
