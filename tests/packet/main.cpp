// Entry point of packet_tests: pins the process to one CPU before any test
// runs, because BPF_PROG_TEST_RUN executes on the calling CPU and the
// round-robin cursors are per CPU; a migration between two runs would
// switch to another CPU's cursor and break the expected sequence.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char* argv[]) {
    const int cpu = sched_getcpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (cpu < 0 || sched_setaffinity(0, sizeof set, &set) != 0) {
        std::fprintf(stderr, "packet_tests: cannot pin to one CPU: %s\n", std::strerror(errno));
        return 1;
    }
    std::printf("packet_tests: pinned to CPU %d\n", cpu);
    return Catch::Session().run(argc, argv);
}
