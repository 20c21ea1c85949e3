// Umbrella header of the GENA layer (uvgena::gena): sans-IO rules of UPnP eventing and the
// reading / building of event bodies.
#pragma once

#include "uvgena/gena/error.hpp"          // IWYU pragma: export
#include "uvgena/gena/event_body.hpp"     // IWYU pragma: export
#include "uvgena/gena/event_builder.hpp"  // IWYU pragma: export
#include "uvgena/gena/protocol.hpp"       // IWYU pragma: export
#include "uvgena/gena/seq.hpp"            // IWYU pragma: export
#include "uvgena/gena/values.hpp"         // IWYU pragma: export
