#include "support/test_device.hpp"

#include <stdexcept>
#include <utility>

#include "uvgena/gena/protocol.hpp"
#include "uvgena/http/client.hpp"

namespace uvtest {

using namespace uvgena;

TestDevice::TestDevice(uv_loop_t* loop, gena::PublisherOptions options,
                       const SocketAddress& address, std::string variable, std::string value)
    : loop_(loop),
      options_(std::move(options)),
      address_(address),
      variable_(std::move(variable)),
      value_(std::move(value)) {
    start();
}

void TestDevice::set(std::string value) {
    value_ = std::move(value);
    service_->set(variable_, value_);
}

Task<void> TestDevice::stop(std::chrono::milliseconds grace) {
    if (!publisher_) co_return;
    co_await publisher_->stop(grace);
    service_ = nullptr;
    publisher_.reset();
}

void TestDevice::start(std::optional<std::string> value) {
    if (publisher_) throw std::logic_error("TestDevice::start: already running");
    if (value) value_ = std::move(*value);
    publisher_ = std::make_unique<gena::Publisher>(loop_, options_);
    gena::ServiceConfig config;
    config.event_path = "/svc/event";
    config.variables = {{variable_, value_}};
    service_ = &publisher_->add_service(std::move(config));
    http::ServerOptions server;
    server.address = address_;
    publisher_->listen(server);
    address_ = publisher_->server()->local_address();
}

Task<void> TestDevice::restart(std::optional<std::string> value) {
    co_await stop();
    start(std::move(value));
}

Task<int> TestDevice::subscribe_from(std::string callback, std::string from,
                                     std::string second) const {
    gena::SubscribeParams params;
    params.callbacks.push_back(std::move(callback));
    if (!second.empty()) params.callbacks.push_back(std::move(second));
    params.timeout = std::chrono::seconds(300);
    http::ClientOptions options;
    options.local_address = SocketAddress::parse(from, 0);
    auto answer = co_await http::try_send(loop_, address_,
                                          gena::make_subscribe(event_url(), params), options);
    co_return answer ? answer->status : 0;
}

}  // namespace uvtest
