// The http layer of uvgena: messages, URLs, errors, the incremental parser, the client and
// the server.
#pragma once

#include "uvgena/http/client.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/http/message.hpp"
#include "uvgena/http/parser.hpp"
#include "uvgena/http/server.hpp"
#include "uvgena/http/status.hpp"
#include "uvgena/http/url.hpp"
