#include "uvgena/http/client.hpp"

#include <stop_token>
#include <utility>
#include <vector>

#include "uvgena/co/timer.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/http/error.hpp"
#include "uvgena/http/parser.hpp"
#include "uvgena/net/tcp.hpp"

namespace uvgena::http {
namespace {

using std::chrono::milliseconds;
using uvgena::detail::StopForwarder;

std::string describe(milliseconds d) {
    return std::to_string(d.count()) + " ms";
}

// Connects to the first address that accepts, within the connect timeout for all of them.
Task<TcpStream> connect_any(uv_loop_t* loop, std::vector<SocketAddress> addresses,
                            const ClientOptions& options) {
    ConnectOptions co;
    co.local_address = options.local_address;
    Clock::time_point deadline = Clock::now() + options.connect_timeout;
    std::error_code last_error;
    std::string last_context;
    for (const SocketAddress& address : addresses) {
        try {
            co_return co_await with_deadline(loop, connect(loop, address, co), deadline);
        } catch (const Error& e) {
            if (is_cancelled(e.code())) throw;
            if (is_timeout(e.code())) {
                throw Error(e.code(), "connect to " + address.to_string() + ": no answer within " +
                                          describe(options.connect_timeout));
            }
            last_error = e.code();
            last_context = context_of(e);
        }
    }
    throw Error(last_error, last_context);
}

Error response_error(std::error_code code, const std::string& from) {
    // The client's size limits are one condition for the caller: the response was too large.
    if (code == errc::header_too_large || code == errc::body_too_large) {
        code = make_error_code(errc::response_too_large);
    }
    return Error(code, "response from " + from);
}

// Sends `request` on a new connection to one of `addresses` and reads the whole response.
Task<Response> exchange(uv_loop_t* loop, std::vector<SocketAddress> addresses, Request request,
                        ClientOptions options) {
    if (!request.headers.contains("connection")) request.headers.add("Connection", "close");
    std::string bytes = serialize(request);
    TcpStream stream = co_await connect_any(loop, std::move(addresses), options);
    if (options.on_connected) options.on_connected();
    std::string peer = stream.peer_address().to_string();
    // A server may answer (413, 400) and close before it read the whole request: then the
    // write fails but the answer is still there to read, and it is what the caller needs.
    std::optional<Error> write_error;
    try {
        co_await stream.write(std::move(bytes));
    } catch (const Error& e) {
        if (is_cancelled(e.code())) throw;
        write_error = e;
    }
    ResponseParser parser(ParserLimits{options.max_header_bytes, options.max_response_bytes});
    parser.set_request_method(request.method);
    for (;;) {
        std::string_view data;
        try {
            data = co_await stream.read_some();
        } catch (const Error& e) {
            if (write_error && !is_cancelled(e.code())) throw *write_error;
            throw;
        }
        FeedResult r = data.empty() ? parser.finish() : parser.feed(data);
        if (r.event == ParseEvent::message) {
            stream.close();
            co_return parser.take();
        }
        if (r.event == ParseEvent::error) throw response_error(parser.error(), peer);
        if (data.empty()) {
            if (write_error) throw *write_error;
            throw Error(make_error_code(errc::connection_closed), "response from " + peer);
        }
    }
}

// Runs `work` under the total timeout and the options' extra stop token, and names the
// timeout in the error.
Task<Response> bounded(uv_loop_t* loop, Task<Response> work, const ClientOptions& options,
                       std::string what) {
    std::stop_source source;
    std::stop_token outer = co_await current_stop_token();
    std::stop_callback<StopForwarder> from_outer(outer, StopForwarder{&source});
    std::stop_callback<StopForwarder> from_options(options.stop, StopForwarder{&source});
    Clock::time_point deadline = Clock::now() + options.timeout;
    try {
        co_return co_await with_stop_token(with_deadline(loop, std::move(work), deadline),
                                           source.get_token());
    } catch (const Error& e) {
        // The connect timeout has its own message; this is the limit on the whole exchange.
        if (is_timeout(e.code()) && Clock::now() >= deadline) {
            throw Error(e.code(),
                        what + ": no complete response within " + describe(options.timeout));
        }
        throw;
    }
}

Task<Response> request_url(uv_loop_t* loop, std::string method, Url url, Headers headers,
                           std::string body, ClientOptions options) {
    if (url.scheme != "http") {
        throw Error(make_error_code(errc::bad_url),
                    "only http URLs are supported, not " + url.to_string());
    }
    Request request;
    request.method = std::move(method);
    request.target = url.target();
    request.headers = std::move(headers);
    if (!request.headers.contains("host")) request.headers.add("Host", url.host_header());
    request.body = std::move(body);
    std::vector<SocketAddress> addresses = co_await resolve_url(loop, url);
    co_return co_await exchange(loop, std::move(addresses), std::move(request), options);
}

}  // namespace

std::optional<SocketAddress> literal_address(const Url& url) {
    std::string ip = url.zone.empty() ? url.host : url.host + "%" + url.zone;
    if (auto literal = SocketAddress::try_parse(ip, url.port)) return *literal;
    return std::nullopt;
}

Task<std::vector<SocketAddress>> resolve_url(uv_loop_t* loop, const Url& url) {
    if (auto literal = literal_address(url)) co_return std::vector{*literal};
    if (url.is_ipv6()) {
        throw Error(make_error_code(errc::bad_url), "invalid IPv6 address " + url.host);
    }
    std::vector<SocketAddress> found;
    try {
        found = co_await uvgena::resolve(loop, url.host, url.port);
    } catch (const Error& e) {
        if (is_cancelled(e.code())) throw;
        throw Error(make_error_code(errc::resolve_failed), e.what());
    }
    if (found.empty()) {
        throw Error(make_error_code(errc::resolve_failed), "resolve " + url.host + ": no address");
    }
    co_return found;
}

Task<Response> request(uv_loop_t* loop, std::string method, Url url, Headers headers,
                       std::string body, ClientOptions options) {
    std::string what = method + " " + url.to_string();
    Task<Response> work = request_url(loop, std::move(method), std::move(url), std::move(headers),
                                      std::move(body), options);
    co_return co_await bounded(loop, std::move(work), options, std::move(what));
}

Task<Response> request(uv_loop_t* loop, std::string method, std::string_view url, Headers headers,
                       std::string body, ClientOptions options) {
    Url parsed = Url::parse(url);
    co_return co_await request(loop, std::move(method), std::move(parsed), std::move(headers),
                               std::move(body), std::move(options));
}

Task<Result<Response>> try_request(uv_loop_t* loop, std::string method, Url url, Headers headers,
                                   std::string body, ClientOptions options) {
    try {
        co_return co_await request(loop, std::move(method), std::move(url), std::move(headers),
                                   std::move(body), std::move(options));
    } catch (const std::system_error& e) {
        if (log_enabled(LogLevel::debug)) log(LogLevel::debug, "http client: ", e.what());
        co_return fail(e.code());
    }
}

Task<Result<Response>> try_send(uv_loop_t* loop, SocketAddress address, Request request,
                                ClientOptions options) {
    try {
        std::string what = request.method + " " + address.to_string() + request.target;
        Task<Response> work = exchange(loop, {address}, std::move(request), options);
        co_return co_await bounded(loop, std::move(work), options, std::move(what));
    } catch (const std::system_error& e) {
        if (log_enabled(LogLevel::debug)) log(LogLevel::debug, "http client: ", e.what());
        co_return fail(e.code());
    }
}

}  // namespace uvgena::http
