#include <algorithm>

#include "catalog_fixture.hpp"
#include "query.hpp"

namespace simsink::catalog::test {
namespace {

// Runs of two campaigns:
//   1 sweep finished  beta 1e-9   dopri5             kappa 1   result energy 0.4, converged true
//   2 sweep finished  beta 1e-12  dopri5             kappa 2   result energy 0.7, param status
//   'weird' 3 sweep failed    beta 1e-9   rk4                kappa 3.0 (float) 4 other running beta
//   5e-10  x' or 1=1 --       kappa 2 5 other running   (no beta)   dopri5 param energy 0.1
struct QueryCatalog {
    TempDir dir;
    Catalog cat{dir.catalog()};

    QueryCatalog() {
        CommitRecord c;
        c.opens.push_back(
            run_open(1, "sweep", {{"beta", 1e-9}, {"method", "dopri5"}, {"kappa", 1}}));
        c.opens.push_back(
            run_open(2, "sweep",
                     {{"beta", 1e-12}, {"method", "dopri5"}, {"kappa", 2}, {"status", "weird"}}));
        c.opens.push_back(
            run_open(3, "sweep", {{"beta", 1e-9}, {"method", "rk4"}, {"kappa", 3.0}}));
        c.opens.push_back(
            run_open(4, "other", {{"beta", 5e-10}, {"method", "x' or 1=1 --"}, {"kappa", 2}}));
        c.opens.push_back(run_open(5, "other", {{"method", "dopri5"}, {"energy", 0.1}}));
        c.closes.push_back(run_close(1, "finished", {{"energy", 0.4}, {"converged", true}}));
        c.closes.push_back(run_close(2, "finished", {{"energy", 0.7}}));
        c.closes.push_back(run_close(3, "failed", Json::object(), "nan in state"));
        cat.record_commit(c);
    }

    std::vector<std::int64_t> ids(const std::string& where) {
        return ids(RunFilter{{}, {}, where, {}});
    }

    std::vector<std::int64_t> ids(const RunFilter& filter) {
        std::vector<std::int64_t> out;
        for (const auto& row : find_runs(cat, filter)) out.push_back(row.run_id);
        return out;
    }

    // The message of the QueryError `where` throws.
    std::string error(const std::string& where) {
        try {
            find_runs(cat, RunFilter{{}, {}, where, {}});
        } catch (const QueryError& e) {
            return e.what();
        }
        FAIL("no QueryError for: " << where);
        return {};
    }
};

using Ids = std::vector<std::int64_t>;

}  // namespace

TEST_CASE_METHOD(QueryCatalog, "where: finished runs with beta > 1e-10 and method = 'dopri5'") {
    CHECK(ids("status = 'finished' and beta > 1e-10 and method = 'dopri5'") == Ids{1});
    CHECK(ids(RunFilter{{}, "finished", "beta > 1e-10 and method = 'dopri5'", {}}) == Ids{1});
}

TEST_CASE_METHOD(QueryCatalog, "where: and/or/not/parentheses") {
    CHECK(ids("kappa >= 2 and (method = 'rk4' or not status = 'finished')") == Ids{3, 4});
    // and binds tighter than or.
    CHECK(ids("method = 'rk4' or method = 'dopri5' and kappa = 2") == Ids{2, 3});
    CHECK(ids("(method = 'rk4' or method = 'dopri5') and kappa = 2") == Ids{2});
    CHECK(ids("not (status = 'finished' or status = 'failed')") == Ids{4, 5});
    CHECK(ids("not not status = 'failed'") == Ids{3});
    // Keywords are case-insensitive.
    CHECK(ids("kappa = 2 AND NOT campaign = 'sweep' Or id = 1") == Ids{1, 4});
    CHECK(ids("((((id = 3))))") == Ids{3});
}

TEST_CASE_METHOD(QueryCatalog, "where: string with quote is bound not spliced") {
    CHECK(ids("method = 'x'' or 1=1 --'") == Ids{4});
    CHECK(ids("method = \"x' or 1=1 --\"") == Ids{4});
    CHECK(ids("method = 'nothing'' or ''1''=''1'").empty());
    CHECK(ids("status = 'finished''; DROP TABLE runs; --'").empty());
    CHECK(cat.campaign_runs("sweep") == Ids{1, 2, 3});
    CHECK(ids("method = 'say \"hi\"'").empty());
}

TEST_CASE_METHOD(QueryCatalog, "where: unknown operator names the column") {
    const std::string tilde = error("beta ~ 1e-10");
    CHECK_THAT(tilde, Catch::Contains("'~'") && Catch::Contains("column 6"));
    const std::string arrow = error("kappa => 1");
    CHECK_THAT(arrow, Catch::Contains("'=>'") && Catch::Contains("column 7"));
    CHECK_THAT(error("kappa = 1 && beta > 0"),
               Catch::Contains("'&'") && Catch::Contains("column 11"));
    CHECK_THAT(error("kappa is 1"),
               Catch::Contains("expected an operator after 'kappa' at column 7"));
}

TEST_CASE_METHOD(QueryCatalog, "where: a missing value names the operator and the column") {
    CHECK_THAT(error("status = 'failed' and beta >"),
               Catch::Contains("expected a value after '>' at column 29"));
    CHECK_THAT(
        error("beta > and kappa = 1"),
        Catch::Contains("expected a value after '>' at column 8") && Catch::Contains("'and'"));
    CHECK_THAT(error("method like 3"), Catch::Contains("quoted pattern after 'like'"));
}

TEST_CASE_METHOD(QueryCatalog, "where: malformed expressions name the column") {
    CHECK_THAT(error("method = 'dopri5"),
               Catch::Contains("unterminated string") && Catch::Contains("column 10"));
    CHECK_THAT(error("(kappa = 1 or kappa = 2"),
               Catch::Contains("expected ')'") && Catch::Contains("column 1"));
    CHECK_THAT(error("kappa = 1)"), Catch::Contains("')'") && Catch::Contains("column 10"));
    CHECK_THAT(error("kappa = 1 kappa = 2"),
               Catch::Contains("expected 'and' or 'or' at column 11"));
    CHECK_THAT(error("= 1"), Catch::Contains("expected a name at column 1"));
    CHECK_THAT(error("kappa = 1e"), Catch::Contains("malformed number '1e'"));
    CHECK_THAT(error("kappa = 1 and"), Catch::Contains("expected a name at column 14"));
    CHECK_THAT(error("kappa # 1"), Catch::Contains("'#' at column 7"));
}

TEST_CASE_METHOD(QueryCatalog, "where: deep nesting is refused, not a crash") {
    const std::string deep = std::string(100000, '(') + "id = 1" + std::string(100000, ')');
    CHECK_THAT(error(deep), Catch::Contains("nested too deeply"));
    std::string nots;
    for (int i = 0; i < 10000; ++i) nots += "not ";
    CHECK_THAT(error(nots + "id = 1"), Catch::Contains("nested too deeply"));
}

TEST_CASE_METHOD(QueryCatalog, "where: an unknown bare name is an error naming it") {
    CHECK_THAT(error("betta > 1"), Catch::Contains("unknown name 'betta' at column 1"));
    CHECK_THAT(error("kappa = 1 or Beta > 0"), Catch::Contains("'Beta' at column 14"));
    // Explicit prefixes say exactly what they mean: a missing field is false.
    CHECK(ids("params.betta > 1").empty());
    CHECK_THAT(error("params. > 1"), Catch::Contains("expected a name after 'params.'"));
}

TEST_CASE_METHOD(QueryCatalog, "where: bare names are a run column, then a param, then a result") {
    // status is a run column even though run 2 has a param named status.
    CHECK(ids("status = 'weird'").empty());
    CHECK(ids("params.status = 'weird'") == Ids{2});
    // energy: run 5 has the param; runs 1 and 2 only the result.
    CHECK(ids("energy < 0.5") == Ids{1, 5});
    CHECK(ids("results.energy < 0.5") == Ids{1});
    CHECK(ids("params.energy < 0.5") == Ids{5});
    CHECK(ids("converged = true") == Ids{1});
    CHECK(ids("campaign = 'other' and pid > 1004") == Ids{5});
    CHECK(ids("started >= 1700000004") == Ids{4, 5});
    CHECK(ids("ended > 0") == Ids{1, 2, 3});
    CHECK(ids("host = 'node3'") == Ids{3});
    CHECK(ids("id != 1 and id <> 2 and id < 5") == Ids{3, 4});
}

TEST_CASE_METHOD(QueryCatalog, "where: comparison against a missing param is false") {
    CHECK(ids("beta < 1") == Ids{1, 2, 3, 4});
    CHECK(ids("beta != 1") == Ids{1, 2, 3, 4});
    CHECK(ids("not beta < 1") == Ids{5});
    CHECK(ids("results.energy > 0 or params.energy > 0") == Ids{1, 2, 5});
}

TEST_CASE_METHOD(QueryCatalog, "where: numbers match int and float params, never strings") {
    CHECK(ids("kappa = 2") == Ids{2, 4});
    CHECK(ids("kappa = 3") == Ids{3});  // stored as the float 3.0
    CHECK(ids("kappa == 3.0") == Ids{3});
    CHECK(ids("kappa > -1.5e0") == Ids{1, 2, 3, 4});
    CHECK(ids("method > 1").empty());
    CHECK(ids("method = '1'").empty());
    CHECK(ids("kappa = '2'").empty());
    CHECK(ids("converged = 1").empty());
    CHECK(ids("converged = false").empty());
}

TEST_CASE_METHOD(QueryCatalog, "where: run columns compare only with values of their type") {
    CHECK_THAT(error("host = 5"), Catch::Contains("'host' at column 1 is text"));
    CHECK_THAT(error("pid = 'x'"), Catch::Contains("'pid' at column 1 is a number"));
    CHECK_THAT(error("id like '1%'"), Catch::Contains("'id' at column 1 is a number"));
    CHECK_THAT(error("status = true"), Catch::Contains("is text"));
}

TEST_CASE_METHOD(QueryCatalog, "where: like matches string params and text columns") {
    CHECK(ids("method like 'dop%'") == Ids{1, 2, 5});
    CHECK(ids("method LIKE 'DOPRI_'") == Ids{1, 2, 5});
    CHECK(ids("host like 'node_' and not host like '%1'") == Ids{2, 3, 4, 5});
    CHECK(ids("beta like '1%'").empty());
}

TEST_CASE_METHOD(QueryCatalog, "find_runs filters by campaign and status, ordered by id, limited") {
    CHECK(ids("") == Ids{1, 2, 3, 4, 5});
    CHECK(ids("   ") == Ids{1, 2, 3, 4, 5});
    CHECK(ids(RunFilter{"other", {}, {}, {}}) == Ids{4, 5});
    CHECK(ids(RunFilter{"sweep", "finished", {}, {}}) == Ids{1, 2});
    CHECK(ids(RunFilter{{}, "running", "kappa = 2", {}}) == Ids{4});
    CHECK(ids(RunFilter{{}, {}, {}, 2}) == Ids{1, 2});
    CHECK(ids(RunFilter{"sweep", {}, "beta > 0", 0}).empty());
    CHECK(ids(RunFilter{"nope", {}, {}, {}}).empty());
}

TEST_CASE_METHOD(QueryCatalog, "find_runs returns each run's columns, params and results") {
    auto rows = find_runs(cat, RunFilter{{}, {}, "id = 1 or id = 3", {}});
    REQUIRE(rows.size() == 2);
    const RunRow& one = rows[0];
    CHECK(one.run_id == 1);
    CHECK(one.campaign == "sweep");
    CHECK(one.status == "finished");
    CHECK(one.host == "node1");
    CHECK(one.pid == 1001);
    CHECK(one.started == 1.7e9 + 1);
    CHECK(one.ended == 1.8e9 + 1);
    CHECK(same_typed(one.params, Json{{"beta", 1e-9}, {"method", "dopri5"}, {"kappa", 1}}));
    CHECK(same_typed(one.results, Json{{"energy", 0.4}, {"converged", true}}));
    CHECK(rows[1].reason == "nan in state");
    CHECK(rows[1].params["kappa"].is_number_float());

    auto running = find_runs(cat, RunFilter{{}, "running", {}, {}});
    REQUIRE(running.size() == 2);
    CHECK(running[0].ended == 0);
    CHECK(running[0].results.empty());
}

TEST_CASE("where: a read-only catalog answers queries") {
    TempDir dir;
    {
        Catalog cat(dir.catalog());
        CommitRecord c;
        c.opens.push_back(run_open(1, "sweep", {{"beta", 2.0}}));
        cat.record_commit(c);
    }
    Catalog ro(dir.catalog(), Catalog::Mode::read_only);
    auto rows = find_runs(ro, RunFilter{{}, {}, "beta = 2", {}});
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].params == Json{{"beta", 2.0}});
}

}  // namespace simsink::catalog::test
