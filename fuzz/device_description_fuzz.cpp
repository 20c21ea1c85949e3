// Fuzzes device description parsing: a malicious or broken device serves this XML.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "uvgena/ssdp/description.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view xml(reinterpret_cast<const char*>(data), size);
    auto d = uvgena::ssdp::parse_description(xml, "http://10.0.0.1:1400/xml/description.xml");
    if (d) {
        (void)d->service("RenderingControl");
        for (const auto* s : d->root.all_services()) (void)s->short_name();
    }
    return 0;
}
