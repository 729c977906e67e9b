#include <cerrno>
#include <limits>

#include "catalog_fixture.hpp"
#include "query.hpp"
#include "sqlite.hpp"

namespace simsink::catalog::test {
namespace {

// One value from a raw SQL query on the catalog's own connection.
std::string scalar(const Catalog& cat, const char* query) {
    sqlite::Statement s(cat.handle(), query, "test query");
    REQUIRE(s.step());
    return s.column_text(0);
}

std::int64_t count(const Catalog& cat, const char* query) {
    sqlite::Statement s(cat.handle(), query, "test query");
    REQUIRE(s.step());
    return s.column_int64(0);
}

// One run with one stream and one segment of 10 rows, and client progress.
CommitRecord first_commit() {
    CommitRecord c;
    c.opens.push_back(run_open(1, "sweep", {{"beta", 1e-9}, {"method", "dopri5"}}));
    c.declares.push_back(stream_declare(10, 1, "state/y"));
    c.segments.push_back(segment(1, "sweep", {extent(10, 0, 10)}));
    c.clients.push_back(progress("c0ffee", 5));
    return c;
}

}  // namespace

TEST_CASE("a new catalog has schema version 1, WAL and foreign keys") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CHECK(count(cat, "PRAGMA user_version") == 1);
    CHECK(scalar(cat, "PRAGMA journal_mode") == "wal");
    CHECK(count(cat, "PRAGMA foreign_keys") == 1);
    CHECK(count(cat, "PRAGMA synchronous") == 2);  // FULL
    CHECK(cat.campaigns().empty());
    auto state = cat.load();
    CHECK(state.max_run_id == 0);
    CHECK(state.max_stream_id == 0);
    CHECK(state.max_segment_id == 0);
}

TEST_CASE("reopening a catalog keeps its contents") {
    TempDir dir;
    { Catalog(dir.catalog()).record_commit(first_commit()); }
    Catalog cat(dir.catalog());
    CHECK(cat.campaign_runs("sweep") == std::vector<std::int64_t>{1});
    CHECK(cat.run_view(1).streams.at(0).rows == 10);
}

TEST_CASE("read-only open of a missing file fails naming it") {
    TempDir dir;
    const auto missing = dir.path / "nowhere.sqlite";
    try {
        Catalog cat(missing, Catalog::Mode::read_only);
        FAIL("opened a missing catalog");
    } catch (const CatalogError& e) {
        CHECK_THAT(e.what(), Catch::Contains(missing.string()));
        CHECK(e.sqlite_code() == SQLITE_CANTOPEN);
    }
    CHECK_FALSE(std::filesystem::exists(missing));
}

TEST_CASE("read-only open of a file without the schema is refused") {
    TempDir dir;
    { sqlite::Db raw(dir.catalog(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 0); }
    CHECK_THROWS_AS(Catalog(dir.catalog(), Catalog::Mode::read_only), CatalogError);
}

TEST_CASE("a catalog of a newer schema version is refused") {
    TempDir dir;
    {
        Catalog cat(dir.catalog());
        sqlite3_exec(cat.handle(), "PRAGMA user_version = 2", nullptr, nullptr, nullptr);
    }
    CHECK_THROWS_WITH(Catalog(dir.catalog()), Catch::Contains("schema version 2"));
}

TEST_CASE("a read-only catalog cannot record a commit") {
    TempDir dir;
    { Catalog cat(dir.catalog()); }
    Catalog ro(dir.catalog(), Catalog::Mode::read_only);
    try {
        ro.record_commit(first_commit());
        FAIL("a read-only catalog recorded a commit");
    } catch (const CatalogError& e) {
        CHECK((e.sqlite_code() & 0xff) == SQLITE_READONLY);
    }
}

TEST_CASE("a read-only catalog sees each commit while the writer stays open") {
    TempDir dir;
    Catalog writer(dir.catalog());
    Catalog reader(dir.catalog(), Catalog::Mode::read_only);
    CHECK(reader.campaigns().empty());
    writer.record_commit(first_commit());
    CHECK(reader.campaigns() == std::vector<std::string>{"sweep"});
    CHECK(reader.run_view(1).streams.at(0).rows == 10);
}

TEST_CASE("commit records runs, params, streams, segments, closes and clients") {
    TempDir dir;
    Catalog cat(dir.catalog());
    cat.record_commit(first_commit());

    CommitRecord second;
    second.segments.push_back(segment(2, "sweep", {extent(10, 10, 5)}));
    second.closes.push_back(run_close(1, "finished", {{"energy", 0.25}}));
    second.clients.push_back(progress("c0ffee", 9));
    cat.record_commit(second);

    RunView v = cat.run_view(1);
    CHECK(v.run_id == 1);
    CHECK(v.campaign == "sweep");
    CHECK(v.status == "finished");
    CHECK(v.host == "node1");
    CHECK(v.pid == 1001);
    CHECK(v.started == 1.7e9 + 1);
    CHECK(v.ended == 1.8e9 + 1);
    CHECK(v.reason.empty());
    CHECK(v.params == Json{{"beta", 1e-9}, {"method", "dopri5"}});
    CHECK(v.results == Json{{"energy", 0.25}});
    REQUIRE(v.streams.size() == 1);
    const auto& s = v.streams[0];
    CHECK(s.stream_id == 10);
    CHECK(s.key == "state/y");
    CHECK(s.kind == StreamKind::stream);
    CHECK(s.dtype == DType::float64);
    CHECK(s.shape == Shape{100});
    CHECK(s.rows == 15);
    REQUIRE(s.extents.size() == 2);
    CHECK(s.extents[0].file == "sweep/seg-1.h5");
    CHECK(s.extents[0].dataset == "/s10");
    CHECK(s.extents[0].dst_row == 0);
    CHECK(s.extents[0].rows == 10);
    CHECK(s.extents[1].file == "sweep/seg-2.h5");
    CHECK(s.extents[1].dst_row == 10);
    CHECK(s.extents[1].rows == 5);

    auto segs = cat.segments("sweep");
    REQUIRE(segs.size() == 2);
    CHECK(segs[0].segment_id == 1);
    CHECK(segs[0].campaign == "sweep");
    CHECK(segs[0].file == "sweep/seg-1.h5");
    CHECK(segs[0].bytes == 4096);
    CHECK(segs[0].created > 1.5e9);
    CHECK(cat.segments().size() == 2);
    CHECK(cat.segments("other").empty());

    auto ext = cat.segment_extents(2);
    REQUIRE(ext.size() == 1);
    CHECK(ext[0].stream_id == 10);
    CHECK(ext[0].dst_row == 10);
    CHECK(ext[0].crc32 == 0xdeadbeef);

    CHECK(cat.running_runs().empty());
}

TEST_CASE("commit is atomic: a failing statement leaves nothing") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord bad = first_commit();
    std::string expect;
    SECTION("closing an unknown run") {
        bad.closes.push_back(run_close(999, "finished"));
        expect = "run 999";
    }
    SECTION("declaring a key twice") {
        bad.declares.push_back(stream_declare(11, 1, "state/y", "c0ffee", 2));
        expect = "state/y";
    }
    SECTION("an extent of an undeclared stream") {
        bad.segments.push_back(segment(2, "sweep", {extent(77, 0, 1)}));
        expect = "segment 2";
    }
    SECTION("a row count past INT64_MAX") {
        bad.segments.push_back(
            segment(2, "sweep", {extent(10, std::numeric_limits<std::uint64_t>::max() - 1, 1)}));
        expect = "segment 2";
    }
    try {
        cat.record_commit(bad);
        FAIL("a bad commit was recorded");
    } catch (const CatalogError& e) {
        CHECK_THAT(e.what(), Catch::Contains(expect));
    }

    CHECK(cat.campaigns().empty());
    CHECK(cat.segments().empty());
    CHECK(cat.running_runs().empty());
    auto state = cat.load();
    CHECK(state.runs.empty());
    CHECK(state.streams.empty());
    CHECK(state.clients.empty());
    CHECK(state.max_run_id == 0);
    CHECK(count(cat, "SELECT count(*) FROM params") == 0);
    CHECK(count(cat, "SELECT count(*) FROM client_handles") == 0);
    CHECK(count(cat, "SELECT count(*) FROM extents") == 0);

    // The catalog is still usable after the rollback.
    cat.record_commit(first_commit());
    CHECK(cat.campaign_runs("sweep") == std::vector<std::int64_t>{1});
}

TEST_CASE("typed params round-trip int float bool str array") {
    TempDir dir;
    Catalog cat(dir.catalog());
    const Json params = {
        {"nx", 64},
        {"negative", -3},
        {"int64_max", std::numeric_limits<std::int64_t>::max()},
        {"uint64_max", std::numeric_limits<std::uint64_t>::max()},
        {"beta", 1.5e-11},
        {"whole_float", 2.0},
        {"flag", true},
        {"off", false},
        {"method", "dopri5"},
        {"quoted", "it's \"x\""},
        {"empty", ""},
        {"grid", {1, 2, 3}},
        {"mixed", {1.5, 2}},
        {"names", {"a", "b"}},
    };
    CommitRecord c;
    c.opens.push_back(run_open(1, "sweep", params));
    c.closes.push_back(run_close(1, "finished", params));
    cat.record_commit(c);

    const RunView v = cat.run_view(1);
    CHECK(same_typed(v.params, params));
    CHECK(same_typed(v.results, params));
    CHECK(v.params["whole_float"].is_number_float());
    CHECK(v.params["nx"].is_number_integer());
    CHECK(v.params["flag"].is_boolean());
    CHECK(v.params["uint64_max"].get<std::uint64_t>() == std::numeric_limits<std::uint64_t>::max());

    // SQLite's own storage classes, as users' sqlite3 queries see them.
    sqlite::Statement s(cat.handle(),
                        "SELECT name, type, typeof(value) FROM params WHERE run_id = 1", "test");
    std::map<std::string, std::pair<std::string, std::string>> stored;
    while (s.step()) stored[s.column_text(0)] = {s.column_text(1), s.column_text(2)};
    using P = std::pair<std::string, std::string>;
    CHECK(stored["nx"] == P{"int", "integer"});
    CHECK(stored["beta"] == P{"float", "real"});
    CHECK(stored["whole_float"] == P{"float", "real"});
    CHECK(stored["flag"] == P{"bool", "integer"});
    CHECK(stored["method"] == P{"str", "text"});
    CHECK(stored["grid"] == P{"json", "text"});
    CHECK(stored["uint64_max"] == P{"json", "text"});

    auto rows = find_runs(cat, {});
    REQUIRE(rows.size() == 1);
    CHECK(same_typed(rows[0].params, params));
    CHECK(same_typed(rows[0].results, params));
}

TEST_CASE("load restores client handles and committed seq") {
    TempDir dir;
    {
        Catalog cat(dir.catalog());
        CommitRecord c;
        c.opens.push_back(run_open(1, "sweep", Json::object(), "aa", 1));
        c.opens.push_back(run_open(2, "sweep", Json::object(), "aa", 2));
        c.opens.push_back(run_open(3, "other", Json::object(), "bb", 1));
        c.declares.push_back(stream_declare(10, 1, "t", "aa", 1));
        c.declares.push_back(stream_declare(11, 2, "t", "aa", 2));
        StreamDeclare arr = stream_declare(12, 3, "grid/x", "bb", 7);
        arr.kind = StreamKind::array;
        arr.dtype = DType::complex128;
        arr.shape = {64, 33};
        c.declares.push_back(arr);
        c.segments.push_back(segment(5, "sweep", {extent(10, 0, 3), extent(11, 0, 4)}));
        c.segments.push_back(segment(6, "other", {extent(12, 0, 1)}));
        c.clients.push_back(progress("aa", 17, 1.9e9));
        c.clients.push_back(progress("bb", 3, 1.9e9 + 1));
        cat.record_commit(c);
        CommitRecord close;
        close.closes.push_back(run_close(2, "failed", Json::object(), "segfault"));
        cat.record_commit(close);
    }

    Catalog cat(dir.catalog());
    const LoadedState state = cat.load();
    CHECK(state.max_run_id == 3);
    CHECK(state.max_stream_id == 12);
    CHECK(state.max_segment_id == 6);

    REQUIRE(state.runs.size() == 3);
    CHECK(state.runs[0].run_id == 1);
    CHECK(state.runs[0].campaign == "sweep");
    CHECK(state.runs[0].status == "running");
    CHECK(state.runs[0].client_id == "aa");
    CHECK(state.runs[0].started == 1.7e9 + 1);
    CHECK(state.runs[1].status == "failed");
    CHECK(state.runs[2].campaign == "other");

    REQUIRE(state.streams.size() == 3);
    CHECK(state.streams[0].stream_id == 10);
    CHECK(state.streams[0].run_id == 1);
    CHECK(state.streams[0].rows == 3);
    CHECK(state.streams[1].rows == 4);
    CHECK(state.streams[2].kind == StreamKind::array);
    CHECK(state.streams[2].dtype == DType::complex128);
    CHECK(state.streams[2].shape == Shape{64, 33});
    CHECK(state.streams[2].key == "grid/x");
    CHECK(state.streams[2].rows == 1);

    REQUIRE(state.clients.size() == 2);
    const auto& aa = state.clients[0];
    CHECK(aa.client_id == "aa");
    CHECK(aa.committed_seq == 17);
    CHECK(aa.last_seen == 1.9e9);
    CHECK(aa.runs == std::map<std::uint32_t, std::int64_t>{{1, 1}, {2, 2}});
    CHECK(aa.streams == std::map<std::uint32_t, std::int64_t>{{1, 10}, {2, 11}});
    const auto& bb = state.clients[1];
    CHECK(bb.client_id == "bb");
    CHECK(bb.committed_seq == 3);
    CHECK(bb.runs == std::map<std::uint32_t, std::int64_t>{{1, 3}});
    CHECK(bb.streams == std::map<std::uint32_t, std::int64_t>{{7, 12}});

    auto running = cat.running_runs();
    REQUIRE(running.size() == 2);
    CHECK(running[0].run_id == 1);
    CHECK(running[1].run_id == 3);
    CHECK(running[1].client_id == "bb");
}

TEST_CASE("a second handle declared for an existing stream only adds the handle") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord first;
    first.opens.push_back(run_open(1, "sweep", Json::object(), "aa", 1));
    first.declares.push_back(stream_declare(10, 1, "t", "aa", 1));
    first.segments.push_back(segment(1, "sweep", {extent(10, 0, 5)}));
    cat.record_commit(first);
    // The same stream again under handle 2, in a later commit, then more rows.
    CommitRecord again;
    again.declares.push_back(stream_declare(10, 1, "t", "aa", 2));
    again.segments.push_back(segment(2, "sweep", {extent(10, 5, 3)}));
    REQUIRE_NOTHROW(cat.record_commit(again));
    const auto state = cat.load();
    REQUIRE(state.streams.size() == 1);
    CHECK(state.streams[0].rows == 8);
    REQUIRE(state.clients.size() == 1);
    CHECK(state.clients[0].streams.at(1) == 10);
    CHECK(state.clients[0].streams.at(2) == 10);
}

TEST_CASE("integrity_check of a healthy catalog is ok") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CHECK(cat.integrity_check() == "ok");
}

TEST_CASE("committed seq never decreases") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord a;
    a.clients.push_back(progress("aa", 10, 100));
    cat.record_commit(a);
    CommitRecord b;
    b.clients.push_back(progress("aa", 7, 200));
    cat.record_commit(b);
    auto state = cat.load();
    REQUIRE(state.clients.size() == 1);
    CHECK(state.clients[0].committed_seq == 10);
    CHECK(state.clients[0].last_seen == 200);

    CommitRecord c;
    c.clients.push_back(progress("aa", 11, 300));
    cat.record_commit(c);
    CHECK(cat.load().clients.at(0).committed_seq == 11);
}

TEST_CASE("attrs set before declare reach the stream") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord first;
    first.opens.push_back(run_open(1, "sweep"));
    first.attrs.push_back({1, "state/y", {{"units", "m"}, {"note", "old"}}});
    first.attrs.push_back({1, "", {{"author", "ana"}, {"note", "old"}}});
    cat.record_commit(first);
    CHECK(count(cat, "SELECT count(*) FROM key_attrs") == 1);

    CommitRecord second;
    second.declares.push_back(stream_declare(10, 1, "state/y"));
    second.declares.push_back(stream_declare(11, 1, "diag/energy", "c0ffee", 2));
    // Same commit as the declare: declares are applied before attributes.
    second.attrs.push_back({1, "diag/energy", {{"units", "J"}}});
    second.attrs.push_back({1, "", {{"note", "new"}}});
    cat.record_commit(second);
    CHECK(count(cat, "SELECT count(*) FROM key_attrs") == 0);

    CommitRecord third;
    third.attrs.push_back({1, "state/y", {{"note", "new"}, {"long_name", "state"}}});
    cat.record_commit(third);

    const RunView v = cat.run_view(1);
    CHECK(v.attrs == Json{{"author", "ana"}, {"note", "new"}});
    REQUIRE(v.streams.size() == 2);
    CHECK(v.streams[0].key == "diag/energy");
    CHECK(v.streams[0].attrs == Json{{"units", "J"}});
    CHECK(v.streams[1].key == "state/y");
    CHECK(v.streams[1].attrs == Json{{"units", "m"}, {"note", "new"}, {"long_name", "state"}});
}

TEST_CASE("attrs of an unknown run fail the commit") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord c;
    c.attrs.push_back({5, "", {{"a", 1}}});
    CHECK_THROWS_WITH(cat.record_commit(c), Catch::Contains("run 5"));
    CommitRecord d;
    d.attrs.push_back({5, "k", {{"a", 1}}});
    CHECK_THROWS_AS(cat.record_commit(d), CatalogError);
}

TEST_CASE("replace_segments swaps extents in one transaction") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord c;
    c.opens.push_back(run_open(1, "sweep"));
    c.declares.push_back(stream_declare(10, 1, "t"));
    c.declares.push_back(stream_declare(11, 1, "y", "c0ffee", 2));
    c.segments.push_back(segment(1, "sweep", {extent(10, 0, 4), extent(11, 0, 4)}));
    c.segments.push_back(segment(2, "sweep", {extent(10, 4, 4), extent(11, 4, 4)}));
    cat.record_commit(c);

    cat.replace_segments({1, 2}, segment(3, "sweep", {extent(10, 0, 8), extent(11, 0, 8, 0)}));
    auto segs = cat.segments("sweep");
    REQUIRE(segs.size() == 1);
    CHECK(segs[0].segment_id == 3);
    CHECK(cat.segment_extents(1).empty());
    CHECK(cat.segment_extents(2).empty());
    CHECK(cat.segment_extents(3).size() == 2);
    RunView v = cat.run_view(1);
    for (const auto& s : v.streams) {
        CHECK(s.rows == 8);
        REQUIRE(s.extents.size() == 1);
        CHECK(s.extents[0].file == "sweep/seg-3.h5");
        CHECK(s.extents[0].rows == 8);
    }

    // A replacement that names an unknown segment changes nothing.
    CHECK_THROWS_WITH(cat.replace_segments({3, 99}, segment(4, "sweep", {extent(10, 0, 8)})),
                      Catch::Contains("segment 99"));
    segs = cat.segments("sweep");
    REQUIRE(segs.size() == 1);
    CHECK(segs[0].segment_id == 3);
    CHECK(cat.segment_extents(3).size() == 2);
    CHECK(cat.segment_extents(4).empty());
    CHECK(cat.load().max_segment_id == 3);
}

TEST_CASE("stream rows grow to the furthest extent and never shrink") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord c;
    c.opens.push_back(run_open(1, "sweep"));
    c.declares.push_back(stream_declare(10, 1, "t"));
    c.segments.push_back(segment(1, "sweep", {extent(10, 0, 5), extent(10, 5, 20, 5)}));
    cat.record_commit(c);
    CHECK(cat.run_view(1).streams.at(0).rows == 25);

    CommitRecord again;
    again.segments.push_back(segment(2, "sweep", {extent(10, 0, 3)}));
    cat.record_commit(again);
    CHECK(cat.run_view(1).streams.at(0).rows == 25);
}

TEST_CASE("run_view orders streams by key and extents by dst_row") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord c;
    c.opens.push_back(run_open(1, "sweep"));
    c.declares.push_back(stream_declare(10, 1, "z/last"));
    c.declares.push_back(stream_declare(11, 1, "a/first", "c0ffee", 2));
    c.declares.push_back(stream_declare(12, 1, "m/middle", "c0ffee", 3));
    // Segment 1 holds the later rows of z/last.
    c.segments.push_back(segment(1, "sweep", {extent(10, 6, 3)}));
    c.segments.push_back(segment(2, "sweep", {extent(10, 0, 6)}));
    cat.record_commit(c);

    const RunView v = cat.run_view(1);
    REQUIRE(v.streams.size() == 3);
    CHECK(v.streams[0].key == "a/first");
    CHECK(v.streams[1].key == "m/middle");
    CHECK(v.streams[2].key == "z/last");
    CHECK(v.streams[0].rows == 0);
    CHECK(v.streams[0].extents.empty());
    const auto& z = v.streams[2].extents;
    REQUIRE(z.size() == 2);
    CHECK(z[0].dst_row == 0);
    CHECK(z[0].file == "sweep/seg-2.h5");
    CHECK(z[1].dst_row == 6);
    CHECK(z[1].file == "sweep/seg-1.h5");
}

TEST_CASE("run_views reads several runs as run_view reads each, and names a missing one") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord c;
    c.opens.push_back(run_open(1, "sweep", {{"beta", 1.5}}));
    c.opens.push_back(run_open(2, "sweep", {{"beta", 2.5}}));
    c.opens.push_back(run_open(3, "other"));
    c.declares.push_back(stream_declare(10, 1, "y"));
    c.declares.push_back(stream_declare(11, 2, "y", "c0ffee", 2));
    c.declares.push_back(stream_declare(12, 2, "z", "c0ffee", 3));
    c.segments.push_back(segment(1, "sweep", {extent(10, 0, 4), extent(11, 0, 7)}));
    c.segments.push_back(segment(2, "sweep", {extent(11, 7, 2), extent(12, 0, 1)}));
    cat.record_commit(c);

    const std::vector<std::int64_t> ids{2, 3, 1};
    const auto views = cat.run_views(ids);
    REQUIRE(views.size() == 3);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        INFO("run " << ids[i]);
        const RunView one = cat.run_view(ids[i]);
        const RunView& v = views[i];
        CHECK(v.run_id == ids[i]);
        CHECK(v.campaign == one.campaign);
        CHECK(v.params == one.params);
        REQUIRE(v.streams.size() == one.streams.size());
        for (std::size_t k = 0; k < v.streams.size(); ++k) {
            CHECK(v.streams[k].key == one.streams[k].key);
            CHECK(v.streams[k].rows == one.streams[k].rows);
            REQUIRE(v.streams[k].extents.size() == one.streams[k].extents.size());
            for (std::size_t e = 0; e < v.streams[k].extents.size(); ++e) {
                CHECK(v.streams[k].extents[e].file == one.streams[k].extents[e].file);
                CHECK(v.streams[k].extents[e].dst_row == one.streams[k].extents[e].dst_row);
            }
        }
    }
    // Each run gets its own rows, not the previous run's.
    CHECK(views[0].params.at("beta") == 2.5);
    REQUIRE(views[0].streams.size() == 2);
    CHECK(views[0].streams[0].rows == 9);
    CHECK(views[0].streams[0].extents.size() == 2);
    CHECK(views[1].streams.empty());
    CHECK(views[2].params.at("beta") == 1.5);
    REQUIRE(views[2].streams.size() == 1);
    CHECK(views[2].streams[0].rows == 4);

    const std::vector<std::int64_t> with_missing{1, 99};
    CHECK_THROWS_WITH(cat.run_views(with_missing), Catch::Contains("run 99: no such run"));
    CHECK(cat.run_views({}).empty());
}

TEST_CASE("campaigns and campaign runs are listed in ascending id order") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord c;
    c.opens.push_back(run_open(5, "zeta"));
    c.opens.push_back(run_open(2, "alpha"));
    c.opens.push_back(run_open(3, "zeta"));
    cat.record_commit(c);
    CommitRecord d;
    d.opens.push_back(run_open(1, "zeta"));
    cat.record_commit(d);

    CHECK(cat.campaigns() == std::vector<std::string>{"zeta", "alpha"});
    CHECK(cat.campaign_runs("zeta") == std::vector<std::int64_t>{1, 3, 5});
    CHECK(cat.campaign_runs("alpha") == std::vector<std::int64_t>{2});
    CHECK(cat.campaign_runs("nope").empty());
}

TEST_CASE("run_view of an unknown run names it") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CHECK_THROWS_WITH(cat.run_view(42), Catch::Contains("run 42"));
}

TEST_CASE("closing a run with status running is refused") {
    TempDir dir;
    Catalog cat(dir.catalog());
    CommitRecord c;
    c.opens.push_back(run_open(1, "sweep"));
    cat.record_commit(c);
    CommitRecord d;
    d.closes.push_back(run_close(1, "running"));
    CHECK_THROWS_AS(cat.record_commit(d), CatalogError);
    CHECK(cat.run_view(1).status == "running");
}

TEST_CASE("a full database reports disk_full and keeps earlier commits") {
    TempDir dir;
    Catalog cat(dir.catalog());
    cat.record_commit(first_commit());
    const auto pages = count(cat, "PRAGMA page_count");
    const std::string cap = "PRAGMA max_page_count = " + std::to_string(pages);
    REQUIRE(sqlite3_exec(cat.handle(), cap.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);

    CommitRecord big;
    big.opens.push_back(run_open(2, "sweep", {{"blob", std::string(200000, 'x')}}));
    try {
        cat.record_commit(big);
        FAIL("a commit past max_page_count was recorded");
    } catch (const CatalogError& e) {
        CHECK(e.disk_full());
        CHECK((e.sqlite_code() & 0xff) == SQLITE_FULL);
    }
    CHECK(cat.campaign_runs("sweep") == std::vector<std::int64_t>{1});

    REQUIRE(sqlite3_exec(cat.handle(), "PRAGMA max_page_count = 1073741823", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    cat.record_commit(big);
    CHECK(cat.campaign_runs("sweep") == std::vector<std::int64_t>{1, 2});
}

TEST_CASE("disk_full is true for ENOSPC I/O errors and false for other I/O errors") {
    CHECK(CatalogError("w", SQLITE_IOERR_WRITE, ENOSPC).disk_full());
    CHECK(CatalogError("w", SQLITE_IOERR_FSYNC, ENOSPC).disk_full());
    CHECK_FALSE(CatalogError("w", SQLITE_IOERR_WRITE, EIO).disk_full());
    CHECK_FALSE(CatalogError("w", SQLITE_CONSTRAINT_UNIQUE).disk_full());
    CHECK(CatalogError("w", SQLITE_FULL).disk_full());
}

TEST_CASE("a moved catalog keeps working and the moved-from one has no handle") {
    TempDir dir;
    Catalog a(dir.catalog());
    Catalog b(std::move(a));
    CHECK(a.handle() == nullptr);  // NOLINT(bugprone-use-after-move): the contract under test
    b.record_commit(first_commit());
    CHECK(b.campaigns() == std::vector<std::string>{"sweep"});
}

}  // namespace simsink::catalog::test
