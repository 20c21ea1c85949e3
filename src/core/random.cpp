// The OS CSPRNG: getrandom(2) directly (no libuv in core), retried on EINTR and on partial
// reads (possible for requests above 256 bytes).
#include "uvgena/core/random.hpp"

#include <sys/random.h>

#include <cerrno>

#include "uvgena/core/error.hpp"

namespace uvgena {

void os_random_bytes(std::span<std::byte> out) {
    std::size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_error(std::error_code(errno, std::generic_category()), "getrandom");
        }
        done += static_cast<std::size_t>(n);
    }
}

std::array<std::byte, 16> os_random_16() {
    std::array<std::byte, 16> out{};
    os_random_bytes(out);
    return out;
}

}  // namespace uvgena
