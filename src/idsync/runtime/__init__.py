"""What runs a node: the scheduler loop, the executors and the outbox sender.

This layer sits above :mod:`idsync.services` and below the front ends. It owns
threads, loops and signals; every decision it acts on is a service call, so a
``serve`` process, ``idsync scheduler`` and a worker embed the same parts.
"""
