#include "view.hpp"

#include <limits>
#include <map>
#include <set>
#include <unordered_set>

#include "h5.hpp"
#include "wire.hpp"

namespace simsink::store {
namespace {

// ---- attributes from JSON ---------------------------------------------------

// `buf` is null for an attribute without elements.
void create_attribute(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type,
                      hid_t space, const void* buf, const h5::Site& site) {
    const std::string op = "write attribute '" + name + "' of";
    h5::Attribute attr{h5::check(site, op, [&] {
        return H5Acreate2(obj, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    })};
    if (buf) h5::check(site, op, [&] { return H5Awrite(attr.id(), mem_type, buf); });
}

template <class T>
void typed_attribute(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type,
                     const std::vector<T>& values, bool scalar, const h5::Site& site) {
    const hsize_t n = values.size();
    h5::Space space =
        scalar ? h5::make_space({}, site) : h5::make_space(std::span<const hsize_t>(&n, 1), site);
    create_attribute(obj, name, file_type, mem_type, space.id(),
                     values.empty() ? nullptr : values.data(), site);
}

void string_attribute(hid_t obj, const std::string& name, const std::vector<std::string>& values,
                      bool scalar, const h5::Site& site) {
    std::vector<const char*> ptrs;
    for (const auto& v : values) ptrs.push_back(v.c_str());
    h5::Type type = h5::utf8_string_type();
    typed_attribute(obj, name, type.id(), type.id(), ptrs, scalar, site);
}

void bool_attribute(hid_t obj, const std::string& name, const std::vector<std::int8_t>& values,
                    bool scalar, const h5::Site& site) {
    h5::Type type = h5::bool_type();
    typed_attribute(obj, name, type.id(), type.id(), values, scalar, site);
}

bool fits_int64(const Json& v) {
    return !v.is_number_unsigned() ||
           v.get<std::uint64_t>() <=
               static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
}

// Writes one param, result or attribute value (docs/storage.md, "Attributes").
void json_attribute(hid_t obj, const std::string& name, const Json& value, const h5::Site& site) {
    if (value.is_boolean()) {
        bool_attribute(obj, name, {static_cast<std::int8_t>(value.get<bool>())}, true, site);
    } else if (value.is_number_integer() && fits_int64(value)) {
        typed_attribute(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64,
                        std::vector<std::int64_t>{value.get<std::int64_t>()}, true, site);
    } else if (value.is_number_integer()) {
        typed_attribute(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64,
                        std::vector<std::uint64_t>{value.get<std::uint64_t>()}, true, site);
    } else if (value.is_number()) {
        typed_attribute(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                        std::vector<double>{value.get<double>()}, true, site);
    } else if (value.is_string()) {
        string_attribute(obj, name, {value.get<std::string>()}, true, site);
    } else if (value.is_array() && !value.empty()) {
        bool all_str = true, all_bool = true, all_num = true, all_int = true, all_int64 = true,
             any_negative = false;
        for (const auto& x : value) {
            all_str = all_str && x.is_string();
            all_bool = all_bool && x.is_boolean();
            all_num = all_num && x.is_number();
            all_int = all_int && x.is_number_integer();
            all_int64 = all_int64 && x.is_number_integer() && fits_int64(x);
            any_negative = any_negative || (x.is_number() && x.get<double>() < 0);
        }
        if (all_str) {
            string_attribute(obj, name, value.get<std::vector<std::string>>(), false, site);
        } else if (all_bool) {
            std::vector<std::int8_t> v;
            for (const auto& x : value) v.push_back(static_cast<std::int8_t>(x.get<bool>()));
            bool_attribute(obj, name, v, false, site);
        } else if (all_int64) {
            typed_attribute(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64,
                            value.get<std::vector<std::int64_t>>(), false, site);
        } else if (all_int && !any_negative) {
            typed_attribute(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64,
                            value.get<std::vector<std::uint64_t>>(), false, site);
        } else if (all_num) {
            typed_attribute(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                            value.get<std::vector<double>>(), false, site);
        } else {
            string_attribute(obj, name, {value.dump()}, true, site);
        }
    } else if (value.is_array()) {
        // An empty list: a float64 array of length 0 (numpy's default).
        typed_attribute(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, std::vector<double>{}, false,
                        site);
    } else {
        // null, objects, mixed lists: never produced by a validated request;
        // kept as their JSON text rather than dropped.
        string_attribute(obj, name, {value.dump()}, true, site);
    }
}

// The root group's attribute names: the run's info attributes are reserved;
// a param, result or user attribute whose name is taken gets `prefix` in
// front of it (again, until it is free).
class RootNames {
  public:
    explicit RootNames(std::initializer_list<const char*> reserved)
        : taken_(reserved.begin(), reserved.end()) {}
    std::string claim(std::string name, std::string_view prefix) {
        while (taken_.contains(name)) name.insert(0, prefix);
        taken_.insert(name);
        return name;
    }

  private:
    std::set<std::string> taken_;
};

// ---- datasets -------------------------------------------------------------------

// "%" starts a printf-like pattern in VDS source names; "%%" is a literal "%".
std::string vds_escape(const std::string& name) {
    std::string out;
    for (char c : name) {
        out += c;
        if (c == '%') out += '%';
    }
    return out;
}

// The extent's file (relative to the data directory) as seen from the
// directory of the view that refers to it (also relative to the data
// directory): "camp/seg-3.h5" from "camp" is "seg-3.h5".
std::string relative_to(const std::string& file, const std::filesystem::path& view_dir) {
    const std::filesystem::path f = std::filesystem::path(file).lexically_normal();
    if (f.is_absolute() || view_dir.empty()) return f.string();
    const auto rel = f.lexically_relative(view_dir.lexically_normal());
    return rel.empty() ? f.string() : rel.string();
}

std::vector<hsize_t> full_dims(const StreamView& sv) {
    std::vector<hsize_t> dims;
    if (sv.kind == StreamKind::stream) dims.push_back(sv.rows);
    dims.insert(dims.end(), sv.shape.begin(), sv.shape.end());
    return dims;
}

void select_rows(hid_t space, std::span<const hsize_t> dims, std::uint64_t first,
                 std::uint64_t rows, const h5::Site& site) {
    std::vector<hsize_t> start(dims.size(), 0), count(dims.begin(), dims.end());
    start[0] = first;
    count[0] = rows;
    h5::check(site, "select rows in", [&] {
        return H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(),
                                   nullptr);
    });
}

// Adds one mapping per extent: rows [dst_row, dst_row + rows) of the view
// from rows [src_row, src_row + rows) of the segment dataset. The source
// dataspace only has to contain the selection; HDF5 replaces its extent by the
// source dataset's own when it opens the source.
void add_mappings(hid_t dcpl, const StreamView& sv, std::span<const hsize_t> dims,
                  const std::filesystem::path& view_dir, const h5::Site& site) {
    for (const auto& e : sv.extents) {
        if (e.rows == 0) continue;
        const std::string src_file = vds_escape(relative_to(e.file, view_dir));
        const std::string src_dataset = vds_escape(e.dataset);
        h5::Space vspace = h5::make_space(dims, site);
        h5::Space src_space;
        if (sv.kind == StreamKind::stream) {
            if (e.dst_row > sv.rows || e.rows > sv.rows - e.dst_row ||
                e.src_row > std::numeric_limits<std::uint64_t>::max() - e.rows)
                h5::fail_input(site, "map",
                               "extent [" + std::to_string(e.dst_row) + ", +" +
                                   std::to_string(e.rows) + ") lies outside its " +
                                   std::to_string(sv.rows) + " rows");
            std::vector<hsize_t> src_dims(dims.begin(), dims.end());
            src_dims[0] = e.src_row + e.rows;
            src_space = h5::make_space(src_dims, site);
            select_rows(vspace.id(), dims, e.dst_row, e.rows, site);
            select_rows(src_space.id(), src_dims, e.src_row, e.rows, site);
        } else {
            src_space = h5::make_space(dims, site);  // the whole array
        }
        h5::check(site, "map " + e.file + ":" + e.dataset + " into", [&] {
            return H5Pset_virtual(dcpl, vspace.id(), src_file.c_str(), src_dataset.c_str(),
                                  src_space.id());
        });
        if (sv.kind == StreamKind::array) break;  // one array, one source
    }
}

void create_stream_dataset(hid_t file, const StreamView& sv, const std::filesystem::path& view_dir,
                           const h5::Site& site) {
    const std::vector<hsize_t> dims = full_dims(sv);
    h5::Type type = h5::dtype_type(sv.dtype);
    h5::Space space = h5::make_space(dims, site);
    h5::PropList dcpl = h5::creation_list(H5P_DATASET_CREATE, site);
    const auto elements = proto::element_count(sv.shape).value_or(0);
    const bool has_data = sv.rows > 0 && elements > 0 && !sv.extents.empty();
    if (has_data) add_mappings(dcpl.id(), sv, dims, view_dir, site);
    // Without data: an ordinary empty dataset, (0, *shape) for a stream.
    h5::Dataset dataset{h5::check(site, "create", [&] {
        return H5Dcreate2(file, sv.key.c_str(), type.id(), space.id(), H5P_DEFAULT, dcpl.id(),
                          H5P_DEFAULT);
    })};
    if (sv.attrs.is_object())
        for (const auto& [name, value] : sv.attrs.items())
            json_attribute(dataset.id(), name, value, site);
}

// The streams and arrays a run view holds, in order. Keys come validated from
// the catalog; an invalid one, or one that cannot coexist with an earlier
// key ("a/b" after "a", "a" after "a/b"), is left out, as is an array not
// written yet. Their data stays in the segments and the catalog.
std::vector<const StreamView*> view_streams(const RunView& run) {
    std::vector<const StreamView*> out;
    std::map<std::string, bool> nodes;  // path -> is a group
    for (const auto& sv : run.streams) {
        if (proto::check_key(sv.key)) continue;
        if (sv.kind == StreamKind::array && sv.rows == 0) continue;
        if (nodes.contains(sv.key)) continue;
        std::vector<std::string> groups;
        bool blocked = false;
        for (auto slash = sv.key.find('/'); slash != std::string::npos && !blocked;
             slash = sv.key.find('/', slash + 1)) {
            groups.push_back(sv.key.substr(0, slash));
            auto it = nodes.find(groups.back());
            blocked = it != nodes.end() && !it->second;  // a dataset on the way
        }
        if (blocked) continue;
        for (auto& g : groups) nodes.emplace(std::move(g), true);
        nodes.emplace(sv.key, false);
        out.push_back(&sv);
    }
    return out;
}

// Creates the groups on the way to `key` that are not there yet.
void make_groups(hid_t file, const std::string& key, std::set<std::string>& made,
                 const h5::Site& site) {
    for (auto slash = key.find('/'); slash != std::string::npos; slash = key.find('/', slash + 1)) {
        const std::string g = key.substr(0, slash);
        if (made.contains(g)) continue;
        h5::PropList gcpl = h5::creation_list(H5P_GROUP_CREATE, site);
        h5::Group group{h5::check(site, "create group " + g + " for", [&] {
            return H5Gcreate2(file, g.c_str(), H5P_DEFAULT, gcpl.id(), H5P_DEFAULT);
        })};
        made.insert(g);
    }
}

std::string shape_text(std::span<const hsize_t> dims) {
    std::string s = "(";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + (dims.size() == 1 ? ",)" : ")");
}

// What is wrong with one dataset of a run view, if anything.
std::vector<std::string> check_dataset(hid_t file, const StreamView& sv,
                                       const std::filesystem::path& view, bool at_least) {
    std::vector<std::string> problems;
    h5::Site site{view, sv.key};
    const std::string what = "'" + sv.key + "'";
    if (H5Lexists(file, sv.key.c_str(), H5P_DEFAULT) <= 0 ||
        H5Oexists_by_name(file, sv.key.c_str(), H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return {what + " is missing"};
    }
    try {
        h5::Dataset d{
            h5::check(site, "open", [&] { return H5Dopen2(file, sv.key.c_str(), H5P_DEFAULT); })};
        const auto dims = h5::dataset_dims(d.id(), site);
        const auto expected = full_dims(sv);
        const bool newer = at_least && sv.kind == StreamKind::stream && !dims.empty() &&
                           dims.size() == expected.size() && dims[0] >= expected[0] &&
                           std::equal(dims.begin() + 1, dims.end(), expected.begin() + 1);
        if (dims != expected && !newer)
            problems.push_back(what + " has shape " + shape_text(dims) + ", the catalog says " +
                               shape_text(expected));
        h5::Type type{h5::check(site, "get the type of", [&] { return H5Dget_type(d.id()); })};
        h5::Type wanted = h5::dtype_type(sv.dtype);
        if (H5Tequal(type.id(), wanted.id()) <= 0)
            problems.push_back(what + " is not of type " + std::string(proto::name(sv.dtype)));
        h5::check_virtual_sources(d.id(), site);
    } catch (const StoreError& e) {
        problems.push_back(e.what());
    }
    return problems;
}

}  // namespace

std::string run_view_file(const std::string& campaign, std::int64_t run_id) {
    return campaign + "/run-" + std::to_string(run_id) + ".h5";
}

std::string campaign_view_file(const std::string& campaign) {
    return campaign + ".h5";
}

void write_run_view(const std::filesystem::path& data_dir, const RunView& run) {
    save_view(run_view_image(data_dir, run));
}

void save_view(const ViewImage& image) {
    h5::save_image(image.target, image.bytes);
}

ViewImage run_view_image(const std::filesystem::path& data_dir, const RunView& run) {
    h5::init();
    const std::filesystem::path rel = run_view_file(run.campaign, run.run_id);
    const std::filesystem::path target = data_dir / rel;
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec) h5::fail_errno(h5::Site{target.parent_path()}, "create directory", ec.value());

    h5::MemoryFile file(target);
    {
        h5::Site root{target, "/"};
        RootNames names{"simsink_run_id", "simsink_campaign", "simsink_status", "simsink_host",
                        "simsink_pid",    "simsink_started",  "simsink_ended",  "simsink_reason"};
        const hid_t f = file.id();
        if (run.params.is_object())
            for (const auto& [name, value] : run.params.items())
                json_attribute(f, names.claim(name, "param_"), value, root);
        if (run.results.is_object())
            for (const auto& [name, value] : run.results.items())
                json_attribute(f, names.claim(name, "result_"), value, root);
        json_attribute(f, "simsink_run_id", run.run_id, root);
        json_attribute(f, "simsink_campaign", run.campaign, root);
        json_attribute(f, "simsink_status", run.status, root);
        json_attribute(f, "simsink_host", run.host, root);
        json_attribute(f, "simsink_pid", run.pid, root);
        json_attribute(f, "simsink_started", run.started, root);
        json_attribute(f, "simsink_ended", run.ended, root);
        json_attribute(f, "simsink_reason", run.reason, root);
        if (run.attrs.is_object())
            for (const auto& [name, value] : run.attrs.items())
                json_attribute(f, names.claim(name, "attr_"), value, root);

        std::set<std::string> groups;
        for (const StreamView* sv : view_streams(run)) {
            h5::Site site{target, sv->key};
            make_groups(f, sv->key, groups, site);
            create_stream_dataset(f, *sv, rel.parent_path(), site);
        }
    }
    return ViewImage{target, file.image()};
}

void write_campaign_view(const std::filesystem::path& data_dir, const std::string& campaign,
                         std::span<const std::int64_t> run_ids) {
    h5::init();
    const std::filesystem::path target = data_dir / campaign_view_file(campaign);
    h5::MemoryFile file(target);
    {
        std::vector<std::int64_t> ids;
        std::unordered_set<std::int64_t> seen;
        for (auto id : run_ids)
            if (seen.insert(id).second) ids.push_back(id);

        h5::Site root{target, "/"};
        json_attribute(file.id(), "simsink_campaign", campaign, root);
        json_attribute(file.id(), "simsink_runs", static_cast<std::int64_t>(ids.size()), root);
        h5::Site runs_site{target, "/runs"};
        h5::PropList gcpl = h5::creation_list(H5P_GROUP_CREATE, runs_site);
        h5::Group runs{h5::check(runs_site, "create", [&] {
            return H5Gcreate2(file.id(), "runs", H5P_DEFAULT, gcpl.id(), H5P_DEFAULT);
        })};
        for (auto id : ids) {
            const std::string name = std::to_string(id);
            const std::string run_file = run_view_file(campaign, id);
            h5::check(runs_site, "link run " + name + " in", [&] {
                return H5Lcreate_external(run_file.c_str(), "/", runs.id(), name.c_str(),
                                          H5P_DEFAULT, H5P_DEFAULT);
            });
        }
    }
    file.save(target);
}

std::vector<std::string> check_run_view(const std::filesystem::path& data_dir, const RunView& run,
                                        bool at_least) {
    h5::init();
    const std::filesystem::path view = data_dir / run_view_file(run.campaign, run.run_id);
    std::error_code ec;
    if (!std::filesystem::exists(view, ec)) return {view.string() + " is missing"};
    std::vector<std::string> problems;
    try {
        h5::File file = h5::open_read_only(view);
        for (const StreamView* sv : view_streams(run))
            for (auto& p : check_dataset(file.id(), *sv, view, at_least))
                problems.push_back(std::move(p));
    } catch (const StoreError& e) {
        problems.push_back(e.what());
    }
    return problems;
}

}  // namespace simsink::store
