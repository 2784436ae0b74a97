// The state file: what a restarted control plane resumes from when the ctl region is gone.
#include "controlplane/state/state_file.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "controlplane/config/loader.h"
#include "tests/unit/common/config_head.h"

namespace ilb::cp {
namespace {

const std::string kConfig = test::kConfigHead + R"(
[[service]]
name = "db"
vip = "10.0.0.100"
port = 3306
table_size = 251

[[service.backend]]
address = "10.0.0.21"

[[service.backend]]
address = "10.0.0.22"
)";

TEST(StateFile, RoundTripResumesAdminStateHealthAndIds) {
  State before;
  before.apply_config(parse_config(kConfig, "test.toml"));
  const auto& bs = before.services()[0].backends;
  before.set_health(bs[0].id, abi::Health::kUp, "ok");
  before.set_health(bs[1].id, abi::Health::kDown, "refused");
  before.set_admin("db", inet_addr("10.0.0.21"), 3306, abi::AdminState::kDraining);
  const std::string text = encode_state_file(before, "t");

  const StateFileContents contents = decode_state_file(text);
  EXPECT_EQ(contents.skipped, 0u);
  ASSERT_EQ(contents.backends.size(), 2u);
  State after;
  for (const auto& b : contents.backends) after.seed(b.key, b.id, b.admin, b.health);
  after.apply_config(parse_config(kConfig, "test.toml"));
  const auto& as = after.services()[0].backends;
  EXPECT_EQ(as[0].id, bs[0].id);
  EXPECT_EQ(as[0].admin, abi::AdminState::kDraining);
  EXPECT_EQ(as[0].health, abi::Health::kUp);
  EXPECT_EQ(as[1].health, abi::Health::kDown);
  // Resumed health goes to the checker as its starting point: no moment of unknown.
  for (const auto& t : after.check_targets()) EXPECT_NE(t.initial, abi::Health::kUnknown);
}

TEST(StateFile, RejectsTextThatIsNotAStateFile) {
  EXPECT_THROW(decode_state_file("{not json"), std::runtime_error);
  EXPECT_THROW(decode_state_file("[]"), std::runtime_error);
  EXPECT_THROW(decode_state_file(R"({"format":"other","version":1,"backends":[]})"),
               std::runtime_error);
  EXPECT_THROW(decode_state_file(R"({"format":"ilb-state","version":99,"backends":[]})"),
               std::runtime_error);
  EXPECT_THROW(decode_state_file(R"({"format":"ilb-state","version":1})"), std::runtime_error);
}

TEST(StateFile, SkipsMalformedEntriesAndKeepsTheRest) {
  const std::string good =
      R"({"vip":"10.0.0.100","port":3306,"protocol":"tcp","address":"10.0.0.21",)"
      R"("backend_port":3306,"id":7,"admin":"disabled","health":"up"})";
  const std::string text = std::string(R"({"format":"ilb-state","version":1,"backends":[)") + good +
                           "," + R"({"vip":"nope"},)" + R"(17,)" +
                           R"({"vip":"10.0.0.100","port":3306,"protocol":"tcp",)"
                           R"("address":"10.0.0.22","backend_port":3306,"id":0,)"
                           R"("admin":"enabled","health":"up"},)" +
                           R"({"vip":"10.0.0.100","port":70000,"protocol":"tcp",)"
                           R"("address":"10.0.0.22","backend_port":3306,"id":3,)"
                           R"("admin":"enabled","health":"sideways"}]})";
  const StateFileContents contents = decode_state_file(text);
  ASSERT_EQ(contents.backends.size(), 1u);
  EXPECT_EQ(contents.skipped, 4u);
  EXPECT_EQ(contents.backends[0].id, 7u);
  EXPECT_EQ(contents.backends[0].admin, abi::AdminState::kDisabled);
}

TEST(StateFile, DuplicateIdsInAFileNeverGiveTwoBackendsOneId) {
  const std::string entry = R"({"vip":"10.0.0.100","port":3306,"protocol":"tcp","address":"%s",)"
                            R"("backend_port":3306,"id":9,"admin":"enabled","health":"up"})";
  auto with = [&](const char* address) {
    std::string e = entry;
    e.replace(e.find("%s"), 2, address);
    return e;
  };
  const StateFileContents contents =
      decode_state_file(std::string(R"({"format":"ilb-state","version":1,"backends":[)") +
                        with("10.0.0.21") + "," + with("10.0.0.22") + "]}");
  State state;
  for (const auto& b : contents.backends) state.seed(b.key, b.id, b.admin, b.health);
  state.apply_config(parse_config(kConfig, "test.toml"));
  const auto& bs = state.services()[0].backends;
  EXPECT_NE(bs[0].id, bs[1].id);
}

TEST(StateFile, WritesAtomicallyAndCreatesTheDirectory) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("ilb-state-test-" + std::to_string(::getpid()));
  const std::string path = (dir / "sub" / "t.state").string();
  write_file_atomically(path, "one\n");
  write_file_atomically(path, "two\n");
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "two\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_THROW(write_file_atomically("/proc/ilb-cannot-write/x.state", "x"), std::runtime_error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ilb::cp
