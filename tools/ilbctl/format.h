// ilbctl's human-readable rendering of the control plane's JSON answers: aligned tables, numbers
// right-aligned, missing fields shown as "-". Pure functions, so they are unit-tested.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ilb::ctl {

// Columns are padded to their widest cell and separated by two spaces; a column whose cells are
// all numbers is right-aligned. Every line ends in '\n'.
std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

std::string format_status(const nlohmann::json& status);
std::string format_services(const nlohmann::json& services);
std::string format_backends(const nlohmann::json& backends);
// One line for the answers of POST .../admin and POST /v1/reload.
std::string format_admin(const nlohmann::json& answer);
std::string format_reload(const nlohmann::json& answer);

// "3d4h", "1h02m", "5m07s", "42s".
std::string format_duration(uint64_t seconds);

}  // namespace ilb::ctl
