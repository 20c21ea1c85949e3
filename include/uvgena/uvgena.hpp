// The whole public API of uvgena in one include, layer by layer from the bottom: core
// (errors, results, logging), the coroutine runtime (co), networking (net), HTTP/1.1 (http),
// the sans-IO GENA protocol (gena), SSDP discovery and descriptions (ssdp), subscriptions and
// the NOTIFY listener (subscriber), the device side (publisher), and the blocking facade.
// docs/ARCHITECTURE.md describes the layers; docs/LIFETIME.md the lifetime rules.
#pragma once

#include "uvgena/blocking/blocking.hpp"
#include "uvgena/co/co.hpp"
#include "uvgena/control/control.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/core/overflow.hpp"
#include "uvgena/core/random.hpp"
#include "uvgena/core/result.hpp"
#include "uvgena/core/version.hpp"
#include "uvgena/gena/gena.hpp"
#include "uvgena/http/http.hpp"
#include "uvgena/net/net.hpp"
#include "uvgena/publisher/publisher.hpp"
#include "uvgena/ssdp/ssdp.hpp"
#include "uvgena/subscriber/subscriber.hpp"
