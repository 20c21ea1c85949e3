// The state mirror of a service: ServiceState (sans-IO) and StateMirror (over a
// Subscription). The rules are at the top of include/uvgena/subscriber/service_state.hpp.
#include "uvgena/subscriber/service_state.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <stop_token>
#include <system_error>
#include <unordered_set>
#include <utility>

#include "uvgena/co/async_event.hpp"
#include "uvgena/co/scope.hpp"
#include "uvgena/co/timer.hpp"
#include "uvgena/control/error.hpp"
#include "uvgena/core/error.hpp"
#include "uvgena/core/log.hpp"
#include "uvgena/gena/error.hpp"
#include "uvgena/gena/seq.hpp"
#include "uvgena/gena/values.hpp"

namespace uvgena::gena {
namespace {

// Separates the parts of a value's map key; not a character of names, rare in attributes.
constexpr char key_separator = '\x1f';

// An attribute as the key sees it (views).
struct AttributeView {
    std::string_view name;
    std::string_view value;
};

bool by_name(const AttributeView& a, const AttributeView& b) noexcept {
    return a.name < b.name || (a.name == b.name && a.value < b.value);
}

// The map key of a value, into `key`: 'P' + name for a top-level variable; 'L' + name,
// instance and the sorted attributes for a LastChange value. Sorted this way, iteration goes
// by name.
void make_key_into(std::string& key, bool in_last_change, std::string_view name,
                   std::string_view instance, std::span<const AttributeView> sorted_attributes) {
    key.clear();
    key += in_last_change ? 'L' : 'P';
    key += name;
    if (!in_last_change) return;
    key += key_separator;
    key += instance;
    for (const AttributeView& a : sorted_attributes) {
        key += key_separator;
        key += a.name;
        key += '=';
        key += a.value;
    }
}

std::string make_key(bool in_last_change, std::string_view name, std::string_view instance,
                     std::span<const AttributeView> sorted_attributes) {
    std::string key;
    make_key_into(key, in_last_change, name, instance, sorted_attributes);
    return key;
}

std::string key_of(const VariableId& id) {
    std::vector<AttributeView> attributes;
    attributes.reserve(id.attributes.size());
    for (const Attribute& a : id.attributes) attributes.push_back({a.name, a.value});
    return make_key(id.in_last_change, id.name, id.instance, attributes);
}

// The key's attributes (channel and the others), sorted.
std::vector<AttributeView> attributes_of(const StateKey& key) {
    std::vector<AttributeView> attributes;
    attributes.reserve(key.attributes.size() + 1);
    if (!key.channel.empty()) attributes.push_back({"channel", key.channel});
    for (const NameValue& a : key.attributes) attributes.push_back({a.name, a.value});
    std::sort(attributes.begin(), attributes.end(), by_name);
    return attributes;
}

// A key that designates a top-level variable: no attributes, the default instance.
bool plain_key(const StateKey& key) noexcept {
    return key.channel.empty() && key.attributes.empty() && key.instance == "0";
}

// Forward distance from SEQ `from` to SEQ `to` on the ring 1..2^32-1 (UDA's wrap), or on
// 1..2^31-1 for devices that keep SEQ in a signed int, whichever is shorter.
std::uint64_t forward(std::uint32_t from, std::uint32_t to) noexcept {
    std::uint64_t plain =
        to >= from ? std::uint64_t{to} - from : (std::uint64_t{max_seq} - from) + to;
    if (to < from && from <= max_signed_seq) {
        plain = std::min(plain, (std::uint64_t{max_signed_seq} - from) + to);
    }
    return plain;
}

// True if SEQ `a` came strictly after SEQ `b` in one SID (0, its initial event, is first).
bool newer(std::uint32_t a, std::uint32_t b) noexcept {
    if (a == b) return false;
    if (b == 0) return true;
    if (a == 0) return false;
    return forward(b, a) < forward(a, b);
}

bool contains_id(const std::vector<StateChange>& changes, const VariableId& id) noexcept {
    for (const StateChange& c : changes) {
        if (c.id.name == id.name && c.id.instance == id.instance &&
            c.id.in_last_change == id.in_last_change &&
            c.id.attributes.size() == id.attributes.size()) {
            bool same = true;
            for (std::size_t i = 0; same && i < id.attributes.size(); ++i) {
                same = c.id.attributes[i].name == id.attributes[i].name &&
                       c.id.attributes[i].value == id.attributes[i].value;
            }
            if (same) return true;
        }
    }
    return false;
}

// --- typing by the SCPD's dataType -------------------------------------------------------

enum class Kind { untyped, text, unsigned_int, signed_int, real, boolean };

struct TypeInfo {
    Kind kind = Kind::untyped;
    std::int64_t min = 0;
    std::uint64_t max = 0;
};

TypeInfo type_info(std::optional<std::string_view> type) {
    if (!type) return {};
    constexpr std::int64_t i64_min = std::numeric_limits<std::int64_t>::min();
    constexpr auto i64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::string_view t = *type;
    if (t == "ui1") return {Kind::unsigned_int, 0, 255};
    if (t == "ui2") return {Kind::unsigned_int, 0, 65535};
    if (t == "ui4") return {Kind::unsigned_int, 0, 4294967295u};
    if (t == "ui8") return {Kind::unsigned_int, 0, std::numeric_limits<std::uint64_t>::max()};
    if (t == "i1") return {Kind::signed_int, -128, 127};
    if (t == "i2") return {Kind::signed_int, -32768, 32767};
    if (t == "i4") return {Kind::signed_int, -2147483648LL, 2147483647u};
    if (t == "i8" || t == "int") return {Kind::signed_int, i64_min, i64_max};
    if (t == "r4" || t == "r8" || t == "number" || t == "float" || t == "fixed.14.4") {
        return {Kind::real};
    }
    if (t == "boolean") return {Kind::boolean};
    if (t == "string" || t == "char" || t == "uri" || t == "uuid" || t == "bin.hex" ||
        t == "bin.base64" || t == "date" || t == "dateTime" || t == "dateTime.tz" || t == "time" ||
        t == "time.tz") {
        return {Kind::text};
    }
    return {};  // unknown (vendor) types: read as asked
}

std::string_view trim(std::string_view s) noexcept {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return s;
}

Result<std::uint64_t> read_unsigned(std::string_view text, std::uint64_t max) {
    constexpr auto i64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (max <= i64_max) {
        auto r = to_integer(text, 0, static_cast<std::int64_t>(max));
        if (!r) return fail(r.error());
        return static_cast<std::uint64_t>(*r);
    }
    // ui8 beyond int64: read the digits ourselves (an optional '+').
    std::string_view digits = trim(text);
    if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (!digits.empty() && ec == std::errc() && end == digits.data() + digits.size()) {
        return value;
    }
    auto r = to_integer(text);  // for its error: not an integer, or too large
    if (!r) return fail(r.error());
    if (*r < 0) return fail(make_error_code(errc::value_out_of_range));
    return static_cast<std::uint64_t>(*r);
}

Result<double> read_real(std::string_view text) {
    std::string_view t = trim(text);
    if (!t.empty() && t.front() == '+') t.remove_prefix(1);
    double value = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size() || !std::isfinite(value)) {
        return fail(make_error_code(control::errc::bad_value));
    }
    return value;
}

Result<TypedValue> convert(std::string_view value, const TypeInfo& type) {
    switch (type.kind) {
        case Kind::untyped:
        case Kind::text:
            return TypedValue(value);
        case Kind::unsigned_int: {
            auto r = read_unsigned(value, type.max);
            if (!r) return fail(r.error());
            return TypedValue(*r);
        }
        case Kind::signed_int: {
            auto r = to_integer(value, type.min, static_cast<std::int64_t>(type.max));
            if (!r) return fail(r.error());
            return TypedValue(*r);
        }
        case Kind::real: {
            auto r = read_real(value);
            if (!r) return fail(r.error());
            return TypedValue(*r);
        }
        case Kind::boolean: {
            auto r = to_boolean(value);
            if (!r) return fail(r.error());
            return TypedValue(*r);
        }
    }
    return TypedValue(value);
}

const Result<DidlLite>& no_such_didl() {
    static const Result<DidlLite> missing = fail(make_error_code(errc::no_such_variable));
    return missing;
}

}  // namespace

// --- identities and change sets -----------------------------------------------------------

std::string_view VariableId::channel() const noexcept {
    for (const Attribute& a : attributes) {
        if (a.name == "channel") return a.value;
    }
    return {};
}

bool VariableId::matches(std::string_view wanted, const StateKey& key) const noexcept {
    if (name != wanted) return false;
    if (!in_last_change) return plain_key(key);
    if (instance != key.instance) return false;
    std::size_t expected = key.attributes.size() + (key.channel.empty() ? 0 : 1);
    if (attributes.size() != expected) return false;
    if (!key.channel.empty() && channel() != key.channel) return false;
    for (const NameValue& a : key.attributes) {
        bool found = false;
        for (const Attribute& mine : attributes)
            found = found || (mine.name == a.name && mine.value == a.value);
        if (!found) return false;
    }
    return true;
}

bool StateChanges::contains(std::string_view name, const StateKey& key) const noexcept {
    if (overflowed) return true;
    for (const StateChange& c : variables) {
        if (c.id.matches(name, key)) return true;
    }
    return false;
}

// --- ServiceState ---------------------------------------------------------------------------

ServiceState::ServiceState(std::shared_ptr<const control::Scpd> scpd) : scpd_(std::move(scpd)) {}

ServiceState::const_iterator ServiceState::begin() const noexcept {
    return const_iterator(values_.begin());
}

ServiceState::const_iterator ServiceState::end() const noexcept {
    return const_iterator(values_.end());
}

void ServiceState::become_stale(StateChanges& changes) {
    if (stale_) return;
    stale_ = true;
    ++stats_.stale_marks;
    changes.went_stale = true;
}

StateChanges ServiceState::mark_stale() {
    StateChanges changes;
    become_stale(changes);
    return changes;
}

void ServiceState::set(Map& into, bool in_last_change, std::string_view name,
                       std::string_view instance, std::span<const Attribute> attributes,
                       std::string_view value, std::uint32_t seq, bool late,
                       StateChanges* changes) {
    // The key is built in a reused buffer, from views: an unchanged value (most of an
    // event that carries the whole state) costs no allocation.
    std::array<AttributeView, 4> few{};
    std::vector<AttributeView> many;
    std::span<AttributeView> sorted;
    if (attributes.size() <= few.size()) {
        for (std::size_t i = 0; i < attributes.size(); ++i) {
            few[i] = {attributes[i].name, attributes[i].value};
        }
        sorted = std::span<AttributeView>(few.data(), attributes.size());
    } else {
        for (const Attribute& a : attributes) many.push_back({a.name, a.value});
        sorted = many;
    }
    std::sort(sorted.begin(), sorted.end(), by_name);
    make_key_into(key_buffer_, in_last_change, name, instance, sorted);
    auto it = into.find(std::string_view(key_buffer_));
    if (it != into.end()) {
        Entry& entry = it->second;
        // A late event's values are older than those of the events after it: keep those.
        if (late && newer(entry.seq, seq)) {
            ++stats_.late_values_kept;
            return;
        }
        entry.seq = seq;
        if (entry.variable.value == value) return;
        entry.variable.value.assign(value);
        entry.didl.reset();
        if (changes != nullptr && !contains_id(changes->variables, entry.variable.id)) {
            changes->variables.push_back({entry.variable.id, false});
        }
        return;
    }
    Entry entry;
    VariableId& id = entry.variable.id;
    id.name = name;
    id.in_last_change = in_last_change;
    if (in_last_change) {
        id.instance = instance;
        id.attributes.reserve(sorted.size());
        for (const AttributeView& a : sorted)
            id.attributes.push_back({std::string(a.name), std::string(a.value)});
    }
    entry.variable.value.assign(value);
    entry.seq = seq;
    if (changes != nullptr) changes->variables.push_back({id, false});
    into.emplace(key_buffer_, std::move(entry));
}

void ServiceState::replace(const Event& event, StateChanges& changes) {
    // The new state from the event alone, then the difference to the old one.
    Map fresh;
    for (const Variable& v : event.variables()) {
        if (v.name == "LastChange") continue;
        set(fresh, false, v.name, {}, {}, v.value, event.seq, false, nullptr);
    }
    if (event.has_last_change() && event.last_change()) {
        for (const LastChangeInstance& instance : event.last_change()->instances) {
            for (const LastChangeValue& value : instance.values) {
                set(fresh, true, value.name, instance.id, value.attributes, value.value, event.seq,
                    false, nullptr);
            }
        }
    }
    auto old_it = values_.begin();
    auto new_it = fresh.begin();
    while (old_it != values_.end() || new_it != fresh.end()) {
        if (new_it == fresh.end() || (old_it != values_.end() && old_it->first < new_it->first)) {
            changes.variables.push_back({old_it->second.variable.id, true});
            ++old_it;
        } else if (old_it == values_.end() || new_it->first < old_it->first) {
            changes.variables.push_back({new_it->second.variable.id, false});
            ++new_it;
        } else {
            if (old_it->second.variable.value != new_it->second.variable.value) {
                changes.variables.push_back({new_it->second.variable.id, false});
            } else {
                new_it->second.didl = std::move(old_it->second.didl);  // still valid
            }
            ++old_it;
            ++new_it;
        }
    }
    values_ = std::move(fresh);
    stale_ = false;
    changes.replaced = true;
    ++stats_.replacements;
}

StateChanges ServiceState::apply(const Event& event) {
    StateChanges changes;
    ++stats_.events;
    if (event.seq_status == SeqStatus::duplicate) {
        ++stats_.duplicates;
        return changes;
    }
    if (event.seq_status == SeqStatus::outlier) {
        // A SEQ far ahead that the device's own sequence contradicts: forged or corrupt, so
        // its values are not trusted; the resubscription that stale() asks for settles it.
        ++stats_.outliers;
        become_stale(changes);
        return changes;
    }
    bool initial = event.seq == 0 &&
                   (event.seq_order == SeqOrder::first || event.seq_order == SeqOrder::reset);
    bool broken =
        static_cast<bool>(event.parse_error) || (event.has_last_change() && !event.last_change());
    if (initial && !broken) {
        replace(event, changes);
    } else {
        bool late = event.seq_status == SeqStatus::late;
        if (late) ++stats_.late_events;
        for (const Variable& v : event.variables()) {
            if (v.name == "LastChange") continue;
            set(values_, false, v.name, {}, {}, v.value, event.seq, late, &changes);
        }
        if (event.has_last_change() && event.last_change()) {
            for (const LastChangeInstance& instance : event.last_change()->instances) {
                for (const LastChangeValue& value : instance.values) {
                    set(values_, true, value.name, instance.id, value.attributes, value.value,
                        event.seq, late, &changes);
                }
            }
        }
        // What was missed, or could not be read, may have changed anything; an initial
        // event that did not parse replaces nothing.
        if (broken || initial || event.seq_status == SeqStatus::gap) become_stale(changes);
    }
    if (!changes.variables.empty()) ++version_;
    return changes;
}

const ServiceState::Entry* ServiceState::find(std::string_view name, const StateKey& key) const {
    if (plain_key(key)) {
        auto it = values_.find(make_key(false, name, {}, {}));
        if (it != values_.end()) return &it->second;
    }
    std::vector<AttributeView> attributes = attributes_of(key);
    auto it = values_.find(make_key(true, name, key.instance, attributes));
    return it == values_.end() ? nullptr : &it->second;
}

std::optional<std::string_view> ServiceState::get(std::string_view name,
                                                  const StateKey& key) const {
    const Entry* entry = find(name, key);
    if (entry == nullptr) return std::nullopt;
    return std::string_view(entry->variable.value);
}

std::optional<std::string_view> ServiceState::get(const VariableId& id) const {
    auto it = values_.find(key_of(id));
    if (it == values_.end()) return std::nullopt;
    return std::string_view(it->second.variable.value);
}

std::optional<std::string_view> ServiceState::data_type(std::string_view name) const noexcept {
    if (!scpd_) return std::nullopt;
    const control::StateVariableInfo* info = scpd_->state_variable(name);
    if (info == nullptr) return std::nullopt;
    return std::string_view(info->data_type);
}

Result<TypedValue> ServiceState::typed(std::string_view name, const StateKey& key) const {
    const Entry* entry = find(name, key);
    if (entry == nullptr) return fail(make_error_code(errc::no_such_variable));
    return convert(entry->variable.value, type_info(data_type(name)));
}

Result<std::int64_t> ServiceState::get_int(std::string_view name, const StateKey& key) const {
    const Entry* entry = find(name, key);
    if (entry == nullptr) return fail(make_error_code(errc::no_such_variable));
    TypeInfo type = type_info(data_type(name));
    switch (type.kind) {
        case Kind::untyped:
            return to_integer(entry->variable.value);
        case Kind::signed_int:
            return to_integer(entry->variable.value, type.min, static_cast<std::int64_t>(type.max));
        case Kind::unsigned_int: {
            auto r = read_unsigned(entry->variable.value, type.max);
            if (!r) return fail(r.error());
            if (*r > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                return fail(make_error_code(errc::value_out_of_range));
            }
            return static_cast<std::int64_t>(*r);
        }
        default:
            return fail(make_error_code(control::errc::bad_value));
    }
}

Result<bool> ServiceState::get_bool(std::string_view name, const StateKey& key) const {
    const Entry* entry = find(name, key);
    if (entry == nullptr) return fail(make_error_code(errc::no_such_variable));
    Kind kind = type_info(data_type(name)).kind;
    if (kind != Kind::untyped && kind != Kind::boolean) {
        return fail(make_error_code(control::errc::bad_value));
    }
    return to_boolean(entry->variable.value);
}

Result<double> ServiceState::get_number(std::string_view name, const StateKey& key) const {
    const Entry* entry = find(name, key);
    if (entry == nullptr) return fail(make_error_code(errc::no_such_variable));
    TypeInfo type = type_info(data_type(name));
    switch (type.kind) {
        case Kind::untyped:
        case Kind::real:
            return read_real(entry->variable.value);
        case Kind::signed_int:
        case Kind::unsigned_int: {
            auto r = convert(entry->variable.value, type);
            if (!r) return fail(r.error());
            if (const auto* i = std::get_if<std::int64_t>(&*r)) return static_cast<double>(*i);
            return static_cast<double>(std::get<std::uint64_t>(*r));
        }
        default:
            return fail(make_error_code(control::errc::bad_value));
    }
}

const Result<DidlLite>& ServiceState::didl(std::string_view name, const StateKey& key) const {
    const Entry* entry = find(name, key);
    if (entry == nullptr) return no_such_didl();
    if (!entry->didl) {
        entry->didl = std::make_shared<const Result<DidlLite>>(parse_didl(entry->variable.value));
    }
    return *entry->didl;
}

// --- StateChangeAccumulator -----------------------------------------------------------------

StateChangeAccumulator::StateChangeAccumulator(std::size_t max_variables)
    : max_variables_(std::max<std::size_t>(max_variables, 1)) {}

void StateChangeAccumulator::add(StateChanges&& changes) {
    pending_.replaced = pending_.replaced || changes.replaced;
    pending_.went_stale = pending_.went_stale || changes.went_stale;
    pending_.overflowed = pending_.overflowed || changes.overflowed;
    for (StateChange& change : changes.variables) {
        if (pending_.overflowed) break;
        if (!keys_.insert(key_of(change.id)).second) continue;
        if (pending_.variables.size() >= max_variables_) {
            // The fact that something changed is kept; the list stops growing.
            pending_.overflowed = true;
            break;
        }
        pending_.variables.push_back(std::move(change));
    }
}

StateChanges StateChangeAccumulator::take(const ServiceState& state) {
    StateChanges out = std::move(pending_);
    pending_ = StateChanges{};
    keys_.clear();
    for (StateChange& change : out.variables) change.removed = !state.get(change.id);
    return out;
}

// --- StateMirror ----------------------------------------------------------------------------

// What a changed() waiter needs: it may outlive the StateMirror (a waiter resumed after the
// destruction finds it ended).
struct StateMirror::Shared {
    Shared(uv_loop_t* loop, std::shared_ptr<const control::Scpd> scpd, std::size_t max)
        : state(std::move(scpd)), pending(max), ready(loop) {}

    // Adds `changes` to what the reader has not taken yet, and wakes it.
    void merge(StateChanges&& changes) {
        if (changes.empty()) return;
        pending.add(std::move(changes));
        ready.set();
    }

    void finish(std::exception_ptr error) {
        if (ended) return;
        ended = true;
        failure = std::move(error);
        ready.set();
    }

    ServiceState state;
    StateChangeAccumulator pending;
    AsyncEvent ready;
    bool ended = false;
    std::exception_ptr failure;
};

// The subscription and the tasks that feed the state; destroyed with the StateMirror.
struct StateMirror::Live {
    Live(uv_loop_t* loop_, Subscription sub, StateMirrorOptions o, Shared* shared_)
        : loop(loop_),
          options(std::move(o)),
          shared(shared_),
          restoring(loop_),
          last_request(Clock::now()),
          subscription(std::move(sub)),
          scope(loop_) {}
    ~Live() { stopping = true; }

    void on_event(const Event& event) {
        // Events the subscription's bounded queue dropped leave no SEQ gap behind them.
        std::uint64_t dropped = subscription.stats().events_dropped;
        if (dropped > seen_dropped) {
            stats.dropped_events += dropped - seen_dropped;
            seen_dropped = dropped;
            shared->merge(shared->state.mark_stale());
        }
        StateChanges changes = shared->state.apply(event);
        if (changes.replaced) restoring.reset();
        // Asked once per loss of trust: when the state goes stale, when a new SID's first
        // event is no initial event (it was lost), or when the first event of all is not.
        bool first = !seen_event;
        seen_event = true;
        bool ask = shared->state.stale() &&
                   (changes.went_stale || event.resubscribed || first || !restoring.is_set());
        shared->merge(std::move(changes));
        if (ask) request_resync();
    }

    void on_lost() {
        // The subscription resubscribes by itself (auto_resubscribe); its initial event
        // restores the state, and the watchdog follows up if it does not come.
        shared->merge(shared->state.mark_stale());
        last_request = Clock::now();
        restoring.set();
    }

    void request_resync() {
        last_request = Clock::now();
        restoring.set();
        if (!options.resubscribe_when_stale) return;
        ++stats.resyncs_requested;
        subscription.resubscribe_now();
    }

    static Task<void> pump(Live* self) {
        std::exception_ptr failure;
        try {
            EventStream events = self->subscription.events();
            while (std::optional<Event> event = co_await events.next()) self->on_event(*event);
        } catch (...) {
            failure = std::current_exception();
        }
        if (self->stopping) co_return;
        // Nothing follows the device any more: the values may go out of date (the end
        // itself is the reader's news, not a change set).
        (void)self->shared->state.mark_stale();
        self->shared->finish(std::move(failure));
        self->restoring.set();  // the watchdog ends too
    }

    // While the state is stale, asks again each restore_timeout for a resubscription.
    static Task<void> watch_restore(Live* self) {
        for (;;) {
            co_await self->restoring.wait();
            if (self->shared->ended) co_return;  // nothing left to restore
            Clock::time_point due = self->last_request + self->options.restore_timeout;
            if (Clock::now() < due) {
                co_await sleep_until(self->loop, due);
                continue;
            }
            if (self->shared->state.stale()) {
                log(LogLevel::info, "uvgena: state of ", self->subscription.service_url(),
                    " still stale: resubscribing again");
                self->request_resync();
            } else {
                self->restoring.reset();
            }
        }
    }

    uv_loop_t* loop;
    StateMirrorOptions options;
    Shared* shared;
    AsyncEvent restoring;  // set while stale and a restoration is awaited
    Clock::time_point last_request;
    std::uint64_t seen_dropped = 0;
    bool seen_event = false;
    StateMirrorStats stats;
    bool stopping = false;
    // Destroyed second: its handlers (on_lost) use the members above.
    Subscription subscription;
    Scope scope;  // last: destroyed first (its tasks use everything above)
};

StateMirror::StateMirror(uv_loop_t* loop, Subscription subscription, StateMirrorOptions options) {
    if (!subscription.valid()) {
        throw Error(make_error_code(uvgena::errc::invalid_argument),
                    "StateMirror: an empty subscription");
    }
    shared_ = std::make_shared<Shared>(loop, options.scpd, options.max_pending_changes);
    SubscriptionHandlers handlers = std::move(options.handlers);
    options.handlers = SubscriptionHandlers{};
    live_ =
        std::make_unique<Live>(loop, std::move(subscription), std::move(options), shared_.get());
    handlers.on_event = nullptr;
    Live* live = live_.get();
    handlers.on_lost = [live, user = std::move(handlers.on_lost)](const Error& error) {
        live->on_lost();
        if (user) user(error);
    };
    live_->subscription.set_handlers(std::move(handlers));
    live_->seen_dropped = live_->subscription.stats().events_dropped;
    live_->restoring.set();  // no initial event yet
    live_->scope.spawn(Live::pump(live));
    if (live_->options.resubscribe_when_stale) live_->scope.spawn(Live::watch_restore(live));
}

StateMirror::~StateMirror() {
    live_.reset();
    shared_->finish(nullptr);
}

const ServiceState& StateMirror::state() const noexcept {
    return shared_->state;
}

Subscription& StateMirror::subscription() noexcept {
    return live_->subscription;
}

StateMirrorStats StateMirror::stats() const noexcept {
    return live_->stats;
}

Task<std::optional<StateChanges>> StateMirror::changed() {
    return wait_for_changes(shared_);
}

// Static, with the shared part as an argument: the frame owns what it uses, so the mirror
// may be destroyed while it waits.
Task<std::optional<StateChanges>> StateMirror::wait_for_changes(std::shared_ptr<Shared> shared) {
    for (;;) {
        if (!shared->pending.empty()) co_return shared->pending.take(shared->state);
        if (shared->ended) {
            if (shared->failure) std::rethrow_exception(shared->failure);
            co_return std::nullopt;
        }
        shared->ready.reset();
        co_await shared->ready.wait();
    }
}

Task<void> StateMirror::unsubscribe(bool strict) {
    return live_->subscription.unsubscribe(strict);
}

}  // namespace uvgena::gena
