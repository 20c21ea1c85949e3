// `uvgena subscribe --json` as users run it (issue 23): the real CLI process, its stdout to a
// regular file, receiving NOTIFYs from notify_loadgen (another process), against the baseline
// receiver ingest_baseline_xml (libuv + llhttp + tinyxml2 property set and LastChange, prints
// nothing) measured in the same run with the same generator.
//
// How the CLI gets its NOTIFYs: this program runs a minimal device (uvgena's http::Server)
// that grants the CLI's SUBSCRIBE with a SID of its own and keeps the CALLBACK URL; the
// generator then sends to that callback path and port with that SID, SEQ from 0, one NOTIFY
// at a time (one subscription: one sending slot, as a device does), as it does for the
// baseline. No test hooks in the CLI: it subscribes, prints and unsubscribes as usual.
//
// Figure per row: receiver CPU per event (user + system time of the receiving process, from
// /proc/<pid>/task/*/schedstat, between the generator's start and the last event printed),
// ratio = baseline's / CLI's (target >= 0.90: the CLI at most 1.1x the baseline's CPU). With
// --rounds R the baseline and the CLI alternate (b-u, u-b, ...) and each side's best round
// counts. Count check: every NOTIFY sent answered 200 and printed as exactly one line that
// starts with '{' and ends with '}', in every round.
//
// Rows: 1.5 KB LastChange keep-alive and one connection per NOTIFY, 20 KB ZoneGroupState
// (escaped XML in a value) keep-alive, 300 B keep-alive.
//
//   cli_json_bench [--seconds S] [--rounds R] [--rows lastchange-keepalive,...]
//                  [--cli PATH] [--keep-output]
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <dirent.h>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "uvgena/co/co.hpp"
#include "uvgena/http/server.hpp"
#include "support/bench_util.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

namespace {

using namespace uvgena_bench;

struct Config {
    double seconds = 1.0;
    int rounds = 4;
    std::vector<std::string> rows{"lastchange-keepalive", "lastchange-close", "large-keepalive",
                                  "small-keepalive"};
    std::string bindir;
    std::string cli;
    std::string tmpdir;
    bool keep_output = false;
};

/// Counts the lines of a growing file, reading only what was added since the last call, and
/// checks that each is one JSON object ('{' first, '}' last: the CLI's lines never hold a raw
/// newline, it is escaped).
struct LineCounter {
    std::string path;
    off_t offset = 0;
    std::uint64_t lines = 0, malformed = 0;
    char last = '\n';  // the byte before offset

    void poll() {
        int fd = ::open(path.c_str(), O_RDONLY);
        if (fd < 0) return;
        static char buf[1 << 16];
        for (;;) {
            ssize_t n = ::pread(fd, buf, sizeof buf, offset);
            if (n <= 0) break;
            for (ssize_t i = 0; i < n; ++i) {
                char c = buf[i];
                if (last == '\n' && c != '{') ++malformed;
                if (c == '\n') {
                    ++lines;
                    if (last != '}') ++malformed;
                }
                last = c;
            }
            offset += n;
        }
        ::close(fd);
    }
};

struct Outcome {
    double sent = 0, ok = 0;
    double events = 0;      // printed lines (CLI) / events received (baseline)
    double bad = 0;         // sent-not-answered-200 + answered-but-not-printed-once + malformed
    double cpu_s = 0;       // receiver CPU between the generator's start and the last event
    double rate = 0;        // events per second over the generator's run
    double connect_us = 0;  // the generator's mean time to connect
    double answer_us = 0;   // and to be answered
    double cpu_per_event_us() const { return events > 0 ? cpu_s / events * 1e6 : 0; }
};

/// A device that grants every SUBSCRIBE (SID of its own, one hour) and remembers the last
/// CALLBACK; the events come from the generator.
struct Device {
    explicit Device(uv_loop_t* loop) : server(loop, handler(this), options()) { server.listen(); }
    static http::ServerOptions options() {
        http::ServerOptions o;
        o.address = SocketAddress::ipv4_loopback(0);
        return o;
    }
    static http::Handler handler(Device* self) {
        return
            [self](const http::Request& req, const http::RequestContext&) -> Task<http::Response> {
                http::Response r;
                if (req.method == "SUBSCRIBE" && !req.headers.get("sid")) {
                    auto cb = req.headers.get("callback");
                    self->callback = cb ? std::string(*cb) : std::string();
                    self->sid = "uuid:cli-bench-" + std::to_string(++self->subscribes);
                    r.headers.set("SID", self->sid);
                    r.headers.set("TIMEOUT", "Second-3600");
                } else if (req.method == "UNSUBSCRIBE") {
                    ++self->unsubscribes;
                }
                co_return r;
            };
    }
    http::Server server;
    int subscribes = 0, unsubscribes = 0;
    std::string callback, sid;
};

std::vector<std::string> loadgen_args(const Config& c, int port, const std::string& targets,
                                      const std::string& body, const std::string& mode) {
    return {c.bindir + "/notify_loadgen",
            "--port",
            std::to_string(port),
            "--targets",
            targets,
            "--mode",
            mode,
            "--body",
            body,
            "--seconds",
            std::to_string(c.seconds),
            "--slots",
            "1"};
}

void fill_generator(Outcome& o, const std::map<std::string, double>& g, double seconds) {
    auto get = [&g](const char* k) {
        auto it = g.find(k);
        return it == g.end() ? 0.0 : it->second;
    };
    o.sent = get("sent");
    o.ok = get("ok");
    o.connect_us = get("connect_us");
    o.answer_us = get("answer_us");
    double span = (get("end_ns") - get("start_ns")) / 1e9;
    o.rate = o.events / (span > 0 ? span : seconds);
}

Task<Outcome> run_baseline(uv_loop_t* loop, const Config& c, const std::string& body,
                           const std::string& mode) {
    int port = free_port();
    std::string targets = c.tmpdir + "/baseline.targets";
    std::ofstream(targets) << "/evt/0 uuid:baseline-0\n";
    std::string server_out = c.tmpdir + "/baseline.out";
    auto server = start_child(
        loop,
        {c.bindir + "/ingest_baseline_xml", "--port", std::to_string(port), "--targets", targets},
        server_out);
    co_await sleep_for(loop, 150ms);  // listening
    double cpu0 = process_cpu_seconds(server->pid);
    auto gen = start_child(loop, loadgen_args(c, port, targets, body, mode), c.tmpdir + "/gen.out");
    co_await wait_exit(loop, gen,
                       std::chrono::milliseconds(static_cast<long>(c.seconds * 1000) + 20'000));
    double cpu1 = process_cpu_seconds(server->pid);  // it answers after handling: nothing pending
    if (server->pid > 0 && !server->exited) uv_kill(server->pid, SIGTERM);
    co_await wait_exit(loop, server, 10s);
    auto s = parse_kv(read_file(server_out));
    Outcome o;
    o.events = s["received"];
    o.cpu_s = cpu1 - cpu0;
    fill_generator(o, parse_kv(read_file(c.tmpdir + "/gen.out")), c.seconds);
    o.bad = std::max(0.0, o.sent - o.ok) + std::abs(o.ok - o.events) + s["seq_errors"];
    co_return o;
}

Task<Outcome> run_cli(uv_loop_t* loop, const Config& c, Device& device, const std::string& body,
                      const std::string& mode, int round) {
    Outcome o;
    std::string url = "http://127.0.0.1:" + std::to_string(device.server.port()) + "/evt";
    std::string out_path = c.tmpdir + "/cli-" + std::to_string(round) + ".jsonl";
    std::string err_path = c.tmpdir + "/cli.err";
    int subscribes = device.subscribes;
    auto cli =
        start_child(loop,
                    {c.cli, "subscribe", url, "--json", "--listen-host", "127.0.0.1",
                     "--listen-port", "0", "--timeout", "3600", "--initial-event-timeout", "0"},
                    out_path, err_path);
    for (int i = 0; i < 5000 && device.subscribes == subscribes && !cli->exited; ++i) {
        co_await sleep_for(loop, 1ms);
    }
    if (device.subscribes == subscribes) {
        std::fprintf(stderr, "the CLI did not subscribe: %s\n", read_file(err_path).c_str());
        if (!cli->exited) uv_kill(cli->pid, SIGKILL);
        co_await wait_exit(loop, cli, 5s);
        o.bad = 1;
        co_return o;
    }
    co_await sleep_for(loop, 50ms);  // the CLI has read the answer: its subscription is live
    // CALLBACK: <http://127.0.0.1:PORT/PATH>
    std::string cb = device.callback;
    auto host = cb.find("//");
    auto colon = cb.find(':', host + 2);
    auto path = cb.find('/', colon);
    auto close = cb.find('>', path);
    int port = std::atoi(cb.c_str() + colon + 1);
    std::string targets = c.tmpdir + "/cli.targets";
    std::ofstream(targets) << cb.substr(path, close - path) << ' ' << device.sid << '\n';

    LineCounter lines{out_path};
    double cpu0 = process_cpu_seconds(cli->pid);
    auto gen = start_child(loop, loadgen_args(c, port, targets, body, mode), c.tmpdir + "/gen.out");
    co_await wait_exit(loop, gen,
                       std::chrono::milliseconds(static_cast<long>(c.seconds * 1000) + 20'000));
    auto g = parse_kv(read_file(c.tmpdir + "/gen.out"));
    // Every event answered 200 is printed soon after: wait for the lines (at most 3 s).
    for (int i = 0; i < 1500; ++i) {
        lines.poll();
        if (static_cast<double>(lines.lines) >= g["ok"]) break;
        co_await sleep_for(loop, 2ms);
    }
    double cpu1 = process_cpu_seconds(cli->pid);
    o.events = static_cast<double>(lines.lines);
    o.cpu_s = cpu1 - cpu0;
    fill_generator(o, g, c.seconds);
    // The CLI's normal end (SIGTERM = Ctrl-C): unsubscribes, prints its summary, exits 0.
    if (!cli->exited) uv_kill(cli->pid, SIGTERM);
    co_await wait_exit(loop, cli, 10s);
    lines.poll();  // nothing may come after, nothing may be missing
    if (cli->status != 0 || cli->signal != 0) {
        std::fprintf(stderr, "  the CLI exited with %lld (signal %d): %s\n",
                     static_cast<long long>(cli->status), cli->signal, read_file(err_path).c_str());
        o.bad += 1;
    }
    o.bad += std::max(0.0, o.sent - o.ok) + std::abs(o.ok - static_cast<double>(lines.lines)) +
             static_cast<double>(lines.malformed);
    if (!c.keep_output) ::unlink(out_path.c_str());
    co_return o;
}

void print_outcome(const char* who, const Outcome& o) {
    std::printf(
        "  %-18s %8.0f ev/s  sent %7.0f answered-200 %7.0f handled %7.0f  bad %.0f  "
        "CPU %.3f s = %.2f us/event  generator: connect %.0f us, answered in %.0f us\n",
        who, o.rate, o.sent, o.ok, o.events, o.bad, o.cpu_s, o.cpu_per_event_us(), o.connect_us,
        o.answer_us);
}

Task<int> bench(uv_loop_t* loop, Config c) {
    Device device(loop);
    int missed = 0;
    const std::map<std::string, std::string> row_names{
        {"lastchange-keepalive", "1.5 KB LastChange keep-alive"},
        {"lastchange-close", "1.5 KB LastChange connection per NOTIFY"},
        {"large-keepalive", "20 KB ZoneGroupState keep-alive"},
        {"small-keepalive", "300 B keep-alive"}};
    for (const auto& row : c.rows) {
        auto dash = row.rfind('-');
        std::string body = row.substr(0, dash);
        std::string mode = row.substr(dash + 1);
        auto named = row_names.find(row);
        std::string name = "cli --json " + (named == row_names.end() ? row : named->second);
        std::printf("%s: %d rounds of %.1f s\n", name.c_str(), c.rounds, c.seconds);
        Outcome best_b, best_u;
        double bad_u = 0, bad_b = 0;
        for (int round = 0; round < std::max(c.rounds, 1); ++round) {
            for (bool cli_turn : {round % 2 == 1, round % 2 == 0}) {
                if (cli_turn) {
                    Outcome u = co_await run_cli(loop, c, device, body, mode, round);
                    print_outcome("uvgena --json", u);
                    bad_u += u.bad;
                    if (u.events > 0 &&
                        (best_u.events == 0 || u.cpu_per_event_us() < best_u.cpu_per_event_us())) {
                        best_u = u;
                    }
                } else {
                    Outcome b = co_await run_baseline(loop, c, body, mode);
                    print_outcome("(b) +tinyxml2", b);
                    bad_b += b.bad;
                    if (b.events > 0 &&
                        (best_b.events == 0 || b.cpu_per_event_us() < best_b.cpu_per_event_us())) {
                        best_b = b;
                    }
                }
            }
        }
        double ratio = best_u.cpu_per_event_us() > 0
                           ? best_b.cpu_per_event_us() / best_u.cpu_per_event_us()
                           : 0;
        if (ratio < 0.9) ++missed;
        std::printf("RESULT %s CPU per event vs (b)|%.2f|%.2f|%.3f|ratio>=0.90|us CPU/event\n",
                    name.c_str(), best_u.cpu_per_event_us(), best_b.cpu_per_event_us(), ratio);
        std::printf("RESULT %s events/s (best CPU round)|%.0f|%.0f|%.3f|info|events/s\n",
                    name.c_str(), best_u.rate, best_b.rate,
                    best_b.rate > 0 ? best_u.rate / best_b.rate : 0);
        std::printf("RESULT %s not answered 200 or not printed once|%.0f|%.0f|-|value<=0|events\n",
                    name.c_str(), bad_u, bad_b);
        std::fflush(stdout);
    }
    co_await device.server.stop(1s);
    co_return missed;
}

}  // namespace

int main(int argc, char** argv) {
    Config c;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        bool has = i + 1 < argc;
        if (a == "--seconds" && has)
            c.seconds = std::atof(argv[++i]);
        else if (a == "--rounds" && has)
            c.rounds = std::atoi(argv[++i]);
        else if (a == "--rows" && has)
            c.rows = split_commas(argv[++i]);
        else if (a == "--cli" && has)
            c.cli = argv[++i];
        else if (a == "--keep-output")
            c.keep_output = true;
    }
    c.bindir = own_directory();
    if (c.cli.empty()) c.cli = UVGENA_CLI_PATH;
    c.tmpdir = make_temp_dir("uvgena-cli-bench");
    if (c.bindir.empty() || c.tmpdir.empty()) return 2;
    return run_bench("cli_json_bench", [&c](uv_loop_t* loop) { return bench(loop, c); }, c.tmpdir, c.keep_output);
}
