// The JSON line of `uvgena subscribe --json`, written in one pass into a reused buffer.
//
// The line is byte for byte what the CLI printed when it built an nlohmann::json object per
// event and dumped it with dump(-1, ' ', false, error_handler_t::replace) (pinned by
// tests/cli/json_output_test.cpp): keys in byte order, the last of equal names wins, strings
// escaped as nlohmann escapes them, invalid UTF-8 replaced as nlohmann replaces it. What
// changed is the cost: no DOM, no copies of names and values, no allocation once the buffers
// have grown.
#pragma once

#include <chrono>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "uvgena/gena/event.hpp"

namespace uvgena::cli {

/// Appends `text` as a JSON string, quotes included, escaped as nlohmann::json does with
/// ensure_ascii off: '"' and '\\' with a backslash, \b \f \n \r \t, the other bytes below 0x20
/// as \u00xx (lowercase hex), everything else as is; an ill-formed UTF-8 sequence (a byte
/// that cannot start one, an overlong form, a surrogate, above U+10FFFF, a truncated one)
/// becomes U+FFFD, and the byte that broke a sequence is read again as the start of the next.
void append_json_string(std::string& out, std::string_view text);

/// Writes events as JSON objects; keeps its scratch arrays between events.
class EventJsonWriter {
  public:
    /// Appends the object of `event` (no newline): last_change (InstanceID -> name -> value,
    /// or name -> channel -> value) or last_change_error, missed, parse_error, resubscribed
    /// (only when true), seq, seq_status, service, sid, timestamp, variables (name -> value).
    void append(std::string& out, const gena::Event& event);

  private:
    void append_timestamp(std::string& out, std::chrono::system_clock::time_point t);
    void append_last_change(std::string& out, const gena::LastChange& lc);
    void append_instance(std::string& out, const gena::LastChangeInstance& instance);

    std::vector<const gena::Variable*> variables_;
    std::vector<const gena::LastChangeInstance*> instances_;
    std::vector<const gena::LastChangeValue*> values_;
    std::vector<const gena::LastChangeValue*> channels_;
    std::time_t second_ = 0;  // the second second_text_ shows
    bool second_valid_ = false;
    std::string second_text_;  // "YYYY-MM-DDTHH:MM:SS" of second_ (UTC)
};

}  // namespace uvgena::cli
