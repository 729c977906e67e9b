#include <algorithm>
#include <string>
#include <vector>

#include "h5.hpp"
#include "view.hpp"

namespace simsink::store {
namespace {

constexpr std::uint64_t kSlabBytes = std::uint64_t{64} << 20;
// Bounds of the export's own HDF5 metadata, for the preallocation only.
constexpr std::uint64_t kFileOverhead = std::uint64_t{1} << 20;
constexpr std::uint64_t kObjectOverhead = std::uint64_t{64} << 10;

// One group or dataset of the campaign view, by its path from the view's
// root (external links followed: "/runs/3/state/y").
struct Node {
    std::string path;
    bool group = true;
    std::uint64_t bytes = 0;
};

std::string child_path(const std::string& parent, const char* name) {
    return parent == "/" ? "/" + std::string(name) : parent + "/" + name;
}

// Names are collected first and used after the iteration: exceptions must
// not unwind through HDF5's C frames.
herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* data) noexcept {
    try {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
    } catch (...) {
        return -1;
    }
}

herr_t collect_attribute(hid_t, const char* name, const H5A_info_t*, void* data) noexcept {
    try {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
    } catch (...) {
        return -1;
    }
}

bool may_hold_vlen(hid_t type) {
    return H5Tdetect_class(type, H5T_VLEN) > 0 || H5Tdetect_class(type, H5T_STRING) > 0;
}

// A buffer read in `type` that frees HDF5's variable-length allocations in it
// (strings of attributes) when it goes.
class ReadBuffer {
  public:
    ReadBuffer(hid_t type, hid_t space, std::size_t bytes)
        : type_(type), space_(space), vlen_(may_hold_vlen(type)), bytes_(bytes) {}
    ReadBuffer(const ReadBuffer&) = delete;
    ReadBuffer& operator=(const ReadBuffer&) = delete;
    ~ReadBuffer() { reclaim(); }
    void* data() noexcept { return bytes_.data(); }
    // Before a read into data(): whatever the read allocates is freed, even
    // if it fails halfway (the rest of the buffer is zeros, null pointers).
    void mark_filled() noexcept { filled_ = true; }
    // Frees what the last read allocated; the buffer can be read into again.
    void reclaim() noexcept {
        if (filled_ && vlen_) {
            H5Dvlen_reclaim(type_, space_, H5P_DEFAULT, bytes_.data());
            // A shorter read next time leaves the tail alone: no stale pointers there.
            std::fill(bytes_.begin(), bytes_.end(), 0);
        }
        filled_ = false;
    }

  private:
    hid_t type_;
    hid_t space_;
    bool vlen_;
    bool filled_ = false;
    std::vector<unsigned char> bytes_;
};

h5::Object open_object(hid_t file, const std::string& path, const h5::Site& site) {
    return h5::Object{
        h5::check(site, "open", [&] { return H5Oopen(file, path.c_str(), H5P_DEFAULT); })};
}

// Whether `obj` (a group or dataset) records the creation order of its
// attributes, as everything in the views does.
bool tracks_attribute_order(hid_t obj) {
    const H5I_type_t kind = H5Iget_type(obj);
    h5::PropList cpl{kind == H5I_DATASET ? H5Dget_create_plist(obj)
                     : kind == H5I_GROUP ? H5Gget_create_plist(obj)
                                         : H5I_INVALID_HID};
    unsigned flags = 0;
    return cpl.valid() && H5Pget_attr_creation_order(cpl.id(), &flags) >= 0 &&
           (flags & H5P_CRT_ORDER_TRACKED);
}

// Copies every attribute, in creation order where the source has one.
void copy_attributes(hid_t from, hid_t to, const h5::Site& site) {
    std::vector<std::string> names;
    const H5_index_t index = tracks_attribute_order(from) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    h5::check(site, "list the attributes of", [&] {
        return H5Aiterate2(from, index, H5_ITER_INC, nullptr, collect_attribute, &names);
    });
    for (const auto& name : names) {
        const std::string op = "copy attribute '" + name + "' of";
        h5::Attribute src{
            h5::check(site, op, [&] { return H5Aopen(from, name.c_str(), H5P_DEFAULT); })};
        h5::Type type{h5::check(site, op, [&] { return H5Aget_type(src.id()); })};
        h5::Space space{h5::check(site, op, [&] { return H5Aget_space(src.id()); })};
        const auto points =
            h5::check(site, op, [&] { return H5Sget_simple_extent_npoints(space.id()); });
        const std::size_t item = H5Tget_size(type.id());
        ReadBuffer buf(type.id(), space.id(), static_cast<std::size_t>(points) * item);
        h5::Attribute dst{h5::check(site, op, [&] {
            return H5Acreate2(to, name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT);
        })};
        if (points == 0) continue;
        buf.mark_filled();
        h5::check(site, op, [&] { return H5Aread(src.id(), type.id(), buf.data()); });
        h5::check(site, op, [&] { return H5Awrite(dst.id(), type.id(), buf.data()); });
    }
}

std::uint64_t dataset_bytes(hid_t dataset, const h5::Site& site) {
    h5::Space space{h5::check(site, "get the dataspace of", [&] { return H5Dget_space(dataset); })};
    h5::Type type{h5::check(site, "get the type of", [&] { return H5Dget_type(dataset); })};
    const auto points = h5::check(site, "count the elements of",
                                  [&] { return H5Sget_simple_extent_npoints(space.id()); });
    return static_cast<std::uint64_t>(points) * H5Tget_size(type.id());
}

// Depth-first, parents before children, links in name order.
void collect(hid_t file, const std::string& path, const std::filesystem::path& view,
             std::vector<Node>& nodes) {
    h5::Site site{view, path};
    h5::Object obj = open_object(file, path, site);
    const H5I_type_t kind = H5Iget_type(obj.id());
    if (kind == H5I_DATASET) {
        h5::check_virtual_sources(obj.id(), site);
        nodes.push_back({path, false, dataset_bytes(obj.id(), site)});
        return;
    }
    if (kind != H5I_GROUP) return;  // named datatypes: views have none
    nodes.push_back({path, true, 0});
    std::vector<std::string> names;
    h5::check(site, "list", [&] {
        return H5Literate(obj.id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &names);
    });
    obj.reset();
    for (const auto& name : names) collect(file, child_path(path, name.c_str()), view, nodes);
}

void copy_dataset(hid_t from_file, hid_t to_file, const Node& node,
                  const std::filesystem::path& out, std::uint64_t& copied, std::uint64_t total,
                  const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
    h5::Site site{out, node.path};
    h5::Object src = open_object(from_file, node.path, site);
    h5::Type type{h5::check(site, "get the type of", [&] { return H5Dget_type(src.id()); })};
    h5::Space src_space{
        h5::check(site, "get the dataspace of", [&] { return H5Dget_space(src.id()); })};
    const bool null_space = H5Sget_simple_extent_type(src_space.id()) == H5S_NULL;
    const std::vector<hsize_t> dims =
        null_space ? std::vector<hsize_t>{} : h5::dataset_dims(src.id(), site);
    h5::Space space = null_space ? std::move(src_space) : h5::make_space(dims, site);

    h5::PropList dcpl = h5::creation_list(H5P_DATASET_CREATE, site);
    h5::check(site, "set the layout of", [&] { return H5Pset_layout(dcpl.id(), H5D_CONTIGUOUS); });
    h5::check(site, "set the fill time of",
              [&] { return H5Pset_fill_time(dcpl.id(), H5D_FILL_TIME_NEVER); });
    h5::Dataset dst{h5::check(site, "create", [&] {
        return H5Dcreate2(to_file, node.path.c_str(), type.id(), space.id(), H5P_DEFAULT, dcpl.id(),
                          H5P_DEFAULT);
    })};

    if (!null_space) {
        const std::size_t item = H5Tget_size(type.id());
        hsize_t elements = 1;
        for (auto d : dims) elements *= d;
        const hsize_t max_elements = std::max<hsize_t>(1, kSlabBytes / item);
        const hsize_t slab = std::min(elements, max_elements);
        h5::Space slab_space = h5::make_space(std::span<const hsize_t>(&slab, 1), site);
        ReadBuffer buf(type.id(), slab_space.id(), slab * item);
        h5::for_each_slab(dims, max_elements, [&](auto start, auto count) {
            hsize_t n = 1;
            for (auto c : count) n *= c;
            buf.reclaim();
            buf.mark_filled();
            h5::read_slab(src.id(), type.id(), start, count, buf.data(), site);
            h5::write_slab(dst.id(), type.id(), start, count, buf.data(), site);
            copied += n * item;
            if (progress) progress(copied, total);
        });
    }
    copy_attributes(src.id(), dst.id(), site);
    h5::check(site, "close", [&] { return H5Dclose(dst.release()); });
}

}  // namespace

void export_campaign(const std::filesystem::path& data_dir, const std::string& campaign,
                     const std::filesystem::path& out,
                     const std::function<void(std::uint64_t, std::uint64_t)>& progress) {
    h5::init();
    const std::filesystem::path view = data_dir / campaign_view_file(campaign);
    h5::File src = h5::open_read_only(view);

    std::vector<Node> nodes;
    collect(src.id(), "/", view, nodes);
    std::uint64_t total = 0;
    for (const auto& n : nodes) total += n.bytes;

    h5::TmpFile dst(h5::tmp_path_for(out));
    dst.preallocate(total + kFileOverhead + kObjectOverhead * nodes.size());
    std::uint64_t copied = 0;
    for (const auto& node : nodes) {
        h5::Site site{dst.path(), node.path};
        if (!node.group) {
            copy_dataset(src.id(), dst.id(), node, dst.path(), copied, total, progress);
            continue;
        }
        h5::Object from = open_object(src.id(), node.path, h5::Site{view, node.path});
        h5::PropList gcpl = h5::creation_list(H5P_GROUP_CREATE, site);
        h5::Group to{h5::check(site, "create", [&] {
            return node.path == "/" ? H5Gopen2(dst.id(), "/", H5P_DEFAULT)
                                    : H5Gcreate2(dst.id(), node.path.c_str(), H5P_DEFAULT,
                                                 gcpl.id(), H5P_DEFAULT);
        })};
        copy_attributes(from.id(), to.id(), site);
    }
    src.reset();
    dst.close(true);
    dst.rename_to(out);
}

}  // namespace simsink::store
