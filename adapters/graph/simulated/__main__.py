"""Run the SIMULATED tenant from a shell: ``python -m adapters.graph.simulated``.

Prints the URLs and ids to configure breakglass with. The client secret is a throwaway value
of this simulation; it is written to ``--secret-file`` when given, else printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path

from adapters.graph.simulated.clock import ManualClock, SystemClock
from adapters.graph.simulated.server import SimulatedTenant


async def _serve(args: argparse.Namespace) -> None:
    seed = (
        json.loads(await asyncio.to_thread(Path(args.seed).read_text, "utf-8"))
        if args.seed
        else None
    )
    clock = ManualClock() if args.manual_clock else SystemClock()
    sim = SimulatedTenant(
        seed,
        clock=clock,
        ca_interval=args.ca_interval,
        strict=not args.kind,
        state_path=args.state_file,
    )
    await sim.start(port=args.port)
    info = {
        "simulated": True,
        "authority_base_url": sim.authority_base_url,
        "graph_base_url": sim.graph_base_url,
        "tenant_id": sim.tenant_id,
        "client_id": sim.client_id,
    }
    if args.secret_file:
        await asyncio.to_thread(Path(args.secret_file).write_text, sim.client_secret, "utf-8")
    else:
        info["client_secret"] = sim.client_secret
    print(json.dumps(info, indent=2), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="SIMULATED Entra tenant + Microsoft Graph")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", help="seed JSON (default: the bundled default seed)")
    parser.add_argument("--ca-interval", type=float, default=1.0)
    parser.add_argument("--manual-clock", action="store_true", help="time moves via /_sim/clock")
    parser.add_argument("--secret-file", help="write the throwaway client secret here")
    parser.add_argument(
        "--kind",
        action="store_true",
        help="without the real tenant's PIM rules (strict is default)",
    )
    parser.add_argument("--state-file", help="keep the directory in this JSON file")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
