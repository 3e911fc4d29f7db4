"""The live sections of docs/benchmarks.md (bench/run.sh parts udp, scale,
relay), from live.jsonl: one JSON object per trial plus one "rep" record per
repetition (its order and the load average at its start and end).

Every comparison is a per-repetition ratio: system X's figure divided by the
reference's figure from the SAME repetition, so a slow minute of the shared
machine hits both sides of a ratio alike. A conclusion ("A delivers more than
B") is drawn only when every repetition's ratio is on the same side of 1, and,
when an earlier run is given (--compare), only when that run draws it too.
Standard library only.
"""
import json
import os
import statistics

UDP_SYSTEMS = ["direct3", "seed", "portmux", "nft", "nginx"]
UDP_NAMES = {
    "direct3": "direct3 (client spreads over 9876-9878 itself)",
    "seed": "seed algorithm (published demo's, as XDP)",
    "portmux": "portmux (XDP)",
    "nft": "nftables DNAT (numgen inc mod 3)",
    "nginx": "nginx stream UDP proxy (2 workers)",
}
PATHS = {"veth": "veth, XDP native", "lo": "loopback in one namespace, XDP generic"}
RELAY_SYSTEMS = ["direct", "naive", "splice", "nginx", "portmux"]
RELAY_NAMES = {
    "direct": "direct (no relay)",
    "naive": "naive read/write proxy (bench/naive_proxy.cpp)",
    "splice": "splice(2) proxy (bench/splice_proxy.cpp)",
    "nginx": "nginx stream (1 worker)",
    "portmux": "portmux stream router (sockmap)",
}


def load(work):
    rows = []
    path = os.path.join(work, "live.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    for r in rows:
        if r.get("kind") == "relay":
            r.setdefault("wake", "machine")  # runs before bench/run.sh's wake-up regimes
    return rows


def wakes_of(rows):
    """The wake-up regimes (bench/run.sh HALT_POLL) the rows have, the machine's own first."""
    present = {r["wake"] for r in rows}
    return [w for w in ("machine", "polled") if w in present] + sorted(present - {"machine", "polled"})


def paths_and_wakes(rows):
    """(path, wake-up regime) in the order of the tables: each path in each of the rows' regimes."""
    return [(path, wake) for path in ["lo", "veth"] for wake in wakes_of(rows)]


def wake_label(rows, wake):
    """'guest halt polling 0 ns (this machine's setting)', from the records' halt_poll_ns."""
    ns = sorted({r.get("halt_poll_ns") for r in rows if r.get("wake") == wake and r.get("halt_poll_ns") is not None})
    value = "/".join(f"{n:,}" for n in ns) if ns else "unknown"
    what = {"machine": "this machine's setting", "polled": "the kernel's default, set for these trials"}.get(wake, wake)
    return f"guest halt polling {value} ns ({what})"


def med(v):
    return statistics.median(v) if v else float("nan")


def rng(v, fmt="{:,.0f}"):
    v = [x for x in v if x is not None]
    if not v:
        return "-"
    lo, hi = min(v), max(v)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"


def ratios_str(v):
    return " ".join(f"{x:.2f}" for x in v)


# A ratio within 3% of 1 is not a difference on this machine, even when every
# repetition agrees on its side.
NOISE_BAND = 0.03


def verdict(ratios):
    """'more' when every ratio > 1 + band, 'less' when every ratio < 1 - band, else 'mixed'."""
    if not ratios:
        return None
    if min(ratios) > 1 + NOISE_BAND:
        return "more"
    if max(ratios) < 1 - NOISE_BAND:
        return "less"
    return "mixed"


def by_rep(rows, **match):
    out = {}
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            out[r["rep"]] = r
    return out


def rep_ratios(rows, value, a, b, **match):
    """Per-repetition value(a) / value(b), for the reps that have both."""
    ra, rb = by_rep(rows, system=a, **match), by_rep(rows, system=b, **match)
    out = []
    for rep in sorted(set(ra) & set(rb)):
        va, vb = value(ra[rep]), value(rb[rep])
        if va is not None and vb:
            out.append(va / vb)
    return out


def offered(r):
    return r["sender"]["send_pps"]


def delivered(r):
    return r["sink"]["delivered_pps"]


def per_cpu_s(r):
    """Offered datagrams per CPU second of the sender and CPU 0's ksoftirqd: the cost
    measure that does not depend on how much of CPU 0 other work left the sender."""
    cpu = r["sender"]["user_s"] + r["sender"]["sys_s"] + r.get("ksoftirqd0_s", 0)
    return r["sender"]["sent"] / cpu if cpu > 0 else None


def load_average_table(columns, entries):
    """A table of the load average around each repetition or trial. columns: (name, alignment)
    of the leading columns; entries: (leading cells, load at start, load at end)."""
    if not entries:
        return []
    out = ["| " + " | ".join([name for name, _ in columns] + ["load average (1 min) at start", "at end"]) + " |",
           "| " + " | ".join([align for _, align in columns] + ["---:", "---:"]) + " |"]
    for cells, start, end in entries:
        out.append("| " + " | ".join(cells + [f"{start:.2f}", f"{end:.2f}"]) + " |")
    return out


def load_table(rows, part):
    reps = sorted((r for r in rows if r.get("kind") == "rep" and r["part"] == part), key=lambda r: r["rep"])
    return load_average_table([("repetition", "---:"), ("order", "---")],
                              [([str(r["rep"]), ", ".join(r["order"])], r["load_start"], r["load_end"]) for r in reps])


class Claims:
    """Conclusions, each checked against the earlier run when there is one."""

    def __init__(self, have_compare):
        self.have_compare = have_compare
        self.rows = []

    def add(self, what, now, before, unit_ratio=True):
        """now/before: per-rep ratio lists of this run and of the earlier one."""
        v_now, v_before = verdict(now), verdict(before) if before is not None else None
        if v_now is None:
            return
        say = {"more": "higher in every repetition", "less": "lower in every repetition",
               "mixed": "not separable (repetitions disagree, or within 3% of 1)"}
        text_now = f"{rng(now, '{:.2f}')}×"
        if not self.have_compare:
            status = "one run only (no rerun given)"
            text_before = "-"
        elif before is None or v_before is None:
            status = "not measured in the earlier run"
            text_before = "-"
        else:
            text_before = f"{rng(before, '{:.2f}')}×"
            if v_now == v_before == "mixed":
                status = "no conclusion in either run"
            elif v_now == v_before:
                status = "holds in both runs"
            elif "mixed" in (v_now, v_before):
                status = f"did NOT survive the rerun (earlier: {say[v_before]})"
            else:
                status = f"CONTRADICTED by the rerun (earlier: {say[v_before]})"
        self.rows.append((what, text_now, text_before, say[v_now], status, v_now, v_before))

    def add_target(self, what, now_text, now_state, before_text, before_state):
        """A target: "met", "missed" or "mixed" (some repetitions met it) in this run and the earlier
        one (True/False stand for met/missed)."""
        def name(state):
            return None if state is None else state if isinstance(state, str) else "met" if state else "missed"
        says, before = name(now_state), name(before_state)
        if not self.have_compare:
            status = "one run only (no rerun given)"
        elif before is None:
            status = "not measured in the earlier run"
        elif says == before == "mixed":
            status = "no verdict in either run"
        elif says == before:
            status = "holds in both runs"
        else:
            status = f"did NOT survive the rerun (earlier: {before})"
        self.rows.append((what, now_text, before_text or "-", says, status, says, before))

    def table(self):
        out = ["| comparison (per-repetition ratio) | this run, min–max | earlier run, min–max | this run says | rerun |",
               "| --- | ---: | ---: | --- | --- |"]
        for what, now, before, says, status, _, _ in self.rows:
            out.append(f"| {what} | {now} | {before} | {says} | {status} |")
        return out

    def survivors(self):
        return [r for r in self.rows if r[4] == "holds in both runs" and r[5] != "mixed"]


# ------------------------------------------------------------------ UDP

def udp_section(rows, old_rows, claims):
    udp = [r for r in rows if r.get("kind") == "udp" and r.get("part") == "udp"]
    old = [r for r in old_rows if r.get("kind") == "udp" and r.get("part") == "udp"] if old_rows is not None else None
    if not udp:
        return []
    md = []
    for path in ["veth", "lo"]:
        prow = [r for r in udp if r["path"] == path]
        if not prow:
            continue
        systems = [s for s in UDP_SYSTEMS if any(r["system"] == s for r in prow)]
        md.append(f"**{PATHS[path]}, {prow[0]['size']}-byte payloads, {prow[0]['clients']} clients**")
        md.append("")
        md.append("| system | offered packets/s, min–max | delivered packets/s, min–max | delivered / sent | "
                  "split 9876 / 9877 / 9878 | delivered × direct3, per repetition | min–max | "
                  "offered per sender CPU second, min–max | that × direct3, min–max |")
        md.append("| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |")
        for s in systems:
            rs = [r for r in prow if r["system"] == s]
            loss = [r["sink"]["received"] / max(r["sender"]["sent"], 1) for r in rs]
            shares = []
            for r in rs:
                tot = max(r["sink"]["received"], 1)
                shares.append([r["sink"]["per_port"][p] / tot for p in sorted(r["sink"]["per_port"])])
            split = " / ".join(f"{100 * med([x[i] for x in shares]):.0f}%" for i in range(len(shares[0])))
            rat = rep_ratios(prow, delivered, s, "direct3")
            eff = rep_ratios(prow, per_cpu_s, s, "direct3")
            md.append(f"| {UDP_NAMES[s]} | {rng([offered(r) for r in rs])} | {rng([delivered(r) for r in rs])} | "
                      f"{rng([100 * x for x in loss], '{:.1f}')}% | {split} | {ratios_str(rat)} | {rng(rat, '{:.2f}')} | "
                      f"{rng([per_cpu_s(r) for r in rs])} | {rng(eff, '{:.2f}')} |")
        md.append("")
        md.append("portmux's per-repetition ratios against each system: delivered packets/s, offered "
                  "packets/s, and offered packets per sender CPU second (nginx's own CPU is not in the last, "
                  "so it is left out for nginx):")
        md.append("")
        md.append("| portmux vs | delivered, per repetition | min–max | offered, per repetition | min–max | "
                  "per CPU second, per repetition | min–max |")
        md.append("| --- | --- | ---: | --- | ---: | --- | ---: |")
        for s in systems:
            if s == "portmux":
                continue
            d = rep_ratios(prow, delivered, "portmux", s)
            o = rep_ratios(prow, offered, "portmux", s)
            e = rep_ratios(prow, per_cpu_s, "portmux", s) if s != "nginx" else []
            md.append(f"| {UDP_NAMES[s]} | {ratios_str(d)} | {rng(d, '{:.2f}')} | {ratios_str(o)} | {rng(o, '{:.2f}')} | "
                      f"{ratios_str(e) or '-'} | {rng(e, '{:.2f}')} |")
            old_path = [r for r in old if r["path"] == path] if old is not None else None
            claims.add(f"UDP {PATHS[path]}: portmux / {s}, delivered packets/s", d,
                       rep_ratios(old_path, delivered, "portmux", s) if old_path is not None else None)
            if s != "nginx":
                claims.add(f"UDP {PATHS[path]}: portmux / {s}, packets per sender CPU second", e,
                           rep_ratios(old_path, per_cpu_s, "portmux", s) if old_path is not None else None)
        md.append("")
    # The seed algorithm against the other balancers: what the rewrite has to beat.
    return md


# ------------------------------------------------------------------ scaling
# Part scale: one row (kind "scale") per trial, in which one sender alternated
# between portmux (system A) and direct3 (system B) in short slices, A B, B A,
# ...; every slice is recorded. A trial's ratio is the median over its slice
# pairs of (A's rate / B's rate): the two slices of a pair are adjacent in
# time, so both saw the same machine, and the median keeps one disturbed pair
# from moving the result.

SCALE_TOLERANCE = 0.05


def has_base(trial):
    """True when the trial also ran system C: portmux from the fewest clients, in the same cycles."""
    return "C" in trial["sender"]


def slice_cycles(trial):
    """The trial's slices by cycle (A B / B A, or A C B / B C A with system C), as {system: slice}."""
    sl = trial["sender"]["slices"]
    k = 3 if has_base(trial) else 2
    out = []
    for i in range(0, len(sl) - k + 1, k):
        cycle = {s["system"]: s for s in sl[i:i + k]}
        if len(cycle) == k:
            out.append(cycle)
    return out


def slice_pairs(trial, other="B"):
    """(A slice, `other` slice) per cycle, in the order they ran: B is direct3, C portmux at the base count."""
    return [(c["A"], c[other]) for c in slice_cycles(trial) if other in c]


def slice_wall_rate(s):
    return s["sent"] / s["wall_s"] if s["wall_s"] > 0 else None


def slice_cpu_rate(s):
    """Datagrams per CPU second of the sender thread plus CPU 0's ksoftirqd during the slice."""
    cpu = s["cpu_s"] + s["softirq_s"]
    return s["sent"] / cpu if cpu > 0 else None


def pair_ratios(trial, rate, other="B"):
    out = []
    for x, y in slice_pairs(trial, other):
        ra, rb = rate(x), rate(y)
        if ra is not None and rb:
            out.append(ra / rb)
    return out


def trial_ratio(trial, rate):
    r = pair_ratios(trial, rate)
    return med(r) if r else None


def scale_trials(rows):
    return [r for r in rows if r.get("kind") == "scale"]


def scale_relative(trials, rate, clients, base):
    """Per repetition: portmux at `clients` against portmux at `base` clients. With system C (portmux at
    the base count in the same cycles): the median over the trial's cycles of A's rate / C's. Without it:
    the trial ratio (× direct3) at `clients` over the same repetition's at `base`."""
    if trials and all(has_base(t) for t in trials):
        out = {}
        for t in trials:
            if t["clients"] == clients:
                r = pair_ratios(t, rate, "C")
                if r:
                    out[t["rep"]] = med(r)
        return [out[k] for k in sorted(out)]
    at = {t["rep"]: trial_ratio(t, rate) for t in trials if t["clients"] == clients}
    at_base = {t["rep"]: trial_ratio(t, rate) for t in trials if t["clients"] == base}
    return [at[k] / at_base[k] for k in sorted(set(at) & set(at_base)) if at[k] and at_base[k]]


def scale_worst(trials, rate):
    """Largest |relative ratio - 1| over every repetition and client count, or None."""
    if not trials:
        return None
    counts = sorted({t["clients"] for t in trials})
    rel = [x for c in counts[1:] for x in scale_relative(trials, rate, c, counts[0])]
    return max((abs(x - 1) for x in rel), default=None)


def system_rates(trials, system):
    """Per trial: offered/s, delivered/s and delivered/sent of one system (A or B), over its timed slices."""
    out = []
    for t in trials:
        tot = t["sender"][system]
        got = t["sink"].get("per_tag", {}).get(system, {}).get("received", 0)
        if tot["wall_s"] > 0 and tot["sent"] > 0:
            out.append((tot["sent"] / tot["wall_s"], got / tot["wall_s"], got / tot["sent"]))
    return out


def scale_section(rows, old_rows, claims):
    sc = scale_trials(rows)
    if not sc:
        return [], None
    old = scale_trials(old_rows) if old_rows is not None else None
    counts = sorted({t["clients"] for t in sc})
    base = counts[0]
    md = ["Offered and delivered rates per trial (each system over its own slices), min–max over the repetitions:",
          "",
          "| clients | portmux offered/s | portmux delivered/s | portmux delivered / sent | direct3 offered/s | "
          "direct3 delivered/s | direct3 delivered / sent |",
          "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in counts:
        ts = [t for t in sc if t["clients"] == c]
        a, b = system_rates(ts, "A"), system_rates(ts, "B")
        md.append(f"| {c:,} | {rng([x[0] for x in a])} | {rng([x[1] for x in a])} | "
                  f"{rng([100 * x[2] for x in a], '{:.1f}')}% | {rng([x[0] for x in b])} | "
                  f"{rng([x[1] for x in b])} | {rng([100 * x[2] for x in b], '{:.1f}')}% |")
    md.append("")
    same_cycles = all(has_base(t) for t in sc)
    for rate, label in ((slice_wall_rate, "offered per wall second"),
                        (slice_cpu_rate, "offered per CPU second (sender thread + CPU 0's ksoftirqd)")):
        if same_cycles:
            md.append(f"portmux / direct3, {label}: each repetition's trial ratio (the median over its cycles), "
                      f"and portmux at N clients over portmux at {base} clients in the same cycles (the median "
                      "over the trial's cycles of the two adjacent slices' ratio):")
            rel_head = f"÷ portmux at {base} clients, same cycles"
        else:
            md.append(f"portmux / direct3, {label}: each repetition's trial ratio (the median over its slice pairs), "
                      f"and that divided by the same repetition's ratio at {base} clients:")
            rel_head = f"÷ the same repetition's at {base} clients"
        md.append("")
        md.append(f"| clients | portmux / direct3, per repetition | slice-pair ratios, min–max over the trials | "
                  f"{rel_head} | min–max | median | within 5% in |")
        md.append("| ---: | --- | ---: | --- | ---: | ---: | ---: |")
        for c in counts:
            ts = sorted((t for t in sc if t["clients"] == c), key=lambda t: t["rep"])
            tr = [trial_ratio(t, rate) for t in ts]
            pairs = [x for t in ts for x in pair_ratios(t, rate)]
            rel = scale_relative(sc, rate, c, base)
            within = sum(1 for x in rel if abs(x - 1) <= SCALE_TOLERANCE)
            md.append(f"| {c:,} | {ratios_str([x for x in tr if x is not None])} | {rng(pairs, '{:.2f}')} | "
                      f"{ratios_str(rel)} | {rng(rel, '{:.3f}')} | {med(rel):.3f} | {within} of {len(rel)} |")
        md.append("")
    md += scale_time_table(sc, counts)
    info = {"counts": counts, "same_cycles": same_cycles,
            "offered": (scale_worst(sc, slice_wall_rate), scale_worst(old, slice_wall_rate) if old else None),
            "per_cpu": (scale_worst(sc, slice_cpu_rate), scale_worst(old, slice_cpu_rate) if old else None)}
    return md, info


def scale_time_table(trials, counts):
    """Where each system's slice time went: the share of the wall time the sender thread and
    CPU 0's ksoftirqd ran, CPU 0's idle share and the sender's sleeps per second."""
    if not all("slept" in t["sender"]["A"] for t in trials):
        return []  # recorded before these fields existed
    out = ["Where each system's slice time went, median over the trials: the share of the wall time that the "
           "sender thread and CPU 0's ksoftirqd ran (the rest went to the machine's other work, or to idle), "
           "CPU 0's idle share (/proc/stat ticks), and how often per second the sender slept (voluntary "
           "context switches):",
           "",
           "| clients | portmux: sender + ksoftirqd | CPU 0 idle | sleeps/s | direct3: sender + ksoftirqd | CPU 0 idle | "
           "sleeps/s |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in counts:
        cells = []
        for system in ("A", "B"):
            tot = [t["sender"][system] for t in trials if t["clients"] == c and t["sender"][system]["wall_s"] > 0]
            cells.append(f"{100 * med([(x['cpu_s'] + x['softirq_s']) / x['wall_s'] for x in tot]):.0f}%")
            cells.append(f"{100 * med([x['cpu_idle_s'] / x['wall_s'] for x in tot]):.0f}%")
            cells.append(f"{med([x['slept'] / x['wall_s'] for x in tot]):,.0f}")
        out.append(f"| {c:,} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def scale_load_table(rows):
    trials = sorted(scale_trials(rows), key=lambda t: (t["rep"], t["clients"]))
    return load_average_table([("repetition", "---:"), ("clients", "---:")],
                              [([str(t["rep"]), f"{t['clients']:,}"], t["load_start"], t["load_end"]) for t in trials])


# ------------------------------------------------------------------ relay

def stream_gbit(r):
    return r["result"].get("gbit_s") or None


def per_gib(field):
    def f(r):
        b = r["result"].get("bytes") or 0
        return r[field] / (b / (1 << 30)) if b and r.get(field) is not None else None
    return f


def relay_section(rows, old_rows, claims):
    rel = [r for r in rows if r.get("kind") == "relay"]
    if not rel:
        return []
    old = [r for r in old_rows if r.get("kind") == "relay"] if old_rows is not None else None
    md = []
    metrics = [
        ("1 stream Gbit/s", "stream", {"streams": 1}, stream_gbit, "{:.2f}"),
        ("64 streams Gbit/s", "stream", {"streams": 64}, stream_gbit, "{:.2f}"),
        ("CPU s/GiB, 1 stream", "stream", {"streams": 1}, per_gib("attributed_cpu_s"), "{:.2f}"),
        ("CPU s/GiB, 64 streams", "stream", {"streams": 64}, per_gib("attributed_cpu_s"), "{:.2f}"),
        ("machine CPU s/GiB, 1 stream", "stream", {"streams": 1}, per_gib("cpu_s"), "{:.2f}"),
        ("machine CPU s/GiB, 64 streams", "stream", {"streams": 64}, per_gib("cpu_s"), "{:.2f}"),
        ("64 B request/response p50 µs", "rr", {}, lambda r: r["result"].get("p50_us") or None, "{:.0f}"),
        ("p99 µs", "rr", {}, lambda r: r["result"].get("p99_us") or None, "{:.0f}"),
        ("new connections/s", "connect", {}, lambda r: r["result"].get("per_s") or None, "{:,.0f}"),
    ]
    wakes = wakes_of(rel)
    for path, wake in paths_and_wakes(rel):
        prow = [r for r in rel if r["path"] == path and r["wake"] == wake]
        if not prow:
            continue
        systems = [s for s in RELAY_SYSTEMS if any(r["system"] == s for r in prow)]
        regime = f", {wake_label(rel, wake)}" if len(wakes) > 1 else ""
        md.append(f"**{'loopback (client, relay and server in one namespace)' if path == 'lo' else 'over a veth (client in its own namespace)'}**{regime}, min–max over the repetitions:")
        md.append("")
        md.append("| system | " + " | ".join(m[0] for m in metrics) + " |")
        md.append("| --- |" + " ---: |" * len(metrics))
        for s in systems:
            cells = []
            for _, test, match, fn, fmt in metrics:
                vals = [fn(r) for r in prow if r["system"] == s and r["test"] == test
                        and all(r.get(k) == v for k, v in match.items())]
                cells.append(rng([v for v in vals if v is not None], fmt))
            md.append(f"| {RELAY_NAMES[s]} | " + " | ".join(cells) + " |")
        md.append("")
        md.append("Per-repetition ratios against the naive proxy (min–max; lower is better for CPU and latency):")
        md.append("")
        md.append("| system | " + " | ".join(m[0] for m in metrics) + " |")
        md.append("| --- |" + " ---: |" * len(metrics))
        for s in systems:
            if s == "naive":
                continue
            cells = []
            for name, test, match, fn, _ in metrics:
                sub = [r for r in prow if r["test"] == test and all(r.get(k) == v for k, v in match.items())]
                rat = rep_ratios(sub, fn, s, "naive")
                cells.append(rng(rat, "{:.2f}") + "×" if rat else "-")
                if "machine" not in name and (s == "portmux" or (s == "splice" and "p99" not in name)):
                    before = None
                    if old is not None:
                        osub = [r for r in old if r["path"] == path and r["test"] == test and r["wake"] == wake
                                and all(r.get(k) == v for k, v in match.items())]
                        before = rep_ratios(osub, fn, s, "naive")
                    where = path if wake == "machine" else f"{path} {wake}"
                    claims.add(f"TCP {where}: {s} {name} / naive", rat, before)
            md.append(f"| {RELAY_NAMES[s]} | " + " | ".join(cells) + " |")
        md.append("")
    return md


CPU_PLACES = ["client", "relay", "servers", "kworker", "ksoftirqd", "kthreads"]


def cpu_where_table(rows):
    """Median CPU seconds per GiB by where they went, per path, system and stream count."""
    rel = [r for r in rows if r.get("kind") == "relay" and r.get("test") == "stream" and r.get("cpu_where_s")
           and r["result"].get("bytes")]
    if not rel:
        return []
    md = ["Where the attributed CPU went (median CPU seconds per GiB over the repetitions; `relay` is the "
          "relay's own process, `servers` the sink, `kworker` includes sockmap's backlog work):", "",
          "| path | wake-ups | streams | system | " + " | ".join(CPU_PLACES) + " | total |",
          "| --- | --- | ---: | --- |" + " ---: |" * (len(CPU_PLACES) + 1)]
    for path, wake in paths_and_wakes(rel):
        for streams in (1, 64):
            for sysname in RELAY_SYSTEMS:
                rs = [r for r in rel if r["path"] == path and r["streams"] == streams and r["system"] == sysname
                      and r["wake"] == wake]
                if not rs:
                    continue
                cells = []
                for place in CPU_PLACES:
                    cells.append(f"{med([r['cpu_where_s'].get(place, 0) / (r['result']['bytes'] / (1 << 30)) for r in rs]):.2f}")
                total = med([r["attributed_cpu_s"] / (r["result"]["bytes"] / (1 << 30)) for r in rs])
                md.append(f"| {path} | {wake} | {streams} | {sysname} | " + " | ".join(cells) + f" | {total:.2f} |")
    md.append("")
    return md


def router_copied_table(rows):
    """Of the bytes portmux's stream router relayed in each trial, the share it copied itself
    (first bytes and first reply, a side held under backpressure, or the splice(2) fallback): its
    own counters, read before and after every trial (`portmux stats --json`)."""
    rel = [r for r in rows if r.get("kind") == "relay" and r.get("system") == "portmux" and r.get("router_bytes")]
    if not rel:
        return []
    md = ["portmux's own counters per trial (`portmux stats --json`, `copied_to_backend` / `copied_to_client`, "
          "the same as `portmux_stream_copied_bytes_total`): the bytes its stream router copied through user "
          "space itself (the client's first bytes and the backend's first reply, which it always writes "
          "itself; a side held under backpressure; or the splice(2) fallback), as a share of the bytes it "
          "relayed in that direction, per repetition. A connection of one request and one reply (the "
          "connections test) is never spliced, so all of its bytes count here:", "",
          "| path | wake-ups | test | relayed to the backend, per repetition | copied of those, per repetition | "
          "relayed to the client | copied of those |", "| --- | --- | --- | --- | --- | --- | --- |"]
    tests = [("stream", 1, "1 stream"), ("stream", 64, "64 streams"), ("rr", None, "64 B request/response"),
             ("connect", None, "new connections")]
    for path, wake in paths_and_wakes(rel):
        for test, streams, label in tests:
            rs = sorted((r for r in rel if r["path"] == path and r["test"] == test and r["wake"] == wake
                         and (streams is None or r.get("streams") == streams)), key=lambda r: r["rep"])
            if not rs:
                continue

            def share(r, d):
                b = r["router_bytes"]
                return f"{100 * b['copied_to_' + d] / b['bytes_to_' + d]:.0f}%" if b["bytes_to_" + d] else "-"

            def size(r, d):
                n = r["router_bytes"]["bytes_to_" + d]
                return (f"{n / (1 << 20):,.0f} MiB" if n >= 1 << 20 else f"{n / 1024:,.0f} KiB" if n >= 1024
                        else f"{n} B")
            md.append(f"| {path} | {wake} | {label} | {' '.join(size(r, 'backend') for r in rs)} | "
                      f"{' '.join(share(r, 'backend') for r in rs)} | {' '.join(size(r, 'client') for r in rs)} | "
                      f"{' '.join(share(r, 'client') for r in rs)} |")
    md.append("")
    return md


def copied_text(stream_rows, streams):
    """', of which it copied X% of the bytes itself' from the router's counters, if recorded."""
    shares = [r["router_bytes"]["copied_to_backend"] / r["router_bytes"]["bytes_to_backend"]
              for r in stream_rows if r["system"] == "portmux" and r["streams"] == streams
              and r.get("router_bytes") and r["router_bytes"]["bytes_to_backend"]]
    if not shares:
        return ""
    return (f" (its counters: it copied {rng([100 * x for x in shares], '{:.0f}')}% of the bytes through user space "
            "itself: first bytes and first reply, under backpressure or by its fallback; the rest never "
            "reached user space)")


def sockmap_losses(rows):
    """'Where sockmap loses and why', from the targets it missed and where its CPU went."""
    rel = [r for r in rows if r.get("kind") == "relay"]
    md = ["### Where sockmap loses, and why", ""]
    lines = []
    wakes = wakes_of(rel)
    for path, wake in paths_and_wakes(rel):
        st = [r for r in rel if r["path"] == path and r["test"] == "stream" and r["result"].get("bytes")
              and r["wake"] == wake]
        regime = f" ({wake} wake-ups)" if len(wakes) > 1 else ""

        def med_of(system, streams, fn):
            return med([fn(r) for r in st if r["system"] == system and r["streams"] == streams])
        for streams in (1, 64):
            g_pm = rep_ratios([r for r in st if r["streams"] == streams], stream_gbit, "portmux", "naive")
            c_pm = rep_ratios([r for r in st if r["streams"] == streams], per_gib("attributed_cpu_s"), "portmux", "naive")
            if not g_pm or not c_pm:
                continue
            where = lambda place: (lambda r: r.get("cpu_where_s", {}).get(place, 0) / (r["result"]["bytes"] / (1 << 30)))
            relay_s = med_of("portmux", streams, where("relay"))
            kw_s = med_of("portmux", streams, where("kworker"))
            srv_pm = med_of("portmux", streams, where("servers"))
            srv_nv = med_of("naive", streams, where("servers"))
            lines.append(
                f"- {path}{regime}, {streams} stream{'s' if streams > 1 else ''}: throughput {rng(g_pm, '{:.2f}')}× the naive "
                f"proxy (median {med(g_pm):.2f}), attributed CPU per GiB {rng(c_pm, '{:.2f}')}× (median "
                f"{med(c_pm):.2f}). The router process itself used {relay_s:.2f} CPU s/GiB{copied_text(st, streams)}; "
                f"kernel workers {kw_s:.2f} s/GiB; the receiving server {srv_pm:.2f} s/GiB "
                f"against {srv_nv:.2f} behind the naive proxy.")
    if not lines:
        return []
    md += lines
    md.append("")
    md.append(
        "Why, from a profile (docs/design.md, \"Where the CPU of a bulk stream goes\"): a sockmap redirect "
        "does not copy. The verdict program queues each skb on the peer socket's psock, and a kernel work item "
        "(`sk_psock_backlog`, run by a kworker: the `kworker` column) hands its pages to the backend socket's send "
        "queue, so the bytes are copied twice, by the client into its socket and by the receiving server out of "
        "its socket. That second copy can cost more behind portmux than behind the naive proxy (`servers` "
        "column): the bytes reach the server after everything queued between the two, out of cache when the "
        "queues are deep, while the naive proxy's own write has just put them in cache. On a machine whose cores are busy with other work, the "
        "kworker waits for a CPU like any other task, and one connection's bytes wait with it: where portmux's "
        "throughput ratio is below its CPU ratio, the stream is bound by those wake-ups, not by the work. What the "
        "router copies with 64 streams is mostly the bytes of clients inserted held: a client with more than 64 KiB "
        "unread when its sockets are spliced was most likely sent into a closed window, and the kernel sends no "
        "window update when it frees bytes the program redirected, so such a client would wait for its persist timer "
        "(200 ms); the router's reads of its held bytes send the update (docs/design.md, \"A burst of clients\"). The "
        "router's backend sockets use reno when the default congestion control is BBR (this machine's), which "
        "paces in the TCP stack; the other relays keep the default and pace their backend sockets. Latency p99 "
        "on this machine is scheduling delay for every system.")
    md.append("")
    return md


def sockmap_targets(rows):
    """Issue 11's targets for portmux's sockmap service, per path, from per-repetition ratios."""
    rel = [r for r in rows if r.get("kind") == "relay"]
    gbit = stream_gbit
    cpu = per_gib("attributed_cpu_s")
    targets = [
        ("1 stream throughput ≥ 1.0× naive", "stream", {"streams": 1}, gbit, "naive", lambda x: x >= 1.0),
        ("1 stream throughput ≥ 1.0× splice(2)", "stream", {"streams": 1}, gbit, "splice", lambda x: x >= 1.0),
        ("64 streams throughput ≥ 1.0× naive", "stream", {"streams": 64}, gbit, "naive", lambda x: x >= 1.0),
        ("64 streams throughput ≥ 1.0× splice(2)", "stream", {"streams": 64}, gbit, "splice", lambda x: x >= 1.0),
        ("CPU per GiB, 1 stream ≤ 0.7× naive", "stream", {"streams": 1}, cpu, "naive", lambda x: x <= 0.7),
        ("CPU per GiB, 64 streams ≤ 0.7× naive", "stream", {"streams": 64}, cpu, "naive", lambda x: x <= 0.7),
        ("machine CPU per GiB, 1 stream ≤ 0.7× naive", "stream", {"streams": 1}, per_gib("cpu_s"), "naive",
         lambda x: x <= 0.7),
        ("machine CPU per GiB, 64 streams ≤ 0.7× naive", "stream", {"streams": 64}, per_gib("cpu_s"), "naive",
         lambda x: x <= 0.7),
        ("request/response p50 ≤ naive", "rr", {}, lambda r: r["result"].get("p50_us") or None, "naive",
         lambda x: x <= 1.0),
        ("request/response p99 ≤ naive", "rr", {}, lambda r: r["result"].get("p99_us") or None, "naive",
         lambda x: x <= 1.0),
        ("new connections/s ≥ nginx", "connect", {}, lambda r: r["result"].get("per_s") or None, "nginx",
         lambda x: x >= 1.0),
    ]
    wakes = wakes_of(rel)
    md = ["Issue 11's targets for portmux (sockmap), per-repetition ratios" +
          ("; wake-ups: " + "; ".join(f"`{w}`, {wake_label(rel, w)}" for w in wakes) if len(wakes) > 1 else "") + ":", "",
          "| path | wake-ups | target | ratios per repetition | min–max | met in |",
          "| --- | --- | --- | --- | ---: | ---: |"]
    for path, wake in paths_and_wakes(rel):
        for name, test, match, fn, ref, ok in targets:
            sub = [r for r in rel if r["path"] == path and r["test"] == test and r["wake"] == wake
                   and all(r.get(k) == v for k, v in match.items())]
            rat = rep_ratios(sub, fn, "portmux", ref)
            if not rat:
                continue
            met = sum(1 for x in rat if ok(x))
            md.append(f"| {path} | {wake} | {name} | {ratios_str(rat)} | {rng(rat, '{:.2f}')} | {met} of {len(rat)} |")
    md.append("")
    return md


def interleaved_checks(rows):
    """For the interleaved request/response and connect runs: each run's machine idle share, and a
    second statistic of the same slices, cycle by cycle (portmux's slice against the reference's slice
    of the same cycle, median over the cycles), which a bimodal latency (fast while the cores are busy,
    slow when a relay wakes on an idle core) moves less than it moves a pooled p50."""
    rel = [r for r in rows if r.get("kind") == "relay" and r.get("test") in ("rr", "connect")
           and r["result"].get("interleaved")]
    if not rel:
        return []
    md = ["The interleaved runs, per repetition: the machine's idle share during the run (both cores, "
          "/proc/stat; the client's and the relays' own work included), and, cycle by cycle, portmux's slice "
          "against the reference's slice of the same cycle (request/response: the slices' median round trips; "
          "new connections: the slices' counts), median over the cycles:", "",
          "| path | wake-ups | test | idle share per repetition | per-cycle median ratio per repetition | min–max |",
          "| --- | --- | --- | --- | --- | ---: |"]
    checks = [("rr", "naive", "slice_p50_us", "p50 portmux / naive"),
              ("connect", "nginx", "slice_completed", "connections portmux / nginx")]
    for path, wake in paths_and_wakes(rel):
        for test, ref, key, label in checks:
            sub = [r for r in rel if r["path"] == path and r["test"] == test and r["wake"] == wake]
            if not sub:
                continue
            idle = {}
            for r in sub:
                if r.get("machine_idle_share") is not None:
                    idle[r["rep"]] = r["machine_idle_share"]
            pm, rf = by_rep(sub, system="portmux"), by_rep(sub, system=ref)
            ratios = []
            for rep in sorted(set(pm) & set(rf)):
                pairs = [a / b for a, b in zip(pm[rep]["result"].get(key) or [], rf[rep]["result"].get(key) or []) if b]
                if pairs:
                    ratios.append(statistics.median(pairs))
            if not ratios and not idle:
                continue
            md.append(f"| {path} | {wake} | {test} | {' '.join(f'{idle[k]:.2f}' for k in sorted(idle)) or '-'} | "
                      f"{label}: {ratios_str(ratios) or '-'} | {rng(ratios, '{:.2f}')} |")
    md.append("")
    return md


def read_settings(work):
    try:
        with open(os.path.join(work, "settings.txt")) as f:
            return f.read().strip()
    except OSError:
        return ""


def sections(work, compare=None, claims=None, relay_work=None, defer_conclusions=False,
             scale_work=None, scale_compare=None, relay_compare=None):
    """The live sections. relay_work, relay_compare: take the relay part's rows from that run
    instead, checked against relay_compare's (if given).
    scale_work, scale_compare: take the scale part's rows from that run, checked against
    scale_compare's. defer_conclusions: leave "Conclusions and the rerun" to conclusions()
    (the caller adds its own claims first)."""
    rows = load(work)
    old_rows = load(compare) if compare else None
    if relay_work:
        rows = [r for r in rows if not is_relay(r)] + [r for r in load(relay_work) if is_relay(r)]
        relay_old = [r for r in load(relay_compare) if is_relay(r)] if relay_compare else []
        if old_rows is not None or relay_old:
            old_rows = [r for r in (old_rows or []) if not is_relay(r)] + relay_old
    scale_settings = ""
    if scale_work:
        rows = [r for r in rows if not is_scale(r)] + [r for r in load(scale_work) if is_scale(r)]
        scale_old = [r for r in load(scale_compare) if is_scale(r)] if scale_compare else []
        old_rows = [r for r in (old_rows or []) if not is_scale(r)] + scale_old
        scale_settings = read_settings(scale_work)
    if claims is None:
        claims = Claims(compare is not None or scale_compare is not None or relay_compare is not None)
    settings = read_settings(work)
    reps = max((r["rep"] for r in rows if r.get("kind") == "rep"), default=0)
    md = []
    relay_gib = next((f"{r['result']['bytes'] / (1 << 30):g} GiB" for r in rows
                      if r.get("kind") == "relay" and r.get("test") == "stream" and r["result"].get("bytes")), "the bytes")
    udp_md = udp_section(rows, old_rows, claims)
    scale_md, scale_info = scale_section(rows, old_rows, claims)
    relay_md = relay_section(rows, old_rows, claims)

    if udp_md or scale_md:
        md += ["## Live UDP", ""]
        md.append(
            "Two network namespaces, a client and a balancer, joined by a veth pair (the balancer's end runs "
            "XDP natively), and a loopback path inside the balancer namespace (XDP generic on `lo`). "
            "`portmux_loadgen udp-send` (pinned to CPU 0) sends 64-byte datagrams with `sendmmsg` (batches of 32) "
            "from 48 connected sockets, for a fixed time; `udp-sink` (pinned to CPU 1) receives on 9876, 9877 and "
            "9878 with `recvmmsg` and counts per port. **Offered** = datagrams the sender got into the kernel per "
            "second of sending. **Delivered** = datagrams the sinks received per second from the first to the last. "
            "The sender's CPU also runs the receive path (veth NAPI or loopback backlog) up to the socket, so a "
            "balancer's cost lowers the offered rate too, and a system that drops (nginx) shows as delivered "
            "far below offered.")
        md.append("")
        md.append(f"{reps} repetitions ({settings}); each runs every system once on each path, in an order "
                  "rotated by one from the repetition before, and a ratio compares two systems of the same "
                  "repetition. The systems:")
        md.append("")
        md.append("- direct3: the client spreads its 48 sockets over the three backend ports itself, no balancer. "
                  "This is the lossless reference (delivered / sent below); a single socket is not: one sink "
                  "port's queue overflows first.")
        md.append("- seed: `bench/bpf/baseline.bpf.c`'s `bench_demo`, the published Rust/aya demo's algorithm "
                  "(a hash lookup of the port, the port rewritten without a checksum fix, the whole entry "
                  "written back with a hash-map update per packet), attached as XDP the same way as portmux "
                  "(native on the veth, generic on lo). Checksums: these packets carry partial checksums "
                  "that the port rewrite does not break, so the seed's deliveries count.")
        md.append("- portmux: `portmux attach` with frontend 9875/udp → 9876, 9877, 9878, defaults "
                  "(reply translation on).")
        md.append("- nftables: `udp dport 9875 dnat to :numgen inc mod 3 map {...}` in a nat chain on prerouting "
                  "(veth) or output (loopback). NAT is per conntrack entry, so with 48 sockets it balances flows.")
        md.append("- nginx: stream module UDP proxy to 127.0.0.1:9876-9878, round robin, 2 workers, "
                  "`proxy_requests 1; proxy_responses 0;`.")
        md.append("")
        md += udp_md
        lt = load_table(rows, "udp")
        if lt:
            md += ["Load average around each repetition (other work shares this machine):", ""] + lt + [""]
    if scale_md:
        counts = scale_info["counts"]
        scale_run = scale_settings or settings
        md += ["### Clients: 48 to 100,000", ""]
        md.append(
            "portmux's offered rate against direct3's as the number of clients grows; portmux with its defaults "
            "(reply translation on). Clients are (source address, source port) pairs: 48 unconnected sockets with "
            "`IP_TRANSPARENT`, each `sendmmsg` message carrying its own source address (`IP_PKTINFO`) out of 1 to "
            f"{(counts[-1] + 47) // 48:,} addresses in 198.19.0.0/16, cycled so every client sends several times in "
            "each trial. The two systems share every trial: portmux is attached (XDP native) to one veth pair, "
            "direct3 goes over a second veth pair between the same namespaces that has no XDP program, to "
            "9876-9878 directly, and one sender (pinned to CPU 0; the sinks to CPU 1) alternates between them in "
            "short slices: a warm-up slice of each, then pairs in the order A B, B A, A B, ... Each datagram "
            "carries its system's tag, so the sinks count each system's deliveries. A trial's ratio is the median "
            "over its slice pairs of portmux's rate / direct3's: the two slices of a pair are under a second apart, "
            "so the machine's 2× swings from minute to minute hit both alike. Each repetition runs every client "
            "count once (a fresh attach each time)"
            + (f". A third system C is portmux again, sent from the first source address only ({counts[0]} "
               "clients), so every cycle is A C B or B C A: portmux at N clients and portmux at "
               f"{counts[0]} are adjacent slices of the same program and maps (C's clients are among A's), and "
               f"the drift is the median over the trial's cycles of A's rate / C's. (In the {counts[0]}-client "
               "trial A and C are the same traffic, so its value shows the method's own noise.) Earlier runs "
               f"divided each trial's ratio by the same repetition's {counts[0]}-client trial, seconds to a "
               "minute away, whose own noise moved every client count of that repetition"
               if scale_info.get("same_cycles") else
               f", and the drift is that repetition's ratio at N clients divided by its ratio at {counts[0]}")
            + ". The sender and the sinks run in sessions of their own whose scheduler autogroups are set to "
            "nice -20, so the other work on this machine takes little of a slice's wall time; the sender sets "
            "DF on its datagrams (IP ID 0: otherwise the kernel takes an unconnected socket's IP ID from a table "
            "hashed by source address, work that grows with the number of addresses in A and not in C)"
            + ". Per CPU second: offered datagrams per CPU second of the sender thread "
            "plus CPU 0's ksoftirqd (`/proc/PID/schedstat`, exact), which also run the receive path up to the "
            "socket; it does not move with the share of CPU 0 the machine's other work leaves the sender. "
            f"Settings: {scale_run}.")
        md.append("")
        md += scale_md
        for key, label in (("offered", "offered rate"), ("per_cpu", "offered packets per CPU second")):
            now, before = scale_info[key]
            if now is None:
                continue
            line = (f"Target (issue 12): the {label} (× direct3) stays within 5% from {counts[0]} to "
                    f"{counts[-1]:,} clients. This run: every repetition's "
                    + (f"portmux at N clients over portmux at {counts[0]} in the same cycles" if scale_info.get("same_cycles")
                       else f"ratio against its own {counts[0]}-client ratio")
                    + f" is within {100 * now:.1f}% of 1 (N > {counts[0]}): "
                    f"{'met' if now <= SCALE_TOLERANCE else 'missed'}.")
            if before is not None:
                line += (f" Earlier run: within {100 * before:.1f}%: "
                         f"{'met' if before <= SCALE_TOLERANCE else 'missed'}. "
                         + ("The verdict holds in both runs." if (now <= SCALE_TOLERANCE) == (before <= SCALE_TOLERANCE)
                            else "The verdict did NOT survive the rerun: treat it as undecided."))
            md.append(line)
            md.append("")
            claims.add_target(f"{label} (× direct3) within 5% from {counts[0]} to {counts[-1]:,} clients, "
                              "every repetition",
                              f"{100 * now:.1f}% off at most", now <= SCALE_TOLERANCE,
                              f"{100 * before:.1f}% off at most" if before is not None else None,
                              (before <= SCALE_TOLERANCE) if before is not None else None)
        lt = scale_load_table(rows)
        if lt:
            md += ["Load average around each trial:", ""] + lt + [""]
    if relay_md:
        md += ["## TCP first bytes: relays", ""]
        md.append(
            "For the first-bytes service (issue 11): what a user-space relay costs against a direct "
            "connection, on loopback and over the veth. Every relay has one backend and one thread "
            "(nginx: one worker); all run at once, idle until dialled. Streams: each test runs every system "
            "back to back, so the two sides of a ratio are seconds apart. `tcp-stream` writes "
            f"{relay_gib} over 1 or 64 connections at once and stops its clock at the sink's 1-byte answer "
            "after each connection's last byte, so a relay's buffered tail counts. "
            "**CPU s/GiB** is attributed: the CPU ticks, during the transfer, of every process in the two "
            "benchmark namespaces (relay, sink), of all kernel threads (kworkers run sockmap's backlog, "
            "ksoftirqd deferred network work) and the client's own CPU time, per GiB. **Machine CPU s/GiB** "
            "is the whole machine's busy time (/proc/stat, both cores): with other work keeping both cores "
            "busy it is about 2 × the transfer time whatever the relay does, so it is shown but not "
            "compared. " + rr_method(rows))
        md.append("")
        rel_rows = [r for r in rows if r.get("kind") == "relay"]
        if len(wakes_of(rel_rows)) > 1:
            md.append(
                "**Wake-ups.** Every relay's small-message latency on a VM is mostly how fast an idle vCPU "
                "wakes. The guest's cpuidle driver (haltpoll) polls for up to `guest_halt_poll_ns` before it "
                "halts the vCPU; waking a halted vCPU goes through the host and costs tens of microseconds. "
                "The relay part therefore ran every test twice per path and repetition, in turn: `machine`, "
                f"{wake_label(rel_rows, 'machine')}, and `polled`, {wake_label(rel_rows, 'polled')}. "
                "Polling runs in the idle task, so /proc/stat counts it as idle time, and it polls for every "
                "system alike.")
            md.append("")
        md += relay_md
        have_pm = any(r.get("kind") == "relay" and r["system"] == "portmux" for r in rows)
        if not have_pm:
            md.append("portmux is not in this table: the sockmap first-bytes service (`portmux run`) was not "
                      "on main at this commit.")
            md.append("")
        else:
            md.append("portmux: its stream router (`portmux serve-streams`, or `portmux run` on a dummy "
                      "interface) with two TCP frontends whose `route` reads a 4-byte tag at offset 0 of the "
                      "first bytes (every client's first bytes carry it, for every system), each tag to one "
                      "backend: it accepts, reads the tag, connects, and splices the two sockets in the "
                      "kernel with its sockmap verdict program.")
            md.append("")
            md += sockmap_targets(rows)
            md += interleaved_checks(rows)
        md += router_copied_table(rows)
        md += cpu_where_table(rows)
        if have_pm:
            md += sockmap_losses(rows)
        lt = load_table(rows, "relay")
        if lt:
            md += ["Load average around each repetition:", ""] + lt + [""]
    if not defer_conclusions:
        md += conclusions(claims, compare)
    return md


def rr_method(rows):
    """How request/response and new connections were measured, from the records themselves
    (a run before the interleaved client measured each system alone)."""
    rr = [r for r in rows if r.get("kind") == "relay" and r.get("test") in ("rr", "connect")]
    inter = [r["result"] for r in rr if r["result"].get("interleaved")]
    if not inter:
        return ("Request/response: one connection, 64-byte request, 64-byte answer, one at a time (p50, p99 of "
                "every round trip). New connections/s: connect, one 64-byte request/response, close with RST, "
                "one at a time. Each system's request/response and connect trials ran alone, one system after "
                "another.")
    slice_s = inter[0].get("slice_s")
    cycles = inter[0].get("cycles")
    warmup = inter[0].get("warmup", "some")
    systems = max((len(r.get("interleaved_with") or []) for r in rr), default=0)
    orders = systems * (2 if systems % 2 else 1)
    slices = [r["slices"] for r in inter if r.get("slices") is not None]
    cut = [r for r in inter if r.get("cycles_done") is not None and r.get("cycles_done") != r.get("cycles")]
    return (
        "Request/response and new connections are measured interleaved, not one system after another: for "
        "each repetition, path and test, ONE client run (`portmux_loadgen tcp-client --ports`, the same "
        f"client for every system) serves all {systems} systems in {cycles} cycles; every cycle gives each "
        f"system one slice of {slice_s:g} s, in an order from a balanced set ({orders} orders, a Williams "
        "design: over the set every system takes every position, and follows every other system, equally "
        "often; the cycles take the orders in turn"
        + (f", {cycles // orders} full rounds" if orders and cycles % orders == 0 else
           f", {cycles / orders:.1f} rounds" if orders else "")
        + "), so a system's numbers come from the same seconds as the others' and the machine's swings "
        "within a repetition, and whatever one system leaves behind for the next slice, hit all alike. "
        "Request/response: one persistent connection per system, made before the first slice and warmed "
        f"with {warmup} uncounted round trips; in each slice, 64-byte request, 64-byte answer, one at a time, as "
        "many as fit. New connections: in each slice, connect, one 64-byte request/response, close with "
        f"RST, one at a time ({warmup} uncounted first). A slice ends at the first operation to finish after its "
        "time, and its whole wall time counts. A system's latencies are pooled over all its slices: p50 "
        "and p99 are over every round trip (request/response) of the repetition, and new connections/s "
        "is its completed connections over the sum of its slices' wall time"
        + (f" (between {min(slices)} and {max(slices)} slices per system)" if slices and min(slices) != max(slices)
           else "")
        + ". On this shared 2-core VM a round trip's tail includes the other work's interruptions, which is "
        "why p99 is compared only between systems measured in the same seconds."
        + (f" {len(cut)} of these runs hit their time cap before their last cycle." if cut else ""))


def is_relay(r):
    return r.get("kind") == "relay" or (r.get("kind") == "rep" and r.get("part") == "relay")


def is_scale(r):
    return r.get("kind") == "scale" or (r.get("kind") in ("udp", "rep") and r.get("part") == "scale")


def conclusions(claims, compare):
    md = []
    if claims.rows:
        md += ["## Conclusions and the rerun", ""]
        if compare:
            md.append(f"This run was checked against an earlier, independent run of the same script "
                      f"(`--compare`). A conclusion is stated only when every repetition of BOTH runs puts the "
                      f"ratio on the same side of 1; both runs' ranges are given.")
        else:
            md.append("Only one run: the conclusions below are not yet confirmed by a rerun.")
        md.append("")
        md += claims.table()
        md.append("")
        surv = claims.survivors()
        if compare:
            if surv:
                md.append("What survived the rerun:")
                md.append("")
                for what, now, before, says, *_ in surv:
                    md.append(f"- {what}: {says} (this run {now}, earlier run {before}).")
            else:
                md.append("No comparison was on the same side of 1 in every repetition of both runs.")
            md.append("")
            lost = [r for r in claims.rows if r[4].startswith(("did NOT", "CONTRADICTED"))]
            if lost:
                md.append("What did NOT survive the rerun (not claimed anywhere on this page):")
                md.append("")
                for what, now, before, says, status, *_ in lost:
                    md.append(f"- {what}: this run {says} ({now}), {status[len('did NOT survive the rerun ('):-1] if status.startswith('did NOT') else status} ({before}).")
                md.append("")
    return md
