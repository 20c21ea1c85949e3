// Umbrella header of the GENA protocol layer (uvgena::gena), sans-IO only: the rules of UPnP
// eventing (headers, SEQ, TIMEOUT, renewal schedule, CALLBACK policy) and the reading and
// building of event bodies (property sets, LastChange, DIDL-Lite, typed values). No sockets
// and no libuv calls: the subscriber and publisher layers bring the I/O.
#pragma once

#include "uvgena/gena/callback_policy.hpp"      // IWYU pragma: export
#include "uvgena/gena/error.hpp"                // IWYU pragma: export
#include "uvgena/gena/event.hpp"                // IWYU pragma: export
#include "uvgena/gena/event_body.hpp"           // IWYU pragma: export
#include "uvgena/gena/event_builder.hpp"        // IWYU pragma: export
#include "uvgena/gena/last_change_builder.hpp"  // IWYU pragma: export
#include "uvgena/gena/protocol.hpp"             // IWYU pragma: export
#include "uvgena/gena/schedule.hpp"             // IWYU pragma: export
#include "uvgena/gena/seq.hpp"                  // IWYU pragma: export
#include "uvgena/gena/values.hpp"               // IWYU pragma: export
#include "uvgena/gena/xml_scanner.hpp"          // IWYU pragma: export
