"""Every picture in the README, taken in headless Chromium from real sweeps run here:

    .venv/bin/python docs/screenshots.py             # the reports and the dashboard
    .venv/bin/python docs/screenshots.py report      # docs/images/report-*.png (docs/report_shots.py)
    .venv/bin/python docs/screenshots.py dashboard   # docs/images/dashboard-*.png (docs/dashboard_shots.py)

Each half runs its own sample sweeps embedded (a private Redis and local workers); see its module
for its options. Needs Playwright (the ``test`` extra) and Debian's Chromium (``/usr/bin/chromium``).
"""

from __future__ import annotations

import sys

import dashboard_shots
import report_shots


def main(argv: list[str]) -> int:
    which = argv or ["report", "dashboard"]
    if unknown := set(which) - {"report", "dashboard"}:
        print(
            f"usage: screenshots.py [report] [dashboard] (not {', '.join(sorted(unknown))})", file=sys.stderr
        )
        return 2
    if "report" in which:
        report_shots.main([])
    if "dashboard" in which:
        dashboard_shots.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
