// A published service: its evented variables, moderation (minimum intervals per variable
// and per service), and the property sets of its events.
#include <algorithm>

#include "publisher/publisher_impl.hpp"
#include "uvgena/core/error.hpp"

namespace uvgena::gena {

std::unique_ptr<Service::Impl> Service::Impl::make(Publisher::Impl* publisher,
                                                   ServiceConfig config) {
    auto absolute = [](const std::string& path) {
        return !path.empty() && path.front() == '/' &&
               path.find_first_of("?# \t\r\n") == std::string::npos;
    };
    if (!absolute(config.event_path)) {
        throw_error(uvgena::errc::invalid_argument,
                    "event path must be an absolute path: '" + config.event_path + "'");
    }
    for (const std::string* path : {&config.control_path, &config.scpd_path}) {
        if (!path->empty() && !absolute(*path)) {
            throw_error(uvgena::errc::invalid_argument,
                        "control and SCPD paths must be absolute paths: '" + *path + "'");
        }
    }
    auto impl = std::make_unique<Impl>();
    impl->publisher = publisher;
    impl->event_path = std::move(config.event_path);
    impl->control_path = std::move(config.control_path);
    impl->service_type = std::move(config.service_type);
    impl->scpd_path = std::move(config.scpd_path);
    impl->check_actions = config.check_actions;
    if (!config.scpd.empty()) {
        auto parsed = control::parse_scpd(config.scpd);
        if (!parsed) {
            throw_error(uvgena::errc::invalid_argument,
                        "the SCPD of " + impl->event_path +
                            " is not a service description: " + parsed.error().message());
        }
        impl->scpd = std::move(*parsed);
        impl->scpd_xml = std::move(config.scpd);
    } else if (!impl->scpd_path.empty()) {
        throw_error(uvgena::errc::invalid_argument,
                    "an SCPD path without an SCPD: " + impl->scpd_path);
    }
    impl->min_interval = config.min_interval;
    impl->multicast_sink = std::move(config.multicast_sink);
    for (VariableConfig& v : config.variables) {
        if (!is_valid_variable_name(v.name)) {
            throw_error(uvgena::errc::invalid_argument,
                        "not a valid variable name: '" + v.name + "'");
        }
        if (impl->find(v.name) != nullptr) {
            throw_error(uvgena::errc::invalid_argument, "variable declared twice: " + v.name);
        }
        Variable variable;
        variable.name = std::move(v.name);
        variable.value = std::move(v.value);
        variable.min_interval = v.min_interval;
        variable.multicast = v.multicast;
        impl->variables.push_back(std::move(variable));
    }
    if (!config.last_change_namespace.empty()) {
        impl->last_change.emplace(std::move(config.last_change_namespace));
        Variable* v = impl->find("LastChange");
        if (v == nullptr) {
            Variable variable;
            variable.name = "LastChange";
            impl->variables.push_back(std::move(variable));
            v = &impl->variables.back();
        }
        v->is_last_change = true;
        v->value.clear();
    }
    return impl;
}

Service::Impl::Variable* Service::Impl::find(std::string_view name) noexcept {
    for (Variable& v : variables) {
        if (v.name == name) return &v;
    }
    return nullptr;
}

Service::Impl::Variable& Service::Impl::require(std::string_view name) {
    Variable* v = find(name);
    if (v == nullptr) {
        throw_error(
            uvgena::errc::invalid_argument,
            "service " + event_path + " has no evented variable '" + std::string(name) + "'");
    }
    if (v->is_last_change) {
        throw_error(uvgena::errc::invalid_argument,
                    "LastChange of " + event_path + " is set through set_last_change");
    }
    return *v;
}

Service::Impl::Variable& Service::Impl::last_change_variable() {
    if (last_change) {
        for (Variable& v : variables) {
            if (v.is_last_change) return v;
        }
    }
    throw_error(uvgena::errc::invalid_argument, "service " + event_path + " has no LastChange");
}

detail::EventBody Service::Impl::full_state_event() {
    if (!full_state) {
        std::string last_change_doc;
        std::vector<NameValue> values;
        values.reserve(variables.size());
        for (const Variable& v : variables) {
            if (v.is_last_change) {
                last_change_doc = last_change->full_document();
                values.push_back({v.name, last_change_doc});
            } else {
                values.push_back({v.name, v.value});
            }
        }
        full_state = std::make_shared<const std::string>(build_property_set(values));
    }
    return full_state;
}

void Service::Impl::emit_due(bool force) {
    Clock::time_point now = Clock::now();
    Publisher::Impl& pub = *publisher;
    std::vector<Variable*> due;
    std::optional<Clock::time_point> next;
    Clock::time_point service_ready = last_emit + min_interval;
    for (Variable& v : variables) {
        if (!v.pending) continue;
        Clock::time_point at = std::max(service_ready, v.last_emit + v.min_interval);
        if (force || at <= now) {
            due.push_back(&v);
        } else if (!next || at < *next) {
            next = at;
        }
    }
    if (!due.empty()) {
        std::vector<NameValue> values;
        values.reserve(due.size());
        std::vector<NameValue> multicast_values;
        std::string last_change_doc;
        for (Variable* v : due) {
            v->pending = false;
            v->last_emit = now;
            if (v->is_last_change) {
                last_change_doc = last_change->take_changes();
                values.push_back({v->name, last_change_doc});
            } else {
                values.push_back({v->name, v->value});
            }
            if (v->multicast) multicast_values.push_back(values.back());
        }
        if (!multicast_values.empty() && multicast_sink) {
            multicast_sink(build_property_set(multicast_values));
        }
        last_emit = now;
        ++pub.stats.events;
        if (!subscribers.empty()) {
            auto body = std::make_shared<const std::string>(build_property_set(values));
            // By index: enqueue never removes a subscriber, but keep the loop independent of it.
            for (std::size_t i = 0; i < subscribers.size(); ++i) pub.enqueue(subscribers[i], body);
        }
        // The service's moderation now holds back whatever is still pending.
        if (next && min_interval.count() > 0) next = std::max(*next, now + min_interval);
    }
    if (next) schedule_flush(*next);
}

void Service::Impl::schedule_flush(Clock::time_point when) {
    if (publisher->stopped) return;
    if (flush_at && *flush_at <= when) return;  // an earlier flush re-evaluates everything
    flush_stop.request_stop();
    flush_stop = std::stop_source();
    flush_at = when;
    publisher->scope->spawn(with_stop_token(flush_later(when), flush_stop.get_token()));
}

Task<void> Service::Impl::flush_later(Clock::time_point when) {
    try {
        co_await sleep_until(publisher->loop, when);
    } catch (const Error& e) {
        if (is_cancelled(e.code())) co_return;
        throw;
    }
    flush_at.reset();
    emit_due(false);
}

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Service::~Service() = default;

const std::string& Service::event_path() const noexcept {
    return impl_->event_path;
}

void Service::set(std::string_view name, std::string value) {
    Impl::Variable& v = impl_->require(name);
    v.value = std::move(value);
    impl_->changed(v);
    impl_->emit_due(false);
}

void Service::set_many(std::span<const NameValue> variables) {
    // Check every name first: all or nothing.
    for (const NameValue& nv : variables) impl_->require(nv.name);
    for (const NameValue& nv : variables) {
        Impl::Variable& v = impl_->require(nv.name);
        v.value = std::string(nv.value);
        impl_->changed(v);
    }
    impl_->emit_due(false);
}

void Service::set_many(std::initializer_list<NameValue> variables) {
    set_many(std::span<const NameValue>(variables.begin(), variables.size()));
}

void Service::set_last_change(std::string_view instance, std::string_view name,
                              std::string_view value, std::initializer_list<NameValue> attributes) {
    Impl::Variable& v = impl_->last_change_variable();
    impl_->last_change->set(instance, name, value, attributes);
    impl_->changed(v);
    impl_->emit_due(false);
}

void Service::update_last_change(const std::function<void(LastChangeState&)>& edit) {
    Impl::Variable& v = impl_->last_change_variable();
    edit(*impl_->last_change);
    if (!impl_->last_change->has_changes()) return;
    impl_->changed(v);
    impl_->emit_due(false);
}

const LastChangeState* Service::last_change() const noexcept {
    return impl_->last_change ? &*impl_->last_change : nullptr;
}

std::optional<std::string> Service::value(std::string_view name) const {
    const Impl::Variable* v = impl_->find(name);
    if (v == nullptr) return std::nullopt;
    if (v->is_last_change) return impl_->last_change->full_document();
    return v->value;
}

void Service::flush() {
    impl_->emit_due(true);
}

std::size_t Service::subscriber_count() const noexcept {
    return impl_->subscribers.size();
}

}  // namespace uvgena::gena
