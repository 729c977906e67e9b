#include "admin_client.hpp"

#include <filesystem>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace simsink::cli {

struct AdminClient::Impl {
    zmq::context_t ctx{1};
    zmq::socket_t sock{ctx, zmq::socket_type::dealer};
    std::uint64_t next_request = 1;
};

AdminClient::AdminClient(std::string endpoint)
    : impl_(std::make_unique<Impl>()), endpoint_(std::move(endpoint)) {
    // ZeroMQ connects lazily and would wait forever on a missing ipc path;
    // say plainly that no daemon is there.
    if (endpoint_.rfind("ipc://", 0) == 0 && !std::filesystem::exists(endpoint_.substr(6)))
        throw AdminError(proto::ErrorCode::timeout,
                         "no daemon admin socket at " + endpoint_.substr(6) +
                             " (is simsinkd running? give --admin or set SIMSINK_ADMIN)");
    impl_->sock.set(zmq::sockopt::linger, 0);
    impl_->sock.connect(endpoint_);
}

AdminClient::~AdminClient() = default;

proto::Json AdminClient::request(proto::MsgType type, const proto::Json* meta,
                                 std::chrono::milliseconds timeout) {
    auto& s = impl_->sock;
    const std::uint64_t id = impl_->next_request++;
    proto::Header h{type, static_cast<std::uint16_t>(meta ? proto::kFlagMeta : 0), id};
    auto hdr = proto::encode_header(h);
    if (meta) {
        s.send(zmq::buffer(hdr), zmq::send_flags::sndmore);
        s.send(zmq::buffer(proto::dump_meta(*meta)), zmq::send_flags::none);
    } else {
        s.send(zmq::buffer(hdr), zmq::send_flags::none);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            throw AdminError(proto::ErrorCode::timeout,
                             "no daemon answered at " + endpoint_ + " within " +
                                 std::to_string(timeout.count() / 1000.0).substr(0, 5) + " s");
        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, left);
        if (!(item.revents & ZMQ_POLLIN)) continue;
        std::vector<zmq::message_t> frames;
        (void)zmq::recv_multipart(s, std::back_inserter(frames));
        if (frames.empty()) continue;
        auto rh = proto::decode_header(
            {static_cast<const std::uint8_t*>(frames[0].data()), frames[0].size()});
        if (rh.number != id) continue;  // an answer to an earlier, timed-out request
        proto::Json m = proto::Json::object();
        if ((rh.flags & proto::kFlagMeta) && frames.size() > 1)
            m = proto::parse_meta(
                {static_cast<const std::uint8_t*>(frames[1].data()), frames[1].size()});
        if (rh.type == proto::MsgType::error) {
            auto code = proto::parse_error_code(m.value("code", "INTERNAL"))
                            .value_or(proto::ErrorCode::internal);
            throw AdminError(code, m.value("code", "ERROR") + ": " + m.value("message", ""));
        }
        return m;
    }
}

}  // namespace simsink::cli
