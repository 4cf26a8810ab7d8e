"""A tiny Lambda runtime client used to test harness.runtime_api.LambdaProcess.

Events: {"echo": x} -> {"echo": x}; {"fail": msg} -> function error;
{"crash": code} -> exits; {"sleep": s} -> sleeps then answers;
{"sqs_fail_bodies": [...]} is handled for SQS events: records whose body is
listed fail (batchItemFailures). FAKE_INIT_ERROR=1 -> init error + exit 3.
Logs one JSON line per event on stdout.
"""

import json
import os
import sys
import time
import urllib.request

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = f"http://{API}/2018-06-01/runtime"


def post(path, body, headers=None):
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), method="POST", headers=headers or {})
    urllib.request.urlopen(req).read()


if os.environ.get("FAKE_INIT_ERROR"):
    post("/init/error", {"errorType": "Config.Missing", "errorMessage": "CLUSTER_TAG is not set"},
         {"Lambda-Runtime-Function-Error-Type": "Config.Missing"})
    print(json.dumps({"level": "ERROR", "message": "init failed"}), flush=True)
    sys.exit(3)

fail_bodies = set(json.loads(os.environ.get("FAKE_FAIL_BODIES", "[]")))
print(json.dumps({"level": "INFO", "message": "cold start", "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME")}), flush=True)

while True:
    with urllib.request.urlopen(BASE + "/invocation/next") as resp:
        rid = resp.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = resp.headers["Lambda-Runtime-Deadline-Ms"]
        arn = resp.headers["Lambda-Runtime-Invoked-Function-Arn"]
        event = json.loads(resp.read())
    print(json.dumps({"level": "INFO", "message": "event", "request_id": rid, "arn": arn, "deadline": deadline}), flush=True)
    print("plain text line on stderr", file=sys.stderr, flush=True)
    if "Records" in event:
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] in fail_bodies]
        post(f"/invocation/{rid}/response", {"batchItemFailures": failures})
    elif "crash" in event:
        sys.exit(int(event["crash"]))
    elif "fail" in event:
        post(f"/invocation/{rid}/error", {"errorType": "Handler.Failed", "errorMessage": event["fail"]},
             {"Lambda-Runtime-Function-Error-Type": "Handler.Failed"})
    elif "sleep" in event:
        time.sleep(float(event["sleep"]))
        post(f"/invocation/{rid}/response", {"slept": event["sleep"]})
    elif "raw" in event:
        post(f"/invocation/{rid}/response", event["raw"])
    else:
        post(f"/invocation/{rid}/response", {"echo": event.get("echo"), "env_region": os.environ.get("AWS_REGION")})
