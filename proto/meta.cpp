#include "meta.hpp"

namespace simsink::proto {

namespace {

[[noreturn]] void bad(const std::string& msg) {
    throw ProtocolError(ErrorCode::bad_meta, msg);
}

}  // namespace

Json parse_meta(std::span<const std::uint8_t> f) {
    if (f.size() > kMaxMetaBytes)
        throw ProtocolError(ErrorCode::too_large, "metadata frame is " + std::to_string(f.size()) +
                                                      " bytes, limit " +
                                                      std::to_string(kMaxMetaBytes));
    Json j;
    try {
        // The callback sees the depth of every element before it is stored,
        // so a hostile, deeply nested document is refused early.
        j = Json::parse(f.begin(), f.end(), [](int depth, Json::parse_event_t, Json&) {
            if (depth > kMaxMetaDepth)
                bad("metadata JSON nested deeper than " + std::to_string(kMaxMetaDepth));
            return true;
        });
    } catch (const Json::exception& e) {
        bad(std::string("metadata is not valid JSON: ") + e.what());
    }
    if (!j.is_object()) bad("metadata JSON is not an object");
    return j;
}

std::string dump_meta(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

const std::string& get_string(const Json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || !it->is_string())
        bad(std::string("metadata member '") + key + "' must be a string");
    return it->get_ref<const std::string&>();
}

std::uint64_t get_uint(const Json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || !it->is_number_unsigned())
        bad(std::string("metadata member '") + key + "' must be a non-negative integer");
    return it->get<std::uint64_t>();
}

const Json& get_object(const Json& o, const char* key) {
    static const Json kEmpty = Json::object();
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return kEmpty;
    if (!it->is_object()) bad(std::string("metadata member '") + key + "' must be an object");
    return *it;
}

DType get_dtype(const Json& o, const char* key) {
    const auto& s = get_string(o, key);
    auto t = parse_dtype(s);
    if (!t) throw ProtocolError(ErrorCode::bad_dtype, "unknown dtype '" + s.substr(0, 32) + "'");
    return *t;
}

Shape get_shape(const Json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || !it->is_array())
        bad(std::string("metadata member '") + key + "' must be an array of integers");
    if (it->size() > kMaxRank)
        throw ProtocolError(ErrorCode::bad_shape, "rank " + std::to_string(it->size()) +
                                                      " exceeds the maximum " +
                                                      std::to_string(kMaxRank));
    Shape s;
    for (const auto& d : *it) {
        if (!d.is_number_unsigned() || d.get<std::uint64_t>() == 0)
            throw ProtocolError(ErrorCode::bad_shape,
                                std::string("'") + key + "' must hold positive integers");
        s.push_back(d.get<std::uint64_t>());
    }
    if (!element_count(s)) throw ProtocolError(ErrorCode::bad_shape, "shape is too large");
    return s;
}

void check_fields(const Json& fields, const char* what) {
    if (!fields.is_object()) bad(std::string(what) + " must be a JSON object");
    for (const auto& [k, v] : fields.items()) {
        if (auto err = check_field_name(k))
            throw ProtocolError(ErrorCode::bad_name, std::string(what) + ": " + *err);
        if (v.is_number() || v.is_boolean() || v.is_string()) continue;
        if (v.is_array()) {
            if (v.size() > 4096) bad(std::string(what) + " '" + k + "' has more than 4096 items");
            bool all_num = true, all_str = true;
            for (const auto& x : v) {
                all_num = all_num && x.is_number();
                all_str = all_str && x.is_string();
            }
            if (all_num || all_str) continue;
            bad(std::string(what) + " '" + k + "' must be an array of numbers or of strings");
        }
        bad(std::string(what) + " '" + k + "' must be a number, bool, string or flat array (got " +
            v.type_name() + ")");
    }
}

}  // namespace simsink::proto
