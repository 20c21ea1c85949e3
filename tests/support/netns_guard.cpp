// Linked into every test program that sends multicast: it refuses to run (exit 77, skipped)
// unless scripts/in-netns.sh started it in a network namespace other than the one it was
// called from (UVGENA_OUTER_NETNS names that one), so that running the binary by hand can
// never put an SSDP packet on a real network.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

std::string namespace_of(const char* path) {
    char buf[256];
    ssize_t n = ::readlink(path, buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

const bool netns_checked = [] {
    std::string mine = namespace_of("/proc/self/ns/net");
    const char* outer = std::getenv("UVGENA_OUTER_NETNS");
    if (mine.empty() || outer == nullptr || *outer == '\0' || mine == outer) {
        std::fprintf(stderr,
                     "SKIPPED: this test sends multicast and runs only inside a private network "
                     "namespace; run it through scripts/in-netns.sh\n");
        std::exit(77);
    }
    return true;
}();

}  // namespace
