// kvcore::metrics: counters, gauges and histograms, readable as Prometheus
// text (exposition format 0.0.4).
//
// A Registry owns its metrics; the references it hands out stay valid as long
// as it lives, so a component looks a metric up once and keeps the reference.
// Updating a metric is lock-free (relaxed atomics); registering and rendering
// take the registry's mutex.
//
// Names follow Prometheus conventions (`kvcore_<what>_<unit>`, counters end
// in `_total`). A metric may carry labels, given as the literal label text
// (`reason="cluster_id"`); metrics of one name with different labels form
// one family, rendered under one HELP/TYPE header.
//
// Thread-safety: everything is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvcore::metrics {

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t value() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t value() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Observations counted into fixed buckets (upper bounds, ascending; +Inf is
// implied), with their count and sum.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  [[nodiscard]] std::uint64_t count() const noexcept;
  [[nodiscard]] double sum() const noexcept;
  [[nodiscard]] const std::vector<double>& bounds() const noexcept { return bounds_; }
  // Cumulative counts per bound, then the +Inf total.
  [[nodiscard]] std::vector<std::uint64_t> cumulative() const;
  // An estimate of quantile q (0..1) by linear interpolation in its bucket;
  // 0 when empty.
  [[nodiscard]] double quantile(double q) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_bits_{0};  // a double, updated by CAS
};

// Bucket bounds: `count` bounds from `start`, each `factor` times the last.
[[nodiscard]] std::vector<double> exponential_buckets(double start, double factor, int count);

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The metric of this name and labels, created on first use. REQUIRES: a
  // name is used for one kind of metric only (asserted), and `help` is the
  // same for every label set of a name (the first one is kept).
  Counter& counter(std::string_view name, std::string_view help, std::string_view labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, std::string_view labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                       std::string_view labels = {});

  // Every metric, families in name order, in the Prometheus text format.
  [[nodiscard]] std::string prometheus_text() const;
  // A counter's value, a gauge's value (negative as 0) or a histogram's
  // count, by name and labels; 0 when there is no such metric.
  [[nodiscard]] std::uint64_t value(std::string_view name, std::string_view labels = {}) const;
  // The sum of value() over every label set of `name`.
  [[nodiscard]] std::uint64_t total(std::string_view name) const;

 private:
  enum class Kind : std::uint8_t { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind = Kind::kCounter;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters;
    std::map<std::string, std::unique_ptr<Gauge>, std::less<>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>, std::less<>> histograms;
  };
  Family& family(std::string_view name, std::string_view help, Kind kind);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;  // guarded by mu_
};

}  // namespace kvcore::metrics
