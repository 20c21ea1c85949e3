#include "uvgena/core/version.hpp"

#include <sys/utsname.h>

namespace uvgena {

const char* version() noexcept {
    return UVGENA_VERSION_STRING;
}

const std::string& product_token() {
    static const std::string value = [] {
        struct utsname u {};
        std::string os = "Unix/1.0";
        if (uname(&u) == 0) {
            std::string release = u.release;
            // Keep the version a plain token: "6.1.0-13-amd64" -> "6.1.0".
            auto end = release.find_first_not_of("0123456789.");
            if (end != std::string::npos) release.resize(end);
            if (release.empty()) release = "1.0";
            os = std::string(u.sysname) + "/" + release;
        }
        return os + " UPnP/1.1 uvgena/" UVGENA_VERSION_STRING;
    }();
    return value;
}

}  // namespace uvgena
