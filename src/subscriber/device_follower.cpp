// DeviceFollower: reads an AdvertisementListener's changes and resubscribes the followed
// subscriptions of a device that is back after a restart.
#include "uvgena/subscriber/device_follower.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "subscriber/subscription_impl.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/core/log.hpp"

namespace uvgena::ssdp {

struct DeviceFollower::State {
    State(uv_loop_t* l, AdvertisementListenerOptions o)
        : loop(l), options(o), listener(AdvertisementListener::start(l, std::move(o))), scope(l) {}

    // One followed subscription.
    struct Entry {
        std::string udn;
        std::weak_ptr<gena::detail::SubscriptionCore> core;
    };
    // What the advertisements said of one followed device.
    struct Device {
        std::string udn;
        bool down = false;     // byebye (or expiry) seen, no alive since
        std::string location;  // last LOCATION seen
    };

    // The reader: one task in `scope` (which this state owns; the task holds no reference).
    static Task<void> read(State* self) {
        while (std::optional<DeviceChange> change = co_await self->listener.next()) {
            self->on_change(*change);
        }
    }

    // Asks the device for its current advertisement (M-SEARCH for its UDN), so that a later
    // alive with a higher BOOTID is seen as a reboot even when its last alive came before
    // the follower started. Best effort: without an answer only byebye/alive are followed.
    static Task<void> search(State* self, std::string udn) {
        DiscoverOptions o;
        o.search_target = udn;
        o.timeout = std::chrono::milliseconds(2000);
        o.mx = 1;
        o.interface = self->options.interface;
        o.ipv4 = self->options.ipv4;
        o.ipv6 = self->options.ipv6;
        std::optional<Search> s;
        try {
            s.emplace(Search::start(self->loop, o));
        } catch (const Error& e) {
            log(LogLevel::info, "uvgena: cannot search for ", udn, ": ", e.what());
            co_return;
        }
        while (std::optional<DiscoveredDevice> found = co_await s->next()) {
            if (found->udn != udn) continue;
            self->listener.remember(*found);
            if (Device* d = self->device(udn); d != nullptr && d->location.empty()) {
                d->location = found->location;
            }
            break;
        }
    }

    Device* device(std::string_view udn) {
        auto it = std::find_if(devices.begin(), devices.end(),
                               [&](const Device& d) { return d.udn == udn; });
        return it == devices.end() ? nullptr : &*it;
    }

    // Drops the subscriptions that ended, and the devices nobody follows any more.
    void sweep() {
        std::erase_if(entries, [](const Entry& e) {
            std::shared_ptr<gena::detail::SubscriptionCore> core = e.core.lock();
            return !core || !core->subscribed();
        });
        std::erase_if(devices, [&](const Device& d) {
            return std::none_of(entries.begin(), entries.end(),
                                [&](const Entry& e) { return e.udn == d.udn; });
        });
    }

    void on_change(const DeviceChange& change) {
        sweep();
        Device* d = device(change.udn);
        if (d == nullptr) return;
        bool back = false;
        switch (change.event) {
            case DeviceEvent::left:
            case DeviceEvent::expired:
                d->down = true;
                log(LogLevel::warning, "uvgena: device ", change.udn,
                    change.event == DeviceEvent::left ? " said goodbye (ssdp:byebye)"
                                                      : " stopped advertising",
                    ": its subscriptions are down until it is back");
                break;
            case DeviceEvent::appeared:
                back = d->down;  // else: only the follower's first sight of it
                break;
            case DeviceEvent::rebooted:
                back = true;
                break;
            case DeviceEvent::updated:
                back = !d->location.empty() && !change.location.empty() &&
                       change.location != d->location;
                break;
        }
        if (!change.location.empty()) d->location = change.location;
        std::size_t started = 0;
        if (back) {
            d->down = false;
            // Collected first: a resubscription may run user code that follows or ends others.
            std::vector<std::shared_ptr<gena::detail::SubscriptionCore>> cores;
            for (const Entry& e : entries) {
                if (e.udn != change.udn) continue;
                if (auto core = e.core.lock()) cores.push_back(std::move(core));
            }
            for (auto& core : cores) {
                if (!core->subscribed()) continue;
                core->resubscribe_later(true);
                ++started;
            }
            resubscriptions += started;
            log(LogLevel::warning, "uvgena: device ", change.udn, " is back (",
                to_string(change.event), change.location.empty() ? "" : ", ", change.location,
                "): resubscribing ", started, " subscription(s)");
        }
        if (handler) {
            // A copy: the handler may replace itself.
            FollowHandler h = handler;
            try {
                h(change, started);
            } catch (const std::exception& e) {
                log(LogLevel::error, "uvgena: device follower handler threw: ", e.what());
            } catch (...) {
                log(LogLevel::error, "uvgena: device follower handler threw");
            }
        }
    }

    uv_loop_t* loop;
    AdvertisementListenerOptions options;
    AdvertisementListener listener;
    std::vector<Entry> entries;
    std::vector<Device> devices;
    FollowHandler handler;
    std::size_t resubscriptions = 0;
    Scope scope;  // last: destroyed first (its task uses the members above)
};

DeviceFollower::DeviceFollower(uv_loop_t* loop, AdvertisementListenerOptions options)
    : state_(std::make_unique<State>(loop, std::move(options))) {
    state_->scope.spawn(State::read(state_.get()));
}

DeviceFollower::~DeviceFollower() {
    state_->listener.close();
}

void DeviceFollower::follow(const gena::Subscription& subscription, std::string udn) {
    const std::shared_ptr<gena::detail::SubscriptionCore>& core =
        gena::detail::SubscriberAccess::core(subscription);
    if (!core) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "follow " + udn + ": empty Subscription");
    }
    state_->sweep();
    std::erase_if(state_->entries, [&](const State::Entry& e) {
        std::shared_ptr<gena::detail::SubscriptionCore> c = e.core.lock();
        return c == core;
    });
    if (state_->device(udn) == nullptr) {
        state_->devices.push_back(State::Device{udn, false, {}});
        // Known from now on (the subscription says it is up), so that its byebye counts even
        // if its last alive came before the follower started; its BOOTID from a search.
        DiscoveredDevice known;
        known.udn = udn;
        state_->listener.remember(known);
        state_->scope.spawn(State::search(state_.get(), udn));
    }
    state_->entries.push_back(State::Entry{std::move(udn), core});
}

void DeviceFollower::set_handler(FollowHandler handler) {
    state_->handler = std::move(handler);
}

Task<void> DeviceFollower::close() {
    state_->listener.close();
    // A search still waiting for the device's answer is not worth waiting for.
    state_->scope.request_stop();
    co_await state_->scope.join();
}

std::size_t DeviceFollower::following() const noexcept {
    return state_->entries.size();
}

std::size_t DeviceFollower::resubscriptions() const noexcept {
    return state_->resubscriptions;
}

}  // namespace uvgena::ssdp
