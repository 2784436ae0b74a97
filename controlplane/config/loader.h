// Loads ilb.toml into the configuration model, rejecting anything invalid with one precise
// message (file, line, key, what was expected). Nothing is partially returned: either a complete,
// valid Config or an ilb::ConfigError.
#pragma once

#include <string>
#include <string_view>

#include "controlplane/config/model.h"

namespace ilb::cp {

// Reads and validates the file at `path`. Throws ilb::ConfigError.
Config load_config_file(const std::string& path);

// Validates TOML text; `path` is used in messages only. Throws ilb::ConfigError.
Config parse_config(std::string_view text, const std::string& path);

}  // namespace ilb::cp
