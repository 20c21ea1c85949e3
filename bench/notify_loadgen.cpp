// NOTIFY load generator for notify_ingest_bench (a separate process, raw libuv).
//
// Sends GENA NOTIFYs to 127.0.0.1:<port> for the subscriptions listed in a targets file (one
// "<path> <sid>" per line), either on keep-alive connections or with one connection per
// NOTIFY (what most devices do). Each "slot" owns a share of the SIDs and sends one NOTIFY at a
// time, waiting for its answer, so that the SEQs of a SID arrive in order in these modes.
// Mode `concurrent` (issue 18): every slot is a keep-alive connection sending for every SID,
// each NOTIFY taking its SID's next SEQ when it is written (SEQ in send order), so that one
// SID's NOTIFYs travel on all the connections at once and arrive out of SEQ order.
// The first variable of every body is SentNs, the CLOCK_MONOTONIC time at which the request's
// first byte was handed to the kernel, so that the receiver can measure latency.
//
//   notify_loadgen --port P --targets FILE --mode keepalive|close|concurrent
//                  --body small|lastchange|large
//                  [--seconds S] [--rate R (NOTIFY/s, 0 = as fast as answered)] [--slots C]
//                  [--count N (stop after N NOTIFYs)] [--host IPv4 (default 127.0.0.1)]
//
// Prints one line: sent=N ok=N errors=N start_ns=T end_ns=T body_bytes=N, then the mean
// time to connect and to be answered (connect_us=X answer_us=X).
#include <sys/prctl.h>
#include <uv.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <vector>
#define UVGENA_BENCH_NO_CHILD
#include "support/bench_util.hpp"

namespace {

using uvgena_bench::now_ns;

std::string escape(const std::string& xml) {
    std::string out;
    for (char c : xml) {
        switch (c) {
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '&':
                out += "&amp;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

const char* const kPrefix =
    "<?xml version=\"1.0\"?>\n<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">"
    "<e:property><SentNs>";
const char* const kAfterStamp = "</SentNs></e:property>";

/// The body after the SentNs stamp, for each size class.
std::string body_rest(const std::string& kind) {
    std::string rest = kAfterStamp;
    if (kind == "small") {
        // About 300 bytes: a RenderingControl-like event without LastChange.
        rest +=
            "<e:property><Volume>23</Volume></e:property><e:property><Mute>0</Mute>"
            "</e:property><e:property><Loudness>1</Loudness></e:property>"
            "<e:property><PresetNameList>FactoryDefaults</PresetNameList></e:property>";
    } else if (kind == "lastchange") {
        // About 1.5 KB: an AVTransport LastChange.
        std::string lc =
            "<Event xmlns=\"urn:schemas-upnp-org:metadata-1-0/AVT/\"><InstanceID val=\"0\">"
            "<TransportState val=\"PLAYING\"/><CurrentPlayMode val=\"NORMAL\"/>"
            "<CurrentTrack val=\"3\"/><NumberOfTracks val=\"12\"/>"
            "<CurrentTrackDuration val=\"0:04:13\"/><CurrentMediaDuration val=\"0:51:02\"/>"
            "<CurrentTrackURI val=\"http://192.168.1.20:8200/MediaItems/1234.flac\"/>"
            "<AVTransportURI val=\"http://192.168.1.20:8200/MediaItems/playlist.m3u\"/>"
            "<TransportStatus val=\"OK\"/><TransportPlaySpeed val=\"1\"/>"
            "<PlaybackStorageMedium val=\"NETWORK\"/><RecordStorageMedium val=\"NOT_IMPLEMENTED\"/>"
            "<PossiblePlaybackStorageMedia val=\"NETWORK\"/>"
            "<CurrentTransportActions val=\"Play,Stop,Pause,Seek,Next,Previous\"/>"
            "<RelativeTimePosition val=\"0:01:02\"/><AbsoluteTimePosition val=\"0:21:40\"/>"
            "<NextAVTransportURI val=\"\"/><CurrentRecordQualityMode val=\"NOT_IMPLEMENTED\"/>"
            "<CurrentTrackMetaData val=\"&lt;DIDL-Lite xmlns=&quot;urn:schemas-upnp-org:"
            "metadata-1-0/DIDL-Lite/&quot;&gt;&lt;item id=&quot;1234&quot;&gt;&lt;dc:title&gt;"
            "Song&lt;/dc:title&gt;&lt;/item&gt;&lt;/DIDL-Lite&gt;\"/>"
            "</InstanceID></Event>";
        rest += "<e:property><LastChange>" + escape(lc) + "</LastChange></e:property>";
    } else {
        // About 20 KB: a Sonos-like ZoneGroupState topology document.
        std::string zgs = "<ZoneGroupState><ZoneGroups>";
        for (int g = 0; zgs.size() < 14'000; ++g) {
            zgs += "<ZoneGroup Coordinator=\"RINCON_000E58" + std::to_string(100000 + g) +
                   "01400\" ID=\"RINCON_000E58" + std::to_string(100000 + g) +
                   "01400:" + std::to_string(g) + "\"><ZoneGroupMember UUID=\"RINCON_000E58" +
                   std::to_string(100000 + g) + "01400\" Location=\"http://192.168.1." +
                   std::to_string(g % 250) +
                   ":1400/xml/device_description.xml\" ZoneName=\""
                   "Room " +
                   std::to_string(g) + "\" SoftwareVersion=\"63.2-88230\"/></ZoneGroup>";
        }
        zgs += "</ZoneGroups></ZoneGroupState>";
        rest += "<e:property><ZoneGroupState>" + escape(zgs) + "</ZoneGroupState></e:property>";
    }
    rest += "</e:propertyset>\n";
    return rest;
}

struct Target {
    std::string path;
    std::string sid;
    std::uint32_t seq = 0;
};

struct Gen;

struct Slot {
    Gen* gen = nullptr;
    std::vector<Target*> targets;
    std::size_t next_target = 0;
    uv_tcp_t* tcp = nullptr;  // heap, freed in its close callback
    bool connected = false;
    bool busy = false;  // a request is in flight
    bool done = false;
    bool waiting_token = false;
    std::string head;   // headers + body prefix of the request in flight
    std::string input;  // response bytes
    int connect_retries = 0;
    std::uint64_t connect_at = 0;  // when the connection in progress was asked for
    std::uint64_t written_at = 0;  // when the request in flight was written
};

struct Gen {
    uv_loop_t* loop = nullptr;
    sockaddr_in addr{};
    bool keep_alive = true;
    std::string rest;
    double seconds = 2;
    double rate = 0;
    std::uint64_t count = 0;  // total NOTIFYs to send, 0: until the time is up
    std::uint64_t start = 0, end = 0;
    std::uint64_t sent = 0, ok = 0, errors = 0;
    std::uint64_t issued = 0;  // NOTIFYs a slot has committed to send (for --count)
    double tokens = 0;
    std::uint64_t last_refill = 0;
    // Where a request's time goes, summed over the answered ones: connecting (asked for to
    // connected) and answering (request written to whole response read).
    std::uint64_t connect_ns = 0, connects = 0, answer_ns = 0;
    std::vector<std::unique_ptr<Slot>> slots;
    uv_timer_t pacer{};
    bool pacer_running = false;
};

void send_next(Slot* s);

void on_close_free(uv_handle_t* h) {
    delete reinterpret_cast<uv_tcp_t*>(h);
}

void drop_connection(Slot* s) {
    if (s->tcp) {
        s->tcp->data = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(s->tcp), on_close_free);
        s->tcp = nullptr;
    }
    s->connected = false;
    s->input.clear();
}

void finish_if_all_done(Gen* g) {
    for (auto& s : g->slots) {
        if (!s->done) return;
    }
    if (g->end == 0) g->end = now_ns();
    if (g->pacer_running) {
        uv_timer_stop(&g->pacer);
        g->pacer_running = false;
    }
}

void slot_done(Slot* s) {
    s->done = true;
    drop_connection(s);
    finish_if_all_done(s->gen);
}

void alloc_cb(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
    (void)h;
    (void)suggested;
    static char storage[64 * 1024];
    *buf = uv_buf_init(storage, sizeof storage);
}

/// True once `input` holds a whole response (headers and Content-Length body).
bool complete_response(const std::string& input, int* status, bool* closes) {
    auto end = input.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    *status = input.size() > 12 ? std::atoi(input.c_str() + 9) : 0;
    std::size_t length = 0;
    std::string lower(input, 0, end);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto cl = lower.find("content-length:");
    if (cl != std::string::npos) length = std::strtoul(lower.c_str() + cl + 15, nullptr, 10);
    *closes = lower.find("connection: close") != std::string::npos;
    return input.size() >= end + 4 + length;
}

void read_cb(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
    auto* s = static_cast<Slot*>(stream->data);
    if (!s) return;
    if (n < 0) {
        // The peer closed: fine between requests, an error while one is in flight.
        if (s->busy) {
            ++s->gen->errors;
            s->busy = false;
        }
        drop_connection(s);
        send_next(s);
        return;
    }
    s->input.append(buf->base, static_cast<std::size_t>(n));
    int status = 0;
    bool closes = false;
    if (!s->busy || !complete_response(s->input, &status, &closes)) return;
    s->busy = false;
    s->gen->answer_ns += now_ns() - s->written_at;
    if (status == 200) {
        ++s->gen->ok;
    } else {
        ++s->gen->errors;
    }
    s->input.clear();
    if (!s->gen->keep_alive || closes) drop_connection(s);
    send_next(s);
}

void write_cb(uv_write_t* req, int status) {
    auto* s = static_cast<Slot*>(req->data);
    delete req;
    if (status < 0 && s->tcp) {
        ++s->gen->errors;
        s->busy = false;
        drop_connection(s);
        send_next(s);
    }
}

void write_request(Slot* s) {
    Gen* g = s->gen;
    Target* t = s->targets[s->next_target];
    s->next_target = (s->next_target + 1) % s->targets.size();
    char stamp[32];
    std::string& h = s->head;
    h.clear();
    h += "NOTIFY ";
    h += t->path;
    h += " HTTP/1.1\r\nHOST: 127.0.0.1\r\nCONTENT-TYPE: text/xml; charset=\"utf-8\"\r\n"
         "NT: upnp:event\r\nNTS: upnp:propchange\r\nSID: ";
    h += t->sid;
    h += "\r\nSEQ: ";
    h += std::to_string(t->seq++);
    h += "\r\nCONTENT-LENGTH: ";
    h += std::to_string(std::strlen(kPrefix) + 20 + g->rest.size());
    h += g->keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
    h += kPrefix;
    std::snprintf(stamp, sizeof stamp, "%020llu", static_cast<unsigned long long>(now_ns()));
    h += stamp;
    uv_buf_t bufs[2] = {uv_buf_init(h.data(), static_cast<unsigned>(h.size())),
                        uv_buf_init(g->rest.data(), static_cast<unsigned>(g->rest.size()))};
    auto* req = new uv_write_t;
    req->data = s;
    s->busy = true;
    s->written_at = now_ns();
    ++g->sent;
    int rc = uv_write(req, reinterpret_cast<uv_stream_t*>(s->tcp), bufs, 2, write_cb);
    if (rc < 0) {
        delete req;
        ++g->errors;
        s->busy = false;
        drop_connection(s);
    }
}

void retry_cb(uv_timer_t* timer) {
    auto* s = static_cast<Slot*>(timer->data);
    uv_close(reinterpret_cast<uv_handle_t*>(timer),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    send_next(s);
}

void connect_cb(uv_connect_t* req, int status) {
    auto* s = static_cast<Slot*>(req->data);
    delete req;
    if (status < 0) {
        drop_connection(s);
        // At start the receiver may not listen yet; later a refusal is an error.
        if (s->gen->sent == 0 && ++s->connect_retries < 200) {
            --s->gen->issued;  // send_next commits again after the retry
            auto* timer = new uv_timer_t;
            uv_timer_init(s->gen->loop, timer);
            timer->data = s;
            uv_timer_start(timer, retry_cb, 10, 0);
            return;
        }
        ++s->gen->errors;
        slot_done(s);
        return;
    }
    s->connected = true;
    s->gen->connect_ns += now_ns() - s->connect_at;
    ++s->gen->connects;
    uv_read_start(reinterpret_cast<uv_stream_t*>(s->tcp), alloc_cb, read_cb);
    write_request(s);
}

bool take_token(Gen* g) {
    if (g->rate <= 0) return true;
    if (g->tokens >= 1) {
        g->tokens -= 1;
        return true;
    }
    return false;
}

void send_next(Slot* s) {
    Gen* g = s->gen;
    if (s->done || s->busy) return;
    if (g->start == 0) g->start = now_ns();
    if (static_cast<double>(now_ns() - g->start) >= g->seconds * 1e9 ||
        (g->count > 0 && g->issued >= g->count)) {
        slot_done(s);
        return;
    }
    if (!take_token(g)) {
        s->waiting_token = true;
        return;
    }
    ++g->issued;
    if (s->connected) {
        write_request(s);
        return;
    }
    s->tcp = new uv_tcp_t;
    uv_tcp_init(g->loop, s->tcp);
    s->tcp->data = s;
    uv_tcp_nodelay(s->tcp, 1);
    auto* req = new uv_connect_t;
    req->data = s;
    s->connect_at = now_ns();
    int rc = uv_tcp_connect(req, s->tcp, reinterpret_cast<const sockaddr*>(&g->addr), connect_cb);
    if (rc < 0) {
        delete req;
        ++g->errors;
        slot_done(s);
    }
}

void pacer_cb(uv_timer_t* timer) {
    auto* g = static_cast<Gen*>(timer->data);
    std::uint64_t now = now_ns();
    g->tokens += g->rate * static_cast<double>(now - g->last_refill) / 1e9;
    g->last_refill = now;
    if (g->tokens > 64) g->tokens = 64;  // no catch-up bursts after a stall
    for (auto& s : g->slots) {
        if (s->waiting_token && g->tokens >= 1) {
            s->waiting_token = false;
            send_next(s.get());
        }
    }
    bool any = false;
    for (auto& s : g->slots) any = any || !s->done;
    if (!any) finish_if_all_done(g);
    // Slots waiting for tokens past the end of the run finish here.
    for (auto& s : g->slots) {
        if (s->waiting_token && static_cast<double>(now - g->start) >= g->seconds * 1e9) {
            s->waiting_token = false;
            slot_done(s.get());
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the benchmark that started us
    int port = 0, slots = 8;
    std::string targets_file, mode = "keepalive", body = "lastchange", host = "127.0.0.1";
    Gen g;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--port") port = std::atoi(argv[i + 1]);
        if (a == "--targets") targets_file = argv[i + 1];
        if (a == "--mode") mode = argv[i + 1];
        if (a == "--body") body = argv[i + 1];
        if (a == "--seconds") g.seconds = std::atof(argv[i + 1]);
        if (a == "--rate") g.rate = std::atof(argv[i + 1]);
        if (a == "--count") g.count = std::strtoull(argv[i + 1], nullptr, 10);
        if (a == "--slots") slots = std::atoi(argv[i + 1]);
        if (a == "--host") host = argv[i + 1];
    }
    std::vector<std::unique_ptr<Target>> targets;
    std::ifstream in(targets_file);
    for (std::string path, sid; in >> path >> sid;) {
        auto t = std::make_unique<Target>();
        t->path = path;
        t->sid = sid;
        targets.push_back(std::move(t));
    }
    if (port <= 0 || targets.empty() || slots <= 0) {
        std::fprintf(stderr, "notify_loadgen: need --port and a non-empty --targets file\n");
        return 2;
    }
    bool shared = mode == "concurrent";
    if (!shared && static_cast<std::size_t>(slots) > targets.size()) {
        slots = static_cast<int>(targets.size());
    }
    g.loop = uv_default_loop();
    g.keep_alive = mode != "close";
    g.rest = body_rest(body);
    uv_ip4_addr(host.c_str(), port, &g.addr);
    for (int i = 0; i < slots; ++i) {
        auto s = std::make_unique<Slot>();
        s->gen = &g;
        if (shared) {
            // Every SID on every connection, each slot starting at another one.
            for (std::size_t k = 0; k < targets.size(); ++k) {
                s->targets.push_back(
                    targets[(k + static_cast<std::size_t>(i)) % targets.size()].get());
            }
        } else {
            for (std::size_t t = static_cast<std::size_t>(i); t < targets.size();
                 t += static_cast<std::size_t>(slots)) {
                s->targets.push_back(targets[t].get());
            }
        }
        g.slots.push_back(std::move(s));
    }
    if (g.rate > 0) {
        uv_timer_init(g.loop, &g.pacer);
        g.pacer.data = &g;
        g.last_refill = now_ns();
        g.tokens = 1;
        uv_timer_start(&g.pacer, pacer_cb, 1, 1);
        g.pacer_running = true;
    }
    for (auto& s : g.slots) send_next(s.get());
    uv_run(g.loop, UV_RUN_DEFAULT);
    if (g.rate > 0) uv_close(reinterpret_cast<uv_handle_t*>(&g.pacer), nullptr);
    uv_run(g.loop, UV_RUN_DEFAULT);
    std::uint64_t answered = g.ok + g.errors;
    std::printf(
        "sent=%llu ok=%llu errors=%llu start_ns=%llu end_ns=%llu body_bytes=%zu "
        "connect_us=%.1f answer_us=%.1f\n",
        static_cast<unsigned long long>(g.sent), static_cast<unsigned long long>(g.ok),
        static_cast<unsigned long long>(g.errors), static_cast<unsigned long long>(g.start),
        static_cast<unsigned long long>(g.end), std::strlen(kPrefix) + 20 + g.rest.size(),
        g.connects > 0 ? static_cast<double>(g.connect_ns) / 1e3 / g.connects : 0.0,
        answered > 0 ? static_cast<double>(g.answer_ns) / 1e3 / answered : 0.0);
    return 0;
}
