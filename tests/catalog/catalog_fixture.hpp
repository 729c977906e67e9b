// Shared pieces of the catalog tests: a temporary directory and builders
// for the records a commit carries.
#pragma once

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "catalog.hpp"

namespace simsink::catalog::test {

// A fresh directory under the system temp dir, removed with its contents.
struct TempDir {
    std::filesystem::path path;

    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "simsink-catalog-XXXXXX").string();
        REQUIRE(mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::filesystem::path catalog() const { return path / "catalog.sqlite"; }
};

inline RunOpen run_open(std::int64_t run_id, const std::string& campaign,
                        Json params = Json::object(), const std::string& client = "c0ffee",
                        std::uint32_t handle = 1) {
    RunOpen o;
    o.run_id = run_id;
    o.campaign = campaign;
    o.params = std::move(params);
    o.host = "node" + std::to_string(run_id);
    o.pid = 1000 + run_id;
    o.started = 1.7e9 + static_cast<double>(run_id);
    o.client_id = client;
    o.handle = handle;
    return o;
}

inline StreamDeclare stream_declare(std::int64_t stream_id, std::int64_t run_id,
                                    const std::string& key, const std::string& client = "c0ffee",
                                    std::uint32_t handle = 1) {
    StreamDeclare d;
    d.stream_id = stream_id;
    d.run_id = run_id;
    d.key = key;
    d.kind = StreamKind::stream;
    d.dtype = DType::float64;
    d.shape = {100};
    d.client_id = client;
    d.handle = handle;
    return d;
}

inline SegmentExtent extent(std::int64_t stream_id, std::uint64_t dst_row, std::uint64_t rows,
                            std::uint64_t src_row = 0) {
    SegmentExtent e;
    e.stream_id = stream_id;
    e.dataset = "/s" + std::to_string(stream_id);
    e.src_row = src_row;
    e.dst_row = dst_row;
    e.rows = rows;
    e.crc32 = 0xdeadbeef;
    return e;
}

inline SegmentRecord segment(std::int64_t id, const std::string& campaign,
                             std::vector<SegmentExtent> extents) {
    SegmentRecord s;
    s.segment_id = id;
    s.campaign = campaign;
    s.file = campaign + "/seg-" + std::to_string(id) + ".h5";
    s.bytes = 4096 * static_cast<std::uint64_t>(id);
    s.extents = std::move(extents);
    return s;
}

inline RunClose run_close(std::int64_t run_id, const std::string& status,
                          Json results = Json::object(), const std::string& reason = {}) {
    RunClose c;
    c.run_id = run_id;
    c.status = status;
    c.results = std::move(results);
    c.reason = reason;
    c.ended = 1.8e9 + static_cast<double>(run_id);
    return c;
}

inline ClientProgress progress(const std::string& client, std::uint64_t seq,
                               double last_seen = 1.9e9) {
    ClientProgress p;
    p.client_id = client;
    p.committed_seq = seq;
    p.host = "worker";
    p.pid = 42;
    p.last_seen = last_seen;
    return p;
}

// Same JSON value and the same JSON kind (an integer stays an integer, a
// float stays a float even when it is whole). Signed and unsigned integers
// are one kind: JSON itself does not tell them apart.
inline bool same_typed(const Json& a, const Json& b) {
    auto kind = [](const Json& j) {
        return j.is_number_unsigned() ? Json::value_t::number_integer : j.type();
    };
    if (kind(a) != kind(b)) return false;
    if (a.is_array()) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (!same_typed(a[i], b[i])) return false;
        return true;
    }
    if (a.is_object()) {
        if (a.size() != b.size()) return false;
        for (const auto& [k, v] : a.items())
            if (!b.contains(k) || !same_typed(v, b.at(k))) return false;
        return true;
    }
    return a == b;
}

}  // namespace simsink::catalog::test
