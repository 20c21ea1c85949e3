// Restores the process-wide time slice when a test that changes it ends.
#pragma once

#include <chrono>

#include "uvgena/co/loop_context.hpp"

namespace uvtest {

/// Sets the time slice for the lifetime of the guard, then puts the previous one back.
class SliceGuard {
  public:
    explicit SliceGuard(std::chrono::microseconds slice) : saved_(uvgena::time_slice()) {
        uvgena::set_time_slice(slice);
    }
    ~SliceGuard() { uvgena::set_time_slice(saved_); }
    SliceGuard(const SliceGuard&) = delete;
    SliceGuard& operator=(const SliceGuard&) = delete;

  private:
    std::chrono::microseconds saved_;
};

}  // namespace uvtest
