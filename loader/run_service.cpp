#include "run_service.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "bpf_handles.hpp"
#include "config_watch.hpp"
#include "event_log.hpp"
#include "library_log.hpp"
#include "liveness.hpp"
#include "maps.hpp"
#include "metrics_server.hpp"
#include "pins.hpp"
#include "reconfigure.hpp"
#include "sd_notify.hpp"
#include "service_metrics.hpp"
#include "stream_stats.hpp"
#include "state_lock.hpp"
#include "system.hpp"

namespace portmux {
namespace {

using Clock = std::chrono::steady_clock;

double unix_now() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

// What went wrong, with libbpf's and libxdp's own messages when they have any.
std::string failure_text(const std::exception& error) {
    std::string text = error.what();
    std::string library = take_library_log();
    while (!library.empty() && library.back() == '\n') {
        library.pop_back();
    }
    if (!library.empty()) {
        text += " (" + library + ")";
    }
    return text;
}

// SIGHUP, SIGTERM and SIGINT arrive through a signalfd. They are blocked
// before any thread starts, so the metrics thread inherits the mask and
// never takes them.
UniqueFd block_signals_into_fd() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
        throw std::system_error(errno, std::generic_category(), "blocking signals");
    }
    std::signal(SIGPIPE, SIG_IGN);
    UniqueFd fd(signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd) {
        throw std::system_error(errno, std::generic_category(), "creating a signalfd");
    }
    return fd;
}

// Each metrics connection holds a descriptor: lift the soft limit to the
// hard one (systemd's LimitNOFILE sets both).
void raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

bool pins_exist(const std::string& iface) {
    try {
        open_pinned_maps(iface);
        return true;
    } catch (const NotAttached&) {
        return false;
    }
}

std::string family_word(bool up) { return up ? "up" : "down"; }

// What the metrics thread reads; the loop writes it under `mutex`.
struct SharedState {
    std::mutex mutex;
    bool attached = false;
    std::string mode;
    std::string attachment;
    ServiceCounters counters;
};

class Service {
public:
    Service(const RunOptions& options, std::vector<std::unique_ptr<RunComponent>> components)
        : options_(options), components_(std::move(components)) {}

    int run();

private:
    bool start();
    void loop();
    void stop();

    // A fresh liveness table for CONFIG's backends, or nullopt (logged)
    // when the socket table cannot be read.
    std::optional<LivenessTable> scan_liveness(const Config& config);
    void install(const Config& config, std::string_view trigger);
    void reload(std::string_view trigger, bool only_if_changed);
    void liveness_tick();
    void refresh_attachment_info();
    void apply_components(const Config& config);
    void log_liveness_changes(const LivenessTable& table);
    std::string render_metrics_text();

    RunOptions options_;
    std::vector<std::unique_ptr<RunComponent>> components_;
    UniqueFd signals_;
    std::optional<ConfigWatch> watch_;
    std::unique_ptr<MetricsServer> metrics_;
    SharedState shared_;
    TableFillSampler fill_sampler_{std::chrono::seconds(5)};

    std::string last_text_;              // the file content last tried
    LivenessTable logged_liveness_;      // what the log last said, per backend
    std::string last_liveness_error_;    // logged once until it changes
    bool lost_logged_ = false;           // "attachment gone" logged once
    bool stopping_ = false;
    int exit_status_ = 0;
};

std::optional<LivenessTable> Service::scan_liveness(const Config& config) {
    try {
        const std::vector<ReceivingSocket> sockets = receiving_sockets();
        const InterfaceAddresses addresses = interface_addresses(options_.iface);
        last_liveness_error_.clear();
        return backend_liveness(config, sockets, addresses);
    } catch (const std::exception& error) {
        if (last_liveness_error_ != error.what()) {
            last_liveness_error_ = error.what();
            log_event(LogLevel::error, "liveness_failed",
                      {{"iface", options_.iface}, {"error", error.what()}});
        }
        return std::nullopt;
    }
}

void Service::refresh_attachment_info() {
    const std::optional<InterfaceStatus> status = query_status(options_.iface);
    const std::lock_guard guard(shared_.mutex);
    shared_.attached = status && status->program_attached;
    shared_.mode = status ? status->mode : "";
    shared_.attachment = status ? status->attachment : "";
}

void Service::apply_components(const Config& config) {
    for (const auto& component : components_) {
        try {
            component->apply(config);
        } catch (const std::exception& error) {
            log_event(LogLevel::error, "component_failed",
                      {{"iface", options_.iface}, {"component", component->name()},
                       {"error", error.what()}});
        }
    }
}

// Attaches CONFIG, or reloads the attachment to it, under the state lock.
// New backends start with the liveness a fresh scan gives; backends that
// stay keep what the maps say (reload keeps runtime state).
void Service::install(const Config& wanted, std::string_view trigger) {
    Config config = wanted;
    if (auto table = scan_liveness(config)) {
        apply_liveness(config, *table);
    }
    std::string event;
    LogFields fields{{"iface", options_.iface}};
    std::string cleanup_deferred;
    {
        const StateLock lock("portmux run");
        if (pins_exist(options_.iface)) {
            try {
                portmux::reload(lock, options_.iface, config);
            } catch (const CleanupDeferred& deferred) {
                cleanup_deferred = deferred.what();  // installed all the same
            }
            event = trigger == "start" ? "adopted" : "reloaded";
        } else {
            const AttachOutcome outcome = attach(lock, options_.iface, config, options_.mode);
            event = trigger == "start" ? "attached" : "reattached";
            fields.emplace_back("mode", outcome.mode);
            fields.emplace_back("attachment", outcome.attachment);
            fields.emplace_back("program_id", std::to_string(outcome.program_id));
            if (!outcome.fallback_note.empty()) {
                fields.emplace_back("note", outcome.fallback_note);
            }
        }
    }
    lost_logged_ = false;
    refresh_attachment_info();
    {
        const std::lock_guard guard(shared_.mutex);
        if (trigger != "start") {
            ++shared_.counters.reloads;
        }
        shared_.counters.last_reload_ok = true;
        shared_.counters.last_reload_success = unix_now();
    }
    std::size_t backends = 0;
    for (const Frontend& frontend : config.frontends) {
        backends += frontend.backends.size();
    }
    fields.emplace_back("trigger", std::string(trigger));
    fields.emplace_back("config", options_.config_file.string());
    fields.emplace_back("frontends", std::to_string(config.frontends.size()));
    fields.emplace_back("backends", std::to_string(backends));
    if (!cleanup_deferred.empty()) {
        fields.emplace_back("warning", cleanup_deferred);
    }
    log_event(cleanup_deferred.empty() ? LogLevel::info : LogLevel::warning, event, fields);
    // Say where each backend stands right away, then only its changes.
    liveness_tick();
    apply_components(config);
}

// Reads FILE and installs it. ONLY_IF_CHANGED (a file event): nothing
// happens when the content is what was last tried.
void Service::reload(std::string_view trigger, bool only_if_changed) {
    std::string error;
    const std::optional<std::string> text = read_whole_file(options_.config_file, error);
    if (text && only_if_changed && *text == last_text_) {
        return;
    }
    sd_notify_state("RELOADING=1");
    auto refuse = [&](std::string_view event, const std::string& reason) {
        {
            const std::lock_guard guard(shared_.mutex);
            ++shared_.counters.reload_failures;
            shared_.counters.last_reload_ok = false;
        }
        log_event(LogLevel::error, event,
                  {{"iface", options_.iface}, {"trigger", std::string(trigger)},
                   {"config", options_.config_file.string()}, {"reason", reason},
                   {"kept", "running config"}});
        sd_notify_state(fmt::format("READY=1\nSTATUS=reload refused: {}", reason));
    };
    if (!text) {
        refuse("config_refused", error);
        return;
    }
    last_text_ = *text;
    Config config;
    try {
        config = parse_config(*text);
    } catch (const ConfigError& invalid) {
        refuse("config_refused", invalid.in_file(options_.config_file).what());
        return;
    }
    try {
        install(config, trigger);
    } catch (const std::exception& failure) {
        refuse("reload_failed", failure_text(failure));
        return;
    }
    sd_notify_state(fmt::format("READY=1\nSTATUS=serving {} with {}", options_.iface,
                                options_.config_file.string()));
}

void Service::log_liveness_changes(const LivenessTable& table) {
    for (const LivenessChange& change : liveness_changes(logged_liveness_, table)) {
        const bool known = logged_liveness_.contains(change.backend);
        // A backend first seen up is the normal case: only its absence is news.
        if (!known && change.after.v4 && change.after.v6) {
            continue;
        }
        const bool lost = (change.before.v4 && !change.after.v4) ||
                          (change.before.v6 && !change.after.v6) || !known;
        log_event(lost ? LogLevel::warning : LogLevel::info, lost ? "backend_down" : "backend_up",
                  {{"iface", options_.iface},
                   {"protocol", std::string(to_string(change.backend.first))},
                   {"backend", std::to_string(change.backend.second)},
                   {"ipv4", family_word(change.after.v4)},
                   {"ipv6", family_word(change.after.v6)}});
    }
    logged_liveness_ = table;
}

// Reads the sockets, compares with what the maps hold, and writes (under
// the lock, to what the maps hold then) only when they differ.
void Service::liveness_tick() {
    std::vector<InstalledFrontend> installed;
    try {
        const PinnedMaps maps = open_pinned_maps(options_.iface);
        installed = read_frontends(maps.data_path());
    } catch (const NotAttached& gone) {
        if (!lost_logged_) {
            lost_logged_ = true;
            {
                const std::lock_guard guard(shared_.mutex);
                shared_.attached = false;
            }
            log_event(LogLevel::error, "attachment_lost",
                      {{"iface", options_.iface}, {"error", gone.what()},
                       {"hint", "SIGHUP or a config change attaches again"}});
        }
        return;
    } catch (const std::exception& error) {
        log_event(LogLevel::error, "liveness_failed",
                  {{"iface", options_.iface}, {"error", error.what()}});
        return;
    }
    Config config;
    for (InstalledFrontend& entry : installed) {
        config.frontends.push_back(std::move(entry.frontend));
    }
    const std::optional<LivenessTable> table = scan_liveness(config);
    if (!table) {
        return;
    }
    log_liveness_changes(*table);
    Config updated = config;
    if (apply_liveness(updated, *table) == 0) {
        return;
    }
    try {
        const StateLock lock("portmux run");
        set_liveness(lock, options_.iface, *table);
    } catch (const CleanupDeferred& deferred) {
        log_event(LogLevel::warning, "liveness_cleanup_deferred",
                  {{"iface", options_.iface}, {"warning", deferred.what()}});
    } catch (const std::exception& error) {
        log_event(LogLevel::error, "liveness_failed",
                  {{"iface", options_.iface}, {"error", failure_text(error)}});
    }
}

std::string Service::render_metrics_text() {
    MetricsSnapshot snapshot;
    snapshot.iface = options_.iface;
    snapshot.version = options_.version;
    {
        const std::lock_guard guard(shared_.mutex);
        snapshot.attached = shared_.attached;
        snapshot.mode = shared_.mode;
        snapshot.attachment = shared_.attachment;
        snapshot.counters = shared_.counters;
    }
    try {
        const PinnedMaps maps = open_pinned_maps(options_.iface);
        snapshot.frontends = read_frontends(maps.data_path());
        snapshot.stats = read_stats(maps.data_path(), snapshot.frontends);
        const auto [flows, direct_clients] = fill_sampler_.sample(maps);
        snapshot.flows = flows;
        snapshot.direct_clients = direct_clients;
    } catch (const NotAttached&) {
        snapshot.attached = false;
    }
    // The stream router's counters (TCP frontends routed by first bytes).
    return render_metrics(snapshot) +
           stream_stats_prometheus(read_pinned_stream_stats(default_stream_pin_directory()));
}

bool Service::start() {
    LogFields where{{"iface", options_.iface}, {"config", options_.config_file.string()}};
    auto startup_failed = [&](const std::string& reason) {
        LogFields fields = where;
        fields.emplace_back("error", reason);
        log_event(LogLevel::error, "start_failed", fields);
        exit_status_ = 1;
        return false;
    };
    try {
        signals_ = block_signals_into_fd();
        raise_descriptor_limit();
        require_bpf_privileges("portmux run");
        interface_index(options_.iface);
        watch_.emplace(options_.config_file);
    } catch (const std::exception& error) {
        return startup_failed(error.what());
    }

    std::string error;
    const std::optional<std::string> text = read_whole_file(options_.config_file, error);
    if (!text) {
        return startup_failed(error);
    }
    last_text_ = *text;
    Config config;
    try {
        config = parse_config(*text);
    } catch (const ConfigError& invalid) {
        return startup_failed(invalid.in_file(options_.config_file).what());
    }

    // Listen before touching the kernel: a taken port fails the start cleanly.
    if (options_.metrics_listen) {
        try {
            metrics_ = std::make_unique<MetricsServer>(
                parse_listen_address(*options_.metrics_listen),
                [this] { return render_metrics_text(); });
        } catch (const std::exception& failure) {
            return startup_failed(failure.what());
        }
        log_event(LogLevel::info, "metrics_listening",
                  {{"iface", options_.iface}, {"address", *options_.metrics_listen},
                   {"port", std::to_string(metrics_->port())}});
    }

    try {
        install(config, "start");
    } catch (const std::exception& failure) {
        metrics_.reset();
        return startup_failed(failure_text(failure));
    }
    sd_notify_state(fmt::format("READY=1\nSTATUS=serving {} with {}", options_.iface,
                                options_.config_file.string()));
    return true;
}

void Service::loop() {
    auto next_liveness = Clock::now() + options_.liveness_interval;
    constexpr auto kNever = Clock::time_point::max();
    auto reload_due = kNever;  // set by a file event, after the settle time
    while (!stopping_) {
        std::vector<pollfd> fds{{signals_.get(), POLLIN, 0}, {watch_->fd(), POLLIN, 0}};
        for (const auto& component : components_) {
            fds.push_back({component->poll_fd(), POLLIN, 0});  // a negative fd is skipped
        }
        const auto deadline = std::min(next_liveness, reload_due);
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - Clock::now());
        const int timeout = static_cast<int>(std::max<std::int64_t>(0, wait.count()));
        if (poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
            log_event(LogLevel::error, "poll_failed", {{"error", std::strerror(errno)}});
            exit_status_ = 1;
            return;
        }
        if (fds[0].revents & POLLIN) {
            signalfd_siginfo info{};
            while (read(signals_.get(), &info, sizeof info) == sizeof info) {
                if (info.ssi_signo == SIGHUP) {
                    log_event(LogLevel::info, "signal", {{"signal", "SIGHUP"}});
                    reload("signal", false);
                } else {
                    log_event(LogLevel::info, "signal",
                              {{"signal", info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM"}});
                    stopping_ = true;
                }
            }
            if (stopping_) {
                return;
            }
        }
        if ((fds[1].revents & POLLIN) && watch_->consume_events()) {
            reload_due = Clock::now() + options_.settle_time;  // restart the settle time
        }
        for (std::size_t i = 0; i < components_.size(); ++i) {
            if (fds[2 + i].revents & POLLIN) {
                components_[i]->on_readable();
            }
        }
        const auto now = Clock::now();
        if (now >= reload_due) {
            reload_due = kNever;
            watch_->refresh();
            reload("file", true);
        }
        if (now >= next_liveness) {
            liveness_tick();
            next_liveness = Clock::now() + options_.liveness_interval;
        }
    }
}

void Service::stop() {
    sd_notify_state("STOPPING=1");
    for (const auto& component : components_) {
        try {
            component->stop();
        } catch (const std::exception& error) {
            log_event(LogLevel::error, "component_failed",
                      {{"iface", options_.iface}, {"component", component->name()},
                       {"error", error.what()}});
        }
    }
    metrics_.reset();
    if (options_.keep_on_exit) {
        log_event(LogLevel::info, "stopped",
                  {{"iface", options_.iface}, {"attachment", "kept (--keep-on-exit)"}});
        return;
    }
    try {
        const StateLock lock("portmux run");
        detach(lock, options_.iface);
        log_event(LogLevel::info, "detached", {{"iface", options_.iface}});
    } catch (const NotAttached&) {
        log_event(LogLevel::info, "stopped",
                  {{"iface", options_.iface}, {"attachment", "already gone"}});
    } catch (const std::exception& error) {
        log_event(LogLevel::error, "detach_failed",
                  {{"iface", options_.iface}, {"error", failure_text(error)}});
        exit_status_ = 1;
    }
}

int Service::run() {
    if (!start()) {
        return exit_status_;
    }
    loop();
    stop();
    return exit_status_;
}

}  // namespace

int run_service(const RunOptions& options, std::vector<std::unique_ptr<RunComponent>> components) {
    Service service(options, std::move(components));
    return service.run();
}

}  // namespace portmux
