// The standalone binary dies with the process that started it, even when that process is killed
// with SIGKILL (which no handler can catch): otherwise a killed bioplastic leaves its simulation
// running, orphaned, possibly for hours and with gigabytes of memory. The starting process passes
// its pid in BIOPLASTIC_PARENT_PID; without it (./main run by hand) nothing changes.
#pragma once
#include <cstdlib>
#ifdef __linux__
#include <csignal>
#include <sys/prctl.h>
#include <unistd.h>
#endif

static inline void bioplastic_die_with_parent()
{
#ifdef __linux__
    const char* parent = std::getenv("BIOPLASTIC_PARENT_PID");
    if (parent == nullptr)
        return;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)std::strtol(parent, nullptr, 10))  // the parent died before the call
        std::_Exit(1);
#endif
}
