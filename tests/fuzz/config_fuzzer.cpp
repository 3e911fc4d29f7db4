// libFuzzer target: the config parser and validator. Any input may be
// rejected with ConfigError; any other exception, a crash, a sanitizer
// report, a hang or a leak is a bug.
//
// Built two ways:
//  - by run_config_fuzzer.sh with clang++ -fsanitize=fuzzer,address,undefined;
//  - with PORTMUX_FUZZ_STANDALONE_MAIN by the normal build, as
//    config_corpus_replay FILE_OR_DIR...: every input once, no fuzzing.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>

#include "config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const portmux::Config config = portmux::parse_config(text);
        // An accepted config must hold what the validator promises the
        // data path (portmux_shared.h limits); a violation is a bug too.
        if (config.frontends.empty() || config.frontends.size() > PORTMUX_MAX_FRONTENDS) {
            std::fprintf(stderr, "accepted a config with %zu frontends\n", config.frontends.size());
            std::abort();
        }
        for (const portmux::Frontend& frontend : config.frontends) {
            unsigned weights = 0;
            for (const portmux::Backend& backend : frontend.backends) {
                weights += backend.weight;
                if (backend.port == 0) {
                    std::fprintf(stderr, "accepted backend port 0\n");
                    std::abort();
                }
            }
            if (frontend.port == 0 || frontend.backends.empty() ||
                frontend.backends.size() > PORTMUX_MAX_BACKENDS || weights > PORTMUX_RR_SLOTS) {
                std::fprintf(stderr, "accepted frontend %u with %zu backends, weights %u\n",
                             frontend.port, frontend.backends.size(), weights);
                std::abort();
            }
            if (frontend.validate) {
                if (frontend.validate->matches.size() > PORTMUX_MAX_MATCHES ||
                    frontend.validate->min_payload > frontend.validate->max_payload) {
                    std::fprintf(stderr, "accepted a validate block beyond the limits\n");
                    std::abort();
                }
                for (const portmux::ByteMatch& match : frontend.validate->matches) {
                    if (match.value.empty() || match.value.size() > PORTMUX_MAX_MATCH_LEN ||
                        (!match.mask.empty() && match.mask.size() != match.value.size()) ||
                        match.offset + match.value.size() > PORTMUX_MAX_PAYLOAD_OFFSET) {
                        std::fprintf(stderr, "accepted a byte match beyond the limits\n");
                        std::abort();
                    }
                }
            }
            if (frontend.route) {
                const portmux::Route& route = *frontend.route;
                if (route.length == 0 || route.length > PORTMUX_MAX_TAG_LEN ||
                    route.offset + route.length > PORTMUX_MAX_PAYLOAD_OFFSET) {
                    std::fprintf(stderr, "accepted a route spec beyond the limits\n");
                    std::abort();
                }
                for (const portmux::RouteTag& tag : route.tags) {
                    bool listed = false;
                    for (const portmux::Backend& backend : frontend.backends) {
                        listed = listed || backend.port == tag.backend_port;
                    }
                    if (tag.tag.size() != route.length || !listed) {
                        std::fprintf(stderr, "accepted a route tag of the wrong size or to an unlisted backend\n");
                        std::abort();
                    }
                }
            }
        }
    } catch (const portmux::ConfigError&) {
        // rejected: fine
    }
    // Anything else propagates: libFuzzer reports an uncaught exception as
    // a crash (deadly signal via std::terminate).
    return 0;
}

#ifdef PORTMUX_FUZZ_STANDALONE_MAIN
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    std::vector<fs::path> inputs;
    for (int i = 1; i < argc; ++i) {
        const fs::path path = argv[i];
        if (fs::is_directory(path)) {
            for (const auto& entry : fs::directory_iterator(path)) {
                if (entry.is_regular_file()) inputs.push_back(entry.path());
            }
        } else {
            inputs.push_back(path);
        }
    }
    std::sort(inputs.begin(), inputs.end());
    if (inputs.empty()) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...  (no inputs found)\n", argv[0]);
        return 2;
    }
    for (const fs::path& input : inputs) {
        std::ifstream in(input, std::ios::binary);
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        try {
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
        } catch (const std::exception& error) {
            std::fprintf(stderr, "%s: not a ConfigError: %s\n", input.c_str(), error.what());
            return 1;
        }
    }
    std::printf("config_corpus_replay: %zu inputs, no crash and no foreign exception\n", inputs.size());
    return 0;
}
#endif
