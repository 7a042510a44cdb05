// load_carbon_provider_options (chase/carbon_provider.h): the provider config file, then building
// the provider from what it gave (construction only: no request is made). Byte 0 picks the
// provider, the rest is the file.
#include <string>

#include "chase/carbon_provider.h"
#include "fuzz_support.h"

using namespace chase;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const std::vector<std::string> names = carbon_provider_names();
  const std::string& name = names[data[0] % names.size()];
  const auto path = fuzz::write_file("providers.json", fuzz::as_text(data + 1, size - 1));
  const EnvLookup no_environment = [](const std::string&) -> std::optional<std::string> {
    return std::nullopt;
  };
  fuzz::expect_only_chase_errors([&] {
    CarbonProviderOptions options = load_carbon_provider_options(name, path, no_environment);
    static_cast<void>(to_string(options));
    // The file may name any path; reading or scanning it is another target's business.
    options.file.clear();
    options.cache_dir.clear();
    static_cast<void>(make_carbon_provider(name, std::move(options)));
  });
  return 0;
}
