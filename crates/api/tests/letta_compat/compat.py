"""The official Letta Python client (letta-client, pinned in requirements.txt) against stephook.

Usage: python3 compat.py BASE_URL TOKEN STEP_ID EXPECTED_STEPS

Strict response validation is on, so every answer must match Letta's own schema. Prints one
line per check and exits non-zero on the first failure.
"""

import sys
import uuid

from letta_client import AuthenticationError, Letta, NotFoundError

PAGE = 2


def check(label, condition, detail=""):
    if not condition:
        print(f"FAIL {label} {detail}")
        sys.exit(1)
    print(f"ok   {label}")


def main():
    base_url, token, step_id, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = Letta(base_url=base_url, api_key=token, max_retries=0, _strict_response_validation=True)

    step = client.steps.retrieve(step_id)
    check("retrieve: id", step.id == step_id, step.id)
    check("retrieve: status", step.status == "success", step.status)
    check("retrieve: usage", (step.prompt_tokens, step.completion_tokens, step.total_tokens) == (11, 7, 18))
    check("retrieve: model and provider", (step.model, step.provider_name) == ("gpt-4o-mini", "openai"))
    check("retrieve: stop reason", step.stop_reason == "end_turn", step.stop_reason)

    metrics = client.steps.metrics.retrieve(step_id)
    check("metrics: step_ns", metrics.id == step_id and metrics.step_ns == 42_000_000, metrics)

    # Iterating a page follows `after` cursors through every page, as Letta users do.
    for order in ("asc", "desc"):
        first = client.steps.list(limit=PAGE, order=order)
        check(f"list {order}: first page size", len(first.items) == PAGE, len(first.items))
        check(f"list {order}: has a next page", first.has_next_page())
        ids = [s.id for s in client.steps.list(limit=PAGE, order=order)]
        check(f"list {order}: every step once", len(ids) == expected and len(set(ids)) == expected, ids)

    filtered = client.steps.list(agent_id="agent-compat", limit=1000)
    check("list: agent filter", all(s.agent_id == "agent-compat" for s in filtered.items) and filtered.items)

    try:
        Letta(base_url=base_url, api_key="wrong-token", max_retries=0).steps.retrieve(step_id)
        check("401 raises AuthenticationError", False, "no error")
    except AuthenticationError as error:
        check("401 raises AuthenticationError", error.status_code == 401)

    try:
        client.steps.retrieve(f"step-{uuid.uuid4()}")
        check("404 raises NotFoundError", False, "no error")
    except NotFoundError as error:
        check("404 raises NotFoundError", error.status_code == 404)

    print("OK")


if __name__ == "__main__":
    main()
