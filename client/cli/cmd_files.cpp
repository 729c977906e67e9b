// Commands over the files of a data directory: export, verify.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <thread>

#include "catalog.hpp"
#include "cli.hpp"
#include "segment.hpp"
#include "view.hpp"

namespace simsink::cli {

int cmd_export(Context& ctx, Args& args) {
    auto out = args.value("-o", "--output");
    bool quiet = args.flag("--quiet");
    auto pos = args.positionals(1, 1, "campaign");
    if (!out) throw UsageError("export needs -o FILE");
    const auto data_dir = ctx.resolve_data_dir();
    const bool tty = isatty(STDERR_FILENO);
    double last_pct = -1;
    store::export_campaign(data_dir, pos[0], *out, [&](std::uint64_t done, std::uint64_t total) {
        if (quiet || total == 0) return;
        double pct = 100.0 * static_cast<double>(done) / static_cast<double>(total);
        if (pct - last_pct < 1 && done != total) return;
        last_pct = pct;
        std::cerr << (tty ? "\r" : "") << "export " << pos[0] << ": " << format_bytes(done)
                  << " of " << format_bytes(total) << " (" << static_cast<int>(pct) << "%)"
                  << (tty ? "" : "\n") << std::flush;
    });
    if (!quiet) std::cerr << (tty ? "\n" : "") << "wrote " << *out << "\n";
    return 0;
}

int cmd_verify(Context& ctx, Args& args) {
    bool quick = args.flag("--quick");
    auto pos = args.positionals(0, 1, "campaign");
    const std::string campaign = pos.empty() ? "" : pos[0];
    const auto data_dir = ctx.resolve_data_dir();
    catalog::Catalog cat(data_dir / "catalog.sqlite", catalog::Catalog::Mode::read_only);
    std::size_t problems = 0, segments = 0, runs = 0, streams = 0;
    std::uint64_t rows = 0;
    auto problem = [&](const std::string& what) {
        ++problems;
        std::cout << "PROBLEM: " << what << "\n";
    };

    auto integrity = cat.integrity_check();
    if (integrity != "ok") problem("catalog integrity_check: " + integrity);

    std::vector<RunView> lagging;  // runs whose view disagreed with the catalog snapshot
    std::map<std::pair<std::string, std::string>, std::uint32_t> crcs;  // (file, dataset)
    for (const auto& s : cat.segments(campaign)) {
        ++segments;
        const auto path = data_dir / s.file;
        std::error_code ec;
        auto size = std::filesystem::file_size(path, ec);
        if (ec) {
            problem("segment " + s.file + " is missing");
            continue;
        }
        if (size != s.bytes)
            problem("segment " + s.file + " is " + std::to_string(size) + " bytes, catalog says " +
                    std::to_string(s.bytes));
        for (const auto& e : cat.segment_extents(s.segment_id)) {
            if (quick) continue;
            auto key = std::make_pair(s.file, e.dataset);
            try {
                if (!crcs.count(key)) crcs[key] = store::dataset_crc32(path, e.dataset);
                if (crcs[key] != e.crc32)
                    problem("segment " + s.file + " dataset " + e.dataset +
                            ": crc32 mismatch (data changed or corrupt)");
            } catch (const std::exception& ex) {
                problem("segment " + s.file + ": " + ex.what());
            }
        }
    }
    std::vector<std::string> campaigns =
        campaign.empty() ? cat.campaigns() : std::vector<std::string>{campaign};
    for (const auto& c : campaigns) {
        auto ids = cat.campaign_runs(c);
        if (!std::filesystem::exists(data_dir / store::campaign_view_file(c)))
            problem("campaign view " + store::campaign_view_file(c) + " is missing");
        for (auto id : ids) {
            ++runs;
            auto v = cat.run_view(id);
            for (const auto& s : v.streams) {
                ++streams;
                rows += s.rows;
                std::uint64_t next = 0;
                for (const auto& e : s.extents) {
                    if (e.dst_row != next)
                        problem("run " + std::to_string(id) + " '" + s.key + "': rows " +
                                std::to_string(next) + ".." + std::to_string(e.dst_row) +
                                (e.dst_row > next ? " are in no segment" : " are stored twice"));
                    next = e.dst_row + e.rows;
                }
                if (next != s.rows)
                    problem("run " + std::to_string(id) + " '" + s.key + "': catalog says " +
                            std::to_string(s.rows) + " rows, segments hold " +
                            std::to_string(next));
            }
            if (!store::check_run_view(data_dir, v).empty()) lagging.emplace_back(std::move(v));
        }
    }
    // A live daemon rewrites a run's view just after each catalog commit, so
    // a view may lag the catalog snapshot read above. Such a view must catch
    // up: hold at least the snapshot's rows a moment later.
    for (int attempt = 0; attempt < 6 && !lagging.empty(); ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
        std::vector<RunView> still;
        for (auto& v : lagging) {
            auto found = store::check_run_view(data_dir, v, /*at_least=*/true);
            if (found.empty()) continue;
            if (attempt == 5)
                for (const auto& p : found)
                    problem("run " + std::to_string(v.run_id) + " view: " + p);
            still.push_back(std::move(v));
        }
        lagging = std::move(still);
    }
    std::cout << "checked " << campaigns.size() << " campaigns, " << runs << " runs, " << streams
              << " streams and arrays, " << rows << " rows, " << segments << " segment files"
              << (quick ? " (no checksums)" : "") << ": "
              << (problems ? std::to_string(problems) + " problems" : "ok") << "\n";
    return problems ? 1 : 0;
}

}  // namespace simsink::cli
