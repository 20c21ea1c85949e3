// The blocking facade of uvgena (umbrella header): BackgroundLoop, EventualResult and the
// thread-safe queues, for programs that are not event-driven.
#pragma once

#include "uvgena/blocking/background_loop.hpp"
#include "uvgena/blocking/eventual_result.hpp"
#include "uvgena/blocking/queue.hpp"
