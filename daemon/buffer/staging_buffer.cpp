#include "staging_buffer.hpp"

#include <cassert>

namespace simsink::daemon {

namespace {

template <class T>
void append(std::vector<T>& to, std::vector<T>&& from) {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

}  // namespace

void PendingCommit::merge(PendingCommit&& later) {
    append(opens, std::move(later.opens));
    append(declares, std::move(later.declares));
    append(attrs, std::move(later.attrs));
    append(closes, std::move(later.closes));
    for (auto& [id, r] : later.rows) {
        auto it = rows.find(id);
        if (it == rows.end()) {
            rows.emplace(id, std::move(r));
            continue;
        }
        assert(it->second.first_row + it->second.rows == r.first_row);
        it->second.rows += r.rows;
        append(it->second.blocks, std::move(r.blocks));
    }
    for (auto& [id, c] : later.clients) {
        auto& mine = clients[id];
        if (c.committed_seq >= mine.committed_seq) mine = std::move(c);
    }
    bytes += later.bytes;
    row_count += later.row_count;
}

template <class Fn>
void StagingBuffer::with_target(Fn&& fn) {
    if (in_message_) {
        fn(message_);
        return;
    }
    std::lock_guard lock(mutex_);
    fn(current_);
}

void StagingBuffer::begin_message() {
    assert(!in_message_ && message_.empty());
    in_message_ = true;
}

void StagingBuffer::end_message() {
    assert(in_message_);
    in_message_ = false;
    if (message_.empty()) return;
    {
        std::lock_guard lock(mutex_);
        current_.merge(std::move(message_));
    }
    message_ = PendingCommit{};
}

void StagingBuffer::stage_open(catalog::RunOpen open) {
    with_target([&](PendingCommit& to) { to.opens.push_back(std::move(open)); });
}

void StagingBuffer::stage_declare(catalog::StreamDeclare declare) {
    with_target([&](PendingCommit& to) { to.declares.push_back(std::move(declare)); });
}

void StagingBuffer::stage_attrs(catalog::AttrUpdate attrs) {
    with_target([&](PendingCommit& to) { to.attrs.push_back(std::move(attrs)); });
}

void StagingBuffer::stage_close(catalog::RunClose close) {
    with_target([&](PendingCommit& to) { to.closes.push_back(std::move(close)); });
}

void StagingBuffer::stage_rows(std::int64_t stream_id, const StagedRows& meta,
                               std::uint64_t first_row, Payload payload) {
    // Counted at once: the bytes are held from now on, whoever sees them.
    bytes_.fetch_add(payload.bytes);
    with_target([&](PendingCommit& to) {
        auto [it, fresh] = to.rows.try_emplace(stream_id);
        auto& r = it->second;
        if (fresh) {
            r.campaign = meta.campaign;
            r.run_id = meta.run_id;
            r.kind = meta.kind;
            r.dtype = meta.dtype;
            r.shape = meta.shape;
            r.first_row = first_row;
        }
        assert(r.first_row + r.rows == first_row);
        r.rows += payload.rows;
        to.bytes += payload.bytes;
        to.row_count += payload.rows;
        r.blocks.push_back(std::move(payload));
    });
}

void StagingBuffer::stage_progress(const std::string& client_id, std::uint64_t seq,
                                   const std::string& host, std::int64_t pid, double now) {
    with_target([&](PendingCommit& to) {
        auto& c = to.clients[client_id];
        c.client_id = client_id;
        c.committed_seq = std::max(c.committed_seq, seq);
        c.host = host;
        c.pid = pid;
        c.last_seen = now;
    });
}

PendingCommit StagingBuffer::take() {
    std::lock_guard lock(mutex_);
    PendingCommit out = std::move(current_);
    current_ = PendingCommit{};
    return out;
}

std::uint64_t StagingBuffer::staged_bytes() const {
    std::lock_guard lock(mutex_);
    return current_.bytes;
}

bool StagingBuffer::has_staged() const {
    std::lock_guard lock(mutex_);
    return !current_.empty();
}

}  // namespace simsink::daemon
