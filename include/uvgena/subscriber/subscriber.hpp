// Umbrella header of the subscriber layer: subscribe() and Subscription (SUBSCRIBE, renewal,
// UNSUBSCRIBE, events), the shared NOTIFY listener, and subscribing to a described device's
// service. Names stay in uvgena::gena (and uvgena::subscribe) for source compatibility.
#pragma once

#include "uvgena/subscriber/device_follower.hpp"   // IWYU pragma: export
#include "uvgena/subscriber/listener.hpp"          // IWYU pragma: export
#include "uvgena/subscriber/service_state.hpp"     // IWYU pragma: export
#include "uvgena/subscriber/subscribe_device.hpp"  // IWYU pragma: export
#include "uvgena/subscriber/subscription.hpp"      // IWYU pragma: export
