"""The job queue: what Slack was told we accepted is a committed row (`intake`), claimed and run once
at a time by a worker (`worker`) under one failure policy, recovered when its worker dies (`jobs`)."""
