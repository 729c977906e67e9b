#include <catch2/catch.hpp>

#include "buffer/staging_buffer.hpp"

using namespace simsink;
using namespace simsink::daemon;

namespace {

Payload payload(std::size_t bytes, std::uint64_t rows) {
    auto owner = std::make_shared<std::vector<std::uint8_t>>(bytes);
    return Payload{std::shared_ptr<const void>(owner, owner->data()), owner->data(), bytes, rows};
}

StagedRows meta() {
    StagedRows m;
    m.campaign = "c";
    m.run_id = 1;
    m.dtype = DType::float64;
    m.shape = {2};
    return m;
}

}  // namespace

TEST_CASE("staged bytes are counted until the writer releases them") {
    StagingBuffer b;
    b.stage_rows(7, meta(), 0, payload(160, 10));
    CHECK(b.bytes() == 160);
    CHECK(b.staged_bytes() == 160);
    auto p = b.take();
    CHECK(b.staged_bytes() == 0);
    CHECK(b.bytes() == 160);  // in the commit under way
    CHECK(p.rows.at(7).rows == 10);
    b.release(p.bytes);
    CHECK(b.bytes() == 0);
}

TEST_CASE("rows of one stream staged in several messages stay contiguous") {
    StagingBuffer b;
    b.stage_rows(7, meta(), 100, payload(16, 1));
    b.stage_rows(7, meta(), 101, payload(32, 2));
    auto p = b.take();
    const auto& r = p.rows.at(7);
    CHECK(r.first_row == 100);
    CHECK(r.rows == 3);
    CHECK(r.blocks.size() == 2);
}

TEST_CASE("a failed commit merged with what was staged since keeps order and counts") {
    StagingBuffer b;
    b.stage_rows(7, meta(), 0, payload(16, 1));
    b.stage_progress("client", 5, "h", 1, 0);
    auto failed = b.take();
    b.stage_rows(7, meta(), 1, payload(16, 1));
    b.stage_rows(8, meta(), 0, payload(16, 1));
    b.stage_progress("client", 9, "h", 1, 0);
    failed.merge(b.take());
    CHECK(failed.rows.at(7).rows == 2);
    CHECK(failed.rows.at(7).first_row == 0);
    CHECK(failed.rows.at(8).rows == 1);
    CHECK(failed.clients.at("client").committed_seq == 9);
    CHECK(failed.bytes == 48);
    CHECK(failed.row_count == 3);
}

TEST_CASE("an empty take is empty; progress alone is not") {
    StagingBuffer b;
    CHECK(b.take().empty());
    b.stage_progress("client", 1, "h", 1, 0);
    CHECK_FALSE(b.take().empty());
}

TEST_CASE("a commit takes all of a message or none of it: blocks and seq together") {
    // The writer's take() can run at any moment of the I/O thread's work on
    // a message. Were it to take the first block of an APPEND without the
    // second and without the seq, a crash after that commit would have the
    // client resend the message and the first block stored twice.
    StagingBuffer b;
    b.stage_rows(7, meta(), 0, payload(16, 1));
    b.stage_progress("client", 1, "h", 1, 0);
    {
        StagingBuffer::MessageScope message(b);
        b.stage_rows(7, meta(), 1, payload(16, 1));  // x of seq 2
        auto mid = b.take();                          // the writer, in the middle of it
        CHECK(mid.rows.at(7).rows == 1);              // only what came before the message
        CHECK(mid.clients.at("client").committed_seq == 1);
        CHECK(b.bytes() == 32);  // the message's bytes are held, and counted, already
        b.stage_rows(8, meta(), 0, payload(16, 1));  // y of seq 2
        b.stage_progress("client", 2, "h", 1, 0);
        CHECK_FALSE(b.has_staged());
    }
    auto p = b.take();
    CHECK(p.rows.at(7).first_row == 1);
    CHECK(p.rows.at(7).rows == 1);
    CHECK(p.rows.at(8).rows == 1);
    CHECK(p.clients.at("client").committed_seq == 2);
    CHECK(p.bytes == 32);
}

TEST_CASE("a message that stages nothing but its seq still reaches the writer") {
    StagingBuffer b;
    {
        StagingBuffer::MessageScope message(b);
        b.stage_progress("client", 3, "h", 1, 0);
    }
    CHECK(b.take().clients.at("client").committed_seq == 3);
    // And a scope left by an exception still hands over what was staged.
    try {
        StagingBuffer::MessageScope message(b);
        b.stage_close(catalog::RunClose{1, "failed", Json::object(), "x", 0});
        throw std::runtime_error("handler failed");
    } catch (const std::runtime_error&) {
    }
    CHECK(b.take().closes.size() == 1);
    b.stage_open(catalog::RunOpen{});  // outside a message: at once
    CHECK(b.has_staged());
}
