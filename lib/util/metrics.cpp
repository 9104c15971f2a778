#include "util/metrics.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <utility>

namespace kvcore::metrics {
namespace {

// Prometheus reads floats as Go's strconv.ParseFloat does: special values are
// spelled `+Inf`, `-Inf` and `NaN`; every finite value is printed in its
// shortest round-trip form, so a bound such as 0.1 renders as `0.1`.
void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    assert(ec == std::errc());
    out.append(buf, end);
  }
}

template <typename Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  assert(ec == std::errc());
  out.append(buf, end);
}

// HELP text escapes only backslash and line feed (format 0.0.4); a quote is
// literal there, unlike in a label value.
void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

[[maybe_unused]] bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

// `name{labels} value\n`, with `extra` (already formatted, e.g. `le="0.5"`)
// appended to the label set.
void append_sample_prefix(std::string& out, std::string_view name, std::string_view suffix,
                          std::string_view labels, std::string_view extra) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra.empty()) out += ',';
    out += extra;
    out += '}';
  }
  out += ' ';
}

}  // namespace

// --- Histogram ---------------------------------------------------------------

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  // +Inf is implied; an explicit one would render as a second +Inf bucket.
  while (!bounds_.empty() && std::isinf(bounds_.back()) && bounds_.back() > 0) bounds_.pop_back();
  assert(std::none_of(bounds_.begin(), bounds_.end(), [](double b) { return std::isnan(b); }));
  assert(std::adjacent_find(bounds_.begin(), bounds_.end(), std::greater_equal<>()) ==
         bounds_.end());
  buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) noexcept {
  // A bucket counts observations <= its bound (`le`); NaN compares false
  // everywhere and lands in +Inf, as in the Go client.
  const auto it = std::find_if(bounds_.begin(), bounds_.end(), [v](double b) { return v <= b; });
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t old_bits = sum_bits_.load(std::memory_order_relaxed);
  while (!sum_bits_.compare_exchange_weak(
      old_bits, std::bit_cast<std::uint64_t>(std::bit_cast<double>(old_bits) + v),
      std::memory_order_relaxed, std::memory_order_relaxed)) {
  }
}

std::uint64_t Histogram::count() const noexcept { return count_.load(std::memory_order_relaxed); }

double Histogram::sum() const noexcept {
  return std::bit_cast<double>(sum_bits_.load(std::memory_order_relaxed));
}

std::vector<std::uint64_t> Histogram::cumulative() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

// As Prometheus' histogram_quantile: find the bucket holding rank q * total
// and interpolate linearly between its bounds. The first bucket starts at 0
// (or is its bound when that is <= 0); a rank in the +Inf bucket answers the
// highest finite bound (0 when there is none).
double Histogram::quantile(double q) const {
  if (std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  const std::vector<std::uint64_t> cum = cumulative();
  const std::uint64_t total = cum.back();
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  std::size_t i = 0;
  // The first non-empty bucket whose cumulative count reaches the rank; an
  // empty bucket holds no observation to interpolate over.
  while (i + 1 < cum.size()) {
    const std::uint64_t prev = i == 0 ? 0 : cum[i - 1];
    if (cum[i] > prev && static_cast<double>(cum[i]) >= rank) break;
    ++i;
  }
  if (i == bounds_.size()) return bounds_.empty() ? 0 : bounds_.back();
  const double upper = bounds_[i];
  if (i == 0 && upper <= 0) return upper;
  const double lower = i == 0 ? 0 : bounds_[i - 1];
  const double prev = i == 0 ? 0 : static_cast<double>(cum[i - 1]);
  const double in_bucket = static_cast<double>(cum[i]) - prev;
  return lower + (upper - lower) * ((rank - prev) / in_bucket);
}

std::vector<double> exponential_buckets(double start, double factor, int count) {
  assert(start > 0 && factor > 1 && count >= 1);
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(std::max(count, 0)));
  double b = start;
  for (int i = 0; i < count; ++i) {
    out.push_back(b);
    b *= factor;
  }
  return out;
}

// --- Registry ----------------------------------------------------------------

Registry::Family& Registry::family(std::string_view name, std::string_view help, Kind kind) {
  assert(valid_name(name));
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{}).first;
    it->second.kind = kind;
    it->second.help = std::string(help);
  }
  assert(it->second.kind == kind && "a metric name is used for one kind of metric only");
  return it->second;
}

Counter& Registry::counter(std::string_view name, std::string_view help, std::string_view labels) {
  std::lock_guard lock(mu_);
  auto& m = family(name, help, Kind::kCounter).counters;
  auto it = m.find(labels);
  if (it == m.end()) it = m.emplace(std::string(labels), std::make_unique<Counter>()).first;
  return *it->second;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, std::string_view labels) {
  std::lock_guard lock(mu_);
  auto& m = family(name, help, Kind::kGauge).gauges;
  auto it = m.find(labels);
  if (it == m.end()) it = m.emplace(std::string(labels), std::make_unique<Gauge>()).first;
  return *it->second;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               std::vector<double> bounds, std::string_view labels) {
  std::lock_guard lock(mu_);
  auto& m = family(name, help, Kind::kHistogram).histograms;
  auto it = m.find(labels);
  // Like help, the bounds of the first registration stay: every later lookup
  // of these labels returns the same histogram.
  if (it == m.end()) {
    it = m.emplace(std::string(labels), std::make_unique<Histogram>(std::move(bounds))).first;
  }
  return *it->second;
}

std::string Registry::prometheus_text() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, fam] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help(out, fam.help);
    out += "\n# TYPE ";
    out += name;
    switch (fam.kind) {
      case Kind::kCounter:
        out += " counter\n";
        for (const auto& [labels, c] : fam.counters) {
          append_sample_prefix(out, name, "", labels, "");
          append_int(out, c->value());
          out += '\n';
        }
        break;
      case Kind::kGauge:
        out += " gauge\n";
        for (const auto& [labels, g] : fam.gauges) {
          append_sample_prefix(out, name, "", labels, "");
          append_int(out, g->value());
          out += '\n';
        }
        break;
      case Kind::kHistogram:
        out += " histogram\n";
        for (const auto& [labels, h] : fam.histograms) {
          // _count is the +Inf bucket of the same snapshot, so the two agree
          // even while other threads observe.
          const std::vector<std::uint64_t> cum = h->cumulative();
          for (std::size_t i = 0; i < cum.size(); ++i) {
            std::string le = "le=\"";
            if (i < h->bounds().size()) {
              append_double(le, h->bounds()[i]);
            } else {
              le += "+Inf";
            }
            le += '"';
            append_sample_prefix(out, name, "_bucket", labels, le);
            append_int(out, cum[i]);
            out += '\n';
          }
          append_sample_prefix(out, name, "_sum", labels, "");
          append_double(out, h->sum());
          out += '\n';
          append_sample_prefix(out, name, "_count", labels, "");
          append_int(out, cum.back());
          out += '\n';
        }
        break;
    }
  }
  return out;
}

std::uint64_t Registry::value(std::string_view name, std::string_view labels) const {
  std::lock_guard lock(mu_);
  const auto fit = families_.find(name);
  if (fit == families_.end()) return 0;
  const Family& fam = fit->second;
  switch (fam.kind) {
    case Kind::kCounter: {
      const auto it = fam.counters.find(labels);
      return it == fam.counters.end() ? 0 : it->second->value();
    }
    case Kind::kGauge: {
      const auto it = fam.gauges.find(labels);
      return it == fam.gauges.end()
                 ? 0
                 : static_cast<std::uint64_t>(std::max<std::int64_t>(it->second->value(), 0));
    }
    case Kind::kHistogram: {
      const auto it = fam.histograms.find(labels);
      return it == fam.histograms.end() ? 0 : it->second->count();
    }
  }
  return 0;
}

std::uint64_t Registry::total(std::string_view name) const {
  std::lock_guard lock(mu_);
  const auto fit = families_.find(name);
  if (fit == families_.end()) return 0;
  const Family& fam = fit->second;
  std::uint64_t sum = 0;
  for (const auto& [labels, c] : fam.counters) sum += c->value();
  for (const auto& [labels, g] : fam.gauges) {
    sum += static_cast<std::uint64_t>(std::max<std::int64_t>(g->value(), 0));
  }
  for (const auto& [labels, h] : fam.histograms) sum += h->count();
  return sum;
}

}  // namespace kvcore::metrics
