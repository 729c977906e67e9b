// Start-up recovery of a data directory, before any client is served:
// removes "*.tmp" files (commits or views cut short), removes segment files
// the catalog does not know (written before a crash, never committed), and
// rebuilds every view from the catalog. Never needs h5clear: no file that a
// crash could leave half-written is ever opened again.
#pragma once

#include <filesystem>

#include "catalog.hpp"

namespace simsink::daemon {

struct RecoveryReport {
    std::size_t tmp_removed = 0;
    std::size_t orphans_removed = 0;
    std::size_t runs_viewed = 0;
    std::size_t campaigns_viewed = 0;
};

RecoveryReport recover(const std::filesystem::path& data_dir, catalog::Catalog& catalog);

}  // namespace simsink::daemon
