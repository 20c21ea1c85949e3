// Test helper: reads a captured HTTP message (.http file: start line, fields, blank line,
// body) from tests/data into http::Request / http::Response values.
#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "uvgena/http/message.hpp"

namespace gena_test {

struct Capture {
    std::string start_line;
    uvgena::http::Headers headers;
    std::string body;
};

inline Capture read_capture(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open capture " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string raw = ss.str();
    auto head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos) throw std::runtime_error("no header end in " + path);
    Capture c;
    c.body = raw.substr(head_end + 4);
    std::string head = raw.substr(0, head_end);
    std::size_t pos = 0;
    bool first = true;
    while (pos <= head.size()) {
        auto eol = head.find("\r\n", pos);
        if (eol == std::string::npos) eol = head.size();
        std::string line = head.substr(pos, eol - pos);
        pos = eol + 2;
        if (first) {
            c.start_line = line;
            first = false;
            continue;
        }
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        c.headers.add(line.substr(0, colon), value);
    }
    return c;
}

inline uvgena::http::Request read_request(const std::string& path) {
    Capture c = read_capture(path);
    uvgena::http::Request r;
    auto sp1 = c.start_line.find(' ');
    auto sp2 = c.start_line.find(' ', sp1 + 1);
    r.method = c.start_line.substr(0, sp1);
    r.target = c.start_line.substr(sp1 + 1, sp2 - sp1 - 1);
    r.headers = c.headers;
    r.body = c.body;
    return r;
}

inline uvgena::http::Response read_response(const std::string& path) {
    Capture c = read_capture(path);
    uvgena::http::Response r;
    r.status = std::stoi(c.start_line.substr(c.start_line.find(' ') + 1, 3));
    r.headers = c.headers;
    r.body = c.body;
    return r;
}

}  // namespace gena_test
