// UDP under allocation failure. A program of its own because it replaces the global operator
// new: the replacement must not change how any other test allocates, and valgrind (which
// replaces the allocator itself) cannot run it, so its suite 'allocator' is left out of
// CI's valgrind step; it runs in every other build. Loopback only: no namespace needed.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "support/test_loop.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/net/udp.hpp"

using namespace uvgena;
using namespace std::chrono_literals;

// Allocation failure on demand: the next `operator new` of exactly this many bytes (0 = none)
// throws std::bad_alloc, to reach the out-of-memory paths of libuv callbacks.
namespace {
std::atomic<std::size_t> g_fail_alloc_of{0};
}  // namespace

void* operator new(std::size_t n) {
    std::size_t armed = n;
    if (n != 0 && g_fail_alloc_of.compare_exchange_strong(armed, 0)) throw std::bad_alloc();
    if (void* p = std::malloc(n != 0 ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {
UdpSocket bind_loopback(uv_loop_t* loop) {
    return UdpSocket::bind(loop, SocketAddress::ipv4_loopback(0));
}
}  // namespace

TEST_SUITE("net.udp_oom") {
    // Suspected in issue 17: std::bad_alloc escaping on_recv (a libuv C callback) ended the
    // process with std::terminate. Now the waiting receiver gets ENOMEM and the socket goes on.
    TEST_CASE("a datagram that cannot be stored for lack of memory fails one receive only") {
        uvtest::TestLoop loop;
        run(loop, [](uv_loop_t* l) -> Task<void> {
            UdpSocket a = bind_loopback(l);
            UdpSocket b = bind_loopback(l);
            Scope scope(l);
            std::error_code got;
            scope.spawn([](UdpSocket& s, std::error_code& code) -> Task<void> {
                try {
                    (void)co_await s.receive();
                } catch (const Error& e) {
                    code = e.code();
                }
            }(b, got));
            co_await sleep_for(l, 1ms);
            std::string odd(4321, 'o');  // its copy in the receiver allocates 4322 bytes
            g_fail_alloc_of.store(odd.size() + 1);
            co_await a.send_to(std::move(odd), b.local_address());
            co_await scope.join();
            CHECK(g_fail_alloc_of.load() == 0);  // the failure was injected
            g_fail_alloc_of.store(0);
            CHECK(got == uv_error(UV_ENOMEM));
            co_await a.send_to("after", b.local_address());
            CHECK((co_await b.receive()).data == "after");
        }(loop));
    }
}
