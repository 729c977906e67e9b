#include "writer/recovery.hpp"

#include <spdlog/spdlog.h>

#include <set>

#include "view.hpp"

namespace simsink::daemon {

namespace fs = std::filesystem;

RecoveryReport recover(const fs::path& data_dir, catalog::Catalog& catalog) {
    RecoveryReport rep;
    std::set<std::string> known;
    for (const auto& s : catalog.segments()) known.insert(s.file);

    for (const auto& entry : fs::recursive_directory_iterator(data_dir)) {
        if (!entry.is_regular_file()) continue;
        const auto& p = entry.path();
        const auto name = p.filename().string();
        const auto rel = fs::relative(p, data_dir).string();
        if (name.size() > 4 && name.ends_with(".tmp")) {
            fs::remove(p);
            ++rep.tmp_removed;
        } else if (name.starts_with("seg-") && name.ends_with(".h5") && !known.count(rel)) {
            fs::remove(p);
            ++rep.orphans_removed;
        }
    }
    for (const auto& c : catalog.campaigns()) {
        auto ids = catalog.campaign_runs(c);
        for (auto id : ids) {
            store::write_run_view(data_dir, catalog.run_view(id));
            ++rep.runs_viewed;
        }
        store::write_campaign_view(data_dir, c, ids);
        ++rep.campaigns_viewed;
    }
    if (rep.tmp_removed || rep.orphans_removed)
        spdlog::info("recovery: removed {} temporary and {} uncommitted segment files",
                     rep.tmp_removed, rep.orphans_removed);
    return rep;
}

}  // namespace simsink::daemon
