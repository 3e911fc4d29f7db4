// portmux: multiplex one frontend port onto many backend ports with XDP.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <exception>
#include <filesystem>
#include <iostream>
#include <map>

#include <linux/capability.h>
#include <net/if.h>
#include <string>

#include <signal.h>

#include <CLI/CLI.hpp>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "attachment.hpp"
#include "config.hpp"
#include "library_log.hpp"
#include "portmux_version.h"
#include "reconfigure.hpp"
#include "run_service.hpp"
#include "state_lock.hpp"
#include "stats.hpp"
#include "status_report.hpp"
#include "stream_component.hpp"
#include "stream_registry.hpp"
#include "stream_router.hpp"
#include "stream_stats.hpp"
#include "system.hpp"
#include "xdp_hook.hpp"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Options {
    bool verbose = false;
    std::string iface;
    std::string config_file;
    std::string mode_name = "auto";
    bool json = false;
    std::uint16_t port = 0;
    std::string format = "table";
    bool watch = false;
    double watch_seconds = 1.0;
    unsigned watch_count = 0;
    std::string output_file;
    std::string metrics_listen;
    bool keep_on_exit = false;
    std::string pin_dir;
};

// The XDP modes by the names users type; --mode accepts only these (any
// case), never the enum's numbers.
const std::map<std::string, portmux::AttachMode>& attach_modes() {
    static const std::map<std::string, portmux::AttachMode> modes{
        {"native", portmux::AttachMode::native},
        {"generic", portmux::AttachMode::generic},
        {"auto", portmux::AttachMode::automatic}};
    return modes;
}

portmux::AttachMode attach_mode_named(const std::string& name) {
    return attach_modes().at(CLI::detail::to_lower(name));
}

void add_mode_option(CLI::App& verb, std::string& mode_name) {
    verb.add_option("-m,--mode", mode_name,
                    "XDP mode: native, generic, or auto (native, else generic; default)")
        ->check(CLI::IsMember({"native", "generic", "auto"}, CLI::ignore_case))
        ->option_text("native|generic|auto");
}

// --version: what a bug report needs. libbpf's is the one running (linked
// statically, the same as built against); libxdp 1.3 has no version call,
// so its version is the one pkg-config reported at build time.
std::string version_text() {
    return fmt::format("portmux {}\ncommit {}\nlibbpf {}.{} (built against {})\nlibxdp {}",
                       PORTMUX_VERSION, PORTMUX_GIT_COMMIT, libbpf_major_version(),
                       libbpf_minor_version(), PORTMUX_BUILT_LIBBPF_VERSION,
                       PORTMUX_BUILT_LIBXDP_VERSION);
}

int run_attach(const Options& options) {
    // The whole config is validated before anything touches the kernel.
    const portmux::Config config = portmux::load_config(options.config_file);
    const portmux::StateLock lock("portmux attach");
    const portmux::AttachOutcome outcome =
        portmux::attach(lock, options.iface, config, attach_mode_named(options.mode_name));
    if (!outcome.fallback_note.empty()) {
        fmt::print("{}\n", outcome.fallback_note);
    }
    if (outcome.object == "frags-aware") {
        fmt::print("{}'s MTU needs multi-buffer XDP: using the frags-aware data path\n", options.iface);
    }
    fmt::print("attached to {}: {} mode, {} attachment, program id {}, {}, {} frontend(s)\n",
               options.iface, outcome.mode, outcome.attachment, outcome.program_id,
               outcome.tc_attachment.empty()
                   ? std::string("no TC egress (no frontend translates replies)")
                   : "TC egress through a " + outcome.tc_attachment,
               config.frontends.size());
    return 0;
}

int run_detach(const Options& options) {
    const portmux::StateLock lock("portmux detach");
    portmux::detach(lock, options.iface);
    fmt::print("detached from {}\n", options.iface);
    return 0;
}

// Why IFACE's attachment does not work, empty when it does.
std::string attachment_problem(const portmux::InterfaceStatus& status) {
    const std::string& iface = status.iface;
    if (!status.interface_exists) {
        return fmt::format("{} no longer exists; `portmux detach {}` removes its pins", iface,
                           iface);
    }
    if (!status.program_attached) {
        return fmt::format(
            "the XDP program pinned for {} (id {}) is no longer attached to it: something else "
            "removed it (e.g. `ip link set dev {} xdp off`). `portmux detach {}` removes the pins; "
            "attach again to restore it",
            iface, status.program_id, iface, iface);
    }
    if (!status.incomplete.empty()) {
        return fmt::format("the attachment to {} is incomplete ({}); `portmux detach {}` removes it",
                           iface, status.incomplete, iface);
    }
    return {};
}

// Why IFACE, which has no portmux pins here, is still not free of portmux.
std::string unpinned_program_note(const std::string& iface) {
    if (const std::uint32_t id = portmux::program_on_interface(iface)) {
        return fmt::format(
            "{} has a portmux XDP program (id {}) but its pins are not in this bpffs (was it "
            "attached from another mount namespace?); `portmux detach {}` removes it",
            iface, id, iface);
    }
    const unsigned ifindex = if_nametoindex(iface.c_str());
    if (ifindex && !portmux::has_capability(CAP_SYS_ADMIN)) {
        const portmux::XdpHookPrograms hook = portmux::query_xdp_hook(ifindex);
        if (hook.native || hook.generic) {
            return fmt::format(
                "{} has an XDP program ({}) that portmux cannot name without CAP_SYS_ADMIN; if it "
                "is portmux's, its pins are in another bpffs (attached from another mount "
                "namespace?)",
                iface, portmux::describe_xdp_hook(ifindex));
        }
    }
    return {};
}

int run_status(const Options& options) {
    portmux::require_bpf_privileges("portmux status");
    portmux::ensure_bpffs();
    std::vector<portmux::InterfaceStatus> interfaces;
    std::string problem;
    if (!options.iface.empty()) {
        portmux::require_interface_name(options.iface);
        auto status = portmux::query_status(options.iface);
        if (!status) {
            if (const std::string note = unpinned_program_note(options.iface); !note.empty()) {
                fmt::print(stderr, "portmux: {}\n", note);
            }
            if (options.json) {
                nlohmann::json out = portmux::status_json({});
                out["error"] = {{"message",
                                 fmt::format("portmux is not attached to {}", options.iface)}};
                fmt::print("{}\n", out.dump(2));
            } else {
                fmt::print("portmux is not attached to {}\n", options.iface);
            }
            return kExitFailure;
        }
        problem = attachment_problem(*status);
        interfaces.push_back(std::move(*status));
    } else {
        for (const std::string& iface : portmux::attached_interfaces()) {
            if (auto status = portmux::query_status(iface)) {
                interfaces.push_back(std::move(*status));
            }
        }
    }
    // The stream router's frontends are on every address, not one
    // interface's: shown with any status.
    const std::vector<portmux::StreamFrontendStatus> streams =
        portmux::read_pinned_stream_frontends(portmux::default_stream_pin_directory());
    if (options.json) {
        nlohmann::json out = portmux::status_json(interfaces);
        if (!streams.empty()) {
            out["streams"] = portmux::stream_status_json(streams);
        }
        if (!problem.empty()) {
            out["error"] = {{"message", problem}};
        }
        fmt::print("{}\n", out.dump(2));
    } else {
        fmt::print("{}{}", portmux::status_table(interfaces), portmux::stream_status_table(streams));
    }
    if (!problem.empty()) {
        std::fflush(stdout);
        fmt::print(stderr, "portmux: error: {}\n", problem);
        return kExitFailure;
    }
    return 0;
}

// The interfaces a verb reports on: the one named, or every attached one.
std::vector<std::string> chosen_interfaces(const Options& options) {
    if (!options.iface.empty()) {
        return {options.iface};
    }
    return portmux::attached_interfaces();
}

std::vector<portmux::InterfaceStats> read_all_stats(const Options& options) {
    std::vector<portmux::InterfaceStats> all;
    for (const std::string& iface : chosen_interfaces(options)) {
        const portmux::PinnedMaps maps = portmux::open_pinned_maps(iface);
        all.push_back({iface, portmux::read_stats(maps.data_path())});
    }
    return all;
}

// The XDP counters of ALL, then those of a running stream router (its
// pinned maps), if any.
std::string format_stats(const Options& options, const std::vector<portmux::InterfaceStats>& all) {
    const std::vector<portmux::StreamFrontendStats> streams =
        portmux::read_pinned_stream_stats(portmux::default_stream_pin_directory());
    if (options.format == "prometheus") {
        return portmux::stats_prometheus(all) + portmux::stream_stats_prometheus(streams);
    }
    if (options.json || options.format == "json") {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& entry : all) {
            list.push_back(
                {{"interface", entry.iface}, {"frontends", portmux::stats_json(entry.frontends)}});
        }
        return nlohmann::json{{"interfaces", std::move(list)},
                              {"streams", portmux::stream_stats_json(streams)}}
                   .dump(2) +
               "\n";
    }
    if (all.empty() && streams.empty()) {
        return "portmux is not attached to any interface\n";
    }
    std::string text;
    for (const auto& entry : all) {
        text += portmux::stats_table(entry.iface, entry.frontends);
    }
    return text + portmux::stream_stats_table(streams);
}

// Refreshes a table of rates in place, like top, until interrupted (or
// `--count` refreshes have been shown).
int watch_stats(const Options& options) {
    using clock = std::chrono::steady_clock;
    auto before = read_all_stats(options);
    auto taken = clock::now();
    for (unsigned shown = 0; options.watch_count == 0 || shown < options.watch_count; ++shown) {
        std::this_thread::sleep_for(std::chrono::duration<double>(options.watch_seconds));
        auto after = read_all_stats(options);
        const auto now = clock::now();
        const double seconds = std::chrono::duration<double>(now - taken).count();
        fmt::print("\033[H\033[2J portmux stats, every {:.1f} s\n\n{}", options.watch_seconds,
                   portmux::rates_table(before, after, seconds));
        std::fflush(stdout);
        before = std::move(after);
        taken = now;
    }
    return 0;
}

int run_stats(const Options& options) {
    portmux::require_bpf_privileges("portmux stats");
    portmux::ensure_bpffs();
    if (!options.iface.empty()) {
        portmux::open_pinned_maps(options.iface);  // a clear error when not attached
    }
    if (options.watch) {
        return watch_stats(options);
    }
    const std::string text = format_stats(options, read_all_stats(options));
    if (options.output_file.empty()) {
        fmt::print("{}", text);
    } else {
        // A reader (node_exporter's textfile collector) sees the old file or
        // the new one, never half of one.
        portmux::write_file_atomically(options.output_file, text);
    }
    return 0;
}

int run_reload(const Options& options) {
    // A `portmux status --json` document gives the config of this interface.
    const portmux::Config config = portmux::load_config(options.config_file, options.iface);
    const portmux::StateLock lock("portmux reload");
    portmux::reload(lock, options.iface, config);
    fmt::print("reloaded {}: {} frontend(s)\n", options.iface, config.frontends.size());
    return 0;
}

// Attach when not attached, reload when attached: the same end state
// however often it runs (exit codes in docs/operations.md).
int run_apply(const Options& options) {
    const portmux::Config config = portmux::load_config(options.config_file);
    const portmux::StateLock lock("portmux apply");
    bool attached = true;
    try {
        portmux::open_pinned_maps(options.iface);
    } catch (const portmux::NotAttached&) {
        attached = false;
    }
    if (attached) {
        portmux::reload(lock, options.iface, config);
        fmt::print("reloaded {}: {} frontend(s)\n", options.iface, config.frontends.size());
        return 0;
    }
    const portmux::AttachOutcome outcome =
        portmux::attach(lock, options.iface, config, attach_mode_named(options.mode_name));
    if (!outcome.fallback_note.empty()) {
        fmt::print("{}\n", outcome.fallback_note);
    }
    fmt::print("attached to {}: {} mode, {} attachment, program id {}, {} frontend(s)\n",
               options.iface, outcome.mode, outcome.attachment, outcome.program_id,
               config.frontends.size());
    return 0;
}

int run_run(const Options& options) {
    portmux::RunOptions run;
    run.iface = options.iface;
    run.config_file = options.config_file;
    run.mode = attach_mode_named(options.mode_name);
    if (!options.metrics_listen.empty()) {
        run.metrics_listen = options.metrics_listen;
    }
    run.keep_on_exit = options.keep_on_exit;
    run.version = PORTMUX_VERSION;
    std::vector<std::unique_ptr<portmux::RunComponent>> components;
    components.push_back(std::make_unique<portmux::StreamRouterComponent>());
    return portmux::run_service(run, std::move(components));
}

int run_drain(const Options& options, bool drained) {
    const portmux::StateLock lock(drained ? "portmux drain" : "portmux undrain");
    // A backend of the stream router only (not of an XDP frontend) is
    // drained there alone; otherwise XDP first, which names the problem
    // when neither has the port, before anything changes.
    const std::filesystem::path streams = portmux::default_stream_pin_directory();
    bool stream_backend = false;
    for (const portmux::StreamFrontendStatus& frontend : portmux::read_pinned_stream_frontends(streams)) {
        for (const auto& [port, ignored] : frontend.backends) {
            stream_backend = stream_backend || port == options.port;
        }
    }
    bool xdp_backend = true;
    if (stream_backend) {
        portmux::require_interface_name(options.iface);
        const auto status = portmux::query_status(options.iface);
        xdp_backend = status && std::any_of(status->frontends.begin(), status->frontends.end(),
                                            [&](const portmux::Frontend& frontend) {
                                                return std::any_of(
                                                    frontend.backends.begin(), frontend.backends.end(),
                                                    [&](const portmux::Backend& backend) {
                                                        return backend.port == options.port;
                                                    });
                                            });
    }
    std::size_t changed = 0;
    if (xdp_backend) {
        changed += portmux::set_drained(lock, options.iface, options.port, drained);
    }
    changed += portmux::set_stream_drained(streams, options.port, drained).changed;
    fmt::print("{} backend {} on {} ({} frontend(s) changed)\n", drained ? "drained" : "undrained",
               options.port, options.iface, changed);
    return 0;
}

int run_check(const Options& options) {
    const portmux::Config config = portmux::load_config(options.config_file);
    std::size_t backends = 0;
    for (const auto& frontend : config.frontends) {
        backends += frontend.backends.size();
    }
    if (options.json) {
        fmt::print("{}\n", nlohmann::json{{"file", options.config_file},
                                          {"valid", true},
                                          {"frontends", config.frontends.size()},
                                          {"backends", backends},
                                          {"flow_table_size", config.flow_table_size}}
                               .dump(2));
        return 0;
    }
    fmt::print("{}: valid, {} frontend(s), {} backend(s)\n", options.config_file,
               config.frontends.size(), backends);
    return 0;
}

// Under --json a failure is also a JSON document on stdout, so that scripts
// reading stdout get {"error": {...}} instead of nothing.
void print_json_error(const Options& options, const std::exception& error) {
    nlohmann::json detail{{"message", error.what()}};
    if (const auto* config_error = dynamic_cast<const portmux::ConfigError*>(&error)) {
        detail["file"] = options.config_file;
        detail["path"] = config_error->path();
        detail["reason"] = config_error->reason();
    }
    fmt::print("{}\n", nlohmann::json{{"error", std::move(detail)}}.dump(2));
}

// Hidden verb `serve-streams`: only the stream router, in the foreground,
// without XDP (for tests and benchmarks; `portmux run` hosts the same
// router). SIGHUP reloads the config file, SIGTERM or SIGINT stops.
int run_serve_streams(const Options& options) {
    sigset_t signals;
    sigemptyset(&signals);
    for (const int signal : {SIGHUP, SIGTERM, SIGINT}) {
        sigaddset(&signals, signal);
    }
    // Blocked before the router's thread starts, so it inherits the mask
    // and sigwait() below takes every one of them.
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    portmux::Config config = portmux::load_config(options.config_file);
    portmux::StreamRouter router(options.pin_dir.empty() ? portmux::default_stream_pin_directory()
                                                         : std::filesystem::path(options.pin_dir));
    router.apply(config);
    std::string ports;
    for (const std::uint16_t port : router.listening_ports()) {
        ports += fmt::format(" {}", port);
    }
    fmt::print("serving stream frontends on TCP ports{}\n", ports);
    std::fflush(stdout);
    for (;;) {
        int signal = 0;
        if (sigwait(&signals, &signal) != 0) {
            continue;
        }
        if (signal != SIGHUP) {
            break;
        }
        try {
            router.apply(portmux::load_config(options.config_file));
            fmt::print("reloaded {}\n", options.config_file);
        } catch (const std::exception& e) {
            fmt::print(stderr, "portmux: reload failed, keeping the old rules: {}\n", e.what());
        }
        std::fflush(stdout);
    }
    router.stop();
    fmt::print("stopped\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    CLI::App app{"portmux: multiplex one UDP or TCP frontend port onto many backend ports with XDP"};
    app.set_version_flag("--version", version_text());
    app.add_flag("-v,--verbose", options.verbose, "Show libbpf and libxdp messages");
    app.require_subcommand(1);

    CLI::App* attach = app.add_subcommand("attach", "Attach portmux to an interface");
    attach->add_option("IFACE", options.iface, "Network interface")->required();
    attach->add_option("-c,--config", options.config_file, "JSON backend config")
        ->required()
        ->check(CLI::ExistingFile);
    add_mode_option(*attach, options.mode_name);

    CLI::App* run = app.add_subcommand(
        "run", "Serve an interface in the foreground: attach or adopt, reload on SIGHUP or a "
               "changed config, track backend liveness, serve /metrics; detach on SIGTERM");
    run->add_option("IFACE", options.iface, "Network interface")->required();
    run->add_option("-c,--config", options.config_file, "JSON backend config (watched)")
        ->required()
        ->check(CLI::ExistingFile);
    add_mode_option(*run, options.mode_name);
    run->add_option("--metrics-listen", options.metrics_listen,
                    "Serve Prometheus metrics on ADDR:PORT, [ADDR]:PORT or :PORT (off by default)");
    run->add_flag("--keep-on-exit", options.keep_on_exit,
                  "Leave the attachment in place on SIGTERM, for a successor to adopt");

    CLI::App* apply = app.add_subcommand(
        "apply", "Attach when not attached, reload when attached (idempotent)");
    apply->add_option("IFACE", options.iface, "Network interface")->required();
    apply->add_option("-c,--config", options.config_file, "JSON backend config")
        ->required()
        ->check(CLI::ExistingFile);
    add_mode_option(*apply, options.mode_name);

    CLI::App* detach = app.add_subcommand("detach", "Remove portmux from an interface");
    detach->add_option("IFACE", options.iface, "Network interface")->required();

    CLI::App* reload = app.add_subcommand(
        "reload", "Replace the config of an attached interface without detaching");
    reload->add_option("IFACE", options.iface, "Network interface")->required();
    reload->add_option("-c,--config", options.config_file,
                       "JSON backend config (or `portmux status --json` output)")
        ->required()
        ->check(CLI::ExistingFile);

    CLI::App* drain = app.add_subcommand(
        "drain", "Stop sending new flows and packets to a backend; its connections carry on");
    CLI::App* undrain = app.add_subcommand("undrain", "Let a drained backend take new work again");
    for (CLI::App* verb : {drain, undrain}) {
        verb->add_option("IFACE", options.iface, "Network interface")->required();
        verb->add_option("PORT", options.port, "Backend port")->required()->check(
            CLI::Range(1, 65535));
    }

    CLI::App* status = app.add_subcommand("status", "Show where portmux is attached and its config");
    status->add_option("IFACE", options.iface, "Only this interface");
    status->add_flag("--json", options.json, "Print JSON");

    CLI::App* stats = app.add_subcommand("stats", "Show packet, byte and drop counters");
    stats->add_option("IFACE", options.iface, "Only this interface");
    stats->add_flag("--json", options.json, "Print JSON (same as --format json)");
    stats->add_option("--format", options.format, "Output: table, json or prometheus")
        ->check(CLI::IsMember({"table", "json", "prometheus"}));
    CLI::Option* watch = stats->add_option("--watch", options.watch_seconds,
                                           "Refresh rates in place every SECONDS (default 1)")
                             ->expected(0, 1)
                             ->default_str("1")
                             ->check(CLI::Range(0.1, 3600.0));
    stats->add_option("--count", options.watch_count, "With --watch: stop after N refreshes");
    stats->add_option("--output", options.output_file,
                      "Write to FILE atomically (temp file + rename) instead of stdout")
        ->excludes(watch);

    CLI::App* check = app.add_subcommand("check", "Validate a config file (no root needed)");
    check->add_option("FILE", options.config_file,
                      "JSON backend config (or the output of `portmux status IFACE --json`)")
        ->required();
    check->add_flag("--json", options.json, "Print the result, or the error, as JSON");

    CLI::App* serve_streams = app.add_subcommand(
        "serve-streams", "Serve only the TCP frontends routed by their first bytes (no XDP)");
    serve_streams->group("");  // hidden: `portmux run` is the service users start
    serve_streams->add_option("-c,--config", options.config_file, "JSON backend config")
        ->required()
        ->check(CLI::ExistingFile);
    serve_streams->add_option("--pin-dir", options.pin_dir,
                              "Where to pin the stream counters (default /sys/fs/bpf/portmux-stream)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return kExitUsage;
    }

    options.watch = watch->count() > 0;
    portmux::capture_library_logs(options.verbose);
    try {
        if (*attach) return run_attach(options);
        if (*run) return run_run(options);
        if (*apply) return run_apply(options);
        if (*detach) return run_detach(options);
        if (*reload) return run_reload(options);
        if (*drain) return run_drain(options, true);
        if (*undrain) return run_drain(options, false);
        if (*status) return run_status(options);
        if (*stats) return run_stats(options);
        if (*check) return run_check(options);
        if (*serve_streams) return run_serve_streams(options);
    } catch (const portmux::NotAttached& e) {
        if (options.json) {
            print_json_error(options, e);
        }
        fmt::print(stderr, "portmux: error: {}\n", e.what());
        return kExitFailure;
    } catch (const portmux::CleanupDeferred& e) {
        // The change is in force: a caller that retried on failure would
        // apply it again for nothing.
        fmt::print(stderr, "portmux: warning: {}\n", e.what());
        return 0;
    } catch (const std::exception& e) {
        if (options.json) {
            print_json_error(options, e);
        }
        // Library messages were shown as they came with -v; without it the
        // one that explains a failure is already part of the error.
        fmt::print(stderr, "portmux: error: {}\n", e.what());
        if (!options.verbose && !portmux::take_library_log().empty()) {
            fmt::print(stderr, "portmux: run with -v to see libbpf's and libxdp's messages\n");
        }
        return kExitFailure;
    }
    return kExitUsage;
}
