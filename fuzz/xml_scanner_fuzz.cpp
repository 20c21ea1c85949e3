// Differential fuzzing of the body readers' XML scanner: on every input, everything the readers
// return (property set, LastChange, DIDL-Lite, errors) must be the same with the scanner as
// with tinyxml2 alone. A difference aborts with both dumps.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "../tests/gena/body_dump.hpp"
#include "uvgena/gena/event_body.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace uvgena::gena;
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    set_xml_scanner(false);
    std::string reference = uvtest::dump_readers(bytes);
    set_xml_scanner(true);
    std::string scanned = uvtest::dump_readers(bytes);
    if (scanned != reference) {
        std::fprintf(stderr, "tinyxml2:\n%s\nscanner:\n%s\n", reference.c_str(), scanned.c_str());
        std::abort();
    }
    return 0;
}
