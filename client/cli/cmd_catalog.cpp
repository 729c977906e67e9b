// Commands that read the catalog: campaigns, runs, show, tail.
#include <complex>
#include <cstring>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "catalog.hpp"
#include "cli.hpp"
#include "query.hpp"
#include "segment.hpp"

namespace simsink::cli {

namespace {

catalog::Catalog open_catalog(Context& ctx) {
    return catalog::Catalog(ctx.resolve_data_dir() / "catalog.sqlite",
                            catalog::Catalog::Mode::read_only);
}

std::int64_t parse_run_id(const std::string& s) {
    try {
        std::size_t used = 0;
        auto v = std::stoll(s, &used);
        if (used == s.size() && v > 0) return v;
    } catch (const std::exception&) {
    }
    throw UsageError("'" + s + "' is not a run id (a positive integer)");
}

std::string csv_escape(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

template <class T>
void put_number(std::ostringstream& o, const std::uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t>)
        o << static_cast<int>(v);
    else
        o << v;
}

// One element of `dtype` at p, as text.
void put_element(std::ostringstream& o, DType t, const std::uint8_t* p) {
    switch (t) {
        case DType::int8:
            put_number<std::int8_t>(o, p);
            break;
        case DType::int16:
            put_number<std::int16_t>(o, p);
            break;
        case DType::int32:
            put_number<std::int32_t>(o, p);
            break;
        case DType::int64:
            put_number<std::int64_t>(o, p);
            break;
        case DType::uint8:
            put_number<std::uint8_t>(o, p);
            break;
        case DType::uint16:
            put_number<std::uint16_t>(o, p);
            break;
        case DType::uint32:
            put_number<std::uint32_t>(o, p);
            break;
        case DType::uint64:
            put_number<std::uint64_t>(o, p);
            break;
        case DType::float32:
            put_number<float>(o, p);
            break;
        case DType::float64:
            put_number<double>(o, p);
            break;
        case DType::complex64:
            put_number<float>(o, p);
            o << "+";
            put_number<float>(o, p + 4);
            o << "j";
            break;
        case DType::complex128:
            put_number<double>(o, p);
            o << "+";
            put_number<double>(o, p + 8);
            o << "j";
            break;
        case DType::boolean:
            o << (*p ? "true" : "false");
            break;
    }
}

std::string format_row(const StreamView& s, const std::uint8_t* row) {
    const auto n = proto::element_count(s.shape).value_or(0);
    const auto size = proto::itemsize(s.dtype);
    std::ostringstream o;
    o.precision(10);
    constexpr std::uint64_t kShown = 16;
    if (!s.shape.empty()) o << "[";
    for (std::uint64_t i = 0; i < std::min(n, kShown); ++i) {
        if (i) o << " ";
        put_element(o, s.dtype, row + i * size);
    }
    if (n > kShown) o << " ... (" << n << " values)";
    if (!s.shape.empty()) o << "]";
    return o.str();
}

// Prints rows [first, end) of the stream, reading them from its segments.
void print_rows(const std::filesystem::path& data_dir, const StreamView& s, std::uint64_t first,
                std::uint64_t end) {
    const auto row_bytes = proto::element_count(s.shape).value_or(0) * proto::itemsize(s.dtype);
    std::vector<std::uint8_t> buf;
    for (const auto& e : s.extents) {
        auto lo = std::max(first, e.dst_row), hi = std::min(end, e.dst_row + e.rows);
        if (lo >= hi) continue;
        buf.resize((hi - lo) * row_bytes);
        store::read_segment_rows(data_dir / e.file, e.dataset, e.src_row + (lo - e.dst_row),
                                 hi - lo, buf.data(), buf.size());
        for (auto r = lo; r < hi; ++r)
            std::cout << r << "\t" << format_row(s, buf.data() + (r - lo) * row_bytes) << "\n";
    }
    std::cout.flush();
}

}  // namespace

int cmd_campaigns(Context& ctx, Args& args) {
    bool json = args.flag("--json");
    args.positionals(0, 0, "");
    auto cat = open_catalog(ctx);
    proto::Json out = proto::Json::array();
    for (const auto& c : cat.campaigns()) {
        auto runs = cat.campaign_runs(c);
        auto segs = cat.segments(c);
        std::uint64_t bytes = 0;
        for (const auto& s : segs) bytes += s.bytes;
        out.push_back(
            {{"campaign", c}, {"runs", runs.size()}, {"segments", segs.size()}, {"bytes", bytes}});
    }
    if (json) {
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    std::cout << "campaign\truns\tsegments\tsize\n";
    for (const auto& c : out)
        std::cout << c["campaign"].get<std::string>() << "\t" << c["runs"] << "\t" << c["segments"]
                  << "\t" << format_bytes(c["bytes"].get<double>()) << "\n";
    return 0;
}

int cmd_runs(Context& ctx, Args& args) {
    catalog::RunFilter f;
    f.campaign = args.value("--campaign").value_or("");
    f.status = args.value("--status").value_or("");
    f.where = args.value("--where").value_or("");
    if (auto l = args.value("--limit")) f.limit = std::stoul(*l);
    auto columns_arg = args.value("--columns");
    bool json = args.flag("--json"), csv = args.flag("--csv");
    args.positionals(0, 0, "");
    auto cat = open_catalog(ctx);
    std::vector<catalog::RunRow> rows;
    try {
        rows = catalog::find_runs(cat, f);
    } catch (const catalog::QueryError& e) {
        throw UsageError(std::string("--where: ") + e.what());
    }
    if (json) {
        proto::Json out = proto::Json::array();
        for (const auto& r : rows)
            out.push_back({{"id", r.run_id},
                           {"campaign", r.campaign},
                           {"status", r.status},
                           {"host", r.host},
                           {"pid", r.pid},
                           {"started", r.started},
                           {"ended", r.ended},
                           {"reason", r.reason},
                           {"params", r.params},
                           {"results", r.results}});
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    // Columns: the given ones, or every param then every result seen.
    std::vector<std::string> cols;
    if (columns_arg) {
        std::stringstream ss(*columns_arg);
        for (std::string c; std::getline(ss, c, ',');)
            if (!c.empty()) cols.push_back(c);
    } else {
        std::set<std::string> seen;
        for (const auto& r : rows)
            for (const auto& [k, v] : r.params.items())
                if (seen.insert(k).second) cols.push_back(k);
        for (const auto& r : rows)
            for (const auto& [k, v] : r.results.items())
                if (seen.insert(k).second) cols.push_back(k);
    }
    const char* sep = csv ? "," : "\t";
    std::cout << "id" << sep << "campaign" << sep << "status";
    for (const auto& c : cols) std::cout << sep << c;
    std::cout << "\n";
    for (const auto& r : rows) {
        std::cout << r.run_id << sep << r.campaign << sep << r.status;
        for (const auto& c : cols) {
            std::string name = c;
            const proto::Json* src = nullptr;
            if (name.rfind("params.", 0) == 0) {
                name = name.substr(7);
                src = &r.params;
            } else if (name.rfind("results.", 0) == 0) {
                name = name.substr(8);
                src = &r.results;
            }
            std::string v;
            if (src) {
                if (src->contains(name)) v = format_value((*src)[name]);
            } else if (r.params.contains(name)) {
                v = format_value(r.params[name]);
            } else if (r.results.contains(name)) {
                v = format_value(r.results[name]);
            }
            std::cout << sep << (csv ? csv_escape(v) : v);
        }
        std::cout << "\n";
    }
    if (!csv) std::cerr << rows.size() << " runs\n";
    return 0;
}

int cmd_show(Context& ctx, Args& args) {
    bool json = args.flag("--json");
    auto pos = args.positionals(1, 1, "run id");
    auto id = parse_run_id(pos[0]);
    auto cat = open_catalog(ctx);
    auto v = cat.run_view(id);  // throws naming the run if there is none
    if (json) {
        proto::Json streams = proto::Json::array();
        for (const auto& s : v.streams)
            streams.push_back({{"key", s.key},
                               {"kind", s.kind == StreamKind::array ? "array" : "stream"},
                               {"dtype", std::string(proto::name(s.dtype))},
                               {"shape", s.shape},
                               {"rows", s.rows},
                               {"attrs", s.attrs}});
        proto::Json out = {{"id", v.run_id},       {"campaign", v.campaign}, {"status", v.status},
                           {"host", v.host},       {"pid", v.pid},           {"started", v.started},
                           {"ended", v.ended},     {"reason", v.reason},     {"params", v.params},
                           {"results", v.results}, {"attrs", v.attrs},       {"streams", streams}};
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    std::cout << "run " << v.run_id << " of campaign " << v.campaign << ": " << v.status;
    if (!v.reason.empty()) std::cout << " (" << v.reason << ")";
    std::cout << "\n  host " << v.host << ", pid " << v.pid << ", started "
              << format_time(v.started) << ", ended " << format_time(v.ended) << "\n";
    auto fields = [](const char* title, const proto::Json& j) {
        if (j.empty()) return;
        std::cout << title << ":\n";
        for (const auto& [k, val] : j.items())
            std::cout << "  " << k << " = " << format_value(val) << "\n";
    };
    fields("params", v.params);
    fields("results", v.results);
    fields("attributes", v.attrs);
    if (!v.streams.empty()) std::cout << "streams and arrays:\n";
    for (const auto& s : v.streams) {
        std::cout << "  " << s.key << "  " << (s.kind == StreamKind::array ? "array " : "stream ")
                  << proto::name(s.dtype) << " ";
        std::cout << "(";
        if (s.kind == StreamKind::stream) std::cout << s.rows << (s.shape.empty() ? "," : ", ");
        for (std::size_t i = 0; i < s.shape.size(); ++i) std::cout << (i ? ", " : "") << s.shape[i];
        std::cout << ")";
        if (!s.attrs.empty()) std::cout << "  " << s.attrs.dump();
        std::cout << "\n";
    }
    return 0;
}

int cmd_tail(Context& ctx, Args& args) {
    std::uint64_t n = std::stoull(args.value("-n", "--rows").value_or("10"));
    bool follow = args.flag("--follow") || args.flag("-f");
    double interval = std::stod(args.value("--interval").value_or("1"));
    auto pos = args.positionals(2, 2, "RUN_ID and KEY");
    auto id = parse_run_id(pos[0]);
    const auto data_dir = ctx.resolve_data_dir();
    auto cat = open_catalog(ctx);
    auto find = [&]() -> std::optional<StreamView> {
        auto v = cat.run_view(id);
        for (auto& s : v.streams)
            if (s.key == pos[1]) return s;
        return std::nullopt;
    };
    auto s = find();
    if (!s && !follow)
        throw std::runtime_error("run " + pos[0] + " has no stream '" + pos[1] + "'");
    std::uint64_t shown = 0;
    if (s) {
        shown = s->rows > n ? s->rows - n : 0;
        print_rows(data_dir, *s, shown, s->rows);
        shown = s->rows;
    }
    while (follow) {
        std::this_thread::sleep_for(std::chrono::duration<double>(interval));
        s = find();
        if (!s || s->rows <= shown) continue;
        print_rows(data_dir, *s, shown, s->rows);
        shown = s->rows;
    }
    return 0;
}

}  // namespace simsink::cli
