// The publisher's control front: SOAP action calls POSTed to a service's control path,
// parsed, checked against its SCPD and answered by the control layer's codec (the one the
// client side, call_action, uses), with the handlers set by Service::on_action; and the SCPD
// documents served at their paths.
#include <algorithm>
#include <exception>
#include <utility>

#include "publisher/publisher_impl.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/log.hpp"

namespace uvgena::gena {

namespace {

http::Response soap_answer(control::SoapMessage message, int status, const std::string& server) {
    http::Response r;
    r.status = status;
    r.headers = std::move(message.headers);
    // UDA 1.1 section 3.2.2: the response carries EXT (empty) and SERVER.
    r.headers.add("EXT", "");
    r.headers.add("SERVER", server.empty() ? default_user_agent() : server);
    r.body = std::move(message.body);
    return r;
}

// "urn:domain:service:Name:V" -> ("urn:domain:service:Name", V); V is 0 when unreadable.
std::pair<std::string_view, unsigned> split_version(std::string_view type) {
    auto colon = type.rfind(':');
    if (colon == std::string_view::npos) return {type, 0};
    unsigned version = 0;
    for (char c : type.substr(colon + 1)) {
        if (c < '0' || c > '9' || version > 100000) return {type, 0};
        version = version * 10 + static_cast<unsigned>(c - '0');
    }
    return {type.substr(0, colon), version};
}

// UDA 1.1 section 2.1: a control point may use any version up to the device's of a service
// type, and the device then answers as that version.
bool type_accepted(std::string_view asked, std::string_view served) {
    if (asked == served) return true;
    auto [asked_base, asked_version] = split_version(asked);
    auto [served_base, served_version] = split_version(served);
    return asked_version != 0 && served_version != 0 && asked_base == served_base &&
           asked_version <= served_version;
}

// The out arguments in the SCPD's order; false when the handler left one out or added one
// the action does not declare as out.
bool order_outputs(const control::ActionInfo& action, control::Arguments& out) {
    control::Arguments ordered;
    std::size_t declared = 0;
    for (const control::ArgumentInfo& argument : action.arguments) {
        if (argument.direction != control::Direction::out) continue;
        ++declared;
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const auto& a) { return a.first == argument.name; });
        if (it == out.end()) return false;
        ordered.push_back(std::move(*it));
    }
    if (out.size() != declared) return false;
    out = std::move(ordered);
    return true;
}

// The fault an exception of a handler is answered with, and what to log about it.
control::Fault fault_of(std::exception_ptr failure, std::string& why) {
    try {
        std::rethrow_exception(std::move(failure));
    } catch (const control::ActionError& e) {
        why = e.what();
        return control::Fault{e.error_code(), e.error_description()};
    } catch (const std::system_error& e) {
        why = e.what();
        return control::fault_for(e.code());
    } catch (const std::exception& e) {
        why = e.what();
    } catch (...) {
        why = "unknown exception";
    }
    return control::Fault{501, std::string(control::upnp_error_name(501))};
}

}  // namespace

std::optional<std::string_view> ActionCall::argument(std::string_view name) const noexcept {
    for (const auto& [n, v] : arguments) {
        if (n == name) return std::string_view(v);
    }
    return std::nullopt;
}

Task<http::Response> Publisher::Impl::answer(std::shared_ptr<Impl> self,
                                             const http::Request& request,
                                             const http::RequestContext& context) {
    std::pair<Service::Impl*, detail::Route> routed = self->route(detail::path_of(request.target));
    Service::Impl* service = routed.first;
    if (service == nullptr || routed.second == detail::Route::event) {
        co_return self->handle(request, context);
    }
    if (routed.second == detail::Route::scpd) co_return self->serve_scpd(*service, request);
    co_return co_await call_action(std::move(self), *service, request, context);
}

http::Response Publisher::Impl::serve_scpd(const Service::Impl& service,
                                           const http::Request& request) const {
    if (request.method != "GET" && request.method != "HEAD") {
        http::Response r = make_error_response(405);
        r.headers.add("Allow", "GET, HEAD");
        return r;
    }
    if (stopped) return make_error_response(503);
    http::Response r;
    r.headers.add("Content-Type", "text/xml; charset=\"utf-8\"");
    r.body = service.scpd_xml;
    return r;
}

http::Response Publisher::Impl::fault(const Service::Impl& service, std::string_view action,
                                      const http::RequestContext& context, const control::Fault& f,
                                      std::string_view why) {
    ++stats.action_faults;
    if (log_enabled(LogLevel::debug)) {
        log(LogLevel::debug, "gena publisher: action ", action.empty() ? "?" : action, " on ",
            service.control_path, " from ", context.peer, " answered ", f.error_code, " ",
            f.error_description, ": ", why);
    }
    return soap_answer(control::build_fault(f), 500, options.server);
}

// A coroutine holding the Impl: the Publisher may be destroyed while a handler is suspended
// (its Service::Impl lives as long as the Impl, and the handler as long as this frame).
Task<http::Response> Publisher::Impl::call_action(std::shared_ptr<Impl> self,
                                                  Service::Impl& service,
                                                  const http::Request& request,
                                                  const http::RequestContext& context) {
    Impl& impl = *self;
    if (request.method != "POST") {
        http::Response r = make_error_response(405);
        r.headers.add("Allow", "POST");
        co_return r;
    }
    if (impl.stopped) co_return make_error_response(503);
    if (request.body.size() > impl.options.action_limits.max_bytes) {
        co_return make_error_response(413);
    }
    auto call = control::parse_request(request.headers.get("SOAPACTION").value_or(""), request.body,
                                       impl.options.action_limits);
    if (!call) {
        // XML the reader refuses is as much "not a SOAP envelope" as a wrong element.
        std::error_code e = call.error();
        if (e.category() != control::control_category()) e = control::errc::bad_envelope;
        co_return impl.fault(service, {}, context, control::fault_for(e), call.error().message());
    }
    if (!service.service_type.empty() && !type_accepted(call->service_type, service.service_type)) {
        co_return impl.fault(service, call->action, context,
                             control::fault_for(control::errc::wrong_action),
                             "service type " + call->service_type);
    }

    const control::ActionInfo* declared = nullptr;
    control::Arguments in;
    if (service.scpd && service.check_actions) {
        std::string bad;
        auto checked = control::check_arguments(*service.scpd, call->action, call->arguments, &bad);
        if (!checked) {
            co_return impl.fault(service, call->action, context,
                                 control::fault_for(checked.error()),
                                 checked.error().message() + (bad.empty() ? "" : ": " + bad));
        }
        in = std::move(*checked);
        declared = service.scpd->action(call->action);
    } else {
        in = std::move(call->arguments);
    }
    auto found = service.handlers.find(call->action);
    if (found == service.handlers.end()) {
        int code = service.scpd && service.scpd->action(call->action) != nullptr ? 602 : 401;
        co_return impl.fault(service, call->action, context,
                             control::Fault{code, std::string(control::upnp_error_name(code))},
                             "no handler");
    }
    std::shared_ptr<const detail::ActionHandlers> handler = found->second;

    ActionCall action_call{call->service_type, call->action, in, request, context};
    control::Arguments out;
    std::exception_ptr failure;
    if (handler->sync) {
        try {
            out = handler->sync(action_call);
        } catch (...) {
            failure = std::current_exception();
        }
    } else {
        // The handler stops when the request does (its connection cancelled by the server)
        // and when the Publisher stops or goes away.
        std::stop_token request_token = co_await current_stop_token();
        std::stop_source call_stop;
        using Forward = std::stop_callback<uvgena::detail::StopForwarder>;
        Forward on_request(request_token, uvgena::detail::StopForwarder{&call_stop});
        Forward on_publisher(impl.actions_stop.get_token(),
                             uvgena::detail::StopForwarder{&call_stop});
        try {
            out = co_await with_stop_token(handler->async(action_call), call_stop.get_token());
        } catch (...) {
            failure = std::current_exception();
        }
        // The server cancelled the request (a forced stop): nobody is left to answer.
        if (failure && request_token.stop_requested()) std::rethrow_exception(failure);
    }
    if (failure) {
        std::string why;
        control::Fault f = fault_of(std::move(failure), why);
        if (f.error_code == 501 && !impl.stopped) {
            log(LogLevel::warning, "gena publisher: handler of ", call->action, " on ",
                service.control_path, " failed: ", why);
        }
        co_return impl.fault(service, call->action, context, f, why);
    }
    if (declared != nullptr && !order_outputs(*declared, out)) {
        log(LogLevel::error, "gena publisher: handler of ", call->action, " on ",
            service.control_path, " answered other out arguments than its SCPD declares");
        co_return impl.fault(service, call->action, context,
                             control::Fault{501, std::string(control::upnp_error_name(501))},
                             "out arguments do not match the SCPD");
    }
    auto response = control::build_response(call->service_type, call->action, out);
    if (!response) {
        log(LogLevel::error, "gena publisher: handler of ", call->action, " on ",
            service.control_path, " answered what SOAP cannot carry: ", response.error().message());
        co_return impl.fault(service, call->action, context,
                             control::Fault{501, std::string(control::upnp_error_name(501))},
                             response.error().message());
    }
    ++impl.stats.actions;
    co_return soap_answer(std::move(*response), 200, impl.options.server);
}

// ---------------------------------------------------------------------------------------
// Service: the action side of the public face

void Service::Impl::check_action_name(const std::string& action) const {
    if (control_path.empty()) {
        throw_error(uvgena::errc::invalid_argument,
                    "service " + event_path + " has no control path: no actions");
    }
    // An action name is an element name, as a variable's is.
    if (!is_valid_variable_name(action)) {
        throw_error(uvgena::errc::invalid_argument, "not an action name: '" + action + "'");
    }
    if (scpd && check_actions && scpd->action(action) == nullptr) {
        throw_error(uvgena::errc::invalid_argument,
                    "the SCPD of " + event_path + " has no action " + action);
    }
}

void Service::on_action(std::string action, ActionHandler handler) {
    impl_->check_action_name(action);
    if (!handler) {
        impl_->handlers.erase(action);
        return;
    }
    auto entry = std::make_shared<detail::ActionHandlers>();
    entry->async = std::move(handler);
    impl_->handlers[std::move(action)] = std::move(entry);
}

void Service::on_action(std::string action, SyncActionHandler handler) {
    impl_->check_action_name(action);
    if (!handler) {
        impl_->handlers.erase(action);
        return;
    }
    auto entry = std::make_shared<detail::ActionHandlers>();
    entry->sync = std::move(handler);
    impl_->handlers[std::move(action)] = std::move(entry);
}

const std::string& Service::control_path() const noexcept {
    return impl_->control_path;
}

const control::Scpd* Service::scpd() const noexcept {
    return impl_->scpd ? &*impl_->scpd : nullptr;
}

}  // namespace uvgena::gena
