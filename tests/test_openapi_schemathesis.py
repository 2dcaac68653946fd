"""The OpenAPI document is true: a bounded schemathesis run (a few seconds) against the real app finds nothing.

The app runs with the real engine and a tiny ONNX model, served by uvicorn on a loopback port in a
thread, so requests, statuses, headers and bodies are the ones a client sees.

Two of schemathesis's heuristics are told what this API means, because no OpenAPI document can say it:
- positive_data_acceptance: a request body can be any bytes by the schema, but only a decodable image (or
  raw pixels of the declared width x height x format) is accepted (a job without a body must name an
  uploaded image= input), and a layer index beyond the job's layers is a 400; those 4xx answers are
  correct, not rejected "valid" data.
- use_after_free: DELETE /v1/jobs/{id} cancels the job, which stays readable (state "cancelled") until it
  expires (docs/DESIGN.md); it does not delete a resource.
Everything else runs with schemathesis's defaults (all checks, coverage, fuzzing and stateful phases).
"""

import threading
import time

import pytest

schemathesis = pytest.importorskip("schemathesis")

from gimp_colorize.config import ensure_token, load_settings  # noqa: E402
from gimp_colorize.daemon import build_engine, build_job_manager, http_config  # noqa: E402
from gimp_colorize.server import create_app  # noqa: E402
from gimp_colorize.job_params import BOXES_TEXT, ID_TEXT, INLINE_POINTS_TEXT, NUMBER_TEXT  # noqa: E402
from tests.support.daemon_harness import free_port, make_dirs  # noqa: E402

MAX_EXAMPLES = 15  # per operation and phase; 5-10 s on a busy 2-core machine


def run_config(token: str):
    from schemathesis.config import SchemathesisConfig

    return SchemathesisConfig.from_str(f'''
seed = 20260101
headers = {{ Authorization = "Bearer {token}" }}

[generation]
max-examples = {MAX_EXAMPLES}

[checks]
use_after_free.enabled = false

# the include-* filters of one entry select any operation matching one of them: this entry covers
# both POST routes (jobs: 202, inputs: 201)
[[operations]]
include-path = "/v1/jobs"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["201", "202", "400", "404", "409", "413", "415", "503"]

[[operations]]
include-path = "/v1/jobs/{{job_id}}/layers/{{index}}"
checks.positive_data_acceptance.expected-statuses = ["200", "400", "404", "409"]

[[operations]]
include-path = "/v1/jobs/{{job_id}}/layers/{{index}}/mask"
checks.positive_data_acceptance.expected-statuses = ["200", "400", "404", "409"]
''')


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import uvicorn

    settings = load_settings(env=make_dirs(tmp_path_factory.mktemp("openapi")))
    settings.port = free_port()
    settings.max_pixels, settings.max_body_bytes, settings.body_timeout_s = 100_000, 2_000_000, 5.0
    token = ensure_token(settings.token_file)
    engine = build_engine(settings, "cpu")
    jobs = build_job_manager(settings, engine)
    app = create_app(settings, engine, jobs)
    server = uvicorn.Server(http_config(app, host="127.0.0.1", port=settings.port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{settings.port}", token, app
    server.should_exit = True
    thread.join(10)
    jobs.shutdown()


def test_schemathesis_finds_no_failure(served):
    from schemathesis.engine import events

    url, token, _ = served
    schema = schemathesis.openapi.from_url(url + "/openapi.json", config=run_config(token))
    failures, errors, tested = [], [], set()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            tested.add(event.label)
            failures += _failures(event)
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            errors.append(str(getattr(event, "info", event))[:500])
    assert not errors, errors
    assert not failures, "\n".join(sorted(set(failures)))
    assert {"POST /v1/jobs", "GET /v1/jobs/{job_id}", "GET /v1/jobs/{job_id}/layers/{index}"} <= tested


def _failures(event) -> list[str]:
    from schemathesis.engine import Status

    found = []
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.status == Status.FAILURE:
                node = event.recorder.cases.get(case_id)
                request = f"{node.value.method} {node.value.path} {node.value.query}" if node else event.label
                detail = str(check.failure_info.failure).replace("\n", " ")[:300] if check.failure_info else ""
                found.append(f"{check.name}: {request}: {detail}")
    return found


def test_document_describes_body_security_and_statuses(served):
    _, _, app = served
    doc = app.openapi()
    submit = doc["paths"]["/v1/jobs"]["post"]
    assert set(submit["requestBody"]["content"]) == {"application/octet-stream", "image/png", "image/jpeg",
                                                     "image/tiff"}
    assert submit["security"] == [{"bearerToken": []}]
    scheme = doc["components"]["securitySchemes"]["bearerToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert {"202", "400", "401", "403", "404", "408", "409", "413", "415", "503"} == set(submit["responses"])
    assert submit["responses"]["503"]["headers"]["Retry-After"]["required"]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert "422" not in operation["responses"], (path, method)
            assert ("security" in operation) == (path != "/v1/health"), (path, method)
    poll = {p["name"]: p for p in doc["paths"]["/v1/jobs/{job_id}"]["get"]["parameters"]}
    assert poll["wait"]["schema"]["anyOf"][0]["maximum"] == 30
    status = doc["components"]["schemas"]["JobStatus"]["properties"]
    assert {"version", "queue_position"} <= set(status)
    assert "jobs_ahead" in doc["components"]["schemas"]["ErrorBody"]["properties"]


@pytest.mark.parametrize("extra", [0, 1])
def test_the_longest_text_parameters_reach_the_app_and_get_a_json_error(served, extra):
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    url, token, _ = served
    wide = "\U0002b841"  # 12 bytes once percent-encoded
    query = urllib.parse.urlencode({"points": wide * (INLINE_POINTS_TEXT + extra), "user_boxes": wide * BOXES_TEXT, "image": wide * ID_TEXT,
                                    **{name: wide * NUMBER_TEXT for name in ("vibrancy", "seed", "samples")}})
    request = urllib.request.Request(f"{url}/v1/jobs?{query}", data=b"x", method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=30)
    assert answer.value.code == 400
    assert answer.value.headers["Content-Type"] == "application/json"
    assert json.loads(answer.value.read())["error"]["message"]
