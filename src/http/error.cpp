#include "uvgena/http/error.hpp"

#include <string>

#include "uvgena/http/status.hpp"

namespace uvgena::http {
namespace {

class HttpCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "http"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
            case errc::malformed_start_line:
                return "malformed HTTP start line";
            case errc::bad_header:
                return "malformed HTTP header field";
            case errc::invalid_content_length:
                return "invalid, conflicting or duplicated Content-Length";
            case errc::bad_transfer_encoding:
                return "unsupported Transfer-Encoding";
            case errc::bad_chunk:
                return "malformed chunked body";
            case errc::truncated_body:
                return "connection closed before the body was complete";
            case errc::unexpected_eof:
                return "connection closed in the middle of the headers";
            case errc::header_too_large:
                return "HTTP header section too large";
            case errc::body_too_large:
                return "HTTP body too large";
            case errc::response_too_large:
                return "HTTP response too large";
            case errc::malformed_message:
                return "malformed HTTP message";
            case errc::upgrade_not_supported:
                return "CONNECT and protocol upgrades not supported";
            case errc::bad_url:
                return "invalid URL";
            case errc::missing_host:
                return "request has no Host header";
            case errc::invalid_field:
                return "invalid header field, method or target";
            case errc::resolve_failed:
                return "host name could not be resolved";
            case errc::connection_closed:
                return "connection closed before a response";
            case errc::no_free_port:
                return "no free port in the requested range";
        }
        return "unknown http error " + std::to_string(value);
    }
    std::error_condition default_error_condition(int value) const noexcept override {
        switch (static_cast<errc>(value)) {
            case errc::bad_url:
                return std::errc::invalid_argument;
            case errc::no_free_port:
                return std::errc::address_in_use;
            default:
                return {value, *this};
        }
    }
};

class HttpStatusCategory final : public std::error_category {
  public:
    const char* name() const noexcept override { return "http-status"; }
    std::string message(int value) const override {
        return "HTTP " + std::to_string(value) + " " + std::string(reason_phrase(value));
    }
};

}  // namespace

const std::error_category& http_category() noexcept {
    static const HttpCategory category;
    return category;
}

const std::error_category& http_status_category() noexcept {
    static const HttpStatusCategory category;
    return category;
}

std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), http_category()};
}

std::error_code status_error(int status) noexcept {
    return {status, http_status_category()};
}

}  // namespace uvgena::http
