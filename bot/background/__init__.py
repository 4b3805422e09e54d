"""Work on a schedule: the runtime, the scheduler and its leadership lock."""
