// The overflow policy of bounded queues, alone so that queues for other threads
// (blocking/queue.hpp) can name it without pulling in the loop runtime (co/channel.hpp, uv.h).
#pragma once

namespace uvgena {

/// What a bounded queue (Channel, BlockingQueue) does when a new item finds it full.
enum class Overflow {
    wait,         ///< Channel: push() refuses (returns false, counts a drop); push_wait() waits.
    drop_oldest,  ///< The oldest buffered item is dropped (counted) to make room.
    reject_new,   ///< The new item is refused (returns false, counted).
};

}  // namespace uvgena
