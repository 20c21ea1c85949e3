#include "demo_device.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <stop_token>
#include <utility>

#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/core/strings.hpp"
#include "uvgena/gena/event_body.hpp"

namespace uvgena::gena {
namespace {

constexpr std::string_view kRcsType = "urn:schemas-upnp-org:service:RenderingControl:1";
constexpr std::string_view kAvtType = "urn:schemas-upnp-org:service:AVTransport:1";
constexpr std::string_view kRcsNamespace = "urn:schemas-upnp-org:metadata-1-0/RCS/";
constexpr std::string_view kAvtNamespace = "urn:schemas-upnp-org:metadata-1-0/AVT/";

struct DemoTrack {
    std::string_view title, artist, album, duration, file;
};

constexpr std::array<DemoTrack, 4> kTracks{{
    {"Blue in Green", "Bill Evans Trio", "Portrait in Jazz", "0:05:27", "blue-in-green.flac"},
    {"So What", "Miles Davis", "Kind of Blue", "0:09:22", "so-what.flac"},
    {"Naima", "John Coltrane", "Giant Steps", "0:04:21", "naima.flac"},
    {"Take Five", "The Dave Brubeck Quartet", "Time Out", "0:05:24", "take-five.flac"},
}};

// One argument of an SCPD action.
struct Argument {
    std::string_view name, direction, variable;
};

struct Action {
    std::string_view name;
    std::vector<Argument> arguments;
};

struct StateVariable {
    std::string_view name, type;
    bool evented = false;
    std::vector<std::string_view> allowed;
};

std::string scpd(const std::vector<Action>& actions, const std::vector<StateVariable>& variables) {
    std::string out =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<scpd xmlns=\"urn:schemas-upnp-org:service-1-0\">"
        "<specVersion><major>1</major><minor>0</minor></specVersion><actionList>";
    for (const Action& a : actions) {
        out += "<action><name>";
        out += a.name;
        out += "</name><argumentList>";
        for (const Argument& arg : a.arguments) {
            out += "<argument><name>";
            out += arg.name;
            out += "</name><direction>";
            out += arg.direction;
            out += "</direction><relatedStateVariable>";
            out += arg.variable;
            out += "</relatedStateVariable></argument>";
        }
        out += "</argumentList></action>";
    }
    out += "</actionList><serviceStateTable>";
    for (const StateVariable& v : variables) {
        out += "<stateVariable sendEvents=\"";
        out += v.evented ? "yes" : "no";
        out += "\"><name>";
        out += v.name;
        out += "</name><dataType>";
        out += v.type;
        out += "</dataType>";
        if (!v.allowed.empty()) {
            out += "<allowedValueList>";
            for (std::string_view value : v.allowed) {
                out += "<allowedValue>";
                out += value;
                out += "</allowedValue>";
            }
            out += "</allowedValueList>";
        }
        if (v.name == "Volume") {
            out +=
                "<allowedValueRange><minimum>0</minimum><maximum>100</maximum>"
                "<step>1</step></allowedValueRange>";
        }
        out += "</stateVariable>";
    }
    out += "</serviceStateTable></scpd>\n";
    return out;
}

std::string rendering_control_scpd() {
    const Argument instance{"InstanceID", "in", "A_ARG_TYPE_InstanceID"};
    const Argument channel{"Channel", "in", "A_ARG_TYPE_Channel"};
    return scpd(
        {
            {"GetVolume", {instance, channel, {"CurrentVolume", "out", "Volume"}}},
            {"SetVolume", {instance, channel, {"DesiredVolume", "in", "Volume"}}},
            {"GetMute", {instance, channel, {"CurrentMute", "out", "Mute"}}},
            {"SetMute", {instance, channel, {"DesiredMute", "in", "Mute"}}},
        },
        {
            {"LastChange", "string", true, {}},
            {"Volume", "ui2", false, {}},
            {"Mute", "boolean", false, {}},
            {"A_ARG_TYPE_InstanceID", "ui4", false, {}},
            {"A_ARG_TYPE_Channel", "string", false, {"Master"}},
        });
}

std::string av_transport_scpd() {
    const Argument instance{"InstanceID", "in", "A_ARG_TYPE_InstanceID"};
    return scpd(
        {
            {"SetAVTransportURI",
             {instance,
              {"CurrentURI", "in", "AVTransportURI"},
              {"CurrentURIMetaData", "in", "AVTransportURIMetaData"}}},
            {"Play", {instance, {"Speed", "in", "TransportPlaySpeed"}}},
            {"Pause", {instance}},
            {"Stop", {instance}},
            {"GetTransportInfo",
             {instance,
              {"CurrentTransportState", "out", "TransportState"},
              {"CurrentTransportStatus", "out", "TransportStatus"},
              {"CurrentSpeed", "out", "TransportPlaySpeed"}}},
        },
        {
            {"LastChange", "string", true, {}},
            {"TransportState",
             "string",
             false,
             {"STOPPED", "PLAYING", "PAUSED_PLAYBACK", "TRANSITIONING", "NO_MEDIA_PRESENT"}},
            {"TransportStatus", "string", false, {"OK", "ERROR_OCCURRED"}},
            {"TransportPlaySpeed", "string", false, {"1"}},
            {"AVTransportURI", "string", false, {}},
            {"AVTransportURIMetaData", "string", false, {}},
            {"CurrentTrackURI", "string", false, {}},
            {"CurrentTrackMetaData", "string", false, {}},
            {"CurrentTrackDuration", "string", false, {}},
            {"A_ARG_TYPE_InstanceID", "ui4", false, {}},
        });
}

http::Response xml_document(std::string body) {
    http::Response r;
    r.headers.add("Content-Type", "text/xml; charset=\"utf-8\"");
    r.body = std::move(body);
    return r;
}

std::string track_uri(std::string_view base, const DemoTrack& t) {
    return std::string(base) + "/media/" + std::string(t.file);
}

}  // namespace

std::string demo_track_didl(std::string_view title, std::string_view artist, std::string_view album,
                            std::string_view duration, std::string_view uri) {
    std::string out =
        "<DIDL-Lite xmlns=\"urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/\" "
        "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" "
        "xmlns:upnp=\"urn:schemas-upnp-org:metadata-1-0/upnp/\">"
        "<item id=\"1\" parentID=\"0\" restricted=\"1\"><dc:title>";
    append_escaped_xml(out, title);
    out += "</dc:title><dc:creator>";
    append_escaped_xml(out, artist);
    out += "</dc:creator><upnp:artist>";
    append_escaped_xml(out, artist);
    out += "</upnp:artist><upnp:album>";
    append_escaped_xml(out, album);
    out +=
        "</upnp:album><upnp:class>object.item.audioItem.musicTrack</upnp:class>"
        "<res protocolInfo=\"http-get:*:audio/flac:*\" duration=\"";
    append_escaped_xml(out, duration);
    out += "\">";
    append_escaped_xml(out, uri);
    out += "</res></item></DIDL-Lite>";
    return out;
}

struct DemoDevice::Impl {
    Impl(uv_loop_t* l, DemoDeviceOptions o)
        : loop(l), options(std::move(o)), publisher(std::in_place, l, options.publisher) {
        if (options.udn.empty()) {
            options.udn = make_sid();  // "uuid:" + a random UUID, the UDN format
        }
        // The services' SOAP actions are the Publisher's; the handlers check their
        // arguments themselves (check_actions off), answering 402 for what they cannot use,
        // as the demo always has.
        ServiceConfig rcs;
        rcs.event_path = std::string(rendering_control_event);
        rcs.last_change_namespace = std::string(kRcsNamespace);
        rcs.min_interval = options.moderation;
        rcs.control_path = "/RenderingControl/control";
        rcs.service_type = std::string(kRcsType);
        rcs.scpd_path = "/RenderingControl/scpd.xml";
        rcs.scpd = rendering_control_scpd();
        rcs.check_actions = false;
        rendering_control = &publisher->add_service(std::move(rcs));
        ServiceConfig avt;
        avt.event_path = std::string(av_transport_event);
        avt.last_change_namespace = std::string(kAvtNamespace);
        avt.min_interval = options.moderation;
        avt.control_path = "/AVTransport/control";
        avt.service_type = std::string(kAvtType);
        avt.scpd_path = "/AVTransport/scpd.xml";
        avt.scpd = av_transport_scpd();
        avt.check_actions = false;
        av_transport = &publisher->add_service(std::move(avt));
        add_actions();

        rendering_control->update_last_change([&](LastChangeState& lc) {
            lc.set("0", "Volume", std::to_string(volume), {{"channel", "Master"}});
            lc.set("0", "Mute", "0", {{"channel", "Master"}});
            lc.set("0", "PresetNameList", "FactoryDefaults");
        });
        av_transport->update_last_change([&](LastChangeState& lc) {
            lc.set("0", "TransportState", transport_state);
            lc.set("0", "TransportStatus", "OK");
            lc.set("0", "TransportPlaySpeed", "1");
            lc.set("0", "CurrentPlayMode", "NORMAL");
            lc.set("0", "NumberOfTracks", "0");
            lc.set("0", "CurrentTrack", "0");
            lc.set("0", "AVTransportURI", "");
            lc.set("0", "AVTransportURIMetaData", "");
            lc.set("0", "CurrentTrackURI", "");
            lc.set("0", "CurrentTrackMetaData", "");
            lc.set("0", "CurrentTrackDuration", "0:00:00");
        });
    }

    ~Impl() { close_now(); }

    // Ends everything at once (the DemoDevice's destructor): the timer, the server (safe
    // while a stop() waits for it) and the publisher. A stop() in flight holds this Impl
    // and finds nothing left to do when it resumes.
    void close_now() noexcept {
        timer_stop.request_stop();
        scope.reset();
        server.reset();
        rendering_control = av_transport = nullptr;
        publisher.reset();
    }

    std::string base_url() const {
        if (server == nullptr) return {};
        SocketAddress a = server->local_address();
        // A wildcard address is no use in a URL: name the loopback of the same family.
        std::string host = a.ip();
        if (host == "0.0.0.0") host = "127.0.0.1";
        if (host == "::") host = "::1";
        if (a.is_ipv6()) host = "[" + host + "]";
        return "http://" + host + ":" + std::to_string(a.port());
    }

    std::string description() const {
        std::string out =
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
            "<root xmlns=\"urn:schemas-upnp-org:device-1-0\">"
            "<specVersion><major>1</major><minor>0</minor></specVersion>"
            "<device><deviceType>urn:schemas-upnp-org:device:MediaRenderer:1</deviceType>"
            "<friendlyName>";
        append_escaped_xml(out, options.friendly_name);
        out +=
            "</friendlyName><manufacturer>uvgena</manufacturer>"
            "<manufacturerURL>https://github.com/uvgena</manufacturerURL>"
            "<modelDescription>Simulated renderer for the uvgena demo</modelDescription>"
            "<modelName>uvgena demo renderer</modelName><modelNumber>1</modelNumber>"
            "<UDN>";
        append_escaped_xml(out, options.udn);
        out += "</UDN><serviceList>";
        auto service = [&out](std::string_view type, std::string_view name) {
            out += "<service><serviceType>";
            out += type;
            out += "</serviceType><serviceId>urn:upnp-org:serviceId:";
            out += name;
            out += "</serviceId><SCPDURL>/";
            out += name;
            out += "/scpd.xml</SCPDURL><controlURL>/";
            out += name;
            out += "/control</controlURL><eventSubURL>/";
            out += name;
            out += "/event</eventSubURL></service>";
        };
        service(kRcsType, "RenderingControl");
        service(kAvtType, "AVTransport");
        out += "</serviceList></device></root>\n";
        return out;
    }

    void set_volume(int v) {
        volume = std::clamp(v, 0, 100);
        rendering_control->set_last_change("0", "Volume", std::to_string(volume),
                                           {{"channel", "Master"}});
    }

    void set_mute(bool m) {
        mute = m;
        rendering_control->set_last_change("0", "Mute", m ? "1" : "0", {{"channel", "Master"}});
    }

    void set_transport_state(std::string state) {
        transport_state = std::move(state);
        av_transport->set_last_change("0", "TransportState", transport_state);
    }

    static void apply_track(LastChangeState& lc, const std::string& uri,
                            const std::string& metadata, std::string_view duration) {
        lc.set("0", "AVTransportURI", uri);
        lc.set("0", "AVTransportURIMetaData", metadata);
        lc.set("0", "CurrentTrackURI", uri);
        lc.set("0", "CurrentTrackMetaData", metadata);
        lc.set("0", "CurrentTrackDuration", duration);
        lc.set("0", "NumberOfTracks", "1");
        lc.set("0", "CurrentTrack", "1");
    }

    void set_track(std::string uri, std::string metadata, std::string_view duration) {
        av_transport->update_last_change(
            [&](LastChangeState& lc) { apply_track(lc, uri, metadata, duration); });
    }

    // One step: one event per service at most, as a renderer moderating LastChange sends.
    void tick() {
        ++ticks;
        // The volume wanders up and down between 10 and 60.
        int next = volume + step;
        if (next > 60 || next < 10) {
            step = -step;
            next = volume + step;
        }
        set_volume(next);
        bool new_track = ticks % 5 == 1;
        bool toggle = ticks % 3 == 1;
        if (!new_track && !toggle) return;
        av_transport->update_last_change([&](LastChangeState& lc) {
            if (new_track) {
                const DemoTrack& t = kTracks[(ticks / 5) % kTracks.size()];
                std::string uri = track_uri(base_url(), t);
                apply_track(lc, uri, demo_track_didl(t.title, t.artist, t.album, t.duration, uri),
                            t.duration);
            }
            if (toggle) {
                transport_state = transport_state == "PLAYING" ? "PAUSED_PLAYBACK" : "PLAYING";
                lc.set("0", "TransportState", transport_state);
            }
        });
    }

    Task<void> run_timer() {
        try {
            for (;;) {
                co_await sleep_for(loop, options.interval);
                tick();
            }
        } catch (const Error& e) {
            if (!is_cancelled(e.code())) throw;
        }
    }

    // Everything but the Publisher's paths (events, control, SCPDs): the description.
    Task<http::Response> handle(const http::Request& request) {
        std::string_view target = request.target;
        if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
        if ((request.method == "GET" || request.method == "HEAD") && target == description_path) {
            co_return xml_document(description());
        }
        http::Response r;
        r.status = 404;
        co_return r;
    }

    // The handlers run on the loop while the device lives: the Publisher, which owns them,
    // goes first in close_now().
    void add_actions() {
        auto invalid_args = [](std::string_view action) {
            return control::ActionError(402, "Invalid Args",
                                        "demo renderer " + std::string(action));
        };
        auto number = [](const ActionCall& call, std::string_view name) -> std::optional<int> {
            auto text = call.argument(name);
            if (!text) return std::nullopt;
            auto value = parse_unsigned<unsigned>(trim(*text));
            if (!value || *value > 100000) return std::nullopt;
            return static_cast<int>(*value);
        };
        using control::Arguments;
        rendering_control->on_action("GetVolume", [this](const ActionCall&) -> Arguments {
            return {{"CurrentVolume", std::to_string(volume)}};
        });
        rendering_control->on_action(
            "SetVolume", [this, number, invalid_args](const ActionCall& call) -> Arguments {
                auto v = number(call, "DesiredVolume");
                if (!v) throw invalid_args(call.action);
                // UDA's code for a value outside allowedValueRange (gmediarender takes it).
                if (*v > 100) {
                    throw control::ActionError(601, "Argument Value Out of Range",
                                               "demo renderer SetVolume " + std::to_string(*v));
                }
                set_volume(*v);
                return {};
            });
        rendering_control->on_action("GetMute", [this](const ActionCall&) -> Arguments {
            return {{"CurrentMute", mute ? "1" : "0"}};
        });
        rendering_control->on_action("SetMute",
                                     [this, invalid_args](const ActionCall& call) -> Arguments {
                                         auto text = call.argument("DesiredMute");
                                         if (!text) throw invalid_args(call.action);
                                         std::string_view m = trim(*text);
                                         if (m != "0" && m != "1" && m != "true" && m != "false") {
                                             throw invalid_args(call.action);
                                         }
                                         set_mute(m == "1" || m == "true");
                                         return {};
                                     });
        av_transport->on_action(
            "SetAVTransportURI", [this, invalid_args](const ActionCall& call) -> Arguments {
                auto uri = call.argument("CurrentURI");
                if (!uri) throw invalid_args(call.action);
                set_track(std::string(*uri),
                          std::string(call.argument("CurrentURIMetaData").value_or("")), "0:00:00");
                set_transport_state("STOPPED");
                return {};
            });
        for (std::string_view action : {"Play", "Pause", "Stop"}) {
            std::string state = action == "Play"    ? "PLAYING"
                                : action == "Pause" ? "PAUSED_PLAYBACK"
                                                    : "STOPPED";
            av_transport->on_action(std::string(action),
                                    [this, state](const ActionCall&) -> Arguments {
                                        set_transport_state(state);
                                        return {};
                                    });
        }
        av_transport->on_action("GetTransportInfo", [this](const ActionCall&) -> Arguments {
            return {{"CurrentTransportState", transport_state},
                    {"CurrentTransportStatus", "OK"},
                    {"CurrentSpeed", "1"}};
        });
    }

    uv_loop_t* loop;
    DemoDeviceOptions options;
    std::optional<Publisher> publisher;  // reset by close_now()
    Service* rendering_control = nullptr;
    Service* av_transport = nullptr;
    int volume = 20;
    int step = 3;
    bool mute = false;
    std::string transport_state = "STOPPED";
    std::uint64_t ticks = 0;
    bool started = false;
    std::stop_source timer_stop;
    std::unique_ptr<http::Server> server;
    std::unique_ptr<Scope> scope;
};

DemoDevice::DemoDevice(uv_loop_t* loop, DemoDeviceOptions options)
    : impl_(std::make_shared<Impl>(loop, std::move(options))) {}

DemoDevice::~DemoDevice() {
    impl_->close_now();
}

void DemoDevice::start() {
    if (impl_->started) {
        throw_error(uvgena::errc::invalid_argument, "DemoDevice::start called twice");
    }
    http::ServerOptions so;
    so.address = impl_->options.address;
    so.port_range = impl_->options.port_range;
    Impl* impl = impl_.get();
    auto server = std::make_unique<http::Server>(
        impl_->loop,
        impl_->publisher->handler([impl](const http::Request& r, const http::RequestContext&) {
            return impl->handle(r);
        }),
        so);
    server->listen();
    impl_->server = std::move(server);
    impl_->started = true;
    if (impl_->options.interval.count() > 0) {
        impl_->scope = std::make_unique<Scope>(impl_->loop);
        impl_->scope->spawn(with_stop_token(impl_->run_timer(), impl_->timer_stop.get_token()));
    }
}

// Holds the Impl: the DemoDevice may be destroyed while this is suspended (issue 17, bug 3).
// Each step is itself idempotent and waits for a stop already running, so a second call
// returns only when the device has stopped.
Task<void> DemoDevice::stop(std::chrono::milliseconds grace) {
    std::shared_ptr<Impl> impl = impl_;
    impl->timer_stop.request_stop();
    if (impl->scope) co_await impl->scope->join();
    if (impl->server) co_await impl->server->stop(grace);
    if (impl->publisher) co_await impl->publisher->stop(grace);
}

std::string DemoDevice::base_url() const {
    return impl_->base_url();
}

std::string DemoDevice::description_url() const {
    return impl_->base_url() + std::string(description_path);
}

std::string DemoDevice::rendering_control_event_url() const {
    return impl_->base_url() + std::string(rendering_control_event);
}

std::string DemoDevice::av_transport_event_url() const {
    return impl_->base_url() + std::string(av_transport_event);
}

const std::string& DemoDevice::udn() const noexcept {
    return impl_->options.udn;
}

std::string DemoDevice::description() const {
    return impl_->description();
}

void DemoDevice::tick() {
    impl_->tick();
}

std::uint64_t DemoDevice::ticks() const noexcept {
    return impl_->ticks;
}

int DemoDevice::volume() const noexcept {
    return impl_->volume;
}

void DemoDevice::set_volume(int volume) {
    impl_->set_volume(volume);
}

bool DemoDevice::muted() const noexcept {
    return impl_->mute;
}

void DemoDevice::set_mute(bool mute) {
    impl_->set_mute(mute);
}

const std::string& DemoDevice::transport_state() const noexcept {
    return impl_->transport_state;
}

void DemoDevice::set_transport_state(std::string state) {
    impl_->set_transport_state(std::move(state));
}

void DemoDevice::set_track(std::string uri, std::string didl_metadata) {
    impl_->set_track(std::move(uri), std::move(didl_metadata), "0:00:00");
}

Publisher& DemoDevice::publisher() noexcept {
    return *impl_->publisher;
}

http::Server* DemoDevice::server() noexcept {
    return impl_->server.get();
}

}  // namespace uvgena::gena
