#include "publisher/test_access.hpp"

#include <string>

#include "publisher/publisher_impl.hpp"

namespace uvgena::gena {

bool detail::PublisherTestAccess::set_next_seq(Publisher& publisher, std::string_view sid,
                                               std::uint32_t seq) {
    auto it = publisher.impl_->by_sid.find(std::string(sid));
    if (it == publisher.impl_->by_sid.end()) return false;
    it->second->next_seq = seq;
    return true;
}

}  // namespace uvgena::gena
