"""Plan a problem: pick the engines that can model it, run them, check them, keep the best.

``engine="auto"`` runs every engine that supports the problem side by side, each in its own
process under the same wall-clock limit; every answer is re-verified by the independent checker
and the cheapest valid one wins. Naming an engine that cannot model the problem is a
``ValueError`` naming the features, never a silently simplified problem.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, cast

import numpy as np

from fulfill_routing.checker import check
from fulfill_routing.engines import Engine, Sequences, SolveParams
from fulfill_routing.engines.ortools_engine import ORToolsEngine
from fulfill_routing.engines.pyvrp_engine import PyVRPEngine
from fulfill_routing.errors import Infeasible, NoValidSolution, UnsupportedFeature
from fulfill_routing.model import Problem, Route, Solution, Stop, Unserved
from fulfill_routing.schedule import Context, IntArray, schedule_route
from fulfill_routing.travel import GreatCircle, TravelTimeProvider

ENGINES: dict[str, Engine] = {"ortools": ORToolsEngine(), "pyvrp": PyVRPEngine()}
PARALLEL_SHARE = 0.95  # of the engines' time when they share the machine


def _post_processing_s(problem: Problem) -> float:
    """Time kept back for scheduling and checking the answers (measured: 0.07 s at 1,000)."""
    return 0.05 + 0.15 * len(problem.stops) / 1000


def matrices(
    problem: Problem, travel: TravelTimeProvider | None = None, departure_s: int = 0
) -> tuple[IntArray, IntArray]:
    if problem.matrix is not None:
        return problem.matrix.distances, problem.matrix.durations
    assert problem.locations is not None  # the model guarantees one of the two
    return (travel or GreatCircle()).matrices(problem.locations, departure_s)


def solve(
    problem: Problem,
    *,
    engine: str = "auto",
    time_limit_s: float = 10.0,
    seed: int = 0,
    travel: TravelTimeProvider | None = None,
    departure_s: int = 0,
) -> Solution:
    """Plan ``problem`` within ``time_limit_s`` of wall-clock time.

    Raises
    ------
    ValueError
        For an unknown engine, a non-positive time limit, or an engine that cannot model the
        problem (``UnsupportedFeature``).
    NoValidSolution
        If no engine's answer passes the checker.
    """
    if time_limit_s <= 0:
        raise ValueError("time_limit_s must be positive")
    started = time.perf_counter()
    distances, durations = matrices(problem, travel, departure_s)
    ctx = Context.of(problem, distances, durations)
    names = _engines_for(problem, engine)
    solvable = Context.of(_without(problem, unreachable(ctx)), distances, durations)
    spent = time.perf_counter() - started
    params = SolveParams(time_limit_s=time_limit_s - spent - _post_processing_s(problem), seed=seed)
    rejected: list[str] = []
    if len(names) == 1:
        answers = {names[0]: ENGINES[names[0]].solve(solvable, params)}
    else:
        answers = _in_parallel(solvable, names, params, rejected)
    candidates = []
    for name, sequences in answers.items():
        try:
            solution = build_solution(ctx, sequences, name, time.perf_counter() - started)
        except Infeasible as exc:
            rejected.append(f"{name}: {exc}")
            continue
        violations = check(problem, solution, distances, durations)
        if violations:
            rejected.append(f"{name}: {violations[0]}")
            continue
        candidates.append(solution)
    if not candidates:
        raise NoValidSolution("; ".join(rejected) or "no engine answered in time")
    return min(candidates, key=lambda s: (not s.feasible, s.cost))


def unreachable(ctx: Context) -> set[str]:
    """Stops no vehicle could serve even on a trip of their own (window, shift or capacity):
    engines are spared them, and the solution lists them as unserved with the reason.

    Travel times are lower bounds (shortest paths, so a detour through another stop that the
    matrix makes shorter is allowed for), which keeps the test a necessary condition only.
    """
    problem = ctx.problem
    if not problem.stops:
        return set()
    locations = np.array([s.location for s in problem.stops])
    service = np.array([s.service_time for s in problem.stops])
    demand = np.array([problem.demand_of(s) for s in problem.stops]).reshape(len(locations), -1)
    latest = np.array([max((w.end for w in s.time_windows), default=2**62) for s in problem.stops])
    earliest_open = np.array(
        [min((w.start for w in s.time_windows), default=0) for s in problem.stops]
    )
    depots = {d.id: d.location for d in problem.depots}
    outbound = {d: _shortest_from(ctx.durations, at)[locations] for d, at in depots.items()}
    inbound = {d: _shortest_from(ctx.durations.T, at)[locations] for d, at in depots.items()}
    possible = np.zeros(len(locations), dtype=bool)
    for vehicle in {v.model_copy(update={"id": "_"}) for v in problem.vehicles}:
        out, back = outbound[vehicle.start_depot], inbound[vehicle.end]
        arrive = vehicle.shift.start + out
        start = np.maximum(arrive, earliest_open)
        fits = (arrive <= latest) & (start + service + back <= vehicle.shift.end)
        if demand.shape[1]:
            fits &= np.all(demand <= np.asarray(vehicle.capacity), axis=1)
        possible |= fits
    pinned = {s for route in problem.fixed_routes.values() for s in route}
    for pair in problem.pairs:
        if pair.pickup in pinned or pair.delivery in pinned:
            pinned |= {pair.pickup, pair.delivery}
    return {s.id for s, ok in zip(problem.stops, possible, strict=True) if not ok} - pinned


def _shortest_from(durations: IntArray, source: int, rounds: int = 3) -> IntArray:
    """Travel-time lower bounds from ``source``: a few rounds of shortest-path relaxation
    (exact whenever the matrix keeps the triangle inequality, as road times nearly do)."""
    best: IntArray = durations[source].astype(np.int64)
    for _ in range(rounds):
        relaxed: IntArray = np.minimum(best, (best[:, None] + durations).min(axis=0))
        if np.array_equal(relaxed, best):
            break
        best = relaxed
    return best


def _without(problem: Problem, stop_ids: set[str]) -> Problem:
    if not stop_ids:
        return problem
    for pair in problem.pairs:
        if pair.pickup in stop_ids or pair.delivery in stop_ids:
            stop_ids |= {pair.pickup, pair.delivery}
    initial = {
        v: tuple(s for s in r if s not in stop_ids) for v, r in problem.initial_routes.items()
    }
    return problem.model_copy(
        update={
            "stops": tuple(s for s in problem.stops if s.id not in stop_ids),
            "pairs": tuple(
                p for p in problem.pairs if p.pickup not in stop_ids and p.delivery not in stop_ids
            ),
            "initial_routes": initial,
        }
    )


def _engines_for(problem: Problem, engine: str) -> list[str]:
    if engine == "auto":
        able = [name for name, e in ENGINES.items() if not e.unsupported(problem)]
        if not able:
            raise UnsupportedFeature("no engine can model this problem")
        return able
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose auto, {', '.join(ENGINES)}")
    missing = ENGINES[engine].unsupported(problem)
    if missing:
        raise UnsupportedFeature(f"engine {engine} cannot model: {', '.join(missing)}")
    return [engine]


def _in_parallel(
    ctx: Context, names: list[str], params: SolveParams, errors: list[str]
) -> dict[str, Sequences]:
    """The last engine (the strongest on large waves) runs here with the whole budget; the
    others each in a forked process (the context is inherited, nothing re-imported). An engine
    still running at the deadline is stopped and contributes nothing."""
    deadline = time.perf_counter() + params.time_limit_s
    # Engines sharing the machine set up more slowly than alone: keep a margin for that.
    shared = SolveParams(time_limit_s=params.time_limit_s * PARALLEL_SHARE, seed=params.seed)
    *others, local = names
    running: dict[Connection, tuple[str, int]] = {}
    for name in others:
        pid, receiver = _fork(name, ctx, shared)
        running[receiver] = (name, pid)
    answers: dict[str, Sequences] = {}
    try:
        try:
            answers[local] = ENGINES[local].solve(ctx, params)
        except Exception as exc:  # the others may still answer
            errors.append(f"{local}: {type(exc).__name__}: {exc}")
        while running:
            ready = wait(list(running), timeout=max(0.0, deadline - time.perf_counter()))
            if not ready:
                break
            for answered in ready:
                connection = cast(Connection, answered)
                name, pid = running.pop(connection)
                try:
                    ok, payload = connection.recv()
                except (EOFError, OSError):  # the engine's process died
                    ok, payload = False, None
                if ok:
                    answers[name] = cast(Sequences, payload)
                else:
                    errors.append(f"{name}: {payload or 'its process died'}")
                _reap(pid)
                connection.close()
    finally:  # whatever happened here, no engine outlives the call
        for connection, (name, pid) in running.items():
            errors.append(f"{name}: no answer within the time limit")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _reap(pid)
            connection.close()
    return answers


def _fork(name: str, ctx: Context, params: SolveParams) -> tuple[int, Connection]:
    """A child process for one engine. A bare fork rather than ``multiprocessing.Process``:
    a Celery prefork worker is a daemonic process, which ``multiprocessing`` forbids to have
    children, and planning runs in such workers."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe and leave without cleanup handlers
        receiver.close()
        try:
            _engine_process(name, ctx, params, sender)
        finally:
            os._exit(0)
    sender.close()
    return pid, receiver


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # already reaped
        os.waitpid(pid, 0)


def _engine_process(name: str, ctx: Context, params: SolveParams, sender: Any) -> None:
    try:
        sender.send((True, ENGINES[name].solve(ctx, params)))
    except Exception as exc:
        sender.send((False, f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()


def build_solution(ctx: Context, sequences: Sequences, engine: str, seconds: float) -> Solution:
    """Schedule each vehicle's sequence; list every stop left out, with the reason."""
    problem = ctx.problem
    routes: list[Route] = []
    for vehicle in problem.vehicles:
        stop_ids = sequences.get(vehicle.id) or []
        if stop_ids:
            routes.append(schedule_route(ctx, vehicle, stop_ids))
    served = {v.stop for r in routes for v in r.visits}
    left = [s for s in problem.stops if s.id not in served]
    unserved = tuple(Unserved(stop=s.id, reason=unserved_reason(ctx, s)) for s in left)
    penalties = sum(s.penalty or 0 for s in left)
    return Solution(
        routes=tuple(routes),
        unserved=unserved,
        cost=sum(r.cost for r in routes) + penalties,
        distance=sum(r.distance for r in routes),
        engine=engine,
        seconds=round(seconds, 3),
        feasible=all(not s.required for s in left),
    )


def unserved_reason(ctx: Context, stop: Stop) -> str:
    """Why a stop was left out: no vehicle could serve it at all, or it did not pay."""
    partner = _pair_partner(ctx.problem, stop.id)
    trip: Sequence[str] = partner or [stop.id]
    first_problem = ""
    for vehicle in ctx.problem.vehicles:
        try:
            schedule_route(ctx, vehicle, trip)
        except Infeasible as exc:
            first_problem = first_problem or str(exc)
            continue
        if stop.required:
            return "no route had room for it in the plan found within the time limit"
        return f"left out: serving it costs more than its penalty ({stop.penalty})"
    return f"no vehicle can serve it, even alone: {first_problem}"


def _pair_partner(problem: Problem, stop_id: str) -> list[str] | None:
    for pair in problem.pairs:
        if stop_id in (pair.pickup, pair.delivery):
            return [pair.pickup, pair.delivery]
    return None
