"""Shared pieces for the Python integration tests, the demos (tests/demo) and the bench
(bench/run.py). Start here:

* functions:    FunctionUnderTest, the one way to start a function under test (its queue
                and DLQ, inbox, environment); the ``start_function`` fixture wraps it
* events:       every event the functions are given, account ids, AMI ids, timestamps and
                maintenance windows
* fleet/:       seed and drive a simulated ECS-on-EC2 cluster in the emulator (a package:
                clients, model, seeding, scheduler, lifecycle, images)
* aws_proxy:    the recording proxy: every AWS call a function makes (and counts), faults
* emulator:     start/stop tests/emulator/launcher.py (the emulator package's entry point) in a
                subprocess; find a built binary
* runtime_api:  Lambda Runtime API emulator + LambdaProcess (runs a function binary); LocalServer
* sqs_pump:     Lambda's SQS event source mapping (receive, invoke, delete / retry)
* delivery:     FunctionQueue (queue + DLQ) and async invocation, both ending in a Delivery
* notifications: Inbox (an SNS topic with an SQS queue subscribed) and Notification
* accounts:     member accounts, their roles and clients (hub mode, issue 16)
* iam:          the template's IAM policies and what a call needs (least-privilege checks)
* template:     template.yaml loaded and resolved (parameters, conditions, environment)
* replay_helpers: labelled fleet state and calls, to compare two worlds (the replay suite)
* fault_paths:  the event paths and trials of the fault and secrets suites
* <function>_helpers: what each function's tests read back from the fleet (instance_drain,
                task_retirement, ami_rollout, guardduty_responder)
"""
