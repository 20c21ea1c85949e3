// Errors handed from the loop thread to application threads (blocking subscriptions and
// state mirrors): each reader gets its own exception object, so that none is shared between
// threads (the original is released on whichever thread drops the last reference).
#pragma once

#include <exception>
#include <string>
#include <system_error>

#include "uvgena/core/error.hpp"

namespace uvgena::detail {

/// A new exception with the same code and text (system errors), else the same one; null
/// for null.
inline std::exception_ptr copy_error(const std::exception_ptr& error) {
    if (!error) return nullptr;
    try {
        std::rethrow_exception(error);
    } catch (const std::system_error& e) {
        std::string what = context_of(e);
        return std::make_exception_ptr(what.empty() ? Error(e.code()) : Error(e.code(), what));
    } catch (...) {
        return error;
    }
}

}  // namespace uvgena::detail
