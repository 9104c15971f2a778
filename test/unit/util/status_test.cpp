#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>

#include "kvcore/status.hpp"

using kvcore::Code;
using kvcore::Result;
using kvcore::Status;
using kvcore::SubCode;

namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Status::invalid_argument("not positive");
  return v;
}

Result<int> doubled(int v) {
  KVCORE_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

Status check_both(int a, int b) {
  KVCORE_RETURN_IF_ERROR(parse_positive(a));
  KVCORE_RETURN_IF_ERROR(parse_positive(b).status());
  return {};
}

}  // namespace

TEST_CASE("an OK status has no code, message or detail", "[status]") {
  Status s;
  CHECK(s.is_ok());
  CHECK(static_cast<bool>(s));
  CHECK(s.code() == Code::kOk);
  CHECK(s.sub_code() == SubCode::kNone);
  CHECK(s.message().empty());
  CHECK(s.detail() == nullptr);
  CHECK(s.to_string() == "OK");
  CHECK(Status(Code::kOk, "ignored").is_ok());
}

TEST_CASE("a failed status renders code, sub-code, message and detail", "[status]") {
  auto detail = std::make_shared<kvcore::NotLeaderDetail>();
  detail->region_id = 7;
  detail->leader_store_id = 3;
  detail->leader_peer_id = 12;
  Status s(Code::kUnavailable, "not leader", SubCode::kNotLeader, detail);
  CHECK_FALSE(s.is_ok());
  CHECK(s.code() == Code::kUnavailable);
  CHECK(s.sub_code() == SubCode::kNotLeader);
  CHECK(s.to_string() == "Unavailable/NotLeader: not leader [region 7 leader: store 3 peer 12]");
  const auto* hint = s.detail_as<kvcore::NotLeaderDetail>();
  REQUIRE(hint != nullptr);
  CHECK(hint->leader_store_id == 3);

  Status copy = s;
  CHECK(copy == s);
  CHECK(copy.detail() == s.detail());
  Status wrapped = s.with_context("region 7");
  CHECK(wrapped.code() == Code::kUnavailable);
  CHECK(wrapped.sub_code() == SubCode::kNotLeader);
  CHECK(wrapped.message() == "region 7: not leader");
  CHECK(wrapped.detail_as<kvcore::NotLeaderDetail>() == hint);
}

TEST_CASE("every code and sub-code has a name", "[status]") {
  for (int c = 0; c <= static_cast<int>(Code::kInternal); ++c) {
    CHECK(kvcore::to_string(static_cast<Code>(c)) != "Unknown");
  }
  for (int c = 1; c <= static_cast<int>(SubCode::kConditionFailed); ++c) {
    CHECK(kvcore::to_string(static_cast<SubCode>(c)) != "Unknown");
    CHECK_FALSE(kvcore::to_string(static_cast<SubCode>(c)).empty());
  }
}

TEST_CASE("a failed condition carries every expected key's actual value", "[status]") {
  auto d = std::make_shared<kvcore::ConditionFailedDetail>();
  d->actual.push_back({"counter", std::string("41")});
  d->actual.push_back({"marker", std::nullopt});
  const Status s(Code::kFailedPrecondition, "condition failed", SubCode::kConditionFailed, d);
  CHECK(kvcore::to_string(SubCode::kConditionFailed) == "ConditionFailed");
  CHECK(s.to_string() ==
        "FailedPrecondition/ConditionFailed: condition failed "
        "[actual: #0 7B key = 2B #1 6B key absent]");
  const auto* got = s.detail_as<kvcore::ConditionFailedDetail>();
  REQUIRE(got != nullptr);
  CHECK(got->actual == d->actual);
}

TEST_CASE("Result carries a value or the status explaining its absence", "[status]") {
  Result<int> ok = 41;
  REQUIRE(ok.is_ok());
  CHECK(*ok == 41);
  CHECK(ok.status().is_ok());

  Result<int> bad = Status::corruption("bad block");
  CHECK_FALSE(bad.is_ok());
  CHECK(bad.status().code() == Code::kCorruption);
  CHECK(bad.value_or(5) == 5);

  Result<int> from_ok_status = Status();
  CHECK_FALSE(from_ok_status.is_ok());
  CHECK(from_ok_status.status().code() == Code::kInternal);

  Result<std::unique_ptr<int>> owned = std::make_unique<int>(3);
  std::unique_ptr<int> moved = std::move(owned).value();
  CHECK(*moved == 3);
}

TEST_CASE("propagation macros return the first failure", "[status]") {
  CHECK(*doubled(4) == 8);
  CHECK(doubled(-1).status().code() == Code::kInvalidArgument);
  CHECK(check_both(1, 2).is_ok());
  CHECK(check_both(1, 0).code() == Code::kInvalidArgument);
}
