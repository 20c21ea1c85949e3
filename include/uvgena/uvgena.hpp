// The whole public API of uvgena in one include: the coroutine runtime (co), HTTP/1.1 (http),
// GENA eventing with subscriptions, the NOTIFY listener and the publisher (gena), SSDP
// discovery and device descriptions (ssdp), and the blocking facade (blocking).
#pragma once

#include "uvgena/blocking/blocking.hpp"
#include "uvgena/co/co.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/core/result.hpp"
#include "uvgena/gena/gena.hpp"
#include "uvgena/http/http.hpp"
#include "uvgena/ssdp/ssdp.hpp"
