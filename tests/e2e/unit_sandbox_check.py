#!/usr/bin/env python3
"""Checks that the sandbox of scripts/systemd/portmux@.service.in admits what
`portmux run` did in a traced run (run_systemd_sandbox.sh).

    unit_sandbox_check.py UNIT_IN TRACE SYSCALL_FILTER_LISTING

UNIT_IN is the unit template, TRACE the output of `strace -f -o TRACE`,
SYSCALL_FILTER_LISTING the output of `systemd-analyze syscall-filter` (every
group and its members). Prints one line per check ("ok ..." or "FAIL ...")
and exits 1 when any check fails:
  - every system call the trace shows is in SystemCallFilter= (groups
    expanded recursively);
  - every socket the trace opened is of a family in RestrictAddressFamilies=;
  - every path the process wrote, created or removed is under ReadWritePaths=
    (ProtectSystem=strict makes everything else read-only).
"""
import re
import sys


def unit_settings(path):
    settings = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        settings.setdefault(key, []).append(value)
    return settings


def syscall_groups(listing):
    groups, current = {}, None
    for line in open(listing):
        if line.startswith("@"):
            current = line.strip()
            groups[current] = set()
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].add(line.strip())
    return groups


def expand(names, groups, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for name in names:
        if name.startswith("@"):
            if name in seen:
                continue
            seen.add(name)
            out |= expand(groups.get(name, ()), groups, seen)
        else:
            out.add(name)
    return out


CALL = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)(?:\(| resumed>)")
WRITE_CALLS = {"mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "rename", "renameat",
               "renameat2", "symlink", "symlinkat", "link", "linkat", "mknod", "mknodat",
               "truncate", "chmod", "fchmodat", "chown", "fchownat"}


def main():
    unit_in, trace, listing = sys.argv[1:4]
    settings = unit_settings(unit_in)
    groups = syscall_groups(listing)
    allowed = set()
    for value in settings.get("SystemCallFilter", []):
        allowed |= expand(value.split(), groups)
    families = set()
    for value in settings.get("RestrictAddressFamilies", []):
        families |= set(value.split())
    writable = [p.rstrip("/") for v in settings.get("ReadWritePaths", []) for p in v.split()]

    calls, sockets, written = set(), set(), set()
    for line in open(trace):
        match = CALL.match(line)
        if not match:
            continue
        name = match.group(1)
        if name in ("exited", "killed", "resumed"):
            continue
        calls.add(name)
        if name == "socket":
            family = re.search(r"socket\((AF_[A-Z0-9]+)", line)
            if family:
                sockets.add(family.group(1))
        paths = re.findall(r'"(/[^"]*)"', line)
        if name in WRITE_CALLS or (name in ("open", "openat") and
                                   re.search(r"O_(WRONLY|RDWR|CREAT|TRUNC)", line)):
            written |= {p for p in paths}
        if name == "bpf" and "BPF_OBJ_PIN" in line:
            written |= {p for p in paths}

    failures = 0

    def check(ok, text):
        nonlocal failures
        print(("ok   " if ok else "FAIL ") + text)
        failures += not ok

    check(bool(calls), "the trace shows system calls (%d distinct)" % len(calls))
    check("bpf" in calls, "the traced run made bpf() calls")
    for name in sorted(calls - allowed):
        check(False, "system call %s is not admitted by SystemCallFilter=%s"
              % (name, " ".join(settings.get("SystemCallFilter", []))))
    check(not (calls - allowed), "every system call is admitted by SystemCallFilter=")
    for family in sorted(sockets):
        check(family in families, "socket family %s is in RestrictAddressFamilies=" % family)
    for path in sorted(written):
        # /dev/null is fine for PrivateDevices=; everything else must be writable.
        ok = path == "/dev/null" or any(path == w or path.startswith(w + "/") for w in writable)
        check(ok, "wrote %s: under ReadWritePaths=%s" % (path, " ".join(writable)))
    check(any(p.startswith("/sys/fs/bpf/") for p in written), "the traced run pinned under /sys/fs/bpf")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
