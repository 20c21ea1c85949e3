// The control layer: service descriptions (SCPD), SOAP actions, their errors.
#pragma once

#include "uvgena/control/client.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/control/scpd.hpp"
#include "uvgena/control/soap.hpp"
