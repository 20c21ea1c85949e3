#include "net/buffer_pool.hpp"

#include <sys/mman.h>

#include <cstddef>

#include "uvgena/net/tcp_stream.hpp"

namespace uvgena::detail {
namespace {

// Read buffers (TcpStream::read_buffer_size each) are mapped from the system instead of taken
// from the heap: a burst of connections otherwise leaves 64 KiB holes in the heap that small
// long-lived objects then fill, so that the burst's memory stays resident (measured: 0.15-0.25
// KiB of RSS per idle subscription at 10,000). A mapping only makes the pages a connection
// touches resident and goes back to the system whole. A few are kept per thread for reuse, so
// that connections opened one after another cost no system call.
class ReadBuffers {
  public:
    // A buffer, or null if the system has no memory left.
    static char* take() noexcept {
        // Constructed on first use in each thread; at thread exit it unmaps the kept buffers
        // (the cache itself is trivial, so a stream freed later still finds it, marked dead).
        thread_local Drain drain;
        (void)drain;
        Cache& c = cache_;
        if (c.count > 0) return c.spare[--c.count];
        void* p = ::mmap(nullptr, TcpStream::read_buffer_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
    }

    static void give_back(char* buffer) noexcept {
        if (buffer == nullptr) return;
        Cache& c = cache_;
        if (!c.dead && c.count < kKept) {
            c.spare[c.count++] = buffer;
        } else {
            unmap(buffer);
        }
    }

  private:
    static constexpr std::size_t kKept = 8;
    struct Cache {
        char* spare[kKept];
        std::size_t count;
        bool dead;
    };
    struct Drain {
        Drain() = default;
        Drain(const Drain&) = delete;
        Drain& operator=(const Drain&) = delete;
        ~Drain() {
            while (cache_.count > 0) unmap(cache_.spare[--cache_.count]);
            cache_.dead = true;
        }
    };
    static void unmap(char* buffer) noexcept { ::munmap(buffer, TcpStream::read_buffer_size); }

    static thread_local constinit inline Cache cache_{};
};

}  // namespace

char* take_read_buffer() noexcept {
    return ReadBuffers::take();
}

void give_back_read_buffer(char* buffer) noexcept {
    ReadBuffers::give_back(buffer);
}

}  // namespace uvgena::detail
