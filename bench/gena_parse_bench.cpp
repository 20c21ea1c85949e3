// Events per second parsed by uvgena::gena::PropertySet::parse, next to a same-run baseline
// that does the least a correct consumer must do with plain tinyxml2: parse the property
// set, read each variable's name and text, parse the LastChange document inside and read
// every value's name, `val` and `channel` attributes (no copies, no namespace resolution,
// no structure kept). The ratio (uvgena / baseline) is our overhead; issue #9 wants the
// whole NOTIFY path at >= 0.90 of such a baseline.
//
// Bodies (real captures):
//   propset_355B  nsd_favoritechange.xml (Sonos ContentDirectory, 3 plain variables)
//   lastchange_1K gmediarender notify-0 (RenderingControl LastChange, 19 values)
//   avt_5.9K      nsd_avtransportlastchange.xml (Sonos AVTransport LastChange with 3 DIDL)
//   topology_20K  nsd_zonegroupstate_with_satellites.xml with its ZoneGroupState value
//                 repeated to 20 KB (a large Sonos household; no real 20 KB capture exists)
//
// Fixture paths: $UVGENA_FIXTURES (default ../shared/fixtures) and $UVGENA_TEST_DATA
// (default tests/data) relative to the source tree, set at build time.
#include <benchmark/benchmark.h>
#include <tinyxml2.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "uvgena/gena/event_body.hpp"
#include "uvgena/gena/event_builder.hpp"

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::exit(2);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string dir_from_env(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

std::string http_body(const std::string& raw) {
    return raw.substr(raw.find("\r\n\r\n") + 4);
}

struct Bodies {
    std::string propset, lastchange, avt, topology;
};

const Bodies& bodies() {
    static const Bodies b = [] {
        std::string fx = dir_from_env("UVGENA_FIXTURES", UVGENA_BENCH_FIXTURES) + "/soco/";
        std::string data = dir_from_env("UVGENA_TEST_DATA", UVGENA_BENCH_TEST_DATA);
        Bodies out;
        out.propset = read_file(fx + "nsd_favoritechange.xml");
        out.lastchange = http_body(read_file(data + "/gmediarender/notify-0.http"));
        out.avt = read_file(fx + "nsd_avtransportlastchange.xml");
        auto zgs = uvgena::gena::PropertySet::parse(
                       read_file(fx + "nsd_zonegroupstate_with_satellites.xml"))
                       .value();
        std::vector<std::string> values;
        std::vector<uvgena::gena::NameValue> vars;
        for (const auto& v : zgs.variables()) values.push_back(v.value);
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (zgs.variables()[i].name == "ZoneGroupState") {
                std::string big;
                while (big.size() < 11500) big += values[i];
                values[i] = big;
            }
            vars.push_back({zgs.variables()[i].name, values[i]});
        }
        out.topology = uvgena::gena::build_property_set(
            std::span<const uvgena::gena::NameValue>(vars.data(), vars.size()));
        return out;
    }();
    return b;
}

/// The baseline: plain tinyxml2, prefix-matched, values read, LastChange parsed once.
std::size_t baseline_parse(const std::string& body) {
    tinyxml2::XMLDocument doc;
    if (doc.Parse(body.data(), body.size()) != tinyxml2::XML_SUCCESS) std::abort();
    std::size_t n = 0;
    auto* root = doc.RootElement();
    for (auto* prop = root->FirstChildElement(); prop; prop = prop->NextSiblingElement()) {
        for (auto* var = prop->FirstChildElement(); var; var = var->NextSiblingElement()) {
            const char* text = var->GetText();
            n += text ? std::strlen(text) : 0;
            n += std::strlen(var->Name());
            if (text && std::strcmp(var->Name(), "LastChange") == 0) {
                tinyxml2::XMLDocument lc;
                if (lc.Parse(text) != tinyxml2::XML_SUCCESS) std::abort();
                for (auto* inst = lc.RootElement()->FirstChildElement(); inst;
                     inst = inst->NextSiblingElement()) {
                    for (auto* v = inst->FirstChildElement(); v; v = v->NextSiblingElement()) {
                        // What any consumer needs: which variable, its value, its channel.
                        n += std::strlen(v->Name());
                        const char* val = v->Attribute("val");
                        n += val ? std::strlen(val) : 0;
                        const char* channel = v->Attribute("channel");
                        n += channel ? std::strlen(channel) : 0;
                    }
                }
            }
        }
    }
    return n;
}

std::size_t uvgena_parse(const std::string& body) {
    auto ps = uvgena::gena::PropertySet::parse(body);
    if (!ps) std::abort();
    std::size_t n = 0;
    for (const auto& v : ps->variables()) n += v.value.size();
    if (const auto& lc = ps->last_change(); lc.ok()) {
        for (const auto& inst : lc->instances) {
            for (const auto& v : inst.values) n += v.value.size();
        }
    }
    return n;
}

/// Also reads the current track's DIDL (lazy: parsed only here).
std::size_t uvgena_parse_with_didl(const std::string& body) {
    auto ps = uvgena::gena::PropertySet::parse(body);
    if (!ps) std::abort();
    const auto& didl = ps->didl("CurrentTrackMetaData");
    return didl.ok() ? didl->objects.size() : 0;
}

template <std::size_t (*Fn)(const std::string&)>
void run(benchmark::State& state, const std::string* body) {
    for (auto _ : state) benchmark::DoNotOptimize(Fn(*body));
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body->size()));
}

/// Console output plus a ratio table at the end.
class RatioReporter : public benchmark::ConsoleReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const auto& r : runs) {
            auto it = r.counters.find("items_per_second");
            if (it != r.counters.end()) rates_[r.benchmark_name()] = it->second.value;
        }
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        std::printf("\n%-16s %14s %14s %14s %8s\n", "body", "bytes", "uvgena ev/s", "tinyxml2 ev/s",
                    "ratio");
        for (const char* name : {"propset_355B", "lastchange_1K", "avt_5.9K", "topology_20K"}) {
            double ours = rate("uvgena/" + std::string(name));
            double base = rate("baseline_tinyxml2/" + std::string(name));
            std::printf("%-16s %14zu %14.0f %14.0f %8.3f\n", name, sizes_[name], ours, base,
                        base > 0 ? ours / base : 0.0);
        }
        // Machine-readable lines for scripts/bench.sh: figure|value|baseline|ratio|target|unit.
        for (const char* name : {"propset_355B", "lastchange_1K", "avt_5.9K", "topology_20K"}) {
            double ours = rate("uvgena/" + std::string(name));
            double base = rate("baseline_tinyxml2/" + std::string(name));
            std::printf("RESULT event body parse %s|%.0f|%.0f|%.3f|info|parses/s vs tinyxml2\n",
                        name, ours, base, base > 0 ? ours / base : 0.0);
        }
    }
    std::map<std::string, std::size_t> sizes_;

  private:
    /// The median of repetitions when there are some, else the single run.
    double rate(const std::string& name) {
        auto it = rates_.find(name + "_median");
        if (it != rates_.end()) return it->second;
        return rates_[name];
    }
    std::map<std::string, double> rates_;
};

}  // namespace

int main(int argc, char** argv) {
    const Bodies& b = bodies();
    RatioReporter reporter;
    struct Entry {
        const char* name;
        const std::string* body;
    };
    for (Entry e : {Entry{"propset_355B", &b.propset}, Entry{"lastchange_1K", &b.lastchange},
                    Entry{"avt_5.9K", &b.avt}, Entry{"topology_20K", &b.topology}}) {
        reporter.sizes_[e.name] = e.body->size();
        benchmark::RegisterBenchmark((std::string("baseline_tinyxml2/") + e.name).c_str(),
                                     run<baseline_parse>, e.body);
        benchmark::RegisterBenchmark((std::string("uvgena/") + e.name).c_str(), run<uvgena_parse>,
                                     e.body);
    }
    benchmark::RegisterBenchmark("uvgena_with_didl/avt_5.9K", run<uvgena_parse_with_didl>, &b.avt);
    // Interleaved repetitions and medians: the machine may be shared and noisy.
    std::vector<char*> args(argv, argv + argc);
    std::string reps = "--benchmark_repetitions=5", agg = "--benchmark_report_aggregates_only=true";
    args.insert(args.begin() + 1, reps.data());
    args.insert(args.begin() + 2, agg.data());
    int n = static_cast<int>(args.size());
    benchmark::Initialize(&n, args.data());
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
