"""The benchmark's summary, printed above the RESULT line."""


def format_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def spike_lines(details: dict) -> list[str]:
    lines = ["", "Spike requests (count, p95 ms, failures):"]
    for name, (count, p95, failures) in sorted(details["spike"]["per_name"].items()):
        lines.append(f"  {name:<20} {count:>8} {p95:>8} {failures:>6}")
    for row in details["failure_rows"][:10]:
        lines.append(f"  failure: {row.get('Name')} {row.get('Error')} x{row.get('Occurrences')}")
    lines.append(f"Journeys: {details['journeys']}")
    lines.append(f"Machine load average (1 min): {details['load_average']}")
    lines.append(f"Reconciliation: {details['reconciliation']}")
    lines.append(f"Mirror restarts during the run: {details['mirror_restarts']}")
    return lines


def capacity_lines(details: dict) -> list[str]:
    lines = []
    for target, result in details["capacity"].items():
        lines.append(
            f"Capacity {target}: {result['per_second']:.1f}/s over {result['seconds']} s "
            f"with {result['users']} users, p95 {result['p95_ms']} ms, "
            f"failures {result['failures']}, other requests in window {result['other_requests']}, "
            f"server CPU {format_ms(result.get('server_cpu_ms_per_request'))} per request, "
            f"Locust CPU max {result['locust_cpu_max']} %"
        )
    if details["server_cpu_cost_ratio"] is not None:
        lines.append(
            "Server CPU time per answer round trip / per bare request: "
            f"{details['server_cpu_cost_ratio']:.2f}"
        )
    return lines


def locust_cpu_lines(details: dict) -> list[str]:
    """Report how often Locust itself passed 90 % of a core, as its own warning does."""
    spike_cpu = details.get("locust_cpu", {})
    capacity_warnings = sum(
        result["locust_cpu_warnings"] for result in details["capacity"].values()
    )
    warnings = (spike_cpu.get("over_90_percent") or 0) + capacity_warnings
    lines = [
        f"Locust CPU: spike max {spike_cpu.get('max_percent')} %, samples over 90 %: "
        f"spike {spike_cpu.get('over_90_percent')}, capacity {capacity_warnings}"
    ]
    if warnings:
        lines.append(
            "WARNING: Locust used more than 90 % of a core at times; the measured latencies "
            "include its own delays. Run it distributed (see docs/benchmarks.md)."
        )
    return lines


def print_summary(details: dict) -> None:
    lines = spike_lines(details) if "spike" in details else ["", "Spike phase skipped."]
    lines += capacity_lines(details)
    lines += locust_cpu_lines(details)
    print("\n".join(lines), flush=True)
