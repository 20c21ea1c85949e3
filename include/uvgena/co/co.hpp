// The coroutine runtime of uvgena (umbrella header): tasks, scopes, channels, timers, async
// events and the per-loop context they share. Networking is in uvgena/net/net.hpp.
#pragma once

#include "uvgena/co/async_event.hpp"   // IWYU pragma: export
#include "uvgena/co/channel.hpp"       // IWYU pragma: export
#include "uvgena/co/loop_context.hpp"  // IWYU pragma: export
#include "uvgena/co/scope.hpp"         // IWYU pragma: export
#include "uvgena/co/task.hpp"          // IWYU pragma: export
#include "uvgena/co/timer.hpp"         // IWYU pragma: export
