// Metadata frames: JSON objects, parsed with the limits of PROTOCOL.md and
// typed accessors that name the offending member in their errors.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "dtype.hpp"
#include "wire.hpp"

namespace simsink::proto {

using Json = nlohmann::json;

// Parses a metadata frame. Throws ProtocolError(bad_meta) if it is larger
// than kMaxMetaBytes, nested deeper than kMaxMetaDepth, not valid UTF-8 JSON,
// or not an object.
Json parse_meta(std::span<const std::uint8_t> frame);

std::string dump_meta(const Json& j);

// Typed member access; each throws ProtocolError(bad_meta) naming `key` when
// the member is missing or of the wrong type.
const std::string& get_string(const Json& obj, const char* key);
std::uint64_t get_uint(const Json& obj, const char* key);
const Json& get_object(const Json& obj, const char* key);  // missing -> empty object
DType get_dtype(const Json& obj, const char* key);         // by name
Shape get_shape(const Json& obj, const char* key);         // array of uint, rank <= kMaxRank

// Params, results and attributes: an object whose member names pass
// check_field_name and whose values are a number, bool, string, or a flat
// array of numbers / strings (at most 4096 items). Throws
// ProtocolError(bad_meta or bad_name) naming `what` ("params", ...).
void check_fields(const Json& fields, const char* what);

}  // namespace simsink::proto
