"""The "third process": prepares a database, then runs management commands on request.

Reads JSON lines on stdin: ``{"argv": ["setmaintenance", "on"]}`` runs that command with
``call_command`` and answers ``{"t": <wall-clock time when it returned>}`` (the change is committed
by then); ``{"flip": [[on argv], [off argv]], "count": N, "interval": s}`` alternates them N times.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
    import django

    django.setup()
    from benchsite import control
    from django.core.management import call_command

    control.prepare_database()
    if os.environ.get("BENCH_EXTRA_SITE"):  # a second Site, kept in maintenance (throughput "on")
        from django.contrib.sites.models import Site

        Site.objects.get_or_create(pk=2, defaults={"domain": "site2.example", "name": "site 2"})
        call_command("setmaintenance", "on", "2", stdout=io.StringIO())
    out.write(json.dumps({"ready": True, "django": django.get_version()}) + "\n")
    out.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if "argv" in cmd:
                call_command(*cmd["argv"], stdout=io.StringIO(), stderr=io.StringIO())
                reply = {"t": time.time()}
            else:
                times = []
                for i in range(int(cmd["count"])):
                    call_command(*cmd["flip"][i % 2], stdout=io.StringIO(), stderr=io.StringIO())
                    times.append(time.time())
                    time.sleep(float(cmd["interval"]))
                reply = {"times": times}
        except Exception as exc:
            import traceback

            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
