"""The soak's report as text: the figures, then the verdict."""

from __future__ import annotations

from collections import Counter

from interlock.soak.verdict import SoakReport


def format_report(report: SoakReport) -> str:
    """A few aligned lines: what ran, what ended how, what fired, what was checked."""
    r = report
    rate = r.registrations / r.elapsed_s if r.elapsed_s else 0.0
    lines = [
        f"registrations   {r.registrations} in {r.elapsed_s:.1f} s ({rate:.1f}/s), {r.tasks} tasks",
        f"kills           {r.kills} (SIGKILL + restart; down {r.down_s:.1f} s in all), "
        f"{r.lost_attempts} attempts lost to them (recorded, not counted)",
        *_workers_line(r),
        f"submissions     {r.submissions_retried} retried with their key while it was down, "
        f"{r.submissions_found_existing} of them found their task already made",
        f"complete        {r.complete} ({r.degraded} degraded: preferences defaults)",
        f"failed          {r.failed}" + (f", cancelled {r.cancelled}" if r.cancelled else ""),
        *(f"  {why:<40} {n}" for why, n in r.failed_why.items()),
        "faults fired    "
        + (", ".join(f"{kind} {n}" for kind, n in r.faults_fired.items()) or "none"),
        *(
            f"  {service:<14} " + (", ".join(f"{k} {n}" for k, n in fired.items()) or "none")
            for service, fired in r.faults_fired_by_service.items()
        ),
        f"replays         {r.idempotent_replays} writes answered from the idempotency store",
        "breakers opened "
        + (
            ", ".join(f"{service} {n}" for service, n in r.breaker_openings.items())
            + " (their steps waited out the cooldown, spending no attempt)"
            if r.breaker_openings
            else "none"
        ),
        f"unfinished      {r.unfinished}",
        f"lost            {r.lost}",
        f"duplicated      {r.duplicated}",
        f"failed by kill  {r.failed_by_kill}",
        f"unexplained     {r.unexplained}",
        f"records differ  {r.mismatched}",
    ]
    if r.ok:
        lines.append(
            "verdict         PASS: nothing lost, nothing duplicated, every failure "
            "explained by its faults"
        )
    else:
        lines.append("verdict         FAIL")
        lines.extend(f"  {problem}" for problem in r.problems)
    return "\n".join(lines)


def _workers_line(r: SoakReport) -> list[str]:
    """With several workers: who they were and how many kills hit each (none with one)."""
    if len(r.workers) < 2:
        return []
    hits = Counter(r.kill_workers)
    each = ", ".join(f"{w} {hits[w]}" for w in r.workers)
    return [f"workers         {len(r.workers)} on one database, killed in turn: {each}"]
