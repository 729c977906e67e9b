#include "registry.hpp"

namespace simsink::daemon {

std::uint64_t row_bytes(DType dtype, const Shape& shape) {
    return proto::element_count(shape).value_or(0) * proto::itemsize(dtype);
}

void Registry::load(const catalog::LoadedState& s, double now) {
    for (const auto& r : s.runs) {
        auto& run = runs_[r.run_id];
        run.run_id = r.run_id;
        run.campaign = r.campaign;
        run.client_id = r.client_id;
        run.open = r.status == "running";
    }
    for (const auto& l : s.streams) {
        auto& st = streams_[l.stream_id];
        st.stream_id = l.stream_id;
        st.run_id = l.run_id;
        st.key = l.key;
        st.kind = l.kind;
        st.dtype = l.dtype;
        st.shape = l.shape;
        st.row_bytes = row_bytes(l.dtype, l.shape);
        st.next_row = l.rows;
        stream_keys_[{l.run_id, l.key}] = l.stream_id;
    }
    for (const auto& lc : s.clients) {
        auto& c = clients_[lc.client_id];
        c.client_id = lc.client_id;
        c.committed = lc.committed_seq;
        c.expected = lc.committed_seq + 1;
        c.last_seen = now;
        for (auto [h, id] : lc.runs) c.runs[h] = RunHandle{id, true};
        c.streams = lc.streams;
    }
    next_run_id_ = s.max_run_id + 1;
    next_stream_id_ = s.max_stream_id + 1;
}

ClientState& Registry::client(const std::string& id) {
    auto& c = clients_[id];
    c.client_id = id;
    return c;
}

ClientState* Registry::find_client(const std::string& id) {
    auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : &it->second;
}

ClientState* Registry::by_routing_id(const std::string& rid) {
    auto it = routing_.find(rid);
    return it == routing_.end() ? nullptr : find_client(it->second);
}

void Registry::bind(ClientState& c, const std::string& rid) {
    unbind(c);
    // A routing id reused by another client id: the old binding is stale.
    if (auto* other = by_routing_id(rid)) unbind(*other);
    c.routing_id = rid;
    routing_[rid] = c.client_id;
}

void Registry::unbind(ClientState& c) {
    if (c.routing_id.empty()) return;
    routing_.erase(c.routing_id);
    c.routing_id.clear();
}

RunState* Registry::run(std::int64_t id) {
    auto it = runs_.find(id);
    return it == runs_.end() ? nullptr : &it->second;
}

StreamState* Registry::stream(std::int64_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : &it->second;
}

StreamState* Registry::stream(std::int64_t run_id, const std::string& key) {
    auto it = stream_keys_.find({run_id, key});
    return it == stream_keys_.end() ? nullptr : stream(it->second);
}

RunState& Registry::add_run(std::string campaign, std::string client_id) {
    auto id = next_run_id_++;
    auto& r = runs_[id];
    r.run_id = id;
    r.campaign = std::move(campaign);
    r.client_id = std::move(client_id);
    return r;
}

StreamState& Registry::add_stream(std::int64_t run_id, std::string key, StreamKind kind,
                                  DType dtype, Shape shape) {
    auto id = next_stream_id_++;
    auto& s = streams_[id];
    s.stream_id = id;
    s.run_id = run_id;
    s.kind = kind;
    s.dtype = dtype;
    s.row_bytes = row_bytes(dtype, shape);
    s.shape = std::move(shape);
    stream_keys_[{run_id, key}] = id;
    s.key = std::move(key);
    return s;
}

std::size_t Registry::open_runs() const {
    std::size_t n = 0;
    for (const auto& [id, r] : runs_) n += r.open;
    return n;
}

std::size_t Registry::connected() const {
    return routing_.size();
}

}  // namespace simsink::daemon
