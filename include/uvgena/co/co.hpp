// The coroutine runtime of uvgena (umbrella header).
#pragma once

#include "uvgena/co/address.hpp"
#include "uvgena/co/channel.hpp"
#include "uvgena/co/event.hpp"
#include "uvgena/co/scheduler.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/task.hpp"
#include "uvgena/co/tcp.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/co/udp.hpp"
