// Fuzzes the NOTIFY body readers: the property set, the LastChange document nested in it and
// DIDL-Lite in every variable (top level and in every LastChange instance), plus the
// standalone parsers and the repair pass on the raw bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "uvgena/gena/event_body.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace uvgena::gena;
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    (void)parse_last_change(bytes);
    (void)parse_didl(bytes);
    (void)repair_xml(bytes);
    (void)escape_xml(bytes);

    auto parsed = PropertySet::parse(bytes);
    if (!parsed) return 0;
    const PropertySet& set = *parsed;
    (void)set.trimmed();
    for (const Variable& v : set.variables()) {
        (void)set.state(v.name);
        (void)set.didl(v.name);
    }
    const auto& lc = set.last_change();
    if (lc) {
        for (const LastChangeInstance& instance : lc->instances) {
            for (const LastChangeValue& value : instance.values) {
                (void)instance.find(value.name);
                (void)instance.find(value.name, value.channel());
                (void)set.state(value.name, instance.id);
                (void)set.didl(value.name, instance.id);
            }
        }
    }
    return 0;
}
