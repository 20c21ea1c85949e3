// Baselines of notify_ingest_bench: the least a correct NOTIFY receiver must do.
//
// Built twice from this one file, so that (b) is exactly (a) plus the XML work:
//   ingest_baseline_transport (a): libuv + llhttp; checks NT, NTS, SID and SEQ, looks the SID
//       up in a hash map, checks the SEQ order and answers 200 (412 unknown SID, 400 bad
//       headers). No XML: the transport's ceiling.
//   ingest_baseline_xml (b, -DBASELINE_XML): the same plus tinyxml2 parsing of the property
//       set, reading every variable, and parsing of the LastChange document inside it (every
//       `val` read): the full-work ceiling.
// Both read the SentNs stamp of notify_loadgen for latency (a with a substring search).
//
//   ingest_baseline_{transport,xml} --port P --targets FILE [--listen IP] [--spread]
//
// --spread (for scripts/reorder-spread.sh, issue 18): also records each NOTIFY's SEQ and
// arrival time and prints how far arrival order strays from SEQ order: the share of events
// that arrived after a higher SEQ of their SID, how many SEQs behind the highest they were,
// and how long after the first higher SEQ they arrived (the wait a reorder window needs to
// put them back in order).
//
// Runs until SIGTERM or SIGINT, then prints one line of figures and exits.
#include <llhttp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#ifdef BASELINE_XML
#include <tinyxml2.h>
#endif

#define UVGENA_BENCH_NO_CHILD
#include "support/bench_util.hpp"

namespace {

using uvgena_bench::now_ns;

struct SidState {
    std::uint32_t next_seq = 0;
};

struct Stats {
    std::uint64_t received = 0, seq_errors = 0, bad = 0, unknown = 0, xml_errors = 0;
    std::uint64_t first_rx = 0, last_rx = 0;
    std::size_t sink = 0;
    std::vector<std::uint32_t> latency_us;
};

std::unordered_map<std::string, SidState> g_sids;
// --spread: (SID index, SEQ, arrival ns) of every NOTIFY, in arrival order.
struct Arrival {
    std::uint32_t sid;
    std::uint32_t seq;
    std::uint64_t at;
};
bool g_spread = false;
std::vector<Arrival> g_arrivals;
std::unordered_map<std::string, std::uint32_t> g_sid_index;
Stats g_stats;
uv_loop_t* g_loop = nullptr;
uv_tcp_t g_server;
uv_signal_t g_sigterm, g_sigint;

struct Conn {
    uv_tcp_t tcp{};
    llhttp_t parser{};
    std::string field, value, body;
    std::string nt, nts, sid, seq;
    bool last_was_value = false;
    bool closing = false;
    char buf[64 * 1024];
};

llhttp_settings_t g_settings;

void on_closed(uv_handle_t* h) {
    delete static_cast<Conn*>(h->data);
}

void close_conn(Conn* c) {
    if (c->closing) return;
    c->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
}

void take_header(Conn* c) {
    if (c->field.empty()) return;
    std::string& f = c->field;
    for (char& ch : f) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (f == "nt")
        c->nt = c->value;
    else if (f == "nts")
        c->nts = c->value;
    else if (f == "sid")
        c->sid = c->value;
    else if (f == "seq")
        c->seq = c->value;
    c->field.clear();
    c->value.clear();
}

int on_message_begin(llhttp_t* p) {
    auto* c = static_cast<Conn*>(p->data);
    c->field.clear();
    c->value.clear();
    c->body.clear();
    c->nt.clear();
    c->nts.clear();
    c->sid.clear();
    c->seq.clear();
    c->last_was_value = false;
    return 0;
}

int on_header_field(llhttp_t* p, const char* at, size_t n) {
    auto* c = static_cast<Conn*>(p->data);
    if (c->last_was_value) take_header(c);
    c->last_was_value = false;
    c->field.append(at, n);
    return 0;
}

int on_header_value(llhttp_t* p, const char* at, size_t n) {
    auto* c = static_cast<Conn*>(p->data);
    c->last_was_value = true;
    c->value.append(at, n);
    return 0;
}

int on_headers_complete(llhttp_t* p) {
    take_header(static_cast<Conn*>(p->data));
    return 0;
}

int on_body(llhttp_t* p, const char* at, size_t n) {
    auto* c = static_cast<Conn*>(p->data);
    if (c->body.size() + n > (1u << 20)) return -1;  // bounded like the real listener
    c->body.append(at, n);
    return 0;
}

void record_latency(std::string_view stamp) {
    std::uint64_t sent = std::strtoull(std::string(stamp).c_str(), nullptr, 10);
    std::uint64_t now = now_ns();
    if (sent > 0 && now > sent) {
        g_stats.latency_us.push_back(static_cast<std::uint32_t>((now - sent) / 1000));
    }
}

#ifdef BASELINE_XML
/// Parses the property set and the LastChange inside it, reading every value.
bool parse_body(const std::string& body) {
    tinyxml2::XMLDocument doc;
    if (doc.Parse(body.data(), body.size()) != tinyxml2::XML_SUCCESS) return false;
    const tinyxml2::XMLElement* root = doc.RootElement();
    if (!root) return false;
    for (auto* prop = root->FirstChildElement(); prop; prop = prop->NextSiblingElement()) {
        for (auto* var = prop->FirstChildElement(); var; var = var->NextSiblingElement()) {
            const char* name = var->Name();
            const char* colon = std::strchr(name, ':');
            std::string_view local = colon ? colon + 1 : name;
            const char* text = var->GetText();
            std::string_view value = text ? text : "";
            g_stats.sink += local.size() + value.size();
            if (local == "SentNs") record_latency(value);
            if (local == "LastChange" && !value.empty()) {
                tinyxml2::XMLDocument lc;
                if (lc.Parse(value.data(), value.size()) != tinyxml2::XML_SUCCESS) return false;
                const tinyxml2::XMLElement* event = lc.RootElement();
                if (!event) return false;
                for (auto* inst = event->FirstChildElement(); inst;
                     inst = inst->NextSiblingElement()) {
                    g_stats.sink +=
                        std::strlen(inst->Attribute("val") ? inst->Attribute("val") : "");
                    for (auto* v = inst->FirstChildElement(); v; v = v->NextSiblingElement()) {
                        const char* val = v->Attribute("val");
                        g_stats.sink += std::strlen(v->Name()) + (val ? std::strlen(val) : 0);
                    }
                }
            }
        }
    }
    return true;
}
#else
/// No XML: only the SentNs stamp is found, for the latency figure.
bool parse_body(const std::string& body) {
    auto at = body.find("<SentNs>");
    if (at == std::string::npos) return false;
    auto end = body.find("</SentNs>", at);
    if (end == std::string::npos) return false;
    record_latency(std::string_view(body).substr(at + 8, end - at - 8));
    g_stats.sink += body.size();
    return true;
}
#endif

void write_done(uv_write_t* req, int status) {
    auto* c = static_cast<Conn*>(req->data);
    delete req;
    if (status < 0 || !llhttp_should_keep_alive(&c->parser)) close_conn(c);
}

void answer(Conn* c, int status) {
    static const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    static const std::string ok_close =
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    static const std::string bad = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    static const std::string gone = "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n";
    const std::string* text = status == 200
                                  ? (llhttp_should_keep_alive(&c->parser) ? &ok : &ok_close)
                              : status == 412 ? &gone
                                              : &bad;
    uv_buf_t buf =
        uv_buf_init(const_cast<char*>(text->data()), static_cast<unsigned>(text->size()));
    auto* req = new uv_write_t;
    req->data = c;
    if (uv_write(req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, write_done) < 0) {
        delete req;
        close_conn(c);
    }
}

int on_message_complete(llhttp_t* p) {
    auto* c = static_cast<Conn*>(p->data);
    std::uint64_t now = now_ns();
    if (g_stats.first_rx == 0) g_stats.first_rx = now;
    if (llhttp_get_method(p) != HTTP_NOTIFY || c->nt != "upnp:event" ||
        c->nts != "upnp:propchange" || c->seq.empty() ||
        c->seq.find_first_not_of("0123456789") != std::string::npos) {
        ++g_stats.bad;
        answer(c, 400);
        return 0;
    }
    auto it = g_sids.find(c->sid);
    if (it == g_sids.end()) {
        ++g_stats.unknown;
        answer(c, 412);
        return 0;
    }
    auto seq = static_cast<std::uint32_t>(std::strtoul(c->seq.c_str(), nullptr, 10));
    if (seq != it->second.next_seq) ++g_stats.seq_errors;
    if (g_spread) {
        auto [idx, fresh] = g_sid_index.try_emplace(c->sid, g_sid_index.size());
        (void)fresh;
        g_arrivals.push_back({idx->second, seq, now});
    }
    it->second.next_seq = seq + 1;
    if (!parse_body(c->body)) ++g_stats.xml_errors;
    ++g_stats.received;
    g_stats.last_rx = now_ns();
    answer(c, 200);
    return 0;
}

void alloc_cb(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(h->data);
    *buf = uv_buf_init(c->buf, sizeof c->buf);
}

void read_cb(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(s->data);
    if (n < 0) {
        close_conn(c);
        return;
    }
    if (n == 0) return;
    llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, static_cast<size_t>(n));
    if (err != HPE_OK) {
        ++g_stats.bad;
        close_conn(c);
    }
}

void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return;
    auto* c = new Conn;
    uv_tcp_init(g_loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) < 0) {
        close_conn(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &g_settings);
    c->parser.data = c;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), alloc_cb, read_cb);
}

void walk_close(uv_handle_t* h, void*) {
    if (!uv_is_closing(h)) {
        if (h->type == UV_TCP && h != reinterpret_cast<uv_handle_t*>(&g_server)) {
            close_conn(static_cast<Conn*>(h->data));
        } else {
            uv_close(h, nullptr);
        }
    }
}

void on_signal(uv_signal_t*, int) {
    uv_walk(g_loop, walk_close, nullptr);
}

std::uint32_t percentile(std::vector<std::uint32_t>& v, double p) {
    if (v.empty()) return 0;
    auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
}

// --spread: for each event that arrived after a higher SEQ of its SID, how many SEQs behind
// the highest it was and how long after the first higher SEQ's arrival (in us).
void print_spread() {
    std::unordered_map<std::uint32_t, std::vector<const Arrival*>> by_sid;
    for (const Arrival& a : g_arrivals) by_sid[a.sid].push_back(&a);
    std::vector<std::uint32_t> behind, wait_us;
    std::uint64_t events = 0;
    for (auto& [sid, list] : by_sid) {
        (void)sid;
        events += list.size();
        std::uint32_t highest = 0;
        for (std::size_t i = 0; i < list.size(); ++i) {
            const Arrival& a = *list[i];
            if (i > 0 && a.seq < highest) {
                behind.push_back(highest - a.seq);
                // The earliest arrival of a higher SEQ: spreads are short, look back a while.
                std::uint64_t first = a.at;
                for (std::size_t j = i; j-- > 0 && i - j <= 4096;) {
                    if (list[j]->seq > a.seq) first = std::min(first, list[j]->at);
                }
                wait_us.push_back(static_cast<std::uint32_t>((a.at - first) / 1000));
            }
            highest = std::max(highest, a.seq);
        }
    }
    std::uint32_t max_behind = behind.empty() ? 0 : *std::max_element(behind.begin(), behind.end());
    std::uint32_t max_wait =
        wait_us.empty() ? 0 : *std::max_element(wait_us.begin(), wait_us.end());
    std::printf(
        "spread: events=%llu out_of_order=%zu (%.2f%%) behind_p50=%u behind_p99=%u "
        "behind_max=%u wait_p50_us=%u wait_p99_us=%u wait_p999_us=%u wait_max_us=%u\n",
        static_cast<unsigned long long>(events), behind.size(),
        events > 0 ? 100.0 * static_cast<double>(behind.size()) / static_cast<double>(events) : 0,
        percentile(behind, 0.5), percentile(behind, 0.99), max_behind, percentile(wait_us, 0.5),
        percentile(wait_us, 0.99), percentile(wait_us, 0.999), max_wait);
}

}  // namespace

int main(int argc, char** argv) {
    // Never outlive the benchmark that started us (killed by a time limit, say).
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int port = 0;
    std::string targets, listen_ip = "127.0.0.1";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--spread") {
            g_spread = true;
            continue;
        }
        if (i + 1 >= argc) break;
        if (a == "--port") port = std::atoi(argv[i + 1]);
        if (a == "--targets") targets = argv[i + 1];
        if (a == "--listen") listen_ip = argv[i + 1];
        ++i;
    }
    if (g_spread) g_arrivals.reserve(1 << 22);
    std::ifstream in(targets);
    for (std::string path, sid; in >> path >> sid;) g_sids[sid] = SidState{};
    g_stats.latency_us.reserve(1 << 20);
    llhttp_settings_init(&g_settings);
    g_settings.on_message_begin = on_message_begin;
    g_settings.on_header_field = on_header_field;
    g_settings.on_header_value = on_header_value;
    g_settings.on_headers_complete = on_headers_complete;
    g_settings.on_body = on_body;
    g_settings.on_message_complete = on_message_complete;
    g_loop = uv_default_loop();
    uv_tcp_init(g_loop, &g_server);
    sockaddr_in addr{};
    uv_ip4_addr(listen_ip.c_str(), port, &addr);
    if (uv_tcp_bind(&g_server, reinterpret_cast<const sockaddr*>(&addr), 0) < 0 ||
        uv_listen(reinterpret_cast<uv_stream_t*>(&g_server), 1024, on_connection) < 0) {
        std::fprintf(stderr, "baseline: cannot listen on port %d\n", port);
        return 1;
    }
    uv_signal_init(g_loop, &g_sigterm);
    uv_signal_start(&g_sigterm, on_signal, SIGTERM);
    uv_signal_init(g_loop, &g_sigint);
    uv_signal_start(&g_sigint, on_signal, SIGINT);
    uv_run(g_loop, UV_RUN_DEFAULT);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    double user =
        static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
    double cpu = user + static_cast<double>(ru.ru_stime.tv_sec) +
                 static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
    std::uint32_t p50 = percentile(g_stats.latency_us, 0.5);
    std::uint32_t p99 = percentile(g_stats.latency_us, 0.99);
    std::printf(
        "received=%llu seq_errors=%llu bad=%llu unknown=%llu xml_errors=%llu cpu_s=%.4f "
        "user_s=%.4f first_rx_ns=%llu last_rx_ns=%llu p50_us=%u p99_us=%u sink=%zu\n",
        static_cast<unsigned long long>(g_stats.received),
        static_cast<unsigned long long>(g_stats.seq_errors),
        static_cast<unsigned long long>(g_stats.bad),
        static_cast<unsigned long long>(g_stats.unknown),
        static_cast<unsigned long long>(g_stats.xml_errors), cpu, user,
        static_cast<unsigned long long>(g_stats.first_rx),
        static_cast<unsigned long long>(g_stats.last_rx), p50, p99, g_stats.sink);
    if (g_spread) print_spread();
    uv_loop_close(g_loop);
    return 0;
}
