#include "uvgena/publisher/interfaces.hpp"

#include <doctest/doctest.h>

using namespace uvgena;
using namespace uvgena::gena;

TEST_SUITE("publisher.interfaces") {
    TEST_CASE("the host's interface list includes loopback with its netmask") {
        auto list = local_interface_networks();
        bool loopback = false;
        for (const auto& n : list) {
            if (n.address.is_loopback() && n.address.is_ipv4()) {
                loopback = true;
                CHECK(n.netmask.ip() == "255.0.0.0");
            }
        }
        CHECK(loopback);
    }
}
