// Read-side queries over a catalog, for the CLI (`simsink runs --where`,
// `simsink show`) and the Python helpers. Read-only; never blocks the daemon.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "catalog.hpp"

namespace simsink::catalog {

// A --where expression that could not be parsed or names nothing queryable.
class QueryError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct RunRow {
    std::int64_t run_id = 0;
    std::string campaign;
    std::string status;
    std::string host;
    std::int64_t pid = 0;
    double started = 0;
    double ended = 0;
    std::string reason;
    Json params = Json::object();
    Json results = Json::object();
};

struct RunFilter {
    std::string campaign;  // empty: all
    std::string status;    // empty: all
    // Expression over params, results and run columns, e.g.
    //   beta > 1e-10 and method = 'dopri5'
    //   params.kappa >= 2 or (results.energy < 0.5 and not status = 'failed')
    // Operators: = == != <> < <= > >= like, and / or / not, parentheses.
    // A bare name is looked up as a run column (id, campaign, status, host,
    // pid, started, ended), then a param, then a result. Literals: numbers,
    // 'strings' or "strings", true/false. Translated to SQL with bound
    // parameters only: nothing of the text is spliced into SQL.
    std::string where;
    std::optional<std::size_t> limit;
};

std::vector<RunRow> find_runs(const Catalog& catalog, const RunFilter& filter);

}  // namespace simsink::catalog
