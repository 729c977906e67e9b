#include "writer/compactor.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "release.hpp"
#include "segment.hpp"
#include "unix_time.hpp"
#include "writer/failpoint.hpp"

namespace simsink::daemon {

namespace fs = std::filesystem;

Compactor::Compactor(const Config& config, catalog::Catalog& catalog, std::int64_t& next_segment_id,
                     ViewWriter write_views)
    : config_(config),
      catalog_(catalog),
      next_segment_id_(next_segment_id),
      write_views_(std::move(write_views)) {}

Json Compactor::compact(const std::string& campaign) {
    std::vector<std::string> campaigns =
        campaign.empty() ? catalog_.campaigns() : std::vector<std::string>{campaign};
    std::size_t before = catalog_.segments(campaign).size();
    std::size_t merged = 0;
    for (const auto& c : campaigns)
        for (std::size_t n; (n = merge_once(c)) > 0;) merged += n;
    return Json{{"merged", merged},
                {"segments_before", before},
                {"segments_after", catalog_.segments(campaign).size()}};
}

void Compactor::maybe_compact(double now) {
    constexpr double kCheckEvery = 5.0;
    if (now - last_check_ < kCheckEvery) return;
    last_check_ = now;
    for (const auto& c : catalog_.campaigns()) {
        std::size_t small = 0;
        for (const auto& s : catalog_.segments(c)) small += s.bytes < config_.compact_small_bytes;
        if (small > config_.compact_min_segments) merge_once(c);
    }
}

std::size_t Compactor::merge_once(const std::string& campaign) {
    // The oldest small segments, up to compact_max_bytes of input.
    std::vector<catalog::SegmentSummary> pick;
    std::uint64_t total = 0;
    for (const auto& s : catalog_.segments(campaign)) {
        if (s.bytes >= config_.compact_small_bytes) continue;
        if (!pick.empty() && total + s.bytes > config_.compact_max_bytes) break;
        pick.push_back(s);
        total += s.bytes;
    }
    if (pick.size() < 2) return 0;

    // Gather every extent, grouped by stream, in stream-row order.
    struct Piece {
        std::string file;
        catalog::SegmentExtent extent;
    };
    std::map<std::int64_t, std::vector<Piece>> by_stream;
    for (const auto& s : pick)
        for (auto& e : catalog_.segment_extents(s.segment_id))
            by_stream[e.stream_id].push_back({s.file, std::move(e)});

    std::map<std::int64_t, catalog::LoadedStream> streams;
    for (auto& l : catalog_.load().streams)
        if (by_stream.count(l.stream_id)) streams.emplace(l.stream_id, std::move(l));

    std::vector<std::vector<std::byte>> buffers;  // keeps the rows read until written
    std::vector<store::StreamWrite> writes;
    catalog::SegmentRecord merged;
    merged.segment_id = next_segment_id_++;
    merged.campaign = campaign;
    merged.file = campaign + "/seg-" + std::to_string(merged.segment_id) + ".h5";
    std::map<std::int64_t, std::vector<catalog::SegmentExtent>> new_extents;
    for (auto& [id, pieces] : by_stream) {
        const auto& st = streams.at(id);
        std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) {
            return a.extent.dst_row < b.extent.dst_row;
        });
        store::StreamWrite w;
        w.stream_id = id;
        w.kind = st.kind;
        w.dtype = st.dtype;
        w.shape = st.shape;
        const std::uint64_t row_bytes =
            proto::element_count(st.shape).value_or(0) * proto::itemsize(st.dtype);
        std::uint64_t src = 0;
        for (const auto& p : pieces) {
            auto& buf = buffers.emplace_back(p.extent.rows * row_bytes);
            store::read_segment_rows(config_.data_dir / p.file, p.extent.dataset, p.extent.src_row,
                                     p.extent.rows, buf.data(), buf.size());
            w.blocks.push_back({buf.data(), buf.size(), p.extent.rows});
            auto& ext = new_extents[id];
            // Adjacent stream rows become one extent.
            if (!ext.empty() && ext.back().dst_row + ext.back().rows == p.extent.dst_row)
                ext.back().rows += p.extent.rows;
            else
                ext.push_back({id, "", src, p.extent.dst_row, p.extent.rows, 0});
            src += p.extent.rows;
        }
        writes.push_back(std::move(w));
    }
    auto info = store::write_segment(
        config_.data_dir / merged.file, writes,
        store::SegmentOptions{.fsync = config_.fsync,
                              .drop_cache = config_.drop_cache,
                              .direct_io = config_.direct_io});
    failpoint("compact-written");
    merged.bytes = info.bytes;
    for (const auto& d : info.datasets)
        for (auto e : new_extents.at(d.stream_id)) {
            e.dataset = d.dataset;
            e.crc32 = d.crc32;
            merged.extents.push_back(std::move(e));
        }
    std::vector<std::int64_t> replaced;
    for (const auto& s : pick) replaced.push_back(s.segment_id);
    try {
        catalog_.replace_segments(replaced, merged);
    } catch (...) {
        std::error_code ec;
        fs::remove(config_.data_dir / merged.file, ec);
        throw;
    }
    failpoint("compact-committed");
    std::set<std::int64_t> runs;
    for (const auto& [id, st] : streams) runs.insert(st.run_id);
    write_views_(runs);
    for (const auto& s : pick) doomed_.emplace_back(unix_now() + config_.compact_grace, s.file);
    spdlog::info("compacted {} segments of campaign {} ({} bytes) into {}", pick.size(), campaign,
                 total, merged.file);
    return pick.size();
}

void Compactor::delete_expired(double now, bool all) {
    while (!doomed_.empty() && (all || doomed_.front().first <= now)) {
        // On the release thread: freeing a file's blocks can wait for the
        // disk (release.hpp), and the next commit must not.
        store::remove_later(config_.data_dir / doomed_.front().second);
        doomed_.pop_front();
    }
}

}  // namespace simsink::daemon
