// Compaction: merges a campaign's small segments into larger ones with the
// same steps as a commit (write tmp, fsync, rename, one catalog
// transaction), rewrites the views that pointed at them, and deletes the old
// files only after a grace period, so a reader that opened an older view
// keeps finding its files. A crash at any step loses nothing: before the
// transaction the new file is unknown to the catalog (deleted at restart),
// after it the old files are (deleted at restart).
//
// Runs on the writer thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <string>

#include "catalog.hpp"
#include "config.hpp"

namespace simsink::daemon {

class Compactor {
  public:
    using ViewWriter = std::function<void(const std::set<std::int64_t>& runs)>;

    Compactor(const Config& config, catalog::Catalog& catalog, std::int64_t& next_segment_id,
              ViewWriter write_views);

    // Compacts one campaign (or all when empty) as far as the policy allows.
    // Returns {"merged": segments merged, "segments_before", "segments_after"}.
    Json compact(const std::string& campaign);

    // Called when the writer is idle; compacts at most every few seconds.
    void maybe_compact(double now);

    // Removes replaced files whose grace period is over (all of them when
    // `all`, e.g. at shutdown), on the release thread (store::remove_later;
    // Committer::stop() waits for it).
    void delete_expired(double now, bool all = false);

  private:
    // One merge step; returns the number of segments merged (0: nothing to do).
    std::size_t merge_once(const std::string& campaign);

    const Config& config_;
    catalog::Catalog& catalog_;
    std::int64_t& next_segment_id_;
    ViewWriter write_views_;
    double last_check_ = 0;
    std::deque<std::pair<double, std::string>> doomed_;  // (delete after, relative file)
};

}  // namespace simsink::daemon
