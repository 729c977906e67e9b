// A protocol-level ingest client for the integration tests: sends frames as
// given (a DEALER, as a client library would) and reads the daemon's replies.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "meta.hpp"
#include "wire.hpp"

namespace simsink::testing {

using proto::MsgType;

struct RawClient {
    zmq::context_t ctx;
    zmq::socket_t s{ctx, zmq::socket_type::dealer};
    explicit RawClient(const std::string& ep) {
        s.set(zmq::sockopt::linger, 0);
        s.connect(ep);
    }
    void send(std::vector<std::vector<std::uint8_t>> frames) {
        for (std::size_t i = 0; i < frames.size(); ++i)
            s.send(zmq::buffer(frames[i]),
                   i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    static std::vector<std::uint8_t> hdr(MsgType t, std::uint64_t n, std::uint16_t flags = 0) {
        return proto::encode_header({t, flags, n});
    }
    static std::vector<std::uint8_t> json(const proto::Json& j) {
        auto s = j.dump();
        return {s.begin(), s.end()};
    }
    void send_meta(MsgType t, std::uint64_t n, const proto::Json& j) {
        send({hdr(t, n, proto::kFlagMeta), json(j)});
    }
    std::pair<proto::Header, proto::Json> recv() {
        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
        REQUIRE(zmq::poll(&item, 1, std::chrono::seconds(10)) == 1);
        std::vector<zmq::message_t> f;
        (void)zmq::recv_multipart(s, std::back_inserter(f));
        auto h = proto::decode_header({static_cast<const std::uint8_t*>(f[0].data()), f[0].size()});
        proto::Json m = proto::Json::object();
        if (f.size() > 1)
            m = proto::parse_meta({static_cast<const std::uint8_t*>(f[1].data()), f[1].size()});
        return {h, m};
    }
    // Skips CREDIT and ACK notices; returns the next ERROR/WELCOME/PONG.
    std::pair<proto::Header, proto::Json> recv_answer() {
        for (;;) {
            auto r = recv();
            if (r.first.type != MsgType::credit && r.first.type != MsgType::ack) return r;
        }
    }
    void expect_error(const char* code, std::uint64_t number, const char* mentions = nullptr) {
        auto [h, m] = recv_answer();
        INFO("reply " << m.dump());
        REQUIRE(h.type == MsgType::error);
        CHECK(m["code"] == code);
        CHECK(h.number == number);
        if (mentions) CHECK_THAT(m["message"].get<std::string>(), Catch::Contains(mentions));
    }
    // FLUSH up to `seq` and wait for its ACK; any ERROR on the way fails.
    void flush(std::uint64_t seq) {
        send({hdr(MsgType::flush, seq)});
        for (;;) {
            auto [h, m] = recv();
            INFO("reply " << m.dump());
            REQUIRE(h.type != MsgType::error);
            if (h.type == MsgType::ack && h.number >= seq) return;
        }
    }
    // The daemon answers a PING with PONG carrying its `expected` for us.
    std::uint64_t expected() {
        send({hdr(MsgType::ping, 0)});
        for (;;) {
            auto [h, m] = recv();
            INFO("reply " << m.dump());
            REQUIRE(h.type != MsgType::error);
            if (h.type == MsgType::pong) return h.number;
        }
    }
    // HELLO; returns WELCOME's metadata.
    proto::Json hello(const std::string& client_id) {
        send_meta(MsgType::hello, 0, {{"client", client_id}, {"host", "t"}, {"pid", 1}});
        auto [h, m] = recv_answer();
        INFO("reply " << m.dump());
        REQUIRE(h.type == MsgType::welcome);
        return m;
    }
};

}  // namespace simsink::testing
