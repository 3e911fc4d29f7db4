// portmux: multiplex one frontend port onto many backend ports with XDP.
#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "attachment.hpp"
#include "config.hpp"
#include "library_log.hpp"
#include "status_report.hpp"
#include "system.hpp"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Options {
    bool verbose = false;
    std::string iface;
    std::string config_file;
    portmux::AttachMode mode = portmux::AttachMode::automatic;
    bool json = false;
};

int run_attach(const Options& options) {
    // The whole config is validated before anything touches the kernel.
    const portmux::Config config = portmux::load_config(options.config_file);
    const portmux::AttachOutcome outcome = portmux::attach(options.iface, config, options.mode);
    if (!outcome.fallback_note.empty()) {
        fmt::print("{}\n", outcome.fallback_note);
    }
    fmt::print("attached to {}: {} mode, {} attachment, program id {}, {} frontend(s)\n",
               options.iface, outcome.mode, outcome.attachment, outcome.program_id,
               config.frontends.size());
    return 0;
}

int run_detach(const Options& options) {
    portmux::detach(options.iface);
    fmt::print("detached from {}\n", options.iface);
    return 0;
}

int run_status(const Options& options) {
    portmux::require_bpf_privileges("portmux status");
    portmux::ensure_bpffs();
    std::vector<portmux::InterfaceStatus> interfaces;
    if (!options.iface.empty()) {
        auto status = portmux::query_status(options.iface);
        if (!status) {
            if (options.json) {
                fmt::print("{}\n", portmux::status_json({}).dump(2));
            } else {
                fmt::print("portmux is not attached to {}\n", options.iface);
            }
            return kExitFailure;
        }
        interfaces.push_back(std::move(*status));
    } else {
        for (const std::string& iface : portmux::attached_interfaces()) {
            if (auto status = portmux::query_status(iface)) {
                interfaces.push_back(std::move(*status));
            }
        }
    }
    if (options.json) {
        fmt::print("{}\n", portmux::status_json(interfaces).dump(2));
    } else {
        fmt::print("{}", portmux::status_table(interfaces));
    }
    return 0;
}

int run_check(const Options& options) {
    const portmux::Config config = portmux::load_config(options.config_file);
    std::size_t backends = 0;
    for (const auto& frontend : config.frontends) {
        backends += frontend.backends.size();
    }
    fmt::print("{}: valid, {} frontend(s), {} backend(s)\n", options.config_file,
               config.frontends.size(), backends);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"portmux: multiplex one UDP frontend port onto many backend ports with XDP"};
    app.set_version_flag("--version", std::string(PORTMUX_VERSION));
    app.add_flag("-v,--verbose", options.verbose, "Show libbpf and libxdp messages");
    app.require_subcommand(1);

    const std::map<std::string, portmux::AttachMode> modes{
        {"native", portmux::AttachMode::native},
        {"generic", portmux::AttachMode::generic},
        {"auto", portmux::AttachMode::automatic}};

    CLI::App* attach = app.add_subcommand("attach", "Attach portmux to an interface");
    attach->add_option("IFACE", options.iface, "Network interface")->required();
    attach->add_option("-c,--config", options.config_file, "JSON backend config")
        ->required()
        ->check(CLI::ExistingFile);
    attach->add_option("-m,--mode", options.mode,
                       "XDP mode: native, generic, or auto (native, else generic)")
        ->transform(CLI::CheckedTransformer(modes, CLI::ignore_case));

    CLI::App* detach = app.add_subcommand("detach", "Remove portmux from an interface");
    detach->add_option("IFACE", options.iface, "Network interface")->required();

    CLI::App* status = app.add_subcommand("status", "Show where portmux is attached and its config");
    status->add_option("IFACE", options.iface, "Only this interface");
    status->add_flag("--json", options.json, "Print JSON");

    CLI::App* check = app.add_subcommand("check", "Validate a config file (no root needed)");
    check->add_option("FILE", options.config_file, "JSON backend config")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kExitUsage;
    }

    portmux::capture_library_logs(options.verbose);
    try {
        if (*attach) return run_attach(options);
        if (*detach) return run_detach(options);
        if (*status) return run_status(options);
        if (*check) return run_check(options);
    } catch (const portmux::NotAttached& e) {
        fmt::print(stderr, "portmux: error: {}\n", e.what());
        return kExitFailure;
    } catch (const std::exception& e) {
        const std::string library_log = portmux::take_library_log();
        if (!library_log.empty()) {
            fmt::print(stderr, "{}", library_log);
        }
        fmt::print(stderr, "portmux: error: {}\n", e.what());
        return kExitFailure;
    }
    return kExitUsage;
}
