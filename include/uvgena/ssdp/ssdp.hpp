// SSDP discovery, device descriptions, advertisement and multicast eventing (umbrella header).
#pragma once

#include "uvgena/ssdp/advertiser.hpp"        // IWYU pragma: export
#include "uvgena/ssdp/description.hpp"       // IWYU pragma: export
#include "uvgena/ssdp/discovery.hpp"         // IWYU pragma: export
#include "uvgena/ssdp/find_device.hpp"       // IWYU pragma: export
#include "uvgena/ssdp/message.hpp"           // IWYU pragma: export
#include "uvgena/ssdp/multicast_events.hpp"  // IWYU pragma: export
