// Fuzzes the SOAP codec on both sides: a device reads any body a control point sends, a
// control point any answer a device sends. Property: a request the device side reads, built
// again by the client side, reads back the same (unless it holds a character XML cannot
// carry, which the builder refuses).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "uvgena/control/soap.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace control = uvgena::control;
    std::string_view body(reinterpret_cast<const char*>(data), size);
    (void)control::parse_response(body, "GetVolume");
    (void)control::parse_fault(body);
    auto request = control::parse_request(
        "\"urn:schemas-upnp-org:service:RenderingControl:1#SetVolume\"", body);
    if (!request) return 0;
    auto rebuilt = control::build_request(*request);
    if (!rebuilt) return 0;
    auto again = control::parse_request(*rebuilt->headers.get("SOAPACTION"), rebuilt->body);
    if (!again || again->arguments != request->arguments || again->action != request->action) {
        __builtin_trap();
    }
    return 0;
}
