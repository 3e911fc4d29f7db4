#!/usr/bin/env python3
"""Checks that scripts/deps.sh installs every external command the tests,
scripts and benchmarks call, so they also work on a fresh Debian 12 machine
(which has only the Essential and Priority: required packages, plus what
deps.sh installs and their dependencies).

For each shell script under tests/, scripts/, bench/ and .ci/ (and each
`subprocess` call in their Python files) it collects the words that name a
command and finds the package behind each:
  - COMMAND_PACKAGES below, for commands that may not be installed here
    (a command missing on this machine cannot be looked up with dpkg -S);
  - otherwise `dpkg -S` on the command's path in PATH.
The package must be Essential, Priority: required, listed by deps.sh or a
dependency of one listed there. A word in command position that is none of
a shell builtin, a function the scripts define, a command in PATH or in the
table is an unknown command, and fails the check too: add it to the table
and its package to deps.sh.

No root needed.  Usage: deps_check.py [REPO_ROOT] | --self-test
"""
import os
import re
import shutil
import subprocess
import sys

# Commands whose package is known even where they are not installed. Keep in
# sync with what the scripts call; deps.sh must install each package used.
COMMAND_PACKAGES = {
    "ping": "iputils-ping",
    "nstat": "iproute2",
    "ip": "iproute2",
    "tc": "iproute2",
    "ss": "iproute2",
    "ethtool": "ethtool",
    "nc": "netcat-openbsd",
    "tcpdump": "tcpdump",
    "curl": "curl",
    "dig": "bind9-dnsutils",
    "socat": "socat",
    "iperf3": "iperf3",
    "hping3": "hping3",
    "nginx": "nginx-light",
    "nft": "nftables",
    "gnuplot": "gnuplot-nox",
    "jq": "jq",
    "conntrack": "conntrack",
    "lintian": "lintian",
    "promtool": "prometheus",
    "strace": "strace",
    "systemd-analyze": "systemd",
    "dpkg-deb": "dpkg",
    "setpriv": "util-linux",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "flock": "util-linux",
    "bpftool": "bpftool",
    "xdp-loader": "xdp-tools",
    "cmake": "cmake",
    "ctest": "cmake",
    "cpack": "cmake",
    "ninja": "ninja-build",
    "python3": "python3",
    "pkill": "procps",
    "pgrep": "procps",
    "ps": "procps",
    "sysctl": "procps",
    "clang": "clang",
    "llvm-strip": "llvm",
    "gzip": "gzip",
    "git": "git",
    "file": "file",
    "man": "man-db",
}

# bash's builtins and reserved words: not external commands.
SHELL_WORDS = set("""
    . : [ alias bg bind break builtin caller case cd command compgen complete compopt
    continue coproc declare dirs disown do done echo elif else enable esac eval
    exec exit export false fc fg fi for function getopts hash help history if
    in jobs kill let local logout mapfile popd printf pushd pwd read readarray
    readonly return select set shift shopt source suspend test then time times
    trap true type typeset ulimit umask unalias unset until wait while
""".split())

KEYWORDS_NEXT_IS_COMMAND = {"then", "do", "else", "elif", "if", "while", "until", "!", "{", "time"}
# Commands that run another command given among their arguments.
WRAPPERS = {"exec", "command", "timeout", "env", "nohup", "setsid", "xargs", "sudo", "chroot",
            "nsenter", "setpriv", "unshare", "taskset", "retry", "in_ns", "start_in_ns",
            "strace", "watch", "flock", "stdbuf", "nice", "ionice", "script"}


class ShellLexer:
    """A small bash lexer: yields (word, kind) where kind is "command" for a
    word in command position, "arg" for an unquoted argument of a wrapper
    command (in_ns NS CMD, timeout 5 CMD, ip netns exec NS CMD), "other" for
    the rest. Quoted strings, comments, arithmetic, [[ ]], parameter
    expansions and heredoc bodies are skipped, but command substitutions
    inside double quotes are lexed."""

    def __init__(self, text, functions=()):
        self.s = text
        self.functions = set(functions)
        self.i = 0
        self.out = []
        self.pending_heredocs = []

    def peek(self, k=0):
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def skip_balanced(self, open_, close):
        depth = 1
        while self.i < len(self.s) and depth:
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
                continue
            if c == "'" and open_ != "(":
                pass
            if self.s.startswith(open_, self.i):
                depth += 1
                self.i += len(open_)
                continue
            if self.s.startswith(close, self.i):
                depth -= 1
                self.i += len(close)
                continue
            self.i += 1

    def skip_single_quoted(self):
        end = self.s.find("'", self.i)
        self.i = len(self.s) if end < 0 else end + 1

    def skip_double_quoted(self):
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
            elif c == '"':
                self.i += 1
                return
            elif not self.skip_expansion():
                self.i += 1

    def skip_expansion(self):
        """Steps over an expansion starting here ($((..)), $(..), `..`, ${..}),
        lexing the commands of a substitution; False when none starts here."""
        if self.s.startswith("$((", self.i):
            self.i += 3
            self.skip_balanced("((", "))")
        elif self.s.startswith("$(", self.i):
            self.i += 2
            self.lex(until=")")
        elif self.peek() == "`":
            self.i += 1
            self.lex(until="`")
        elif self.s.startswith("${", self.i):
            self.i += 2
            self.skip_balanced("{", "}")
        else:
            return False
        return True

    def read_word(self):
        """One shell word; returns (text, plain) where plain means the word is
        all literal unquoted characters (a possible command name)."""
        start = self.i
        plain = True
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\n;&|<>()" :
                if c == "(" and self.s[start:self.i].endswith("="):
                    self.i += 1  # array assignment
                    self.skip_balanced("(", ")")
                    plain = False
                    continue
                break
            plain = plain and (c.isalnum() or c in "_.+-/:@%,=")
            if c == "\\":
                self.i += 2
            elif c == "'":
                self.i += 1
                self.skip_single_quoted()
            elif c == '"':
                self.i += 1
                self.skip_double_quoted()
            elif not self.skip_expansion():
                self.i += 1
        return self.s[start:self.i], plain

    def newline(self):
        self.i += 1
        for terminator in self.pending_heredocs:
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                line = self.s[self.i:end]
                self.i = end + 1
                if line.strip() == terminator:
                    break
        self.pending_heredocs = []

    def lex(self, until=None):
        expect = "command"      # what the next word is
        wrapper = False         # inside a wrapper command's arguments
        case_pattern = False
        ip_words = None         # arguments of an `ip` command so far
        while self.i < len(self.s):
            c = self.s[self.i]
            if until and self.s.startswith(until, self.i):
                self.i += len(until)
                return
            if c in " \t":
                self.i += 1
            elif c == "\\" and self.peek(1) == "\n":
                self.i += 2
            elif c == "\n":
                self.newline()
                if not case_pattern:
                    expect, wrapper = "command", False
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
            elif self.s.startswith(";;", self.i):
                self.i += 2
                case_pattern = True
            elif c in ";&|":
                self.i += 1
                expect, wrapper = "command", False
            elif self.s.startswith("((", self.i):
                self.i += 2
                self.skip_balanced("((", "))")
            elif c == "(":
                self.i += 1
                if self.peek() == ")":   # name() function definition
                    self.i += 1
                else:
                    self.lex(until=")")
                expect, wrapper = "command", False
            elif c == ")":
                self.i += 1
                if case_pattern:
                    case_pattern = False
                    expect = "command"
                elif until is None:
                    pass
            elif c in "<>":
                # redirection: skip the operator, heredoc marker or target word
                if self.s.startswith("<<<", self.i):
                    self.i += 3
                    self.skip_spaces()
                    self.read_word()
                elif self.s.startswith("<<", self.i):
                    self.i += 2
                    if self.peek() == "-":
                        self.i += 1
                    self.skip_spaces()
                    word, _ = self.read_word()
                    self.pending_heredocs.append(word.strip("'\""))
                else:
                    while self.peek() in "<>&":
                        self.i += 1
                    if self.s.startswith("(", self.i):
                        continue
                    self.skip_spaces()
                    self.read_word()
            elif self.s.startswith("[[", self.i):
                self.i += 2
                self.skip_balanced("[[", "]]")
                expect = "other"
            else:
                word, plain = self.read_word()
                if not word:
                    self.i += 1
                    continue
                if word == "esac":
                    case_pattern = False
                    expect = "other"
                    continue
                if case_pattern:
                    continue
                if word == "case":
                    self.lex_case_subject()
                    case_pattern = True
                    continue
                if word in ("for", "select"):
                    self.skip_to_do()
                    expect = "command"
                    continue
                if word[0].isdigit() and self.peek() in "<>":
                    continue  # 2>&1
                is_assignment = re.match(r"^[A-Za-z_]\w*(\[[^]]*\])?\+?=", word) is not None
                if expect == "command":
                    if is_assignment:
                        continue
                    if word in KEYWORDS_NEXT_IS_COMMAND:
                        continue
                    self.out.append((word, "command" if plain else "other"))
                    wrapper = word in WRAPPERS or word in self.functions
                    # ip's arguments are objects and verbs (`ip route`), not
                    # commands, until `ip netns exec NS` hands over to one.
                    ip_words = [] if word == "ip" else None
                    expect = "other"
                elif ip_words is not None:
                    ip_words.append(word)
                    wrapper = ip_words[-3:-1] == ["netns", "exec"]
                    self.out.append((word, "arg" if wrapper and plain else "other"))
                    if wrapper:
                        ip_words = None
                else:
                    self.out.append((word, "arg" if wrapper and plain else "other"))
                    if wrapper and word == "ip":   # in_ns NS ip route ...
                        wrapper, ip_words = False, []

    def skip_spaces(self):
        while self.peek() in (" ", "\t"):
            self.i += 1

    def lex_case_subject(self):
        while self.i < len(self.s):
            self.skip_spaces()
            word, _ = self.read_word()
            if word == "in":
                return
            if not word:
                self.i += 1

    def skip_to_do(self):
        while self.i < len(self.s):
            self.skip_spaces()
            if self.peek() in ";\n":
                self.i += 1
                continue
            word, _ = self.read_word()
            if word == "do":
                return
            if not word:
                self.i += 1


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def deps_packages(root, group):
    """The packages `scripts/deps.sh --list [--bench]` says it installs."""
    args = ["bash", os.path.join(root, "scripts/deps.sh"), "--list"]
    if group == "bench":
        args.append("--bench")
    out = run(args)
    if out.returncode != 0:
        sys.exit(f"deps_check: {' '.join(args)} failed: {out.stderr.strip()}")
    return set(out.stdout.split())


def dependency_closure(packages):
    """packages plus everything they depend on, recursively (any alternative)."""
    out = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
               "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
               *sorted(packages)])
    names = {line.strip().split(":")[0] for line in out.stdout.splitlines()
             if line and not line.startswith(" ") and not line.startswith("<")}
    return names | set(packages)


def installed_packages():
    """{package: (essential, priority)} for what dpkg has installed."""
    out = run(["dpkg-query", "-W", "-f=${Package} ${Essential} ${Priority}\n"])
    table = {}
    for line in out.stdout.splitlines():
        fields = line.split()
        if fields:
            table[fields[0]] = (fields[1:2] == ["yes"], fields[-1])
    return table


def path_owners():
    """{path: package} from dpkg's file lists (one read, not a dpkg -S each)."""
    owners = {}
    info = "/var/lib/dpkg/info"
    for name in os.listdir(info):
        if name.endswith(".list"):
            package = name[:-len(".list")].split(":")[0]
            with open(os.path.join(info, name), encoding="utf-8", errors="replace") as f:
                for line in f:
                    owners.setdefault(line.rstrip("\n"), package)
    return owners


def package_of(command, owners):
    """The Debian package holding command as found in PATH, or "?PATH"."""
    path = shutil.which(command)
    candidates = [path, os.path.realpath(path)]
    for p in list(candidates):  # merged /usr: dpkg may record /bin or /usr/bin
        candidates.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
    for p in candidates:
        if p in owners:
            return owners[p]
    return "?" + path


def shell_sources(root):
    for top in ("tests", "scripts", "bench", ".ci"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                try:
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                except (UnicodeDecodeError, OSError):
                    continue
                first = text.split("\n", 1)[0]
                if name.endswith(".sh") or re.match(r"#!.*\b(ba)?sh\b", first):
                    yield path, top, "sh", text
                elif name.endswith(".py"):
                    yield path, top, "py", text


def defined_functions(texts):
    names = set()
    for text in texts:
        names.update(re.findall(r"^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*\(\)", text, re.M))
    return names


def self_test():
    """The check must fail on a script calling ping when deps.sh lacks
    iputils-ping, and on a command nobody knows; and pass once both are fixed."""
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "scripts"))
        os.makedirs(os.path.join(root, "tests"))
        deps = os.path.join(root, "scripts/deps.sh")
        script = os.path.join(root, "tests/probe.sh")

        def write(path, text):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)

        def check():
            out = run([sys.executable, os.path.abspath(__file__), root])
            return out.returncode, out.stdout

        write(deps, 'if [[ $* == "--list" ]]; then echo iproute2; fi\n')
        write(script, '#!/usr/bin/env bash\n# ping in a comment is no call\n'
                      'echo "frobnicate in a string neither"\n'
                      'retry() { "$@"; }\nretry 3 ip netns exec ns ping -c1 x && frobnicate --now\n')
        rc, out = check()
        expected = ["ping (tests/probe.sh) comes from package iputils-ping",
                    "frobnicate (tests/probe.sh) looks like a command"]
        if rc != 1 or not all(e in out for e in expected) or out.count("deps_check: ") != 3:
            print(f"self-test: expected exactly these two problems, got rc {rc}:\n{out}")
            return 1
        write(deps, 'if [[ $* == "--list" ]]; then echo iproute2 iputils-ping; fi\n')
        # An interface named like a command is an argument of ip, no call.
        write(script, '#!/usr/bin/env bash\nretry() { "$@"; }\nretry 3 ip netns exec ns ping -c1 x\n'
                      'ip -n ns link set nc up\ntimeout 5 ip link set nc down\n')
        rc, out = check()
        if rc != 0:
            print(f"self-test: expected a pass once deps.sh lists iputils-ping, got rc {rc}:\n{out}")
            return 1
    print("deps_check self-test: a missing package and an unknown command are caught")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    main_packages = deps_packages(root, "main")
    accepted = {"main": dependency_closure(main_packages)}
    accepted["bench"] = dependency_closure(main_packages | deps_packages(root, "bench"))
    listed = main_packages | deps_packages(root, "bench")
    known = set(re.findall(r"^Package: (\S+)$", run(["apt-cache", "show", "--no-all-versions",
                                                       *sorted(listed)]).stdout, re.M))
    if listed - known:
        print(f"deps_check: deps.sh lists packages apt does not know: {' '.join(sorted(listed - known))}")
        return 1

    sources = list(shell_sources(root))
    functions = defined_functions(text for _, _, kind, text in sources if kind == "sh")
    seen = {}        # (command, group) -> first place it is used
    unknown = {}     # word -> first place it is used
    for path, top, kind, text in sources:
        group = "bench" if top == "bench" else "main"
        rel = os.path.relpath(path, root)
        if kind == "py":
            for cmd in re.findall(r"subprocess\.\w+\(\s*\[\s*[\"']([\w.+-]+)[\"']", text):
                seen.setdefault((cmd, group), rel)
            continue
        lexer = ShellLexer(text, functions)
        lexer.lex()
        for word, kind in lexer.out:
            if kind == "other" or word in SHELL_WORDS or word in functions or "/" in word:
                continue
            if word in COMMAND_PACKAGES or shutil.which(word):
                seen.setdefault((word, group), rel)
            elif kind == "command":
                unknown.setdefault(word, rel)

    problems = []
    owners = path_owners()
    installed = installed_packages()
    for (command, group), where in sorted(seen.items()):
        package = COMMAND_PACKAGES.get(command) or package_of(command, owners)
        essential, priority = installed.get(package, (False, ""))
        if package.startswith("?"):
            problems.append(f"{command} ({where}): {package[1:]} belongs to no Debian package; "
                            "add it to COMMAND_PACKAGES in tests/deps_check.py")
        elif package not in accepted[group] and not essential and priority != "required":
            problems.append(f"{command} ({where}) comes from package {package}, which "
                            f"scripts/deps.sh {'--bench ' if group == 'bench' else ''}"
                            "does not install")
    for word, where in sorted(unknown.items()):
        problems.append(f"{word} ({where}) looks like a command but is not in PATH, not a "
                        "shell function and not in COMMAND_PACKAGES in tests/deps_check.py")

    commands = sorted({c for c, _ in seen})
    print(f"deps_check: {len(commands)} commands checked: {' '.join(commands)}")
    for problem in problems:
        print(f"deps_check: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
