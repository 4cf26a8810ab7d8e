"""Shared pieces for the Python integration tests and the demo.

* runtime_api: Lambda Runtime API emulator + LambdaProcess (runs a function binary)
* sqs_pump:    Lambda's SQS event source mapping (receive, invoke, delete / retry)
* fleet:       seed and drive a simulated ECS-on-EC2 cluster in the emulator
* emulator:    start/stop tests/emulator/launcher.py in a subprocess
"""
