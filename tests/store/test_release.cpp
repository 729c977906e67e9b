// store::release_later / remove_later / release_pending, and the place on
// the commit's path that uses them: views replaced by save_image.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <string>

#include "h5.hpp"
#include "release.hpp"
#include "store_fixture.hpp"

using namespace simsink;
using namespace simsink::store;
using namespace simsink::store::testing;

namespace {

bool fd_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

std::string contents(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

std::vector<std::byte> bytes_of(const std::string& s) {
    std::vector<std::byte> b(s.size());
    std::memcpy(b.data(), s.data(), s.size());
    return b;
}

}  // namespace

TEST_CASE("release_later keeps a replaced file open until the release thread closes it",
          "[release]") {
    TempDir dir;
    write_text(dir / "view.h5", "old");
    write_text(dir / "view.h5.tmp", "new");
    const int fd = ::open((dir / "view.h5").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::rename((dir / "view.h5.tmp").c_str(), (dir / "view.h5").c_str()) == 0);
    // The replaced inode is still readable through the descriptor.
    char buf[8] = {};
    CHECK(::pread(fd, buf, sizeof buf, 0) == 3);
    CHECK(std::string(buf) == "old");
    release_later(fd);
    release_pending();
    CHECK_FALSE(fd_open(fd));
    CHECK(contents(dir / "view.h5") == "new");
}

TEST_CASE("release_later ignores a negative descriptor", "[release]") {
    release_later(-1);
    release_pending();
    SUCCEED("no crash, no wait");
}

TEST_CASE("remove_later removes the path once release_pending returns", "[release]") {
    TempDir dir;
    for (int i = 0; i < 20; ++i) write_text(dir / ("seg-" + std::to_string(i) + ".h5"), "x");
    for (int i = 0; i < 20; ++i) remove_later(dir / ("seg-" + std::to_string(i) + ".h5"));
    remove_later(dir / "never-there.h5");  // an error on the thread is ignored
    release_pending();
    CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("save_image replaces the file and leaves no descriptor and no tmp file behind",
          "[release][view]") {
    TempDir dir;
    const auto target = dir / "run-1.h5";
    const std::size_t before = open_fds();
    for (const char* text : {"first", "second", "third"}) h5::save_image(target, bytes_of(text));
    release_pending();
    CHECK(contents(target) == "third");
    CHECK_FALSE(fs::exists(dir / "run-1.h5.tmp"));
    CHECK(open_fds() == before);
}

TEST_CASE("a save_image whose rename fails closes what it opened", "[release][view]") {
    TempDir dir;
    // The target is a directory that is not empty: open(2) of it works,
    // rename(2) of a file over it fails.
    const auto target = dir / "run-1.h5";
    fs::create_directory(target);
    write_text(target / "keep", "x");
    const std::size_t before = open_fds();
    CHECK_THROWS_AS(h5::save_image(target, bytes_of("new")), StoreError);
    release_pending();
    CHECK(open_fds() == before);
    CHECK(contents(target / "keep") == "x");
    CHECK_FALSE(fs::exists(dir / "run-1.h5.tmp"));
}
