#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "util/metrics.hpp"

using kvcore::metrics::Histogram;
using kvcore::metrics::Registry;

TEST_CASE("metrics render as Prometheus text, families in name order", "[metrics]") {
  Registry r;
  r.counter("kvcore_requests_total", "Requests served.", "op=\"get\"").inc(3);
  r.counter("kvcore_requests_total", "ignored: the first help stays", "op=\"put\"").inc();
  r.gauge("kvcore_leaders", "Regions led by this store.").set(-2);
  r.counter("kvcore_errors_total", "Errors, by \\ code\nand reason \"x\".").inc(0);
  auto& h =
      r.histogram("kvcore_apply_seconds", "Apply latency.", {0.005, 0.1, 1, 1e6}, "cf=\"default\"");
  h.observe(0.005);  // le is inclusive
  h.observe(0.05);
  h.observe(2.5);
  h.observe(std::numeric_limits<double>::infinity());
  r.histogram("kvcore_empty_seconds", "Never observed.", {1});

  const std::string expected =
      "# HELP kvcore_apply_seconds Apply latency.\n"
      "# TYPE kvcore_apply_seconds histogram\n"
      "kvcore_apply_seconds_bucket{cf=\"default\",le=\"0.005\"} 1\n"
      "kvcore_apply_seconds_bucket{cf=\"default\",le=\"0.1\"} 2\n"
      "kvcore_apply_seconds_bucket{cf=\"default\",le=\"1\"} 2\n"
      "kvcore_apply_seconds_bucket{cf=\"default\",le=\"1e+06\"} 3\n"
      "kvcore_apply_seconds_bucket{cf=\"default\",le=\"+Inf\"} 4\n"
      "kvcore_apply_seconds_sum{cf=\"default\"} +Inf\n"
      "kvcore_apply_seconds_count{cf=\"default\"} 4\n"
      "# HELP kvcore_empty_seconds Never observed.\n"
      "# TYPE kvcore_empty_seconds histogram\n"
      "kvcore_empty_seconds_bucket{le=\"1\"} 0\n"
      "kvcore_empty_seconds_bucket{le=\"+Inf\"} 0\n"
      "kvcore_empty_seconds_sum 0\n"
      "kvcore_empty_seconds_count 0\n"
      "# HELP kvcore_errors_total Errors, by \\\\ code\\nand reason \"x\".\n"
      "# TYPE kvcore_errors_total counter\n"
      "kvcore_errors_total 0\n"
      "# HELP kvcore_leaders Regions led by this store.\n"
      "# TYPE kvcore_leaders gauge\n"
      "kvcore_leaders -2\n"
      "# HELP kvcore_requests_total Requests served.\n"
      "# TYPE kvcore_requests_total counter\n"
      "kvcore_requests_total{op=\"get\"} 3\n"
      "kvcore_requests_total{op=\"put\"} 1\n";
  CHECK(r.prometheus_text() == expected);
}

TEST_CASE("histogram sums render shortest round-trip, NaN as NaN", "[metrics]") {
  Registry r;
  auto& h = r.histogram("kvcore_x_seconds", "x", {0.5});
  h.observe(0.1);
  h.observe(0.2);
  CHECK(r.prometheus_text().find("kvcore_x_seconds_sum 0.30000000000000004\n") !=
        std::string::npos);
  h.observe(std::nan(""));
  CHECK(r.prometheus_text().find("kvcore_x_seconds_sum NaN\n") != std::string::npos);
  CHECK(r.prometheus_text().find("kvcore_x_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
}

TEST_CASE("a name with several label sets is one family; lookups return the same metric",
          "[metrics]") {
  Registry r;
  auto& a = r.counter("kvcore_drops_total", "Dropped messages.", "reason=\"a\"");
  auto& b = r.counter("kvcore_drops_total", "Dropped messages.", "reason=\"b\"");
  CHECK(&a != &b);
  CHECK(&r.counter("kvcore_drops_total", "Dropped messages.", "reason=\"a\"") == &a);
  a.inc(5);
  b.inc(7);
  const std::string text = r.prometheus_text();
  CHECK(text ==
        "# HELP kvcore_drops_total Dropped messages.\n"
        "# TYPE kvcore_drops_total counter\n"
        "kvcore_drops_total{reason=\"a\"} 5\n"
        "kvcore_drops_total{reason=\"b\"} 7\n");
  CHECK(r.value("kvcore_drops_total", "reason=\"a\"") == 5);
  CHECK(r.value("kvcore_drops_total", "reason=\"b\"") == 7);
  CHECK(r.value("kvcore_drops_total", "reason=\"c\"") == 0);
  CHECK(r.value("kvcore_drops_total") == 0);
  CHECK(r.total("kvcore_drops_total") == 12);
  CHECK(r.value("kvcore_missing_total") == 0);
  CHECK(r.total("kvcore_missing_total") == 0);
}

TEST_CASE("value() and total() of gauges and histograms", "[metrics]") {
  Registry r;
  r.gauge("kvcore_g", "g", "s=\"1\"").set(-4);
  r.gauge("kvcore_g", "g", "s=\"2\"").add(6);
  CHECK(r.value("kvcore_g", "s=\"1\"") == 0);  // negative reads as 0
  CHECK(r.value("kvcore_g", "s=\"2\"") == 6);
  CHECK(r.total("kvcore_g") == 6);
  auto& h = r.histogram("kvcore_h_seconds", "h", {1, 2});
  h.observe(0.5);
  h.observe(1.5);
  h.observe(9);
  CHECK(r.value("kvcore_h_seconds") == 3);
  CHECK(r.total("kvcore_h_seconds") == 3);
}

TEST_CASE("histogram buckets are cumulative and quantiles interpolate", "[metrics]") {
  Histogram h({1, 2, 4, 8});
  CHECK(h.quantile(0.5) == 0);                  // empty
  for (int i = 0; i < 10; ++i) h.observe(0.5);  // (0, 1]
  for (int i = 0; i < 10; ++i) h.observe(3);    // (2, 4]
  CHECK(h.cumulative() == std::vector<std::uint64_t>{10, 10, 20, 20, 20});
  CHECK(h.count() == 20);
  CHECK(h.sum() == Approx(35.0));
  CHECK(h.quantile(0.25) == Approx(0.5));  // rank 5 of 10 in (0, 1]
  CHECK(h.quantile(0.5) == Approx(1.0));   // rank 10: the top of (0, 1]
  CHECK(h.quantile(0.75) == Approx(3.0));  // rank 15: halfway through (2, 4]
  CHECK(h.quantile(1.0) == Approx(4.0));
  CHECK(h.quantile(0.0) == Approx(0.0));
  h.observe(100);  // +Inf bucket: answers the highest finite bound
  CHECK(h.quantile(1.0) == Approx(8.0));

  Histogram explicit_inf({1, std::numeric_limits<double>::infinity()});
  CHECK(explicit_inf.bounds() == std::vector<double>{1});

  const auto b = kvcore::metrics::exponential_buckets(0.001, 2, 4);
  CHECK(b == std::vector<double>{0.001, 0.002, 0.004, 0.008});
}

TEST_CASE("concurrent updates from several threads give exact totals", "[metrics]") {
  Registry r;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50'000;
  auto& h = r.histogram("kvcore_c_seconds", "c", {0.5, 1.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&r, &h, t] {
      // Each thread also looks its metrics up, racing registration.
      auto& c = r.counter("kvcore_c_total", "c", "t=\"" + std::to_string(t % 2) + "\"");
      auto& g = r.gauge("kvcore_c_gauge", "c");
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        g.add(i % 2 == 0 ? 3 : -1);
        h.observe(1.0);  // exactly representable, so the CAS sum is exact
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(r.total("kvcore_c_total") == std::uint64_t{kThreads} * kPerThread);
  CHECK(r.value("kvcore_c_total", "t=\"0\"") == std::uint64_t{kThreads / 2} * kPerThread);
  CHECK(r.value("kvcore_c_gauge") == std::uint64_t{kThreads} * kPerThread);
  CHECK(h.count() == std::uint64_t{kThreads} * kPerThread);
  CHECK(h.sum() == static_cast<double>(kThreads * kPerThread));
  CHECK(h.cumulative() == std::vector<std::uint64_t>{0, 200'000, 200'000});
}
