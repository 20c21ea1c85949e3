// The blocking facade of uvgena (umbrella header): BackgroundLoop, EventualResult, the
// thread-safe queues and blocking subscriptions, for programs that are not event-driven.
#pragma once

#include "uvgena/blocking/background_loop.hpp"
#include "uvgena/blocking/eventual_result.hpp"
#include "uvgena/blocking/queue.hpp"
#include "uvgena/blocking/state_mirror.hpp"
#include "uvgena/blocking/subscription.hpp"
