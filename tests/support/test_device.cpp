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
    if (!device_) co_return;
    // The frame owns the device from here on: nothing below touches this TestDevice.
    std::unique_ptr<gena::DemoDevice> device = std::move(device_);
    service_ = nullptr;
    co_await device->stop(grace);
}

void TestDevice::start(std::optional<std::string> value) {
    if (device_) throw std::logic_error("TestDevice::start: already running");
    if (value) value_ = std::move(*value);
    gena::DemoDeviceOptions options;
    options.address = address_;
    options.interval = std::chrono::milliseconds(0);  // no simulated changes
    options.publisher = options_;
    auto device = std::make_unique<gena::DemoDevice>(loop_, std::move(options));
    gena::ServiceConfig config;
    config.event_path = "/svc/event";
    config.variables = {{variable_, value_}};
    service_ = &device->publisher().add_service(std::move(config));
    device->start();
    address_ = device->server()->local_address();
    device_ = std::move(device);
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
