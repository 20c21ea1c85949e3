#include "uvgena/http/parser.hpp"

#include <llhttp.h>

#include <array>
#include <cstring>

#include "http/token.hpp"
#include "uvgena/http/error.hpp"

namespace uvgena::http::detail {
namespace {

// A body's storage larger than this is freed by reset() rather than kept for the next request.
constexpr std::size_t kKeptBodyCapacity = 64 * 1024;

// Only tchars (RFC 9110 5.6.2). llhttp built without LLHTTP_STRICT_MODE (Debian's, and most
// system copies) accepts spaces in field names, empty names and obs-fold; a proxy in front
// of us may read those differently, so they are refused here whatever llhttp's build.
bool all_token(const char* at, std::size_t len) noexcept {
    for (std::size_t i = 0; i < len; ++i) {
        if (!is_token_char(at[i])) return false;
    }
    return true;
}

// A CR or LF inside a value fragment is an obs-fold continuation line.
bool has_line_break(const char* at, std::size_t len) noexcept {
    return std::memchr(at, '\r', len) != nullptr || std::memchr(at, '\n', len) != nullptr;
}

}  // namespace

// Shared state machine of both parser types. llhttp calls back into it with fragments that
// point into the caller's buffer, so every fragment is appended to the message at once.
class ParserCore {
  public:
    ParserCore(llhttp_type_t type, ParserLimits limits) : limits_(limits), type_(type) {
        llhttp_settings_init(&settings_);
        settings_.on_message_begin = &on_message_begin;
        settings_.on_url = &on_url;
        settings_.on_status = &on_status;
        settings_.on_version_complete = &on_version_complete;
        settings_.on_status_complete = &on_status_complete;
        settings_.on_header_field = &on_header_field;
        settings_.on_header_value = &on_header_value;
        settings_.on_header_value_complete = &on_header_value_complete;
        settings_.on_headers_complete = &on_headers_complete;
        settings_.on_body = &on_body;
        settings_.on_message_complete = &on_message_complete;
        reset();
    }

    void reset() {
        llhttp_init(&parser_, type_, &settings_);
        parser_.data = this;
        // Emptied, but the storage stays (unless a large body inflated it), so that a server
        // that reuses its parsers for the next connection allocates nothing per request.
        request_.method.clear();
        request_.target.clear();
        request_.version_major = 1;
        request_.version_minor = 1;
        request_.headers.clear();
        request_.trailers.clear();
        if (request_.body.capacity() > kKeptBodyCapacity) {
            std::string().swap(request_.body);
        } else {
            request_.body.clear();
        }
        response_ = Response{};
        field_.clear();
        value_.clear();
        in_value_ = false;
        gap_has_break_ = false;
        last_value_end_ = nullptr;
        previous_tail_ = 0;
        error_ = {};
        stage_ = Stage::idle;
        ready_ = false;
        skip_body_ = false;
    }

    FeedResult feed(std::string_view data) {
        if (error_) return {0, ParseEvent::error};
        if (ready_) return {0, ParseEvent::message};
        if (data.empty()) return {0, ParseEvent::need_more};
        buffer_begin_ = data.data();
        llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
        if (err == HPE_OK) {
            remember_tail(data);
            return {data.size(), ParseEvent::need_more};
        }
        if (err == HPE_PAUSED) {
            auto consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data.data());
            remember_tail(data.substr(0, consumed));
            llhttp_resume(&parser_);
            return {consumed, ready_ ? ParseEvent::message : ParseEvent::expect_continue};
        }
        auto consumed = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - data.data());
        set_error_from(err);
        return {consumed, ParseEvent::error};
    }

    FeedResult finish() {
        if (error_) return {0, ParseEvent::error};
        if (ready_) return {0, ParseEvent::message};
        if (stage_ == Stage::idle) return {0, ParseEvent::need_more};
        // Only a response body delimited by the end of the connection may end here; llhttp
        // knows which responses are, and every request in progress is cut short.
        llhttp_errno_t err =
            type_ == HTTP_RESPONSE ? llhttp_finish(&parser_) : HPE_INVALID_EOF_STATE;
        if (err == HPE_PAUSED || ready_) return {0, ParseEvent::message};
        if (err == HPE_OK) err = HPE_INVALID_EOF_STATE;
        set_error_from(err);
        return {0, ParseEvent::error};
    }

    Request take_request() {
        ready_ = false;
        stage_ = Stage::idle;
        return std::move(request_);
    }

    void take_request_into(Request& into) {
        ready_ = false;
        stage_ = Stage::idle;
        // Member by member (std::swap would move the whole Request three times): the parser
        // takes the caller's buffers for its next message. Every member of Request is here.
        request_.method.swap(into.method);
        request_.target.swap(into.target);
        std::swap(request_.version_major, into.version_major);
        std::swap(request_.version_minor, into.version_minor);
        std::swap(request_.headers, into.headers);
        request_.body.swap(into.body);
        std::swap(request_.trailers, into.trailers);
    }

    Response take_response() {
        ready_ = false;
        stage_ = Stage::idle;
        skip_body_ = false;
        return std::move(response_);
    }

    const Request& request() const noexcept { return request_; }
    const Response& response() const noexcept { return response_; }
    std::error_code error() const noexcept { return error_; }
    bool in_message() const noexcept { return stage_ != Stage::idle; }
    bool headers_complete() const noexcept { return stage_ == Stage::body || ready_; }
    void skip_body(bool skip) noexcept { skip_body_ = skip; }

  private:
    enum class Stage { idle, start_line, headers, body };

    // True if the last byte before `at` that is not SP or HTAB is ':', looking back into
    // the previous input if this one starts with whitespace.
    bool follows_colon(const char* at) const noexcept {
        for (const char* c = at; c > buffer_begin_;) {
            --c;
            if (*c != ' ' && *c != '\t') return *c == ':';
        }
        return previous_tail_ == ':';
    }

    // Remembers what later fragments need to know of the consumed input: its last byte that
    // is not SP or HTAB (for follows_colon), and whether a line break followed the last value
    // fragment (for obs-fold detection).
    void remember_tail(std::string_view consumed) noexcept {
        if (in_value_) {
            const char* gap = last_value_end_ ? last_value_end_ : consumed.data();
            const char* end = consumed.data() + consumed.size();
            if (gap < end) {
                gap_has_break_ =
                    gap_has_break_ || has_line_break(gap, static_cast<std::size_t>(end - gap));
            }
            last_value_end_ = nullptr;
        }
        for (std::size_t i = consumed.size(); i > 0; --i) {
            char c = consumed[i - 1];
            if (c != ' ' && c != '\t') {
                previous_tail_ = c;
                return;
            }
        }
    }

    static ParserCore& self(llhttp_t* p) noexcept { return *static_cast<ParserCore*>(p->data); }

    // Records a failure of our own (a limit); llhttp then stops with HPE_USER or a callback
    // error, which set_error_from leaves alone because error_ is already set.
    int fail_with(errc e) noexcept {
        error_ = make_error_code(e);
        return HPE_USER;
    }

    // Adds `n` bytes to the header section's size; false once it is over the limit.
    bool count_header_bytes(std::size_t n) noexcept {
        header_bytes_ += n;
        return header_bytes_ <= limits_.max_header_bytes;
    }

    void set_error_from(llhttp_errno_t err) noexcept {
        if (error_) return;
        switch (err) {
            case HPE_INVALID_METHOD:
            case HPE_INVALID_URL:
            case HPE_INVALID_VERSION:
            case HPE_INVALID_STATUS:
            case HPE_INVALID_CONSTANT:
                error_ = make_error_code(errc::malformed_start_line);
                break;
            case HPE_INVALID_HEADER_TOKEN:
                error_ = make_error_code(errc::bad_header);
                break;
            case HPE_INVALID_CONTENT_LENGTH:
            case HPE_UNEXPECTED_CONTENT_LENGTH:
                error_ = make_error_code(errc::invalid_content_length);
                break;
            case HPE_INVALID_TRANSFER_ENCODING:
                error_ = make_error_code(errc::bad_transfer_encoding);
                break;
            case HPE_INVALID_CHUNK_SIZE:
                error_ = make_error_code(errc::bad_chunk);
                break;
            case HPE_INVALID_EOF_STATE:
                error_ = make_error_code(stage_ == Stage::body ? errc::truncated_body
                                                               : errc::unexpected_eof);
                break;
            case HPE_CR_EXPECTED:
            case HPE_LF_EXPECTED:
            case HPE_UNEXPECTED_SPACE:
            case HPE_STRICT:
                // The same byte-level errors mean different things by where they occur.
                error_ = make_error_code(stage_ == Stage::start_line ? errc::malformed_start_line
                                         : stage_ == Stage::body     ? errc::bad_chunk
                                                                     : errc::bad_header);
                break;
            default:
                error_ = make_error_code(errc::malformed_message);
                break;
        }
    }

    static int on_message_begin(llhttp_t* p) {
        ParserCore& s = self(p);
        s.stage_ = Stage::start_line;
        s.header_bytes_ = 0;
        // The previous message was moved out; start from a known-empty one whatever the
        // moved-from state, keeping the storage that survived.
        if (s.type_ == HTTP_REQUEST) {
            s.request_.method.clear();
            s.request_.target.clear();
            s.request_.headers.clear();
            s.request_.trailers.clear();
            s.request_.body.clear();
            s.request_.version_major = 1;
            s.request_.version_minor = 1;
            s.request_.headers.reserve(12);
        } else {
            s.response_.reason.clear();
            s.response_.headers.clear();
            s.response_.trailers.clear();
            s.response_.body.clear();
            s.response_.headers.reserve(12);
        }
        return 0;
    }

    static int on_url(llhttp_t* p, const char* at, std::size_t len) {
        ParserCore& s = self(p);
        if (!s.count_header_bytes(len)) return s.fail_with(errc::header_too_large);
        s.request_.target.append(at, len);
        return 0;
    }

    static int on_status(llhttp_t* p, const char* at, std::size_t len) {
        ParserCore& s = self(p);
        if (!s.count_header_bytes(len)) return s.fail_with(errc::header_too_large);
        s.response_.reason.append(at, len);
        return 0;
    }

    static int on_version_complete(llhttp_t* p) {
        ParserCore& s = self(p);
        // A request's version ends its start line; a response's is followed by the status.
        if (s.type_ == HTTP_REQUEST) s.stage_ = Stage::headers;
        return 0;
    }

    static int on_status_complete(llhttp_t* p) {
        self(p).stage_ = Stage::headers;
        return 0;
    }

    static int on_header_field(llhttp_t* p, const char* at, std::size_t len) {
        ParserCore& s = self(p);
        if (s.stage_ == Stage::start_line) s.stage_ = Stage::headers;
        // Two bytes for the ": " and two for the CRLF of each field line, once per field.
        if (!s.count_header_bytes(len + (s.field_.empty() ? 4 : 0))) {
            return s.fail_with(errc::header_too_large);
        }
        if (!all_token(at, len)) return s.fail_with(errc::bad_header);
        s.field_.append(at, len);
        return 0;
    }

    static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
        ParserCore& s = self(p);
        if (!s.count_header_bytes(len)) return s.fail_with(errc::header_too_large);
        // A value continues over several fragments when the input was split inside it, and
        // also when llhttp joins an obs-fold line: only a line break consumed between the
        // fragments tells them apart. The first fragment must follow the colon (after
        // optional whitespace): llhttp also starts a value after "X:\r\n folded". An empty
        // value comes as an empty fragment placed after the line's CRLF; it adds nothing.
        if (len == 0) return 0;
        if (s.in_value_) {
            const char* gap = s.last_value_end_ ? s.last_value_end_ : s.buffer_begin_;
            if (s.gap_has_break_ || has_line_break(gap, static_cast<std::size_t>(at - gap))) {
                return s.fail_with(errc::bad_header);
            }
        } else if (!s.follows_colon(at)) {
            return s.fail_with(errc::bad_header);
        }
        if (has_line_break(at, len)) return s.fail_with(errc::bad_header);
        s.in_value_ = true;
        s.gap_has_break_ = false;
        s.last_value_end_ = at + len;
        s.value_.append(at, len);
        return 0;
    }

    static int on_header_value_complete(llhttp_t* p) {
        ParserCore& s = self(p);
        if (s.field_.empty()) {
            s.fail_with(errc::bad_header);
            return -1;
        }
        // llhttp leaves trailing whitespace in the value (RFC 9110 5.5: not part of it).
        std::size_t end = s.value_.size();
        while (end > 0 && (s.value_[end - 1] == ' ' || s.value_[end - 1] == '\t')) --end;
        s.value_.resize(end);
        Headers& target =
            s.stage_ == Stage::body
                ? (s.type_ == HTTP_REQUEST ? s.request_.trailers : s.response_.trailers)
                : (s.type_ == HTTP_REQUEST ? s.request_.headers : s.response_.headers);
        target.add(std::move(s.field_), std::move(s.value_));
        s.field_.clear();
        s.value_.clear();
        s.in_value_ = false;
        s.gap_has_break_ = false;
        s.last_value_end_ = nullptr;
        return 0;
    }

    static int on_headers_complete(llhttp_t* p) {
        ParserCore& s = self(p);
        s.stage_ = Stage::body;
        if (llhttp_get_upgrade(p) != 0) {
            s.fail_with(errc::upgrade_not_supported);
            return -1;
        }
        bool has_length = (p->flags & F_CONTENT_LENGTH) != 0 && (p->flags & F_CHUNKED) == 0;
        std::string* body = nullptr;
        if (s.type_ == HTTP_REQUEST) {
            Request& r = s.request_;
            r.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
            r.version_major = llhttp_get_http_major(p);
            r.version_minor = llhttp_get_http_minor(p);
            body = &r.body;
        } else {
            Response& r = s.response_;
            r.status = llhttp_get_status_code(p);
            r.version_major = llhttp_get_http_major(p);
            r.version_minor = llhttp_get_http_minor(p);
            if (r.status == 101) {
                s.fail_with(errc::upgrade_not_supported);
                return -1;
            }
            // Interim responses and answers to HEAD have no body whatever they announce.
            if (r.status < 200) return 0;
            if (s.skip_body_) return 1;
            body = &r.body;
        }
        if (has_length) {
            if (p->content_length > s.limits_.max_body_bytes) {
                s.fail_with(errc::body_too_large);
                return -1;
            }
            body->reserve(static_cast<std::size_t>(p->content_length));
        }
        if (s.type_ == HTTP_REQUEST && (has_length || (p->flags & F_CHUNKED) != 0) &&
            (s.request_.version_major > 1 ||
             (s.request_.version_major == 1 && s.request_.version_minor >= 1))) {
            auto expect = s.request_.headers.get("expect");
            if (expect && iequals(*expect, "100-continue")) return HPE_PAUSED;
        }
        return 0;
    }

    static int on_body(llhttp_t* p, const char* at, std::size_t len) {
        ParserCore& s = self(p);
        std::string& body = s.type_ == HTTP_REQUEST ? s.request_.body : s.response_.body;
        if (len > s.limits_.max_body_bytes - body.size()) return s.fail_with(errc::body_too_large);
        body.append(at, len);
        return 0;
    }

    static int on_message_complete(llhttp_t* p) {
        ParserCore& s = self(p);
        if (s.type_ == HTTP_RESPONSE && s.response_.status < 200) {
            // An interim response (100 Continue, 103 Early Hints): drop it and go on to the
            // final one, with a fresh header budget.
            bool skip = s.skip_body_;
            s.response_ = Response{};
            s.skip_body_ = skip;
            s.stage_ = Stage::idle;
            return 0;
        }
        s.ready_ = true;
        return HPE_PAUSED;
    }

    llhttp_t parser_{};
    llhttp_settings_t settings_{};
    ParserLimits limits_;
    llhttp_type_t type_;
    Request request_;
    Response response_;
    std::string field_;
    std::string value_;
    std::error_code error_;
    std::size_t header_bytes_ = 0;
    Stage stage_ = Stage::idle;
    const char* buffer_begin_ = nullptr;    // the input of the running llhttp_execute
    char previous_tail_ = 0;                // see remember_tail
    bool in_value_ = false;                 // a value fragment arrived, the value is not complete
    bool gap_has_break_ = false;            // a CR or LF was consumed after the last fragment
    const char* last_value_end_ = nullptr;  // end of the last value fragment, in this input
    bool ready_ = false;
    bool skip_body_ = false;
};

}  // namespace uvgena::http::detail

namespace uvgena::http {

RequestParser::RequestParser(ParserLimits limits)
    : core_(std::make_unique<detail::ParserCore>(HTTP_REQUEST, limits)) {}
RequestParser::~RequestParser() = default;
RequestParser::RequestParser(RequestParser&&) noexcept = default;
RequestParser& RequestParser::operator=(RequestParser&&) noexcept = default;
FeedResult RequestParser::feed(std::string_view data) {
    return core_->feed(data);
}
FeedResult RequestParser::finish() {
    return core_->finish();
}
Request RequestParser::take() {
    return core_->take_request();
}
void RequestParser::take_into(Request& request) {
    core_->take_request_into(request);
}
const Request& RequestParser::current() const noexcept {
    return core_->request();
}
std::error_code RequestParser::error() const noexcept {
    return core_->error();
}
bool RequestParser::in_message() const noexcept {
    return core_->in_message();
}
bool RequestParser::headers_complete() const noexcept {
    return core_->headers_complete();
}
void RequestParser::reset() {
    core_->reset();
}

ResponseParser::ResponseParser(ParserLimits limits)
    : core_(std::make_unique<detail::ParserCore>(HTTP_RESPONSE, limits)) {}
ResponseParser::~ResponseParser() = default;
ResponseParser::ResponseParser(ResponseParser&&) noexcept = default;
ResponseParser& ResponseParser::operator=(ResponseParser&&) noexcept = default;
void ResponseParser::set_request_method(std::string_view method) {
    core_->skip_body(iequals(method, "HEAD"));
}
FeedResult ResponseParser::feed(std::string_view data) {
    return core_->feed(data);
}
FeedResult ResponseParser::finish() {
    return core_->finish();
}
Response ResponseParser::take() {
    return core_->take_response();
}
const Response& ResponseParser::current() const noexcept {
    return core_->response();
}
std::error_code ResponseParser::error() const noexcept {
    return core_->error();
}
bool ResponseParser::in_message() const noexcept {
    return core_->in_message();
}
void ResponseParser::reset() {
    core_->reset();
}

}  // namespace uvgena::http
