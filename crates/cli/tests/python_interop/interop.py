"""Another SDK's view of stephook (run by temporal_e2e's python_interop test).

1. A Python client starts stephook's AgentWorkflow by name, with chat-shaped messages as Letta
   sends them, and reads its result and its `progress` query.
2. A Python workflow on its own task queue stores a step with `create_step` and notifies it with
   `send_step_complete_webhook`, both called by name as regular activities on stephook's queue,
   and returns what they answered.

Prints one JSON object on stdout. Usage: interop.py ADDRESS STEPHOOK_TASK_QUEUE RUN_ID STEP_ID
"""

import asyncio
import json
import os
import sys
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker


@workflow.defn
class PyAgent:
    @workflow.run
    async def run(self, args: dict) -> dict:
        queue = args["task_queue"]
        started_at_ms = int(workflow.now().timestamp() * 1000)
        await workflow.execute_activity(
            "create_step",
            {
                "step_id": args["step_id"],
                "agent_id": "py-agent",
                "run_id": args["run_id"],
                "status": "success",
                "started_at_ms": started_at_ms,
            },
            task_queue=queue,
            start_to_close_timeout=timedelta(seconds=15),
        )
        sent = await workflow.execute_activity(
            "send_step_complete_webhook",
            {"step_id": args["step_id"]},
            task_queue=queue,
            start_to_close_timeout=timedelta(seconds=15),
            schedule_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=10),
            ),
        )
        return {"webhook": sent}


async def main() -> None:
    address, queue, run_id, step_id = sys.argv[1:5]
    client = await Client.connect(address)

    handle = await client.start_workflow(
        "AgentWorkflow",
        {
            "agent_id": "py-agent",
            "run_id": run_id,
            "max_steps": 2,
            "messages": [{"role": "user", "content": "hello from Python"}],
        },
        id=f"agent-run-{run_id}",
        task_queue=queue,
    )
    agent_result = await handle.result()
    progress = await handle.query("progress")

    own_queue = f"py-interop-{uuid.uuid4()}"
    async with Worker(client, task_queue=own_queue, workflows=[PyAgent]):
        py_result = await client.execute_workflow(
            PyAgent.run,
            {"task_queue": queue, "run_id": run_id + "-py", "step_id": step_id},
            id=f"py-agent-{uuid.uuid4()}",
            task_queue=own_queue,
        )
    print(json.dumps({"agent": agent_result, "progress": progress, "py": py_result}))


if __name__ == "__main__":
    asyncio.run(main())
    # Everything is printed. The SDK's Rust threads may still be ending while the interpreter
    # finalizes, which aborts the process ("Fatal Python error: PyGILState_Release: thread
    # state ... must be current when releasing", seen once in CI after a run that passed):
    # leave without finalizing.
    sys.stdout.flush()
    os._exit(0)
