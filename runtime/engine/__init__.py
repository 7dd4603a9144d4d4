"""The engine: a run from claim to outcome.

Read it top to bottom in this order; each step names the module that does it.

1. **Enqueued.** ``runtime.services.run_create`` writes the run row (``queued``) and asks the
   queue backend (:mod:`~runtime.engine.queue`: ``postgres`` or ``redis_streams``) to tell
   workers in the same statement (``pg_notify('agent_runs', ...)``) or right after commit.
2. **Claimed.** ``manage.py runagent`` runs a :class:`~runtime.engine.worker.Worker`: it
   listens for new work and cancel requests, and claims as many due runs as it has free slots.
   The claim (:func:`runtime.engine.leases.claim_runs`) is one statement per batch:
   ``FOR UPDATE SKIP LOCKED``, FIFO by ``available_at``, a fresh lease token (the fencing token)
   per run, each run's ``run.started`` event, a notification, and everything the runner needs
   (run fields, conversation history).
3. **Resolved.** The runner (:mod:`~runtime.engine.runner`) resolves the agent through the
   registry, pinned to ``run.agent_version``, and builds the ``RunContext`` the agent sees.
4. **Running.** The worker's :class:`~runtime.engine.environment.RunEnvironment` lends the run
   its database threads and one heartbeat task for all its leases (cancel requests and lost
   leases reach the run within ``LEASE_TTL_SECONDS / 3``). Events go through the run's
   :class:`~runtime.engine.event_writer.EventWriter`: buffered, written in batches fenced by the
   lease token, the batches of all runs in one statement. Sub-agents are child runs
   (:mod:`~runtime.engine.children`) executed inside the parent's worker.
5. **Outcome.** The run ends succeeded, failed (or queued again with backoff), cancelled, timed
   out, or released on shutdown. :mod:`~runtime.engine.outcomes` writes the terminal status, the
   last events and the run's answer in one statement, fenced by the lease; runs that end
   together share it. A worker that lost its lease writes nothing at all.
6. **Rescued.** A worker that stops heartbeating loses its runs to
   :func:`runtime.engine.leases.sweep_expired`, run by every worker: requeued, or ended when out
   of attempts or cancelled; their children end with them.

Every write after the claim names the lease token, so a worker whose lease was rescued
matches no row and stops. This package never imports :mod:`runtime.api` (import-linter).
"""
