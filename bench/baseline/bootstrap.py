"""A minimal Python Lambda runtime: the Runtime API loop of the managed Python runtime,
without its extras (stdlib urllib only). The baseline runs as a custom runtime would:

    AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 python bench/baseline/bootstrap.py

It imports `handler` (module-level boto3 clients are created here, during init, as in a
real Python Lambda), then polls /invocation/next and answers each event.
"""

import json
import os
import sys
import traceback
import urllib.request

BASE = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def post(path, body, error_type=None):
    headers = {"Lambda-Runtime-Function-Error-Type": error_type} if error_type else {}
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), method="POST", headers=headers)
    urllib.request.urlopen(req).read()


def error_body(e):
    return {"errorType": type(e).__name__, "errorMessage": str(e), "stackTrace": traceback.format_exc().splitlines()}


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self.deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)


try:
    import handler
except Exception as e:  # an init error, reported like the managed runtime does
    post("/init/error", error_body(e), "Runtime.ImportModuleError")
    raise

while True:
    with urllib.request.urlopen(BASE + "/invocation/next") as resp:
        context = Context(resp.headers)
        event = json.loads(resp.read())
    try:
        result = handler.lambda_handler(event, context)
    except Exception as e:
        print(json.dumps({"level": "ERROR", "error": str(e)}), flush=True)
        post(f"/invocation/{context.aws_request_id}/error", error_body(e), "Unhandled")
        continue
    post(f"/invocation/{context.aws_request_id}/response", result)
