"""The pure core: the job and its parts, the lifecycle table, the API's limits, the schedule.

Nothing here does I/O or imports boto3/requests: use cases, adapters, the API client, the sidecar
model and the emulator all build on these definitions, so each fact is written once.
"""
