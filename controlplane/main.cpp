// ilb-controlplane --config FILE [--check]
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "controlplane/config/loader.h"
#include "controlplane/daemon.h"
#include "controlplane/state/state.h"
#include "dataplane/config/config_error.h"

int main(int argc, char** argv) {
  CLI::App app{"ilb control plane: configuration, health checks and snapshots for ilb-dataplane"};
  std::string config_path;
  bool check_only = false;
  app.add_option("--config", config_path, "configuration file (ilb.toml)")->required();
  app.add_flag("--check", check_only, "validate the configuration, print \"ok\" or the error");
  CLI11_PARSE(app, argc, argv);

  ilb::cp::Config config;
  try {
    config = ilb::cp::load_config_file(config_path);
    ilb::cp::State::check_limits(config);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  if (check_only) {
    std::cout << "ok\n";
    return 0;
  }

  auto level = spdlog::level::from_str(config.controlplane.log_level);
  spdlog::set_level(level == spdlog::level::off && config.controlplane.log_level != "off"
                        ? spdlog::level::info
                        : level);
  try {
    ilb::cp::Daemon daemon(std::move(config));
    return daemon.run();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
