// Umbrella header of the GENA layer (uvgena::gena): sans-IO rules of UPnP eventing and the
// reading / building of event bodies.
#pragma once

#include "uvgena/gena/demo_device.hpp"    // IWYU pragma: export
#include "uvgena/gena/error.hpp"          // IWYU pragma: export
#include "uvgena/gena/event.hpp"          // IWYU pragma: export
#include "uvgena/gena/event_body.hpp"     // IWYU pragma: export
#include "uvgena/gena/event_builder.hpp"  // IWYU pragma: export
#include "uvgena/gena/listener.hpp"       // IWYU pragma: export
#include "uvgena/gena/protocol.hpp"       // IWYU pragma: export
#include "uvgena/gena/publisher.hpp"      // IWYU pragma: export
#include "uvgena/gena/schedule.hpp"       // IWYU pragma: export
#include "uvgena/gena/seq.hpp"            // IWYU pragma: export
#include "uvgena/gena/subscription.hpp"   // IWYU pragma: export
#include "uvgena/gena/values.hpp"         // IWYU pragma: export
