// A value type that counts its constructions and destructions, to prove that every value a
// Task or Channel holds is destroyed exactly once.
#pragma once

#include <utility>

namespace cotest {

struct Counted {
    static inline int constructed = 0;
    static inline int destroyed = 0;
    static void reset() { constructed = destroyed = 0; }
    static int alive() { return constructed - destroyed; }

    int value = 0;
    bool moved_from = false;

    explicit Counted(int v) : value(v) { ++constructed; }
    Counted(const Counted& other) : value(other.value) { ++constructed; }
    Counted(Counted&& other) noexcept : value(other.value) {
        other.moved_from = true;
        ++constructed;
    }
    Counted& operator=(const Counted&) = default;
    Counted& operator=(Counted&&) = default;
    ~Counted() { ++destroyed; }
};

}  // namespace cotest
