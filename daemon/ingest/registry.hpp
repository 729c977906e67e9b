// The I/O thread's picture of clients, runs and streams: enough to validate
// every request and map client handles to global ids without touching the
// catalog. Loaded from the catalog at start, then kept in step with what the
// I/O thread stages (it runs ahead of the catalog by at most one commit).
//
// Owned by the I/O thread only; not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "catalog.hpp"
#include "records.hpp"

namespace simsink::daemon {

struct StreamState {
    std::int64_t stream_id = 0;
    std::int64_t run_id = 0;
    std::string key;
    StreamKind kind = StreamKind::stream;
    DType dtype = DType::float64;
    Shape shape;
    std::uint64_t row_bytes = 0;  // one row (stream) or the whole array
    std::uint64_t next_row = 0;   // rows staged or committed so far
};

struct RunState {
    std::int64_t run_id = 0;
    std::string campaign;
    std::string client_id;
    bool open = true;  // false once closed, failed or lost
};

struct RunHandle {
    std::int64_t run_id = 0;
    bool committed = false;  // the OPEN_RUN is durable, the id may be reported
};

struct ClientState {
    std::string client_id;
    std::uint64_t expected = 1;      // next sequence number accepted
    std::uint64_t committed = 0;     // highest durable sequence number
    std::uint64_t gap_reported = 0;  // `expected` for which OUT_OF_ORDER was sent
    std::map<std::uint32_t, RunHandle> runs;
    std::map<std::uint32_t, std::int64_t> streams;
    std::string host;
    std::int64_t pid = 0;
    double last_seen = 0;
    std::string routing_id;  // empty while not connected
};

class Registry {
  public:
    // `now` is the daemon start: loaded clients get lost_timeout from then on.
    void load(const catalog::LoadedState& state, double now);

    ClientState& client(const std::string& client_id);  // created on first use
    ClientState* find_client(const std::string& client_id);
    ClientState* by_routing_id(const std::string& routing_id);
    void bind(ClientState& c, const std::string& routing_id);
    void unbind(ClientState& c);

    RunState* run(std::int64_t run_id);
    StreamState* stream(std::int64_t stream_id);
    StreamState* stream(std::int64_t run_id, const std::string& key);

    RunState& add_run(std::string campaign, std::string client_id);
    StreamState& add_stream(std::int64_t run_id, std::string key, StreamKind kind, DType dtype,
                            Shape shape);

    std::unordered_map<std::string, ClientState>& clients() { return clients_; }
    const std::map<std::int64_t, RunState>& runs() const { return runs_; }
    std::size_t open_runs() const;
    std::size_t connected() const;

  private:
    std::unordered_map<std::string, ClientState> clients_;
    std::unordered_map<std::string, std::string> routing_;  // routing id -> client id
    std::map<std::int64_t, RunState> runs_;
    std::unordered_map<std::int64_t, StreamState> streams_;
    std::map<std::pair<std::int64_t, std::string>, std::int64_t> stream_keys_;
    std::int64_t next_run_id_ = 1;
    std::int64_t next_stream_id_ = 1;
};

std::uint64_t row_bytes(DType dtype, const Shape& shape);

}  // namespace simsink::daemon
