"""RQ job entry points, queues, the worker and the scheduler."""
