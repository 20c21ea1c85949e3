// DeviceFollower: subscriptions that follow their device's SSDP advertisements, so that a
// device restart is noticed when the device says so, not at the next renewal.
//
// A device that restarts forgets every SID; the subscriber hears of it only when a renewal is
// answered 412, which for a device granting 300 s (GUPnP-based renderers grant 300 s
// whatever is asked) is minutes of events lost without a word. Devices say more: ssdp:byebye
// when they stop, ssdp:alive when they start, and UPnP 1.1 devices a higher
// BOOTID.UPNP.ORG. The follower listens to those (an ssdp::AdvertisementListener) and, for the
// subscriptions it follows, resubscribes at once when the device is back:
//
//     ssdp::DeviceFollower follower(loop);                 // binds UDP 1900 (shared)
//     auto sub = co_await uvgena::subscribe(loop, url, {.auto_renew = true,
//                                                       .auto_resubscribe = true});
//     follower.follow(sub, "uuid:...");                    // the device's UDN
//
// What it acts on, per followed UDN: `left` (byebye) and `expired` mark the device down (a
// warning; the subscription keeps its SID, renewals go on); `appeared` after that, `rebooted`
// (a higher BOOTID), or `updated` with a changed LOCATION resubscribe every followed
// subscription of the device now (Subscription::resubscribe_now: the new SID's initial event
// comes flagged Event::resubscribed). An `appeared` never preceded by a byebye is only
// recorded: the follower may simply have started after the device. A device that crashes and
// comes back without byebye and without BOOTID is not noticed here: its next renewal (412)
// still is, with auto_resubscribe.
#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "uvgena/co/task.hpp"
#include "uvgena/core/export.hpp"
#include "uvgena/ssdp/discovery.hpp"
#include "uvgena/subscriber/subscription.hpp"

namespace uvgena::ssdp {

/// Told of each change of a followed device: `change` as the advertisements said it, and the
/// number of subscriptions it resubscribes for it (0 for `left` / `expired`, or an `appeared`
/// that was no return).
using FollowHandler = std::function<void(const DeviceChange& change, std::size_t resubscribing)>;

/// Follows the advertisements of the devices of some subscriptions and resubscribes them
/// when their device is back after a restart (see the file comment). Lives on one loop; not
/// copyable or movable; must not be destroyed from its own handler. Holds no subscription
/// alive: one that ends (or is destroyed) is forgotten.
class UVGENA_API DeviceFollower {
  public:
    /// Starts listening to advertisements (IPv4 and, with options.ipv6, IPv6; on
    /// options.interface or every interface that is up). Throws Error like
    /// AdvertisementListener::start.
    explicit DeviceFollower(uv_loop_t* loop, AdvertisementListenerOptions options = {});
    DeviceFollower(const DeviceFollower&) = delete;
    DeviceFollower& operator=(const DeviceFollower&) = delete;
    /// Stops listening (as close() does, without waiting).
    ~DeviceFollower();

    /// Follows device `udn` ("uuid:...", the root or the embedded device that advertises)
    /// for `subscription` until the subscription ends. The same subscription may be followed
    /// once; following it again replaces its UDN.
    void follow(const gena::Subscription& subscription, std::string udn);
    /// Called for every change of a followed device (from the loop; exceptions logged).
    void set_handler(FollowHandler handler);
    /// Stops listening; resolves once the reading task is over. Idempotent.
    Task<void> close();

    /// Subscriptions followed now (ended ones are forgotten at the next change).
    std::size_t following() const noexcept;
    /// Resubscriptions started because of advertisements.
    std::size_t resubscriptions() const noexcept;

    struct UVGENA_LOCAL State;

  private:
    std::unique_ptr<State> state_;
};

}  // namespace uvgena::ssdp
