// Views: the HDF5 files readers open. A campaign view "<campaign>.h5" holds
// one external link per run, "/runs/<id>" -> "<campaign>/run-<id>.h5:/"; a
// run view holds, for each stream and array, a virtual dataset mapping its
// rows onto segment datasets, and the run's params, results and attributes
// as HDF5 attributes. All paths inside views are relative, so a data
// directory that is moved or copied still opens. Both are rewritten under a
// temporary name and renamed, so a reader never sees a partial file.
//
// Thread safety: writer thread only (HDF5).
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "records.hpp"
#include "store_error.hpp"

namespace simsink::store {

// "<campaign>/run-<id>.h5", relative to the data directory.
std::string run_view_file(const std::string& campaign, std::int64_t run_id);
// "<campaign>.h5", relative to the data directory.
std::string campaign_view_file(const std::string& campaign);

// Writes the run view of `run` into data_dir / run_view_file(...). Extent
// files in `run` are relative to the data directory; the view stores them
// relative to the view's own directory. Attribute names: params keep theirs,
// a result or user attribute whose name is taken gets "result_" / "attr_" in
// front, and a param, result or attribute named like one of the run's
// "simsink_*" attributes gets "param_" / "result_" / "attr_". A key that
// cannot coexist with an earlier one ("a/b" after "a", "a" after "a/b") or is
// invalid is left out of the view, as is an array not written yet (rows 0).
// docs/storage.md has the layout.
void write_run_view(const std::filesystem::path& data_dir, const RunView& run);

// write_run_view() in two halves: the HDF5 half builds the file in memory
// (writer thread only, as every HDF5 call), the other writes it to disk and
// calls no HDF5, so another thread can save one view while the next is
// built. write_run_view(d, run) is save_view(run_view_image(d, run)).
struct ViewImage {
    std::filesystem::path target;  // the view file
    std::vector<std::byte> bytes;  // its complete HDF5 image
};
ViewImage run_view_image(const std::filesystem::path& data_dir, const RunView& run);
// "<target>.tmp", then renamed to target, no fsync; throws StoreError.
void save_view(const ViewImage& image);

// For `simsink verify`: checks the run view on disk against `run` (as the
// catalog has it): that it opens, that every stream and array it should hold
// is there with the catalog's shape and dtype, and that every segment file
// and dataset its virtual datasets map exists. Returns one message per
// problem, none when the view is sound; problems are not thrown. With
// `at_least`, a stream may hold more rows than `run` says: the view was
// rewritten by a commit later than the catalog snapshot `run` came from
// (a live daemon).
std::vector<std::string> check_run_view(const std::filesystem::path& data_dir, const RunView& run,
                                        bool at_least = false);

// Writes data_dir / campaign_view_file(campaign) with one external link per
// run id.
void write_campaign_view(const std::filesystem::path& data_dir, const std::string& campaign,
                         std::span<const std::int64_t> run_ids);

// `simsink export`: writes one self-contained HDF5 file (no virtual datasets,
// no external links) with the same groups, datasets and attributes as the
// campaign view, copying data in slabs of at most 64 MiB. `progress` is
// called with (bytes copied, bytes total) after each slab.
void export_campaign(const std::filesystem::path& data_dir, const std::string& campaign,
                     const std::filesystem::path& out,
                     const std::function<void(std::uint64_t, std::uint64_t)>& progress = {});

}  // namespace simsink::store
